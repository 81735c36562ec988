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
	// lease.ErrNotFound for every lease the worker does not own: the parent
	// gate sees no parent lease held by another worker and lets child
	// shards start at once. (Its own leases stay visible: in kcl fleet mode
	// a worker reads each lease assigned to it before it acquires it.) The
	// checker must report order violations once a child's records are
	// processed before its parent's last ones.
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

// Store is what the worker needs of its lease store: a lease.Store with
// the heartbeats and the owner index of kcl fleet mode, as lease/dynamolease
// and lease/memlease have them. A bug's wrapper keeps them, so that the
// Worker chooses its coordination as it would without the bug (a wrapper
// that hid them would make it fall back to per-lease renewal).
type Store interface {
	lease.Store
	lease.FleetStore
	lease.OwnerLister
}

var (
	_ Store = unfencedStore{}
	_ Store = parentlessStore{}
)

// wrap returns s with the bug injected.
func (b Bug) wrap(s Store, self string) Store {
	switch b {
	case Unfenced:
		return unfencedStore{s}
	case ChildBeforeParent:
		return parentlessStore{s, self}
	}
	return s
}

// unfencedStore retries fenced-off checkpoints with the fresh lease.
type unfencedStore struct{ Store }

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

// parentlessStore hides from Get every lease not owned by self.
type parentlessStore struct {
	Store
	self string
}

func (s parentlessStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	l, err := s.Store.Get(ctx, key)
	if err != nil || l.Owner != s.self {
		return lease.Lease{}, lease.ErrNotFound
	}
	return l, nil
}
