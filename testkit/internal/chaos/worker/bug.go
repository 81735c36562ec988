package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/kclgo/kcl/lease"
)

// Bug is a deliberate defect the worker can be started with, so that the
// harness can show its checker catches it.
type Bug uint8

const (
	// NoBug runs the library as it is.
	NoBug Bug = iota
	// Unfenced wraps the lease store so that a checkpoint fenced off with
	// lease.ErrLeaseLost is retried with the lease as re-read (its current
	// counter and owner): the worker writes checkpoints while another
	// worker holds the lease. The checker must report fencing violations.
	Unfenced
	// ChildBeforeParent wraps the lease store so that Get reports
	// lease.ErrNotFound for every key: the parent gate sees no parent
	// lease and lets child shards start at once. The checker must report
	// order violations once a child's records are processed before its
	// parent's last ones.
	ChildBeforeParent
)

func (b Bug) String() string {
	switch b {
	case NoBug:
		return "none"
	case Unfenced:
		return "unfenced"
	case ChildBeforeParent:
		return "child-before-parent"
	}
	return fmt.Sprintf("Bug(%d)", uint8(b))
}

// ParseBug parses a -bug value: "", "none", "unfenced" or
// "child-before-parent".
func ParseBug(s string) (Bug, error) {
	switch s {
	case "", "none":
		return NoBug, nil
	case "unfenced":
		return Unfenced, nil
	case "child-before-parent":
		return ChildBeforeParent, nil
	}
	return 0, fmt.Errorf("-bug %q: want none, unfenced or child-before-parent", s)
}

// wrap returns s with the bug injected.
func (b Bug) wrap(s lease.Store) lease.Store {
	switch b {
	case Unfenced:
		return unfencedStore{s}
	case ChildBeforeParent:
		return parentlessStore{s}
	}
	return s
}

// unfencedStore retries fenced-off checkpoints with the fresh lease.
type unfencedStore struct{ lease.Store }

func (s unfencedStore) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	nl, err := s.Store.Checkpoint(ctx, l, u)
	if !errors.Is(err, lease.ErrLeaseLost) {
		return nl, err
	}
	cur, gerr := s.Store.Get(ctx, l.Key)
	if gerr != nil {
		return nl, err
	}
	return s.Store.Checkpoint(ctx, cur, u)
}

// parentlessStore hides every lease from Get.
type parentlessStore struct{ lease.Store }

func (s parentlessStore) Get(context.Context, string) (lease.Lease, error) {
	return lease.Lease{}, lease.ErrNotFound
}
