// Package memlease is an in-memory lease table: a lease.Store with the exact
// semantics of the DynamoDB store (same conditions, same errors), for unit
// tests of the coordinator and for simulations of a fleet of workers.
//
// A Store is a map behind a mutex. It starts no goroutine and uses no timer,
// so it works inside a testing/synctest bubble. It passes the conformance
// suite in package leasetest.
//
// It also implements lease.OwnerLister, lease.FleetStore (the heartbeats,
// roster and leader lock of kcl-fleet coordination, kept apart from the
// leases, so List and Get never see them) and lease.Surveyor.
//
// Beyond lease.Store it offers what tests need:
//
//   - WithFault injects errors (throttling, network failures) before an
//     operation, and WithSpuriousFailure after a write that landed, the case
//     KCL handles by re-reading the lease after a failed renewal;
//   - Stats counts reads and writes the way DynamoDB would bill them;
//   - Put and Leases set and inspect the table directly, bypassing conditions,
//     faults and counts;
//   - AddForeignItem makes the table look shared with Java KCL 3.x workers,
//     for tests of the choice of coordination mode.
//
// Leases are stored as a DynamoDB table would keep them: empty slices become
// nil, and ParentShardIDs and ChildShardIDs, which DynamoDB keeps as string
// sets, are sorted and stripped of duplicates. Because it holds typed Leases,
// a Store cannot hold an item that fails to parse: List never returns a
// *lease.MalformedError. Test the handling of malformed items against the
// DynamoDB store, or with a wrapper whose List returns one.
package memlease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/kclgo/kcl/lease"
)

// Compile-time checks that Store implements the interfaces it promises.
var (
	_ lease.Store       = (*Store)(nil)
	_ lease.OwnerLister = (*Store)(nil)
	_ lease.FleetStore  = (*Store)(nil)
	_ lease.Surveyor    = (*Store)(nil)
)

// Store is an in-memory lease table. The zero value is not usable; call New.
// Its methods are safe for concurrent use. ctx is checked before each
// operation, which never blocks other than on the Store's mutex.
type Store struct {
	fault    func(op Op, key string) error // never nil
	spurious func(op Op, key string) error // never nil

	mu     sync.Mutex // guards the fields below
	leases map[string]lease.Lease
	stats  Stats
	// The lease.FleetStore items, kept apart from the leases as the
	// DynamoDB store keeps them apart by entityType.
	heartbeats map[string]lease.Heartbeat
	roster     map[string]struct{}
	// rosterItem is set by the first Join or Leave: the DynamoDB store's
	// roster item stays, emptied, after the last Leave.
	rosterItem bool
	leader     *lease.LeaderLock // nil until first acquired
	// foreign holds what AddForeignItem registered, for Survey.
	foreign []string
	// reports holds what ReportWorkerMetrics recorded.
	reports []MetricsReport
}

// Option configures a Store.
type Option func(*options)

type options struct {
	fault    func(op Op, key string) error
	spurious func(op Op, key string) error
}

func noFault(Op, string) error { return nil }

// WithFault makes the Store call f before each operation, with the operation
// and the lease key it concerns ("" for List and ListOwned). For the
// lease.FleetStore operations key is the worker id the operation concerns
// (Beat, MarkAssigned, Join, Leave, AcquireLeader, and the lock's owner for
// RenewLeader and ReleaseLeader), so that a test can cut one worker off the
// table; "" for Heartbeats, Roster, Leader and Survey; the lease key for
// Assign; and the reporting worker's id for ReportWorkerMetrics.
// When f returns an
// error, the Store returns it unchanged instead of performing the operation,
// as if the request had never reached the table: nothing is read, written or
// counted. Return lease.ErrThrottled to simulate throttling, or any error to
// simulate a network failure.
//
// f may be called from several goroutines at once, without the Store's lock
// held: it may call the Store. Default: no fault.
func WithFault(f func(op Op, key string) error) Option {
	return func(o *options) { o.fault = f }
}

// WithSpuriousFailure makes the Store call f after each write (Create, Renew,
// Take, Handoff, Checkpoint, Release, Delete, and the writes of
// lease.FleetStore, with the key WithFault describes) that landed. When f returns an
// error, the Store returns it instead of the write's result although the write
// took effect, as when a response is lost or a request times out after the
// table applied it. KCL calls this a spurious failure: a renewer that sees an
// error must re-read the lease and find that it still holds it.
//
// f may be called from several goroutines at once, without the Store's lock
// held: it may call the Store. Default: none.
func WithSpuriousFailure(f func(op Op, key string) error) Option {
	return func(o *options) { o.spurious = f }
}

// New returns an empty Store.
func New(opts ...Option) *Store {
	o := options{fault: noFault, spurious: noFault}
	for _, opt := range opts {
		opt(&o)
	}
	if o.fault == nil {
		o.fault = noFault
	}
	if o.spurious == nil {
		o.spurious = noFault
	}
	return &Store{
		fault:    o.fault,
		spurious: o.spurious,
		leases:   make(map[string]lease.Lease),

		heartbeats: make(map[string]lease.Heartbeat),
		roster:     make(map[string]struct{}),
	}
}

// errNoKey, errNoOwner and errZeroCheckpoint report invalid arguments: bugs
// in the caller, never a conflict.
var (
	errNoKey          = errors.New("empty lease key")
	errNoOwner        = errors.New("empty owner")
	errZeroCheckpoint = errors.New("zero checkpoint position")
	errUnowned        = errors.New("lease has no owner to hand off from")
	errSelfHandoff    = errors.New("handoff to the lease's own owner")
)

// begin runs the checks every operation makes before it reaches the table.
func (s *Store) begin(ctx context.Context, op Op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memlease: %v %q: %w", op, key, err)
	}
	return s.fault(op, key)
}

// Create implements lease.Store.
func (s *Store) Create(ctx context.Context, l lease.Lease) error {
	if l.Key == "" {
		return fmt.Errorf("memlease: %v: %w", OpCreate, errNoKey)
	}
	if err := s.begin(ctx, OpCreate, l.Key); err != nil {
		return err
	}
	l = normalize(l)
	s.mu.Lock()
	_, exists := s.leases[l.Key]
	if !exists {
		s.leases[l.Key] = l
	}
	s.countWrite(OpCreate, !exists)
	s.mu.Unlock()
	if exists {
		return fmt.Errorf("memlease: %v %q: %w", OpCreate, l.Key, lease.ErrAlreadyExists)
	}
	return s.spurious(OpCreate, l.Key)
}

// Get implements lease.Store.
func (s *Store) Get(ctx context.Context, key string) (lease.Lease, error) {
	if err := s.begin(ctx, OpGet, key); err != nil {
		return lease.Lease{}, err
	}
	s.mu.Lock()
	l, ok := s.leases[key]
	s.stats.Gets++
	l = l.Clone()
	s.mu.Unlock()
	if !ok {
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpGet, key, lease.ErrNotFound)
	}
	return l, nil
}

// List implements lease.Store. It returns the leases in key order; other
// stores may return them in any order. Its error is never a
// *lease.MalformedError.
func (s *Store) List(ctx context.Context) ([]lease.Lease, error) {
	if err := s.begin(ctx, OpList, ""); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.snapshot()
	s.stats.Lists++
	s.stats.ListedItems += int64(len(out))
	return out, nil
}

// ListOwned implements lease.OwnerLister. It returns the keys in order and,
// unlike the DynamoDB store, never lags writes.
func (s *Store) ListOwned(ctx context.Context, owner string) ([]string, error) {
	if err := s.begin(ctx, OpListOwned, ""); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for key, l := range s.leases {
		if owner != "" && l.Owner == owner {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	s.stats.ListOwnedCalls++
	s.stats.OwnedKeys += int64(len(keys))
	return keys, nil
}

// Renew implements lease.Store.
func (s *Store) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.update(ctx, OpRenew, l, lease.ErrLeaseLost, true, func(*lease.Lease) {})
}

// Take implements lease.Store. An empty owner is an error: DynamoDB cannot
// index an empty leaseOwner.
func (s *Store) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	if owner == "" {
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpTake, l.Key, errNoOwner)
	}
	return s.update(ctx, OpTake, l, lease.ErrConflict, false, setOwner(l, owner))
}

// setOwner is the change Take and Assign make to the stored lease: owner
// becomes the owner, any handoff is cleared, and a switch is counted only
// when another worker held the lease, as KCL does (taking an unowned lease
// is not a switch). Like KCL and the DynamoDB store, it judges by the lease
// as the writer read it: a handoff request leaves the counter alone, so the
// stored owner may be the incoming one.
func setOwner(l lease.Lease, owner string) func(stored *lease.Lease) {
	return func(stored *lease.Lease) {
		if l.Owner != "" && l.Owner != owner {
			stored.OwnerSwitchesSinceCheckpoint++
		}
		stored.Owner = owner
		stored.CheckpointOwner = ""
	}
}

// Handoff implements lease.Store. As in KCL 3.x, the request leaves the
// counter as it is. Handing off an unowned lease (l.Owner is ""), to no one
// (to is "") or to its owner is an error: there is nobody to hand from or to.
func (s *Store) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	switch {
	case to == "":
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpHandoff, l.Key, errNoOwner)
	case l.Owner == "":
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpHandoff, l.Key, errUnowned)
	case to == l.Owner:
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpHandoff, l.Key, errSelfHandoff)
	}
	return s.update(ctx, OpHandoff, l, lease.ErrConflict, true, func(stored *lease.Lease) {
		stored.CheckpointOwner = l.Owner
		stored.Owner = to
	})
}

// Checkpoint implements lease.Store. A zero u.Checkpoint is an error that
// matches neither lease.ErrConflict nor lease.ErrLeaseLost, and writes
// nothing. As in KCL, and because DynamoDB cannot store an empty string set,
// an empty (even non-nil) u.ChildShardIDs leaves the stored children as they
// are.
func (s *Store) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	if u.Checkpoint.IsZero() {
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpCheckpoint, l.Key, errZeroCheckpoint)
	}
	// Copy the caller's slices before taking the lock.
	state := slices.Clone(u.PendingCheckpointState)
	if u.PendingCheckpoint.IsZero() || len(state) == 0 {
		state = nil
	}
	children := shardSet(u.ChildShardIDs)
	return s.update(ctx, OpCheckpoint, l, lease.ErrLeaseLost, true, func(stored *lease.Lease) {
		stored.Checkpoint = u.Checkpoint
		stored.PendingCheckpoint = u.PendingCheckpoint
		stored.PendingCheckpointState = state
		stored.OwnerSwitchesSinceCheckpoint = 0
		if children != nil {
			stored.ChildShardIDs = children
		}
		if l.CheckpointOwner != "" {
			stored.CheckpointOwner = ""
		}
	})
}

// Release implements lease.Store.
func (s *Store) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.update(ctx, OpRelease, l, lease.ErrLeaseLost, true, func(stored *lease.Lease) {
		stored.Owner = ""
		stored.CheckpointOwner = ""
	})
}

// Delete implements lease.Store.
func (s *Store) Delete(ctx context.Context, l lease.Lease) error {
	if err := s.begin(ctx, OpDelete, l.Key); err != nil {
		return err
	}
	s.mu.Lock()
	stored, ok := s.leases[l.Key]
	var err error
	switch {
	case !ok:
		err = lease.ErrNotFound
	case stored.Counter != l.Counter:
		err = lease.ErrConflict
	default:
		delete(s.leases, l.Key)
	}
	s.countWrite(OpDelete, err == nil)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("memlease: %v %q: %w", OpDelete, l.Key, err)
	}
	return s.spurious(OpDelete, l.Key)
}

// update performs a conditional update of the lease with key l.Key: if the
// stored counter equals l.Counter (and, when checkOwner is set, the stored
// owner equals l.Owner, and for Handoff no handoff is in progress) it applies
// change, increments the counter (except for Handoff, which KCL 3.x does
// not fence with it) and returns a copy of the result; otherwise
// it returns an error matching condErr. change must replace, never modify in
// place, the slices of the stored lease: earlier results share nothing with
// it, but earlier versions of it do.
func (s *Store) update(ctx context.Context, op Op, l lease.Lease, condErr error, checkOwner bool, change func(stored *lease.Lease)) (lease.Lease, error) {
	if err := s.begin(ctx, op, l.Key); err != nil {
		return lease.Lease{}, err
	}
	s.mu.Lock()
	stored, ok := s.leases[l.Key]
	held := ok && stored.Counter == l.Counter &&
		(!checkOwner || stored.Owner == l.Owner) &&
		(op != OpHandoff || stored.CheckpointOwner == "")
	var out lease.Lease
	if held {
		change(&stored)
		if op != OpHandoff {
			stored.Counter++
		}
		s.leases[l.Key] = stored
		out = stored.Clone()
	}
	s.countWrite(op, held)
	s.mu.Unlock()
	switch {
	case !ok:
		// As the DynamoDB store does, say why the condition failed.
		return lease.Lease{}, fmt.Errorf("memlease: %v %q at counter %d: %w (%w)", op, l.Key, l.Counter, condErr, lease.ErrNotFound)
	case !held:
		return lease.Lease{}, fmt.Errorf("memlease: %v %q at counter %d: %w", op, l.Key, l.Counter, condErr)
	}
	if err := s.spurious(op, l.Key); err != nil {
		return lease.Lease{}, err
	}
	return out, nil
}

// countWrite counts one conditional write of op. s.mu must be held.
func (s *Store) countWrite(op Op, ok bool) {
	w := s.stats.write(op)
	if ok {
		w.Succeeded++
	} else {
		w.Failed++
	}
}

// Stats returns the requests served so far; see Stats for what is counted.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Put stores l, replacing any lease with its key, with no condition, fault
// or count: a test fixture, or a write by a process outside the system under
// test (an operator, a KCL worker written in Java). It never fails.
func (s *Store) Put(l lease.Lease) {
	l = normalize(l)
	s.mu.Lock()
	s.leases[l.Key] = l
	s.mu.Unlock()
}

// Leases returns a copy of every lease in key order, with no fault or count:
// for assertions that must not disturb Stats.
func (s *Store) Leases() []lease.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

// snapshot returns copies of the stored leases in key order. s.mu must be
// held.
func (s *Store) snapshot() []lease.Lease {
	keys := slices.Sorted(maps.Keys(s.leases))
	out := make([]lease.Lease, len(keys))
	for i, key := range keys {
		out[i] = s.leases[key].Clone()
	}
	return out
}

// normalize returns a copy of l as a DynamoDB table would hold it.
func normalize(l lease.Lease) lease.Lease {
	l = l.Clone()
	if len(l.PendingCheckpointState) == 0 {
		l.PendingCheckpointState = nil
	}
	l.ParentShardIDs = shardSet(l.ParentShardIDs)
	l.ChildShardIDs = shardSet(l.ChildShardIDs)
	return l
}

// shardSet returns a sorted copy of ids without duplicates, or nil when ids is
// empty: the value of a DynamoDB string set.
func shardSet(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	set := slices.Clone(ids)
	slices.Sort(set)
	return slices.Compact(set)
}
