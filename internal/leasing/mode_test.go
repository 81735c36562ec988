package leasing_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// perLeaseOnly is a store with no kcl-fleet items: it hides memlease's
// FleetStore methods.
type perLeaseOnly struct{ lease.Store }

func TestChooseMode(t *testing.T) {
	owned := func(owner string) lease.Lease {
		return lease.Lease{Key: "shardId-000000000001", Owner: owner, Counter: 3, Checkpoint: checkpoint.TrimHorizon}
	}
	tests := []struct {
		name      string
		setup     func(s *memlease.Store)
		store     func(s *memlease.Store) lease.Store
		wantFleet bool
		reason    string // a part of Reason and of ChooseMode(requireFleet)'s error
	}{
		{name: "an empty table", wantFleet: true, reason: "no per-lease worker"},
		{name: "unowned leases", setup: func(s *memlease.Store) {
			s.Put(lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon})
		}, wantFleet: true},
		{name: "leases owned by kcl fleet workers", setup: func(s *memlease.Store) {
			s.Put(owned("w1"))
			if _, err := s.Beat(t.Context(), "w1", lease.WorkerRunning, 1); err != nil {
				t.Fatal(err)
			}
		}, wantFleet: true},
		{name: "a lease owned by a worker without a heartbeat", setup: func(s *memlease.Store) {
			s.Put(owned("java-worker-1"))
		}, reason: `"java-worker-1", which has no kcl-fleet heartbeat`},
		{name: "a handoff from a worker without a heartbeat", setup: func(s *memlease.Store) {
			l := owned("w1")
			l.CheckpointOwner = "java-worker-1"
			s.Put(l)
			if _, err := s.Beat(t.Context(), "w1", lease.WorkerRunning, 1); err != nil {
				t.Fatal(err)
			}
		}, reason: `"java-worker-1"`},
		{name: "a finished lease of a departed worker does not count", setup: func(s *memlease.Store) {
			l := owned("java-worker-1")
			l.Checkpoint = checkpoint.ShardEnd
			s.Put(l)
		}, wantFleet: true},
		{name: "a store without kcl-fleet items", store: func(s *memlease.Store) lease.Store { return perLeaseOnly{s} },
			reason: "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memlease.New()
			if tt.setup != nil {
				tt.setup(s)
			}
			var store lease.Store = s
			if tt.store != nil {
				store = tt.store(s)
			}
			ch, err := leasing.ChooseMode(t.Context(), store, false)
			if err != nil {
				t.Fatalf("ChooseMode: %v", err)
			}
			if ch.Fleet != tt.wantFleet || !strings.Contains(ch.Reason, tt.reason) {
				t.Errorf("ChooseMode = %+v, want Fleet %v and a reason containing %q", ch, tt.wantFleet, tt.reason)
			}
			// Requiring kcl fleet on a table that calls for per-lease
			// renewal is an error that says why.
			_, err = leasing.ChooseMode(t.Context(), store, true)
			switch {
			case tt.wantFleet && err != nil:
				t.Errorf("ChooseMode(requireFleet): %v", err)
			case !tt.wantFleet && (err == nil || !strings.Contains(err.Error(), tt.reason)):
				t.Errorf("ChooseMode(requireFleet) = %v, want an error containing %q", err, tt.reason)
			case !tt.wantFleet && tt.store == nil && !errors.Is(err, leasing.ErrForeignTable):
				t.Errorf("ChooseMode(requireFleet) = %v, want ErrForeignTable", err)
			}
		})
	}
}

func TestChooseModeReportsStoreFailures(t *testing.T) {
	boom := errors.New("boom")
	for _, op := range []memlease.Op{memlease.OpList, memlease.OpHeartbeats} {
		s := memlease.New(memlease.WithFault(func(o memlease.Op, _ string) error {
			if o == op {
				return boom
			}
			return nil
		}))
		s.Put(lease.Lease{Key: "k", Owner: "w1", Counter: 1, Checkpoint: checkpoint.TrimHorizon})
		if _, err := leasing.ChooseMode(t.Context(), s, false); !errors.Is(err, boom) {
			t.Errorf("%v fails: ChooseMode = %v, want the failure", op, err)
		}
	}
}
