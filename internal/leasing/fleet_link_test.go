package leasing_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// The network of the fleet tests (fleet_stress_test.go, fleet_faults_test.go):
// each worker reaches the shared memlease table through a link of its own,
// and every checkpoint that lands is checked against the last one.

// link is the network between one worker and the table. It can be cut: every
// call fails before it reaches the table, and the response of a call that
// landed is lost if the link is cut when it is due. It can be slowed: a call
// waits before it reaches the table and its response waits after. Waits
// honour the call's context as an SDK call does: a call whose context ends
// before it reaches the table has no effect; one whose context ends while its
// response is on the way fails although it landed. It records the send time
// of the worker's last successful heartbeat.
type link struct {
	mu            sync.Mutex
	cutUntil      time.Time
	slowUntil     time.Time
	before, after time.Duration
	lastBeat      time.Time
	used          bool // a call was made
	// plan, if set, routes each call instead of the cut and slow settings
	// (directed tests).
	plan func(op memlease.Op) route
}

// route is how one call crosses a link.
type route struct {
	before, after time.Duration // the waits before the table and after it
	cut           bool          // the call fails before reaching the table
	// hold, if set, holds the response of a call that reached the table
	// until it is closed.
	hold <-chan struct{}
}

func (n *link) cut(until time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cutUntil = until
}

func (n *link) slow(until time.Time, before, after time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.slowUntil, n.before, n.after = until, before, after
}

func (n *link) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cutUntil, n.slowUntil, n.plan = time.Time{}, time.Time{}, nil
}

func (n *link) isCut() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Now().Before(n.cutUntil)
}

func (n *link) setPlan(plan func(op memlease.Op) route) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.plan = plan
}

// route returns how a call of op goes.
func (n *link) route(op memlease.Op) route {
	n.mu.Lock()
	n.used = true
	plan := n.plan
	now := time.Now()
	var r route
	if now.Before(n.slowUntil) {
		r.before, r.after = n.before, n.after
	}
	n.mu.Unlock()
	if plan != nil {
		return plan(op)
	}
	return r
}

// running reports whether the coordinator on this link has made a store
// call: Run has started its loops. Its state may be inspected from then on
// (the call's lock orders Run's start before the inspection).
func (n *link) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.used
}

func (n *link) lastBeatSent() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastBeat
}

// via makes one call do of op over the link.
func via[T any](ctx context.Context, n *link, op memlease.Op, do func() (T, error)) (T, error) {
	var zero T
	r := n.route(op)
	if err := waitCtx(ctx, r.before); err != nil {
		return zero, fmt.Errorf("%v: request: %w", op, err)
	}
	if r.cut || n.isCut() {
		return zero, fmt.Errorf("%v: %w", op, errPartitioned)
	}
	v, err := do()
	if werr := waitCtx(ctx, r.after); werr != nil {
		return zero, fmt.Errorf("%v: response: %w", op, werr)
	}
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return zero, fmt.Errorf("%v: response: %w", op, context.Cause(ctx))
		}
	}
	if n.isCut() {
		return zero, fmt.Errorf("%v: response lost: %w", op, errPartitioned)
	}
	return v, err
}

func via0(ctx context.Context, n *link, op memlease.Op, do func() error) error {
	_, err := via(ctx, n, op, func() (struct{}, error) { return struct{}{}, do() })
	return err
}

func waitCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// linkStore is one worker's client of the table: every call crosses its
// link, and checkpoints land through the book.
type linkStore struct {
	*memlease.Store
	link *link
	book *ckBook
}

var (
	_ sharedStore      = (*linkStore)(nil)
	_ lease.FleetStore = (*linkStore)(nil)
)

func (s *linkStore) Create(ctx context.Context, l lease.Lease) error {
	return via0(ctx, s.link, memlease.OpCreate, func() error { return s.Store.Create(ctx, l) })
}
func (s *linkStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpGet, func() (lease.Lease, error) { return s.Store.Get(ctx, key) })
}
func (s *linkStore) List(ctx context.Context) ([]lease.Lease, error) {
	return via(ctx, s.link, memlease.OpList, func() ([]lease.Lease, error) { return s.Store.List(ctx) })
}
func (s *linkStore) ListOwned(ctx context.Context, owner string) ([]string, error) {
	return via(ctx, s.link, memlease.OpListOwned, func() ([]string, error) { return s.Store.ListOwned(ctx, owner) })
}
func (s *linkStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpRenew, func() (lease.Lease, error) { return s.Store.Renew(ctx, l) })
}
func (s *linkStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpTake, func() (lease.Lease, error) { return s.Store.Take(ctx, l, owner) })
}
func (s *linkStore) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpHandoff, func() (lease.Lease, error) { return s.Store.Handoff(ctx, l, to) })
}
func (s *linkStore) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpCheckpoint, func() (lease.Lease, error) { return s.book.land(ctx, s.Store, l, u) })
}
func (s *linkStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpRelease, func() (lease.Lease, error) { return s.Store.Release(ctx, l) })
}
func (s *linkStore) Delete(ctx context.Context, l lease.Lease) error {
	return via0(ctx, s.link, memlease.OpDelete, func() error { return s.Store.Delete(ctx, l) })
}
func (s *linkStore) Beat(ctx context.Context, id string, st lease.WorkerState, n int) (lease.Heartbeat, error) {
	sent := time.Now()
	hb, err := via(ctx, s.link, memlease.OpBeat, func() (lease.Heartbeat, error) { return s.Store.Beat(ctx, id, st, n) })
	if err == nil {
		s.link.mu.Lock()
		s.link.lastBeat = sent
		s.link.mu.Unlock()
	}
	return hb, err
}
func (s *linkStore) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	return via(ctx, s.link, memlease.OpHeartbeats, func() ([]lease.Heartbeat, error) { return s.Store.Heartbeats(ctx, ids) })
}
func (s *linkStore) MarkAssigned(ctx context.Context, id string) error {
	return via0(ctx, s.link, memlease.OpMarkAssigned, func() error { return s.Store.MarkAssigned(ctx, id) })
}
func (s *linkStore) Fence(ctx context.Context, id string, counter int64) error {
	return via0(ctx, s.link, memlease.OpFence, func() error { return s.Store.Fence(ctx, id, counter) })
}

func (s *linkStore) SetStandby(ctx context.Context, id string, on bool) error {
	return via0(ctx, s.link, memlease.OpSetStandby, func() error { return s.Store.SetStandby(ctx, id, on) })
}
func (s *linkStore) Join(ctx context.Context, id string) error {
	return via0(ctx, s.link, memlease.OpJoin, func() error { return s.Store.Join(ctx, id) })
}
func (s *linkStore) Leave(ctx context.Context, id string) error {
	return via0(ctx, s.link, memlease.OpLeave, func() error { return s.Store.Leave(ctx, id) })
}
func (s *linkStore) Roster(ctx context.Context) ([]string, error) {
	return via(ctx, s.link, memlease.OpRoster, func() ([]string, error) { return s.Store.Roster(ctx) })
}
func (s *linkStore) Leader(ctx context.Context) (lease.LeaderLock, error) {
	return via(ctx, s.link, memlease.OpLeader, func() (lease.LeaderLock, error) { return s.Store.Leader(ctx) })
}
func (s *linkStore) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	return via(ctx, s.link, memlease.OpAcquireLeader, func() (lease.LeaderLock, error) { return s.Store.AcquireLeader(ctx, id, seen) })
}
func (s *linkStore) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	return via(ctx, s.link, memlease.OpRenewLeader, func() (lease.LeaderLock, error) { return s.Store.RenewLeader(ctx, l) })
}
func (s *linkStore) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	return via0(ctx, s.link, memlease.OpReleaseLeader, func() error { return s.Store.ReleaseLeader(ctx, l) })
}
func (s *linkStore) Assign(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	return via(ctx, s.link, memlease.OpAssign, func() (lease.Lease, error) { return s.Store.Assign(ctx, l, to) })
}

// ckBook watches the checkpoints: every write that lands goes through land,
// one at a time, so their order is the table's.
type ckBook struct {
	mu        sync.Mutex
	landed    map[string]checkpoint.Position // the last write that landed
	succeeded map[string]checkpoint.Position // the highest write a consumer was told succeeded
	backwards []string
}

func newCkBook() *ckBook {
	return &ckBook{landed: map[string]checkpoint.Position{}, succeeded: map[string]checkpoint.Position{}}
}

func (b *ckBook) land(ctx context.Context, store *memlease.Store, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	nl, err := store.Checkpoint(ctx, l, u)
	if err != nil {
		return nl, err
	}
	if last, ok := b.landed[l.Key]; ok && nl.Checkpoint.Compare(last) < 0 {
		b.backwards = append(b.backwards, fmt.Sprintf("%s: checkpoint %v landed after %v (counter %d → %d)", l.Key, nl.Checkpoint, last, l.Counter, nl.Counter))
	}
	b.landed[l.Key] = nl.Checkpoint
	return nl, nil
}

// ok records that a consumer was told its checkpoint p of key succeeded.
func (b *ckBook) ok(key string, p checkpoint.Position) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Compare(b.succeeded[key]) > 0 {
		b.succeeded[key] = p
	}
}

// check compares the table with what landed and succeeded.
func (b *ckBook) check(table []lease.Lease) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.backwards)
	for _, l := range table {
		if s, ok := b.succeeded[l.Key]; ok && l.Checkpoint.Compare(s) < 0 {
			out = append(out, fmt.Sprintf("%s: the table holds checkpoint %v, behind %v which succeeded", l.Key, l.Checkpoint, s))
		}
		if last, ok := b.landed[l.Key]; ok && l.Checkpoint != last {
			out = append(out, fmt.Sprintf("%s: the table holds checkpoint %v, not %v which landed last", l.Key, l.Checkpoint, last))
		}
	}
	return out
}
