package leasetest

import (
	"context"
	"errors"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

var contextTests = []test{
	{"every operation fails with a cancelled context and writes nothing", func(t *testing.T, s lease.Store) {
		held := create(t, s, heldLease(t, "shardId-000000000000", workerA))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		calls := []struct {
			name string
			call func() error
		}{
			{"Create", func() error { return s.Create(ctx, plainLease("shardId-000000000001")) }},
			{"Get", func() error { _, err := s.Get(ctx, held.Key); return err }},
			{"List", func() error { _, err := s.List(ctx); return err }},
			{"Renew", func() error { _, err := s.Renew(ctx, held); return err }},
			{"Take", func() error { _, err := s.Take(ctx, held, workerB); return err }},
			{"Handoff", func() error { _, err := s.Handoff(ctx, held, workerB); return err }},
			{"Checkpoint", func() error {
				_, err := s.Checkpoint(ctx, held, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
				return err
			}},
			{"Release", func() error { _, err := s.Release(ctx, held); return err }},
			{"Delete", func() error { return s.Delete(ctx, held) }},
		}
		if ol, ok := s.(lease.OwnerLister); ok {
			calls = append(calls, struct {
				name string
				call func() error
			}{"ListOwned", func() error { _, err := ol.ListOwned(ctx, workerA); return err }})
		}
		for _, c := range calls {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context = %v; want an error matching context.Canceled", c.name, err)
			}
		}
		wantListed(t, s, "after the cancelled calls", []lease.Lease{held})
	}},
}
