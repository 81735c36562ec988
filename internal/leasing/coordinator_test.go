package leasing_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// errDead is what a crashed worker's store calls return: the process is gone.
var errDead = errors.New("worker crashed")

// sharedStore is a store with an owner index, as memlease and dynamolease
// both are.
type sharedStore interface {
	lease.Store
	lease.OwnerLister
}

// workerStore is one worker's view of a shared store: it can be crashed, after
// which every call fails, as if the process had been killed with SIGKILL. It
// records when this worker's last successful renewal began.
type workerStore struct {
	sharedStore
	crashed   atomic.Bool
	lastRenew atomic.Int64 // UnixNano of the start of the last successful Renew
}

func (w *workerStore) check() error {
	if w.crashed.Load() {
		return errDead
	}
	return nil
}

func (w *workerStore) Create(ctx context.Context, l lease.Lease) error {
	if err := w.check(); err != nil {
		return err
	}
	return w.sharedStore.Create(ctx, l)
}
func (w *workerStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	return w.sharedStore.Get(ctx, key)
}
func (w *workerStore) List(ctx context.Context) ([]lease.Lease, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	return w.sharedStore.List(ctx)
}
func (w *workerStore) ListOwned(ctx context.Context, owner string) ([]string, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	return w.sharedStore.ListOwned(ctx, owner)
}
func (w *workerStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	start := time.Now()
	nl, err := w.sharedStore.Renew(ctx, l)
	if err == nil {
		w.lastRenew.Store(start.UnixNano())
	}
	return nl, err
}
func (w *workerStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	return w.sharedStore.Take(ctx, l, owner)
}
func (w *workerStore) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	return w.sharedStore.Handoff(ctx, l, to)
}
func (w *workerStore) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	return w.sharedStore.Checkpoint(ctx, l, u)
}
func (w *workerStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := w.check(); err != nil {
		return lease.Lease{}, err
	}
	return w.sharedStore.Release(ctx, l)
}
func (w *workerStore) Delete(ctx context.Context, l lease.Lease) error {
	if err := w.check(); err != nil {
		return err
	}
	return w.sharedStore.Delete(ctx, l)
}

// fleet runs coordinators over one shared in-memory store and records, for
// every lease, which workers consider themselves its holder, so tests can
// check that no lease is ever processed in two places at once.
type fleet struct {
	t     *testing.T
	store sharedStore

	mu      sync.Mutex
	workers map[string]*worker
	// processing[key] = workers whose consumer for key is running
	processing map[string]map[string]bool
	overlaps   []string
	acquiredAt map[string]time.Time // last acquisition of each key
}

type worker struct {
	id     string
	store  *workerStore
	coord  *leasing.Coordinator
	cancel context.CancelFunc
	done   chan struct{}
	// stubborn consumers never call Done (a processor that hangs).
	stubborn atomic.Bool
}

func newFleet(t *testing.T, shards int) *fleet {
	return newFleetOn(t, memlease.New(), shards)
}

// newFleetOn returns a fleet over store, creating shards leases in it (a
// lease that already exists is left as it is).
func newFleetOn(t *testing.T, store sharedStore, shards int) *fleet {
	f := &fleet{
		t: t, store: store,
		workers:    map[string]*worker{},
		processing: map[string]map[string]bool{},
		acquiredAt: map[string]time.Time{},
	}
	for i := range shards {
		l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: checkpoint.TrimHorizon}
		if err := f.store.Create(t.Context(), l); err != nil && !errors.Is(err, lease.ErrAlreadyExists) {
			t.Fatal(err)
		}
	}
	return f
}

// leases reads the whole table.
func (f *fleet) leases() []lease.Lease {
	ls, err := f.store.List(context.Background())
	if err != nil {
		f.t.Errorf("list: %v", err)
	}
	slices.SortFunc(ls, func(a, b lease.Lease) int { return strings.Compare(a.Key, b.Key) })
	return ls
}

func (f *fleet) start(id string, opts ...leasing.Option) *worker {
	return f.startOn(f.store, id, opts...)
}

// startOn starts a worker whose coordinator uses store, a view of the
// fleet's table of its own (its own client, say).
func (f *fleet) startOn(store sharedStore, id string, opts ...leasing.Option) *worker {
	w := &worker{id: id, store: &workerStore{sharedStore: store}, done: make(chan struct{})}
	opts = append([]leasing.Option{leasing.WithRand(rand.New(rand.NewPCG(uint64(len(id)), 7)))}, opts...)
	c, err := leasing.NewCoordinator(w.store, id, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	w.coord = c
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	f.mu.Lock()
	f.workers[id] = w
	f.mu.Unlock()
	go func() {
		defer close(w.done)
		if err := c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) { go f.consume(w, h) }); err != nil {
			f.t.Errorf("%s: Run: %v", id, err)
		}
	}()
	return w
}

// consume plays a shard consumer: it "processes" while the lease's context
// is live, then writes a final checkpoint and calls Done, unless the worker is
// stubborn or crashed.
func (f *fleet) consume(w *worker, h *leasing.Held) {
	key := h.Key()
	f.mu.Lock()
	if f.processing[key] == nil {
		f.processing[key] = map[string]bool{}
	}
	for other := range f.processing[key] {
		f.overlaps = append(f.overlaps, fmt.Sprintf("%s acquired %s at %v while %s still processed it", w.id, key, time.Now().Format("15:04:05.000"), other))
	}
	f.processing[key][w.id] = true
	f.acquiredAt[key] = time.Now()
	f.mu.Unlock()

	<-h.Context().Done()

	f.mu.Lock()
	delete(f.processing[key], w.id)
	f.mu.Unlock()
	if w.stubborn.Load() || w.store.crashed.Load() {
		return
	}
	cause := context.Cause(h.Context())
	if errors.Is(cause, leasing.ErrHandoffRequested) || errors.Is(cause, leasing.ErrStopping) {
		ctx := context.Background()
		// A final checkpoint, as a processor's shutdown hook would write.
		_ = h.WriteCheckpoint(ctx, h.Lease().Checkpoint, checkpoint.Position{}, nil)
		if err := h.Done(ctx); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
			f.t.Errorf("%s: Done(%s): %v", w.id, key, err)
		}
	}
}

// shutdownTimeout is the deadline of a test worker's graceful stop.
const shutdownTimeout = 20 * time.Second

// drainAfter returns the drain context a Worker gives Coordinator.Run: it
// outlives ctx and is cancelled shutdownTimeout after ctx is done.
func drainAfter(ctx context.Context) context.Context {
	drain, cancel := context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() { time.AfterFunc(shutdownTimeout, cancel) })
	return drain
}

// stop stops a worker gracefully and waits for Run to return.
func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// stoppedIn returns how long after since the worker's Run returned; call it
// after stop.
func (w *worker) stoppedIn(since time.Time) time.Duration {
	<-w.done
	return time.Since(since)
}

// crash cuts a worker off from the table, as a SIGKILL would: every store
// call fails from now on. Its goroutines keep running, so the test sees when
// its consumers stop by their own clock — that must be before anyone else
// takes their leases. end finishes it.
func (w *worker) crash() { w.store.crashed.Store(true) }

func (w *worker) end() {
	w.cancel()
	<-w.done
}

// owners returns the table's owner of every lease.
func (f *fleet) owners() map[string]string {
	out := map[string]string{}
	for _, l := range f.leases() {
		out[l.Key] = l.Owner
	}
	return out
}

func (f *fleet) count(owner string) int {
	n := 0
	for _, o := range f.owners() {
		if o == owner {
			n++
		}
	}
	return n
}

// holding returns how many leases w's consumers are processing.
func (f *fleet) holding(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ws := range f.processing {
		if ws[id] {
			n++
		}
	}
	return n
}

func (f *fleet) checkNoOverlap() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.overlaps {
		f.t.Error(o)
	}
}

// waitFor advances fake time in small steps until cond holds, and returns how
// long that took; it fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
	}
	return time.Since(start)
}

func TestCoordinatorTakesAllAndReleasesOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 8)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 8 })
		before := f.leases()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for i, l := range f.leases() {
			if l.Counter <= before[i].Counter+1 {
				t.Errorf("%s: counter %d after 10 s, was %d: not renewed", l.Key, l.Counter, before[i].Counter)
			}
		}
		if f.holding("a") != 8 {
			t.Fatalf("holding %d leases after renewals, want 8", f.holding("a"))
		}
		a.stop()
		for k, o := range f.owners() {
			if o != "" {
				t.Errorf("%s still owned by %q after a graceful stop with no peer", k, o)
			}
		}
	})
}

func TestCrashFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 8)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 8 })
		b := f.start("b")
		waitFor(t, 15*time.Second, func() bool { return f.holding("a") == 4 && f.holding("b") == 4 })

		// Crash a right after one of its renewals, the worst case.
		counters := map[string]int64{}
		for _, l := range f.leases() {
			counters[l.Key] = l.Counter
		}
		waitFor(t, 5*time.Second, func() bool {
			for _, l := range f.leases() {
				if l.Owner == "a" && l.Counter != counters[l.Key] {
					return true
				}
			}
			return false
		})
		a.crash()
		took := waitFor(t, 30*time.Second, func() bool { return f.count("b") == 8 && f.holding("b") == 8 })
		d := leasing.DefaultLeaseDuration
		t.Logf("crash failover: b owns all leases %v after a's last renewal (lease duration %v)", took, d)
		if took > d+2*time.Second {
			t.Errorf("failover took %v after the last renewal, want ≤ %v", took, d+2*time.Second)
		}
		f.checkNoOverlap()
		if n := f.holding("a"); n != 0 {
			t.Errorf("the crashed worker still processes %d leases", n)
		}
		b.stop()
		a.end()
	})
}

func TestGracefulStopHandsLeasesToPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 8)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 8 })
		b := f.start("b")
		waitFor(t, 15*time.Second, func() bool { return f.holding("a") == 4 && f.holding("b") == 4 })

		start := time.Now()
		a.stop()
		stopped := time.Since(start)
		took := waitFor(t, 10*time.Second, func() bool { return f.holding("b") == 8 })
		t.Logf("graceful stop: a's Run returned after %v; b processes all leases %v later", stopped, took)
		if took > time.Second {
			t.Errorf("peer resumed %v after the release, want ≤ 1s", took)
		}
		f.checkNoOverlap()
		b.stop()
	})
}

// Two workers stopping one after the other, the second before its next take
// pass: the peers it saw at its last pass include the first, which has
// released everything and exited. Handing a lease to it would leave the
// shard idle until the lease expires; the second must hand its leases to the
// worker that is still running.
func TestGracefulStopDoesNotHandLeasesToAPeerThatStoppedSinceTheLastPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 9)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 9 })
		b := f.start("b")
		c := f.start("c")
		waitFor(t, 20*time.Second, func() bool {
			return f.holding("a") == 3 && f.holding("b") == 3 && f.holding("c") == 3
		})
		time.Sleep(2500 * time.Millisecond) // everyone's last pass saw a, b and c with 3 leases each
		a.stop()
		b.stop() // well within a take interval of a's stop
		if n := f.count("a"); n != 0 {
			t.Errorf("%d leases handed to a, which had stopped", n)
		}
		took := waitFor(t, 10*time.Second, func() bool { return f.holding("c") == 9 })
		if took > time.Second {
			t.Errorf("c held all leases %v after b stopped, want ≤ 1s", took)
		}
		f.checkNoOverlap()
		c.stop()
	})
}

func TestJoinReachesFairShareByHandoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 9)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 9 })
		b := f.start("b")
		c := f.start("c")
		took := waitFor(t, 20*time.Second, func() bool {
			return f.holding("a") == 3 && f.holding("b") == 3 && f.holding("c") == 3
		})
		t.Logf("join: two new workers reach 3 leases each after %v", took)
		if took > 10*time.Second {
			t.Errorf("join took %v, want ≤ 10s", took)
		}
		for _, w := range []*leasing.Coordinator{a.coord, b.coord, c.coord} {
			if s := w.Stats(); s.ForcedTakes != 0 {
				t.Errorf("%s: %d forced takes; every handoff should have been granted", w.WorkerID(), s.ForcedTakes)
			}
		}
		if s := a.coord.Stats(); s.Lost != 0 {
			t.Errorf("a lost %d leases; handoffs are not losses", s.Lost)
		}
		f.checkNoOverlap()
		a.stop()
		b.stop()
		c.stop()
	})
}

func TestHandoffTimeoutTakesFromUnresponsiveOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 4)
		a := f.start("a")
		waitFor(t, time.Second, func() bool { return f.holding("a") == 4 })
		a.stubborn.Store(true) // a's processors never finish
		b := f.start("b")
		took := waitFor(t, 30*time.Second, func() bool { return f.holding("b") == 2 })
		t.Logf("handoff from an unresponsive owner completed after %v", took)
		if took < leasing.DefaultLeaseDuration {
			t.Errorf("took over after %v, before the lease duration %v: the old owner may still process", took, leasing.DefaultLeaseDuration)
		}
		if s := b.coord.Stats(); s.ForcedTakes != 2 {
			t.Errorf("b: %d forced takes, want 2", s.ForcedTakes)
		}
		f.checkNoOverlap()
		b.stop()
		a.stubborn.Store(false)
		a.stop()
	})
}

func TestHolderDropsLeaseItCannotRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		store := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
			if failing.Load() && op == memlease.OpRenew {
				return lease.ErrThrottled
			}
			return nil
		}))
		if err := store.Create(t.Context(), lease.Lease{Key: "s", Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
		c, err := leasing.NewCoordinator(store, "a")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan *leasing.Held, 1)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) { got <- h }) }()
		h := <-got
		start := time.Now()
		failing.Store(true)
		<-h.Context().Done()
		lived := time.Since(start)
		if cause := context.Cause(h.Context()); !errors.Is(cause, leasing.ErrExpired) || !errors.Is(cause, lease.ErrLeaseLost) {
			t.Errorf("cause = %v, want ErrExpired (an ErrLeaseLost)", cause)
		}
		if lived > leasing.DefaultLeaseDuration {
			t.Errorf("lease kept %v after renewals started failing, want ≤ %v", lived, leasing.DefaultLeaseDuration)
		}
		err = h.WriteCheckpoint(t.Context(), checkpoint.TrimHorizon, checkpoint.Position{}, nil)
		if !errors.Is(err, lease.ErrLeaseLost) {
			t.Errorf("checkpoint after expiry: %v, want ErrLeaseLost", err)
		}
		cancel()
		<-done
	})
}

func TestNewCoordinatorRejectsBadOptions(t *testing.T) {
	store := memlease.New()
	tests := []struct {
		name string
		opts []leasing.Option
	}{
		{"a renew interval of half the lease duration leaves no retry", []leasing.Option{leasing.WithLeaseDuration(10 * time.Second), leasing.WithRenewInterval(5 * time.Second)}},
		{"a handoff timeout below the lease duration is unsafe", []leasing.Option{leasing.WithHandoffTimeout(time.Second)}},
		{"a zero take interval would spin", []leasing.Option{leasing.WithTakeInterval(0)}},
		{"a negative lease cap is meaningless", []leasing.Option{leasing.WithMaxLeases(-1)}},
		{"a nil logger is refused", []leasing.Option{leasing.WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := leasing.NewCoordinator(store, "w", tt.opts...); err == nil {
				t.Fatal("NewCoordinator accepted invalid options")
			}
		})
	}
	if _, err := leasing.NewCoordinator(store, ""); err == nil {
		t.Error("NewCoordinator accepted an empty worker id")
	}
	if _, err := leasing.NewCoordinator(nil, "w"); err == nil {
		t.Error("NewCoordinator accepted a nil store")
	}
}

// holdOne runs a coordinator over store holding its single lease "s" and
// returns the Held; the coordinator stops at the end of the test.
func holdOne(t *testing.T, store lease.Store) *leasing.Held {
	t.Helper()
	if err := store.Create(t.Context(), lease.Lease{Key: "s", Checkpoint: checkpoint.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	c, err := leasing.NewCoordinator(store, "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *leasing.Held, 1)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) { got <- h }) }()
	h := <-got
	t.Cleanup(func() {
		cancel()
		_ = h.Done(context.Background())
		<-done
	})
	return h
}

func TestRenewThatLandedDespiteAnErrorKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failOnce atomic.Bool
		failOnce.Store(true)
		store := memlease.New(memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
			if op == memlease.OpRenew && failOnce.CompareAndSwap(true, false) {
				return errors.New("response lost")
			}
			return nil
		}))
		h := holdOne(t, store)
		// Through the lost response, the next renewal is fenced off by our
		// own landed write, the re-read adopts it, and renewals go on.
		time.Sleep(3 * leasing.DefaultLeaseDuration)
		synctest.Wait()
		if !h.Valid() || h.Context().Err() != nil {
			t.Fatalf("lease dropped after a renewal whose response was lost: %v", context.Cause(h.Context()))
		}
		if failOnce.Load() {
			t.Fatal("the fault was never injected")
		}
	})
}

func TestCheckpointNeverMovesBackAfterAWriteThatLandedDespiteAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failOnce atomic.Bool
		store := memlease.New(memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
			if op == memlease.OpCheckpoint && failOnce.CompareAndSwap(true, false) {
				return errors.New("request timed out")
			}
			return nil
		}))
		h := holdOne(t, store)
		p100, _ := checkpoint.At("100", 0)
		p90, _ := checkpoint.At("90", 0)
		failOnce.Store(true)
		if err := h.WriteCheckpoint(t.Context(), p100, checkpoint.Position{}, nil); err == nil {
			t.Fatal("the injected failure did not surface")
		}
		// The caller believes 100 was not written and checkpoints less.
		if err := h.WriteCheckpoint(t.Context(), p90, checkpoint.Position{}, nil); err != nil {
			t.Fatalf("checkpoint after a landed write: %v", err)
		}
		got, err := store.Get(t.Context(), "s")
		if err != nil {
			t.Fatal(err)
		}
		if got.Checkpoint != p100 {
			t.Fatalf("stored checkpoint = %v, want %v: it moved backwards", got.Checkpoint, p100)
		}
		if !h.Valid() {
			t.Fatal("lease dropped")
		}
	})
}

// malformedStore reports one unreadable item in every List, as the DynamoDB
// store does for an item a human or another tool broke.
type malformedStore struct{ sharedStore }

func (m malformedStore) List(ctx context.Context) ([]lease.Lease, error) {
	ls, err := m.sharedStore.List(ctx)
	if err != nil {
		return nil, err
	}
	return ls, &lease.MalformedError{Items: []*lease.ItemError{{Key: "shardId-broken", Attribute: "leaseCounter", Reason: "not a number"}}}
}

func TestMalformedItemsDoNotStopTheCoordinator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleetOn(t, malformedStore{memlease.New()}, 4)
		a := f.start("a")
		waitFor(t, 5*time.Second, func() bool { return f.holding("a") == 4 })
		time.Sleep(3 * leasing.DefaultLeaseDuration) // many passes, each seeing the bad item
		synctest.Wait()
		if n := f.holding("a"); n != 4 {
			t.Fatalf("holding %d of the 4 readable leases after passes that saw a malformed item", n)
		}
		a.stop()
	})
}

// TestGracefulStopIsBoundedByTheCallersDrainOnly: the coordinator has no
// shutdown timer of its own. With a lease user that never calls Done, Run
// keeps renewing the lease as long as drain lives, returns as soon as drain
// is cancelled, leaves the lease to expire, and leaves no goroutine behind.
func TestGracefulStopIsBoundedByTheCallersDrainOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		if err := store.Create(t.Context(), lease.Lease{Key: "s", Checkpoint: checkpoint.TrimHorizon}); err != nil {
			t.Fatal(err)
		}
		c, err := leasing.NewCoordinator(store, "a")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		drain, endDrain := context.WithCancelCause(context.WithoutCancel(ctx))
		got := make(chan *leasing.Held, 1)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(ctx, drain, func(h *leasing.Held) { got <- h }) }()
		h := <-got
		cancel()
		<-h.Context().Done()
		if cause := context.Cause(h.Context()); !errors.Is(cause, leasing.ErrStopping) {
			t.Fatalf("held lease cancelled with %v, want ErrStopping", cause)
		}
		time.Sleep(time.Hour) // far past any shutdown timeout a coordinator might keep
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Run returned while drain lives and a lease user has not called Done")
		default:
		}
		if !h.Valid() {
			t.Fatal("the lease was not renewed while its user finished")
		}
		deadline := errors.New("the caller's shutdown deadline")
		endDrain(deadline)
		<-done
		if l, _ := store.Get(t.Context(), "s"); l.Owner != "a" {
			t.Errorf("owner %q after the deadline, want a: a lease whose user has not called Done is left to expire", l.Owner)
		}
		synctest.Wait()
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "kcl/internal/leasing.(*") {
				t.Errorf("goroutine left after Run returned:\n%s", g)
			}
		}
	})
}
