package consumer_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

const shard0 = "shardId-000000000000"

// lastRecord returns the position of the last record of a shard.
func lastRecord(t *testing.T, f *fakekinesis.Fake, shard string) checkpoint.Position {
	t.Helper()
	rs := f.Records(streamName, shard)
	if len(rs) == 0 {
		t.Fatalf("shard %s has no records", shard)
	}
	p, err := checkpoint.At(*rs[len(rs)-1].SequenceNumber, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGracefulStopLetsTheInFlightBatchFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		entered := make(chan struct{})
		release := make(chan struct{})
		var shutdownErr error
		var ctxErrAtRelease error
		putRange(f, 0, 5, 2)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			first := true
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				if first {
					first = false
					close(entered)
					<-release
					ctxErrAtRelease = ctx.Err()
				}
				j.event("batch", p.info.ShardID)
				return nil
			}
			p.shutdown = func(ctx context.Context, cp *consumer.Checkpointer) error {
				shutdownErr = cp.Checkpoint(ctx)
				return shutdownErr
			}
		}), "w1", consumer.WithMaxRecords(2))
		r := start(t, w)
		<-entered
		putRange(f, 5, 10, 2) // more records, fetched but never delivered
		time.Sleep(3 * time.Second)
		r.cancel()
		// Longer than the lease duration (10s): the lease is renewed while
		// the batch finishes, so the final checkpoint still lands.
		time.Sleep(15 * time.Second)
		if r.returned() {
			t.Fatal("Run returned while a batch was in flight")
		}
		close(release)
		<-r.done
		if r.err != nil {
			t.Fatalf("Run: %v, want nil", r.err)
		}
		checkNoWorkerGoroutines(t)
		if ctxErrAtRelease != nil {
			t.Errorf("processor context done (%v) during a graceful stop", ctxErrAtRelease)
		}
		if shutdownErr != nil {
			t.Errorf("checkpoint in ShutdownRequested: %v", shutdownErr)
		}
		j.mu.Lock()
		events := slices.Clone(j.events)
		j.mu.Unlock()
		want := []string{"new " + shard0, "init " + shard0, "batch " + shard0, "shutdown " + shard0}
		if !slices.Equal(events, want) {
			t.Errorf("events %q, want %q: the in-flight batch finishes, no other is delivered", events, want)
		}
		recs := j.records()
		if len(recs) != 2 {
			t.Fatalf("%d records delivered, want the in-flight batch of 2", len(recs))
		}
		l := leaseMap(store)[shard0]
		if want := recs[1].pos; l.Checkpoint != want {
			t.Errorf("checkpoint %v, want %v written in ShutdownRequested", l.Checkpoint, want)
		}
		if l.Owner != "" {
			t.Errorf("lease still owned by %q", l.Owner)
		}
	})
}

func TestCheckpointPolicyOnGracefulStop(t *testing.T) {
	tests := []struct {
		name   string
		policy consumer.CheckpointPolicy
		writes func(batches int) (lo, hi int) // checkpoint writes per shard
		atEnd  bool                           // the checkpoint ends at the last record
	}{
		{"manual writes nothing", consumer.CheckpointManual(), func(int) (int, int) { return 0, 0 }, false},
		{"after each batch writes once per batch", consumer.CheckpointAfterEachBatch(), func(b int) (int, int) { return b, b }, true},
		{"every hour writes once, at the stop", consumer.CheckpointEvery(time.Hour), func(int) (int, int) { return 1, 1 }, true},
		{"every 10s writes about once per 10s", consumer.CheckpointEvery(10 * time.Second), func(int) (int, int) { return 5, 8 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				j := &journal{}
				h := &eventRecorder{}
				w := newWorker(t, f, store, factory(j, store, nil), "w1",
					consumer.WithCheckpointPolicy(tt.policy), consumer.WithHooks(h))
				r := start(t, w)
				// A record per shard key every second for a minute.
				for i := range 60 {
					putRange(f, 2*i, 2*i+2, 2)
					time.Sleep(time.Second)
				}
				waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 120 })
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkExactlyOnce(t, j.records(), 0, 120)

				h.mu.Lock()
				defer h.mu.Unlock()
				batches, writes := map[string]int{}, map[string]int{}
				for _, b := range h.batches {
					if b.Records > 0 {
						batches[b.ShardID]++
					}
				}
				for _, c := range h.checkpoints {
					if c.Err != nil {
						t.Errorf("checkpoint %+v failed", c)
					}
					writes[c.ShardID]++
				}
				for _, l := range store.Leases() {
					lo, hi := tt.writes(batches[l.Key])
					if n := writes[l.Key]; n < lo || n > hi {
						t.Errorf("shard %s: %d checkpoint writes for %d batches, want %d to %d", l.Key, n, batches[l.Key], lo, hi)
					}
					want := checkpoint.TrimHorizon
					if tt.atEnd {
						want = lastRecord(t, f, l.Key)
					}
					if l.Checkpoint != want {
						t.Errorf("shard %s: checkpoint %v after the stop, want %v", l.Key, l.Checkpoint, want)
					}
					if l.Owner != "" {
						t.Errorf("shard %s: still owned by %q", l.Key, l.Owner)
					}
				}
			})
		})
	}
}

// TestShutdownTimeoutBoundsTheStop: at the shutdown deadline the
// processors' contexts are cancelled with ErrShutdownTimeout, nothing more is
// written to the lease table (the lease is left to expire), and Run returns
// an error matching ErrShutdownTimeout — but only once every processor has
// returned, however long one that ignores its context takes.
func TestShutdownTimeoutBoundsTheStop(t *testing.T) {
	const timeout = 5 * time.Second
	tests := []struct {
		name string
		// ignoreFor is how long after the deadline the processor ignores
		// its cancelled context; 0 returns as soon as it is cancelled.
		ignoreFor time.Duration
	}{
		{"a processor that returns when its context is cancelled", 0},
		{"a processor that ignores its context for a while after the deadline", 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
				store := memlease.New()
				j := &journal{}
				entered := make(chan struct{})
				var once sync.Once
				var cause error
				var running atomicBool // a ProcessRecords call is running
				putRange(f, 0, 5, 2)
				w := newWorker(t, f, store, factory(j, store, func(p *proc) {
					p.batch = func(ctx context.Context, b *consumer.Batch) error {
						running.set(true)
						defer running.set(false)
						once.Do(func() { close(entered) })
						<-ctx.Done()
						cause = context.Cause(ctx)
						time.Sleep(tt.ignoreFor)
						return ctx.Err()
					}
				}), "w1", consumer.WithShutdownTimeout(timeout))
				r := start(t, w)
				<-entered
				stopped := time.Now()
				r.cancel()
				waitFor(t, "Run to return", 5*time.Minute, r.returned)
				if running.get() {
					t.Fatal("Run returned while ProcessRecords was running")
				}
				checkNoWorkerGoroutines(t)
				if !errors.Is(r.err, consumer.ErrShutdownTimeout) {
					t.Errorf("Run: %v, want ErrShutdownTimeout", r.err)
				}
				if d, want := r.ended.Sub(stopped), timeout+tt.ignoreFor; d < want || d > want+time.Second {
					t.Errorf("Run returned %v after the stop, want %v: the deadline, then the processor's return", d, want)
				}
				if !errors.Is(cause, consumer.ErrShutdownTimeout) {
					t.Errorf("processor context cancelled with %v, want ErrShutdownTimeout", cause)
				}
				if got := j.eventsOf("shutdown"); len(got) != 0 {
					t.Errorf("ShutdownRequested called for %v after the deadline", got)
				}
				// Nothing is written after the deadline: the lease is not
				// released under (or after) a processor that overran it.
				if l := leaseMap(store)[shard0]; l.Owner != "w1" {
					t.Errorf("lease owner %q after the deadline, want w1 (left to expire)", l.Owner)
				}
			})
		})
	}
}

func TestLostLeaseStopsTheShardWithoutCheckpointing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		entered := make(chan struct{})
		var cause, cpErr error
		putRange(f, 0, 5, 2)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			first := true
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				if !first {
					return nil
				}
				first = false
				close(entered)
				<-ctx.Done()
				cause = context.Cause(ctx)
				cpErr = b.Checkpointer.Checkpoint(context.WithoutCancel(ctx))
				return nil // claims success: the Worker must still not checkpoint
			}
		}), "w1", consumer.WithHooks(h), consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		<-entered
		// Another worker takes the lease behind w1's back.
		stolen := leaseMap(store)[shard0]
		stolen.Owner = "thief"
		stolen.Counter++
		store.Put(stolen)
		waitFor(t, "LeaseLost", time.Minute, func() bool { return len(j.eventsOf("lost")) == 1 })
		if l := leaseMap(store)[shard0]; l.Owner != "thief" || l.Counter != stolen.Counter || l.Checkpoint != stolen.Checkpoint {
			t.Errorf("lease after the loss %+v, want the thief's %+v untouched", l, stolen)
		}
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if !errors.Is(cause, lease.ErrLeaseLost) {
			t.Errorf("processor context cancelled with %v, want ErrLeaseLost", cause)
		}
		if !errors.Is(cpErr, lease.ErrLeaseLost) {
			t.Errorf("checkpoint after the loss: %v, want ErrLeaseLost", cpErr)
		}
		if got := j.eventsOf("shutdown"); len(got) != 0 {
			t.Errorf("ShutdownRequested called for %v after the lease was lost", got)
		}
		var lost []consumer.LeaseEvent
		for _, e := range h.leaseEvents() {
			if e.Kind == consumer.LeaseLost {
				lost = append(lost, e)
			}
		}
		if len(lost) != 1 || !errors.Is(lost[0].Cause, lease.ErrLeaseLost) {
			t.Errorf("lost events %+v, want one with a cause matching ErrLeaseLost", lost)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.checkpoints {
			if c.Err == nil && c.Position != checkpoint.TrimHorizon {
				t.Errorf("checkpoint %v written after the lease was lost", c.Position)
			}
		}
	})
}

func TestLeasesMoveBetweenWorkersWithoutDuplicates(t *testing.T) {
	tests := []struct {
		name string
		// after w2 joined and both ran a while: stop w1 first (its leases
		// move to w2), or stop both at once.
		stopW1First bool
	}{
		{"a second worker joins and takes its share", false},
		{"a worker stops and its peer takes its leases", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 4))
				store := memlease.New()
				j := &journal{}
				var mu sync.Mutex
				byWorker := map[string]map[string]bool{} // worker → shards it processed records of
				fac := func(id string) consumer.Factory {
					return factory(j, store, func(p *proc) {
						p.batch = func(ctx context.Context, b *consumer.Batch) error {
							if len(b.Records) > 0 {
								mu.Lock()
								if byWorker[id] == nil {
									byWorker[id] = map[string]bool{}
								}
								byWorker[id][b.ShardID] = true
								mu.Unlock()
							}
							return nil
						}
					})
				}
				opts := []consumer.Option{consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch())}
				r1 := start(t, newWorker(t, f, store, fac("w1"), "w1", opts...))
				n := 0
				put := func(seconds int) {
					for range seconds {
						putRange(f, n, n+8, 8)
						n += 8
						time.Sleep(500 * time.Millisecond)
					}
				}
				put(10)
				r2 := start(t, newWorker(t, f, store, fac("w2"), "w2", opts...))
				put(60)
				owners := map[string]int{}
				for _, l := range store.Leases() {
					owners[l.Owner]++
				}
				if owners["w1"] != 2 || owners["w2"] != 2 {
					t.Errorf("lease owners %v, want 2 leases each", owners)
				}
				if tt.stopW1First {
					if err := r1.stop(); err != nil {
						t.Errorf("w1 Run: %v", err)
					}
					put(20)
					for _, l := range store.Leases() {
						if l.Owner != "w2" {
							t.Errorf("lease %s owned by %q after w1 stopped, want w2", l.Key, l.Owner)
						}
					}
				}
				waitFor(t, "every record", time.Minute, func() bool { return j.count() >= n })
				time.Sleep(5 * time.Second)
				for _, r := range []*running{r1, r2} {
					if err := r.stop(); err != nil {
						t.Errorf("Run: %v", err)
					}
				}
				checkNoWorkerGoroutines(t)
				recs := j.records()
				checkExactlyOnce(t, recs, 0, n)
				checkOrder(t, recs)
				mu.Lock()
				defer mu.Unlock()
				if len(byWorker["w2"]) < 2 {
					t.Errorf("w2 processed shards %v, want at least 2", byWorker["w2"])
				}
				if got := j.eventsOf("shutdown"); len(got) < 2 {
					t.Errorf("ShutdownRequested called for %v, want at least the 2 shards handed to w2", got)
				}
			})
		})
	}
}

func TestGracefulStopHandsLeasesToALivePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		// Leases never expire during the test: they move only by handoff
		// and by assignment at the stop.
		opts := []consumer.Option{consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
			consumer.WithLeaseDuration(time.Hour), consumer.WithRenewInterval(time.Second)}
		putRange(f, 0, 20, 16)
		r1 := start(t, newWorker(t, f, store, factory(j, store, nil), "w1", opts...))
		waitFor(t, "20 records", time.Minute, func() bool { return j.count() >= 20 })
		r2 := start(t, newWorker(t, f, store, factory(j, store, nil), "w2", opts...))
		time.Sleep(5 * time.Second)
		stopped := time.Now()
		if err := r1.stop(); err != nil {
			t.Fatalf("w1 Run: %v", err)
		}
		putRange(f, 20, 40, 16)
		// With an hour-long lease duration, only an assignment at the stop
		// lets w2 read w1's shard this soon.
		waitFor(t, "w2 to process the new records", 10*time.Second, func() bool { return j.hasAll(20, 40) })
		if d := time.Since(stopped); d > 10*time.Second {
			t.Errorf("w2 took %v to resume", d)
		}
		if err := r2.stop(); err != nil {
			t.Fatalf("w2 Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 40)
		checkOrder(t, j.records())
	})
}

// A graceful stop that races a handoff request: w2 asks for one of w1's
// leases, and w1 stops before a renewal or checkpoint has told it so. w1's
// release is fenced off by the request's counter; Held.Done must then see the
// handoff and complete it, or w2 would wait the whole handoff timeout (here
// an hour: the lease duration) for a final checkpoint that never comes.
func TestGracefulStopRacingAHandoffRequestCompletesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		// Renewals (which would reveal the handoff request) never come
		// during the test.
		opts := []consumer.Option{consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
			consumer.WithLeaseDuration(time.Hour)}
		putRange(f, 0, 20, 16)
		r1 := start(t, newWorker(t, f, store, factory(j, store, nil), "w1", opts...))
		waitFor(t, "20 records", time.Minute, func() bool { return j.count() >= 20 })
		r2 := start(t, newWorker(t, f, store, factory(j, store, nil), "w2", opts...))
		time.Sleep(5 * time.Second) // w2 has asked for a lease
		if err := r1.stop(); err != nil {
			t.Fatalf("w1 Run: %v", err)
		}
		putRange(f, 20, 40, 16)
		waitFor(t, "w2 to process both shards", time.Minute, func() bool { return j.hasAll(20, 40) })
		if err := r2.stop(); err != nil {
			t.Fatalf("w2 Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 40)
	})
}

// A graceful stop while a failed batch waits for its retry gives the lease
// up at once, without ShutdownRequested or a policy checkpoint (either would
// checkpoint past the failed batch); the next owner delivers the batch again.
// Without this the stop would last the whole shutdown timeout and the lease
// would then be left to expire.
func TestAFailingBatchIsAbandonedOnAGracefulStopAndDeliveredToTheNextOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		var calls callCounter
		putRange(f, 0, 5, 2)
		opts := []consumer.Option{consumer.WithShutdownTimeout(time.Minute),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch())}
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				calls.next()
				return errors.New("always failing")
			}
		}), "w1", opts...)
		r := start(t, w)
		time.Sleep(3 * time.Second)
		if calls.get() < 2 {
			t.Fatalf("%d attempts before the stop, want the batch retried", calls.get())
		}
		stopped := time.Now()
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v, want nil", err)
		}
		if d := r.ended.Sub(stopped); d > time.Second {
			t.Errorf("Run returned %v after the stop, want at once (no wait for the shutdown timeout)", d)
		}
		l := leaseMap(store)[shard0]
		if l.Checkpoint != checkpoint.TrimHorizon {
			t.Errorf("checkpoint %v: a batch that never succeeded was checkpointed", l.Checkpoint)
		}
		if l.Owner != "" {
			t.Errorf("lease owned by %q after the stop, want it released", l.Owner)
		}
		if n := j.count(); n != 0 {
			t.Errorf("%d records processed", n)
		}

		r2 := start(t, newWorker(t, f, store, factory(j, store, nil), "w2", opts...))
		waitFor(t, "w2 to process the abandoned batch", 10*time.Second, func() bool { return j.hasAll(0, 5) })
		if err := r2.stop(); err != nil {
			t.Fatalf("w2 Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 5)
	})
}

// partitionable is a lease store whose calls fail, as from a worker cut off
// from the lease table, while partitioned is set.
type partitionable struct {
	*memlease.Store
	partitioned atomicBool
}

func (p *partitionable) fault() error {
	if p.partitioned.get() {
		return fakekinesis.ConnectionReset()
	}
	return nil
}

func (p *partitionable) Create(ctx context.Context, l lease.Lease) error {
	if err := p.fault(); err != nil {
		return err
	}
	return p.Store.Create(ctx, l)
}

func (p *partitionable) Get(ctx context.Context, key string) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Get(ctx, key)
}

func (p *partitionable) List(ctx context.Context) ([]lease.Lease, error) {
	if err := p.fault(); err != nil {
		return nil, err
	}
	return p.Store.List(ctx)
}

func (p *partitionable) ListOwned(ctx context.Context, owner string) ([]string, error) {
	if err := p.fault(); err != nil {
		return nil, err
	}
	return p.Store.ListOwned(ctx, owner)
}

func (p *partitionable) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Renew(ctx, l)
}

func (p *partitionable) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Take(ctx, l, owner)
}

func (p *partitionable) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Handoff(ctx, l, to)
}

func (p *partitionable) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Checkpoint(ctx, l, u)
}

func (p *partitionable) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if err := p.fault(); err != nil {
		return lease.Lease{}, err
	}
	return p.Store.Release(ctx, l)
}

func (p *partitionable) Delete(ctx context.Context, l lease.Lease) error {
	if err := p.fault(); err != nil {
		return err
	}
	return p.Store.Delete(ctx, l)
}

// A worker cut off from the lease table stops processing by its own clock
// before a peer takes its leases over: no shard is ever processed by two
// workers at once, and no record is lost.
func TestAWorkerCutOffFromTheLeaseTableStopsBeforeAPeerTakesOver(t *testing.T) {
	for _, mode := range []consumer.Coordination{consumer.CoordinationFleet(), consumer.CoordinationKCL()} {
		t.Run(mode.String(), func(t *testing.T) { testCutOffWorker(t, mode) })
	}
}

func testCutOffWorker(t *testing.T, mode consumer.Coordination) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		cut := &partitionable{Store: store}
		j := &journal{}
		type span struct{ first, last time.Time }
		var mu sync.Mutex
		spans := map[string]map[string]*span{} // worker → shard → when it processed batches
		fac := func(id string) consumer.Factory {
			return factory(j, store, func(p *proc) {
				p.batch = func(ctx context.Context, b *consumer.Batch) error {
					if len(b.Records) == 0 {
						return nil
					}
					mu.Lock()
					defer mu.Unlock()
					if spans[id] == nil {
						spans[id] = map[string]*span{}
					}
					now := time.Now()
					if sp := spans[id][b.ShardID]; sp == nil {
						spans[id][b.ShardID] = &span{now, now}
					} else {
						sp.last = now
					}
					return nil
				}
			})
		}
		opts := []consumer.Option{consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()), consumer.WithCoordination(mode)}
		r1 := start(t, newWorker(t, f, cut, fac("w1"), "w1", append(opts, consumer.WithShutdownTimeout(2*time.Second))...))
		n := 0
		put := func(seconds int) {
			for range 2 * seconds {
				putRange(f, n, n+4, 4)
				n += 4
				time.Sleep(500 * time.Millisecond)
			}
		}
		put(5)
		waitFor(t, "the records so far", time.Minute, func() bool { return j.hasAll(0, n) })
		time.Sleep(time.Second) // checkpointed
		cutAt := n
		cut.partitioned.set(true)
		r2 := start(t, newWorker(t, f, store, fac("w2"), "w2", opts...))
		put(30)
		waitFor(t, "every record", time.Minute, func() bool { return j.hasAll(0, n) })
		if err := r2.stop(); err != nil {
			t.Errorf("w2 Run: %v", err)
		}
		r1.stop() // its release fails; an error is fine
		checkNoWorkerGoroutines(t)

		// Records w1 processed after it was cut off could not be
		// checkpointed: w2 processes them again. Nothing else repeats.
		seen := map[string]int{}
		for _, r := range j.records() {
			seen[r.data]++
		}
		for d, c := range seen {
			if i, _ := strconv.Atoi(d); c > 1 && i < cutAt {
				t.Errorf("record %s, checkpointed before the cut, delivered %d times", d, c)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for shard, s2 := range spans["w2"] {
			if s1 := spans["w1"][shard]; s1 != nil && !s1.last.Before(s2.first) {
				t.Errorf("shard %s: w1 processed a batch at %v, after w2 started at %v", shard, s1.last, s2.first)
			}
		}
		if len(spans["w2"]) != 2 {
			t.Errorf("w2 processed shards %v, want both", spans["w2"])
		}
	})
}

// A fleet that changes while the stream is resharded and Kinesis fails
// every fifth call: workers join, stop gracefully and rejoin. With
// CheckpointAfterEachBatch and graceful stops, every record is processed
// exactly once, each partition key in order, children after parents.
func TestAChurningFleetOverAReshardingStreamProcessesEveryRecordOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &opCounters{}
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2),
			fakekinesis.WithFault(everyNth(c, 5, fakekinesis.InternalError, "GetRecords", "GetShardIterator", "ListShards")))
		store := newRecordingStore()
		store.parentsOf = func(shard string) []string {
			parents, _, _ := lineage(f)
			return parents[shard]
		}
		j := &journal{}
		opts := []consumer.Option{consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
			consumer.WithShardSyncInterval(5 * time.Second), consumer.WithMaxRecords(10)}
		workers := map[string]*running{}
		startW := func(id string) { workers[id] = start(t, newWorker(t, f, store, factory(j, store, nil), id, opts...)) }
		stopW := func(id string) {
			if err := workers[id].stop(); err != nil {
				t.Errorf("%s Run: %v", id, err)
			}
			delete(workers, id)
		}
		startW("w1")
		total := reshardSteps(t, f, 16, func(step, n int) {
			switch step {
			case 0:
				startW("w2")
			case 1:
				startW("w3")
				time.Sleep(3 * time.Second)
				stopW("w1")
			case 2:
				time.Sleep(2 * time.Second)
				stopW("w2")
				startW("w1")
			case 3:
				startW("w2")
			}
			time.Sleep(4 * time.Second)
		})
		waitFor(t, "every record", 2*time.Minute, func() bool { return j.hasAll(0, total) })
		time.Sleep(10 * time.Second)
		// Stop the fleet at once: each stopping worker releases what a
		// peer stopping at the same instant assigned to it.
		for _, r := range workers {
			r.cancel()
		}
		for id, r := range workers {
			<-r.done
			if r.err != nil {
				t.Errorf("%s Run: %v", id, r.err)
			}
		}
		checkNoWorkerGoroutines(t)
		recs := j.records()
		checkExactlyOnce(t, recs, 0, total)
		checkOrder(t, recs)
		checkChildrenAfterParents(t, f, recs)
		j.checkNoViolations(t)
		store.mu.Lock()
		defer store.mu.Unlock()
		for _, e := range store.errs {
			t.Error(e)
		}
		for _, l := range store.Leases() {
			if l.Owner != "" {
				t.Errorf("lease %s still owned by %q after every worker stopped", l.Key, l.Owner)
			}
		}
	})
}

func TestAFailingShutdownRequestedStillReleasesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 5, 2)
		r := start(t, newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.shutdown = func(context.Context, *consumer.Checkpointer) error { panic("shutdown bug") }
		}), "w1", consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch())))
		waitFor(t, "5 records", time.Minute, func() bool { return j.hasAll(0, 5) })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		l := leaseMap(store)[shard0]
		if l.Owner != "" || l.Checkpoint != lastRecord(t, f, shard0) {
			t.Errorf("lease %+v, want released and checkpointed by the policy", l)
		}
		if got := j.eventsOf("shutdown"); len(got) != 1 {
			t.Errorf("ShutdownRequested called for %v", got)
		}
	})
}

func TestLeaseEventKindString(t *testing.T) {
	tests := []struct {
		k    consumer.LeaseEventKind
		want string
	}{
		{consumer.LeaseAcquired, "acquired"},
		{consumer.LeaseLost, "lost"},
		{consumer.LeaseReleased, "released"},
		{consumer.LeaseShardEnded, "shard ended"},
		{0, "LeaseEventKind(0)"},
		{42, "LeaseEventKind(42)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("LeaseEventKind(%d).String() = %q, want %q", uint8(tt.k), got, tt.want)
		}
	}
}

// The kcl-fleet calls of a partitionable store fail like the others while it
// is partitioned: a worker cut off from the table cannot write its heartbeat.

func partitioned[T any](p *partitionable, f func() (T, error)) (T, error) {
	if err := p.fault(); err != nil {
		var zero T
		return zero, err
	}
	return f()
}

func (p *partitionable) Beat(ctx context.Context, id string, s lease.WorkerState, n int) (lease.Heartbeat, error) {
	return partitioned(p, func() (lease.Heartbeat, error) { return p.Store.Beat(ctx, id, s, n) })
}
func (p *partitionable) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	return partitioned(p, func() ([]lease.Heartbeat, error) { return p.Store.Heartbeats(ctx, ids) })
}
func (p *partitionable) MarkAssigned(ctx context.Context, id string) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.MarkAssigned(ctx, id) })
	return err
}
func (p *partitionable) SetStandby(ctx context.Context, id string, on bool) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.SetStandby(ctx, id, on) })
	return err
}
func (p *partitionable) Fence(ctx context.Context, id string, counter int64) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.Fence(ctx, id, counter) })
	return err
}
func (p *partitionable) Join(ctx context.Context, id string) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.Join(ctx, id) })
	return err
}
func (p *partitionable) Leave(ctx context.Context, id string) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.Leave(ctx, id) })
	return err
}
func (p *partitionable) Roster(ctx context.Context) ([]string, error) {
	return partitioned(p, func() ([]string, error) { return p.Store.Roster(ctx) })
}
func (p *partitionable) Leader(ctx context.Context) (lease.LeaderLock, error) {
	return partitioned(p, func() (lease.LeaderLock, error) { return p.Store.Leader(ctx) })
}
func (p *partitionable) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	return partitioned(p, func() (lease.LeaderLock, error) { return p.Store.AcquireLeader(ctx, id, seen) })
}
func (p *partitionable) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	return partitioned(p, func() (lease.LeaderLock, error) { return p.Store.RenewLeader(ctx, l) })
}
func (p *partitionable) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	_, err := partitioned(p, func() (struct{}, error) { return struct{}{}, p.Store.ReleaseLeader(ctx, l) })
	return err
}
func (p *partitionable) Assign(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	return partitioned(p, func() (lease.Lease, error) { return p.Store.Assign(ctx, l, to) })
}
