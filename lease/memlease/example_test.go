package memlease_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// Two workers race for a shard's lease: the second one's view is stale, so
// the store fences it off. Stats shows what the same exchange would cost in
// DynamoDB.
func Example() {
	ctx := context.Background()
	s := memlease.New()

	// Shard sync creates the lease unowned, at counter 0.
	_ = s.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})

	// Both workers read it; worker-1 takes it first.
	seen1, _ := s.Get(ctx, "shardId-000000000000")
	seen2, _ := s.Get(ctx, "shardId-000000000000")
	held, err := s.Take(ctx, seen1, "worker-1")
	fmt.Println("worker-1 takes:", held.Owner, held.Counter, err)
	_, err = s.Take(ctx, seen2, "worker-2")
	fmt.Println("worker-2 takes:", errors.Is(err, lease.ErrConflict))

	// worker-1 renews and checkpoints with the counter it holds.
	held, _ = s.Renew(ctx, held)
	pos, _ := checkpoint.At("49590338271490256608559692538361571095921575989136588898", 0)
	held, _ = s.Checkpoint(ctx, held, lease.CheckpointUpdate{Checkpoint: pos})
	fmt.Println("worker-1 at:", held.Checkpoint, "counter", held.Counter)

	st := s.Stats()
	fmt.Println("reads:", st.Gets, "writes:", st.Writes(), "failed takes:", st.Take.Failed)
	// Output:
	// worker-1 takes: worker-1 1 <nil>
	// worker-2 takes: true
	// worker-1 at: 49590338271490256608559692538361571095921575989136588898/0 counter 3
	// reads: 2 writes: 5 failed takes: 1
}

// A fault injected before an operation simulates throttling; a spurious
// failure simulates a write that landed although its caller saw an error.
func ExampleWithSpuriousFailure() {
	ctx := context.Background()
	timeout := errors.New("request timed out")
	s := memlease.New(memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
		if op == memlease.OpRenew {
			return timeout
		}
		return nil
	}))
	_ = s.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon, Owner: "worker-1"})
	held, _ := s.Get(ctx, "shardId-000000000000")

	_, err := s.Renew(ctx, held)
	fmt.Println("renew:", err)

	// As KCL does, re-read: the renewal landed after all.
	now, _ := s.Get(ctx, held.Key)
	fmt.Println("still held:", now.Owner == held.Owner && now.Counter == held.Counter+1)
	// Output:
	// renew: request timed out
	// still held: true
}
