package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// opCounters counts calls per operation; safe for concurrent use.
type opCounters struct {
	mu       sync.Mutex
	calls    map[string]int
	injected int
}

// next counts a call of op and returns its number, from 1.
func (c *opCounters) next(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	return c.calls[op]
}

func (c *opCounters) inject(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.injected++
	return err
}

func (c *opCounters) injectedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.injected
}

// everyNth returns a fault that fails every n-th call of the given
// operations (all of them when ops is empty) with err().
func everyNth(c *opCounters, n int, err func() error, ops ...string) func(op string, in any) error {
	return func(op string, in any) error {
		match := len(ops) == 0
		for _, o := range ops {
			match = match || o == op
		}
		if !match || op == "SplitShard" || op == "PutRecord" {
			return nil
		}
		if c.next(op)%n == 0 {
			return c.inject(err())
		}
		return nil
	}
}

// firstN returns a fault that fails the first n calls of op.
func firstN(c *opCounters, n int, err func() error, op string) func(string, any) error {
	return func(o string, in any) error {
		if o == op && c.next(op) <= n {
			return c.inject(err())
		}
		return nil
	}
}

func TestKinesisFaultsLoseAndDuplicateNothing(t *testing.T) {
	tests := []struct {
		name  string
		fault func(c *opCounters) func(string, any) error
	}{
		{"throttled GetRecords", func(c *opCounters) func(string, any) error {
			return everyNth(c, 2, fakekinesis.Throttled, "GetRecords")
		}},
		{"expired iterators", func(c *opCounters) func(string, any) error {
			return everyNth(c, 3, fakekinesis.ExpiredIterator, "GetRecords")
		}},
		{"connection resets on GetRecords", func(c *opCounters) func(string, any) error {
			return everyNth(c, 3, fakekinesis.ConnectionReset, "GetRecords")
		}},
		{"500s on GetRecords", func(c *opCounters) func(string, any) error {
			return everyNth(c, 3, fakekinesis.InternalError, "GetRecords")
		}},
		{"500s on GetShardIterator", func(c *opCounters) func(string, any) error {
			return everyNth(c, 2, fakekinesis.InternalError, "GetShardIterator")
		}},
		{"throttled GetShardIterator", func(c *opCounters) func(string, any) error {
			return everyNth(c, 2, fakekinesis.Throttled, "GetShardIterator")
		}},
		{"500s on ListShards", func(c *opCounters) func(string, any) error {
			return everyNth(c, 2, fakekinesis.InternalError, "ListShards")
		}},
		{"connection resets on ListShards", func(c *opCounters) func(string, any) error {
			return everyNth(c, 2, fakekinesis.ConnectionReset, "ListShards")
		}},
		{"the first DescribeStreamSummary calls fail", func(c *opCounters) func(string, any) error {
			return firstN(c, 3, fakekinesis.InternalError, "DescribeStreamSummary")
		}},
		{"every third call of any kind fails", func(c *opCounters) func(string, any) error {
			return everyNth(c, 3, fakekinesis.InternalError)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &opCounters{}
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2), fakekinesis.WithFault(tt.fault(c)))
				store := memlease.New()
				j := &journal{}
				putRange(f, 0, 60, 8)
				w := newWorker(t, f, store, factory(j, store, nil), "w1",
					consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
					consumer.WithMaxRecords(5), consumer.WithShardSyncInterval(3*time.Second))
				r := start(t, w)
				time.Sleep(time.Second)
				if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
					StreamName: aws.String(streamName), ShardToSplit: aws.String("shardId-000000000001"),
					NewStartingHashKey: aws.String("255211775190703847597530955573826158592"), // 3·2^126
				}); err != nil {
					t.Fatal(err)
				}
				putRange(f, 60, 120, 8)
				waitFor(t, "every record", 2*time.Minute, func() bool { return j.count() >= 120 })
				time.Sleep(10 * time.Second)
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkNoWorkerGoroutines(t)
				if c.injectedCount() == 0 {
					t.Fatal("no fault was injected")
				}
				recs := j.records()
				checkExactlyOnce(t, recs, 0, 120)
				checkOrder(t, recs)
				checkChildrenAfterParents(t, f, recs)
				j.checkNoViolations(t)
			})
		})
	}
}

func TestIteratorsExpiringWhileTheProcessorIsSlowLoseNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 30, 3)
		var slow atomicBool
		slow.set(true)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				if slow.get() {
					slow.set(false)
					time.Sleep(6 * time.Minute) // longer than an iterator lives
				}
				return nil
			}
		}), "w1", consumer.WithMaxRecords(5),
			// The lease must outlive the slow batch.
			consumer.WithLeaseDuration(time.Hour))
		r := start(t, w)
		waitFor(t, "every record", 10*time.Minute, func() bool { return j.count() >= 30 })
		putRange(f, 30, 40, 3)
		waitFor(t, "the later records", time.Minute, func() bool { return j.count() >= 40 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		recs := j.records()
		checkExactlyOnce(t, recs, 0, 40)
		checkOrder(t, recs)
	})
}

func TestLeaseStoreFaultsLoseAndDuplicateNothing(t *testing.T) {
	tests := []struct {
		name string
		opts func(c *opCounters) []memlease.Option
	}{
		{"every third operation throttled", func(c *opCounters) []memlease.Option {
			return []memlease.Option{memlease.WithFault(func(op memlease.Op, key string) error {
				// Per lease, so that no two renewals in a row fail: the
				// lease protocol tolerates one.
				if c.next(op.String()+key)%3 == 0 {
					return c.inject(lease.ErrThrottled)
				}
				return nil
			})}
		}},
		{"connection resets on every third write", func(c *opCounters) []memlease.Option {
			return []memlease.Option{memlease.WithFault(func(op memlease.Op, key string) error {
				if op.IsWrite() && c.next(op.String()+key)%3 == 0 {
					return c.inject(fakekinesis.ConnectionReset())
				}
				return nil
			})}
		}},
		{"every other checkpoint fails after it landed", func(c *opCounters) []memlease.Option {
			return []memlease.Option{memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
				if op == memlease.OpCheckpoint && c.next(op.String())%2 == 0 {
					return c.inject(fakekinesis.ConnectionReset())
				}
				return nil
			})}
		}},
		{"one renewal fails after it landed", func(c *opCounters) []memlease.Option {
			return []memlease.Option{memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
				if op == memlease.OpRenew && c.next(op.String()) == 3 {
					return c.inject(fakekinesis.ConnectionReset())
				}
				return nil
			})}
		}},
		{"every lease creation fails after it landed", func(c *opCounters) []memlease.Option {
			return []memlease.Option{memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
				if op == memlease.OpCreate {
					return c.inject(lease.ErrThrottled)
				}
				return nil
			})}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &opCounters{}
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New(tt.opts(c)...)
				j := &journal{}
				h := &eventRecorder{}
				putRange(f, 0, 60, 8)
				w := newWorker(t, f, store, factory(j, store, nil), "w1",
					consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()), consumer.WithHooks(h),
					consumer.WithMaxRecords(5), consumer.WithShardSyncInterval(3*time.Second))
				r := start(t, w)
				time.Sleep(time.Second)
				if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
					StreamName: aws.String(streamName), ShardToSplit: aws.String("shardId-000000000000"),
					NewStartingHashKey: aws.String("85070591730234615865843651857942052864"),
				}); err != nil {
					t.Fatal(err)
				}
				putRange(f, 60, 120, 8)
				waitFor(t, "every record", 2*time.Minute, func() bool { return j.count() >= 120 })
				time.Sleep(10 * time.Second)
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkNoWorkerGoroutines(t)
				if c.injectedCount() == 0 {
					t.Fatal("no fault was injected")
				}
				recs := j.records()
				checkExactlyOnce(t, recs, 0, 120)
				checkOrder(t, recs)
				checkChildrenAfterParents(t, f, recs)
				j.checkNoViolations(t)
				for _, e := range h.leaseEvents() {
					if e.Kind == consumer.LeaseLost {
						t.Errorf("lease %s lost (%v): store faults alone must not lose a lease", e.ShardID, e.Cause)
					}
				}
			})
		})
	}
}

// attempt is one ProcessRecords call: the batch's bounds and size.
type attempt struct {
	first, last checkpoint.Position
	n           int
	ok          bool
}

func bounds(b *consumer.Batch) attempt {
	a := attempt{n: len(b.Records)}
	if a.n > 0 {
		a.first, _ = checkpoint.At(b.Records[0].SequenceNumber, b.Records[0].SubSequenceNumber)
		l := b.Records[a.n-1]
		a.last, _ = checkpoint.At(l.SequenceNumber, l.SubSequenceNumber)
	}
	return a
}

func TestFailedBatchesAreRedeliveredUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		var mu sync.Mutex
		attempts := map[string][]attempt{}
		putRange(f, 0, 60, 8)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			calls := 0
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				calls++
				a := bounds(b)
				a.ok = calls%2 == 0
				mu.Lock()
				attempts[b.ShardID] = append(attempts[b.ShardID], a)
				mu.Unlock()
				switch calls % 4 {
				case 1:
					return errors.New("transient failure")
				case 3:
					panic("processor bug")
				}
				return nil
			}
		}), "w1", consumer.WithMaxRecords(5), consumer.WithHooks(h),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		waitFor(t, "every record", 2*time.Minute, func() bool { return j.count() >= 60 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		recs := j.records()
		checkExactlyOnce(t, recs, 0, 60)
		checkOrder(t, recs)

		mu.Lock()
		defer mu.Unlock()
		for shard, as := range attempts {
			for i := 0; i+1 < len(as); i += 2 {
				failed, next := as[i], as[i+1]
				if failed.ok || !next.ok {
					t.Fatalf("shard %s: attempts out of step: %+v", shard, as)
				}
				if failed != (attempt{first: next.first, last: next.last, n: next.n}) {
					t.Errorf("shard %s: batch %+v failed, then %+v was delivered", shard, failed, next)
				}
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, b := range h.batches {
			if b.Attempts != 2 {
				t.Errorf("BatchInfo %+v: want 2 attempts", b)
			}
		}
	})
}

// poisonProc returns a processor setup whose ProcessRecords fails for a
// batch holding record poison, as long as fail(attempt) says so; attempt
// counts such calls from 1 over every processor of the test.
func poisonProc(poison string, calls *callCounter, fail func(n int64) bool) func(p *proc) {
	return func(p *proc) {
		p.batch = func(ctx context.Context, b *consumer.Batch) error {
			for _, r := range b.Records {
				if string(r.Data) == poison && fail(calls.next()) {
					return errors.New("cannot process record " + poison)
				}
			}
			return nil
		}
	}
}

func TestErrorHandlerSkipMovesPastTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		var calls, decisions callCounter
		putRange(f, 0, 30, 3)
		w := newWorker(t, f, store, factory(j, store, poisonProc("12", &calls, func(int64) bool { return true })), "w1",
			consumer.WithMaxRecords(5), consumer.WithHooks(h),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
			consumer.WithRetryLimit(2),
			consumer.WithErrorHandler(func(ctx context.Context, b *consumer.Batch, err error) consumer.Decision {
				decisions.next()
				return consumer.Skip
			}))
		r := start(t, w)
		waitFor(t, "the other records", time.Minute, func() bool { return j.count() >= 25 })
		time.Sleep(5 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if calls.get() != 3 || decisions.get() != 1 {
			t.Errorf("poisoned batch tried %d times and the handler asked %d times, want 3 and 1", calls.get(), decisions.get())
		}
		recs := j.records()
		checkOrder(t, recs)
		seen := map[string]bool{}
		for _, r := range recs {
			seen[r.data] = true
		}
		if seen["12"] || len(recs) != 25 {
			t.Errorf("%d records delivered (record 12 delivered: %v), want the 25 outside the skipped batch", len(recs), seen["12"])
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		var skipped []*consumer.SkippedBatch
		for _, b := range h.batches {
			if b.Skipped != nil {
				skipped = append(skipped, b.Skipped)
			}
		}
		if len(skipped) != 1 || skipped[0].Records != 5 || skipped[0].Attempts != 3 || skipped[0].Err == nil {
			t.Fatalf("skipped batches %+v, want one of 5 records after 3 attempts", skipped)
		}
		// The checkpoint moved past the skipped batch.
		if l, want := leaseMap(store)[shard0], lastRecord(t, f, shard0); l.Checkpoint != want {
			t.Errorf("checkpoint %v, want the last record %v", l.Checkpoint, want)
		}
	})
}

func TestStoppedShardIsRetakenAndResumesAtItsCheckpoint(t *testing.T) {
	tests := []struct {
		name string
		opts []consumer.Option
	}{
		{"with the default handler", []consumer.Option{consumer.WithRetryLimit(1)}},
		{"with a handler returning StopShard", []consumer.Option{consumer.WithRetryLimit(1), consumer.WithErrorHandler(
			func(context.Context, *consumer.Batch, error) consumer.Decision { return consumer.StopShard })}},
		{"with a handler returning an invalid decision", []consumer.Option{consumer.WithRetryLimit(1), consumer.WithErrorHandler(
			func(context.Context, *consumer.Batch, error) consumer.Decision { return 0 })}},
		{"with a panicking handler", []consumer.Option{consumer.WithRetryLimit(1), consumer.WithErrorHandler(
			func(context.Context, *consumer.Batch, error) consumer.Decision { panic("handler bug") })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
				store := memlease.New()
				j := &journal{}
				h := &eventRecorder{}
				var calls callCounter
				putRange(f, 0, 30, 3)
				// The batch with record 12 fails 4 times: twice on each of
				// the first two leases, which are stopped, and then
				// succeeds on the third.
				opts := append([]consumer.Option{consumer.WithMaxRecords(5), consumer.WithHooks(h),
					consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch())}, tt.opts...)
				w := newWorker(t, f, store, factory(j, store, poisonProc("12", &calls, func(n int64) bool { return n <= 4 })), "w1", opts...)
				r := start(t, w)
				waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 30 })
				time.Sleep(5 * time.Second)
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				recs := j.records()
				checkExactlyOnce(t, recs, 0, 30)
				checkOrder(t, recs)
				stopped := 0
				for _, e := range h.leaseEvents() {
					if errors.Is(e.Cause, consumer.ErrShardStopped) {
						stopped++
						if e.Kind != consumer.LeaseReleased {
							t.Errorf("shard stopped with event %v, want released", e.Kind)
						}
					}
				}
				if stopped != 2 {
					t.Errorf("shard stopped %d times, want 2", stopped)
				}
				if n := len(j.eventsOf("new")); n != 3 {
					t.Errorf("%d processors created, want 3 (one per lease taken)", n)
				}
			})
		})
	}
}

func TestErrorHandlerRetryKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		var calls, decisions callCounter
		putRange(f, 0, 30, 3)
		w := newWorker(t, f, store, factory(j, store, poisonProc("12", &calls, func(n int64) bool { return n <= 7 })), "w1",
			consumer.WithMaxRecords(5), consumer.WithHooks(h), consumer.WithRetryLimit(2),
			consumer.WithErrorHandler(func(context.Context, *consumer.Batch, error) consumer.Decision {
				decisions.next()
				return consumer.Retry
			}))
		r := start(t, w)
		waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 30 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 30)
		// 7 failures; the handler is asked after the first failure and
		// 2 retries (the 3rd), then after each further 2 retries (the 5th
		// and the 7th).
		if calls.get() != 8 || decisions.get() != 3 {
			t.Errorf("%d attempts, %d decisions; want 8 and 3", calls.get(), decisions.get())
		}
		for _, e := range h.leaseEvents() {
			if e.Kind != consumer.LeaseAcquired && e.Cause != nil && !errors.Is(e.Cause, consumer.ErrStopping) {
				t.Errorf("lease event %v (%v) before the stop", e.Kind, e.Cause)
			}
		}
	})
}

func TestInitializeIsRetriedUntilItSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		var inits callCounter
		var ready atomicBool
		putRange(f, 0, 10, 2)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.init = func(ctx context.Context, in consumer.InitInput) error {
				if in.Checkpoint != checkpoint.TrimHorizon || in.Shard.ShardID != "shardId-000000000000" {
					j.violation("Initialize given %+v", in)
				}
				switch inits.next() {
				case 1:
					return errors.New("database down")
				case 2:
					panic("init bug")
				}
				ready.set(true)
				return nil
			}
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				if !ready.get() {
					j.violation("ProcessRecords called before Initialize succeeded")
				}
				return nil
			}
		}), "w1")
		r := start(t, w)
		waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 10 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 10)
		j.checkNoViolations(t)
		if inits.get() != 3 || len(j.eventsOf("new")) != 1 {
			t.Errorf("Initialize called %d times on %d processors, want 3 on 1", inits.get(), len(j.eventsOf("new")))
		}
	})
}

func TestFactoryFailuresGiveTheLeaseUpWithoutCrashing(t *testing.T) {
	tests := []struct {
		name string
		fail func() (consumer.Processor, error)
	}{
		{"an error", func() (consumer.Processor, error) { return nil, errors.New("no connection") }},
		{"a nil processor", func() (consumer.Processor, error) { return nil, nil }},
		{"a panic", func() (consumer.Processor, error) { panic("factory bug") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				j := &journal{}
				h := &eventRecorder{}
				var mu sync.Mutex
				failures := map[string]int{}
				good := factory(j, store, nil)
				fac := consumer.FactoryFunc(func(si consumer.ShardInfo) (consumer.Processor, error) {
					mu.Lock()
					n := failures[si.ShardID]
					failures[si.ShardID]++
					mu.Unlock()
					if n < 2 {
						return tt.fail()
					}
					return good.NewProcessor(si)
				})
				putRange(f, 0, 20, 4)
				w := newWorker(t, f, store, fac, "w1", consumer.WithHooks(h))
				r := start(t, w)
				waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 20 })
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				checkExactlyOnce(t, j.records(), 0, 20)
				released := 0
				for _, e := range h.leaseEvents() {
					if e.Kind == consumer.LeaseReleased && !errors.Is(e.Cause, consumer.ErrStopping) {
						released++
					}
				}
				if released != 4 {
					t.Errorf("%d leases given up on factory failures, want 4 (2 per shard)", released)
				}
			})
		})
	}
}

func TestShardEndedErrorDelaysShardEndAndRedeliversTheLastBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := newRecordingStore()
		j := &journal{}
		var ends callCounter
		putRange(f, 0, 10, 2)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String(streamName), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		putRange(f, 10, 20, 2)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.ended = func(ctx context.Context, cp *consumer.Checkpointer) error {
				if ends.next() == 1 {
					return errors.New("not yet")
				}
				return nil
			}
		}), "w1", consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 30 })
		time.Sleep(5 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// The parent's only batch is its last: its checkpoint would be
		// SHARD_END, which ShardEnded's error withholds, so the batch is
		// delivered again to the next processor of the shard.
		recs := j.records()
		var parent, children []delivered
		for _, r := range recs {
			if r.shard == "shardId-000000000000" {
				parent = append(parent, r)
			} else {
				children = append(children, r)
			}
		}
		checkExactlyOnce(t, parent[:10], 0, 10)
		checkExactlyOnce(t, parent[10:], 0, 10)
		checkExactlyOnce(t, children, 10, 20)
		checkOrder(t, children)
		checkChildrenAfterParents(t, f, recs)
		j.checkNoViolations(t)
		checkNoWorkerGoroutines(t)
		if ends.get() != 2 {
			t.Errorf("ShardEnded called %d times, want 2", ends.get())
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if _, ok := store.shardEnd["shardId-000000000000"]; !ok {
			t.Error("SHARD_END never written")
		}
	})
}

func TestAnInvalidGetRecordsResponseGivesTheLeaseUpAndProcessingResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &opCounters{}
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1), fakekinesis.WithFault(
			firstN(c, 1, func() error { return &types.InvalidArgumentException{Message: aws.String("bad request")} }, "GetRecords")))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 10, 2)
		r := start(t, newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h)))
		waitFor(t, "every record", time.Minute, func() bool { return j.hasAll(0, 10) })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 10)
		events := h.leaseEvents()
		if len(events) < 2 || events[1].Kind != consumer.LeaseReleased || events[1].Cause == nil {
			t.Errorf("lease events %+v, want the lease released after the failure", events)
		}
	})
}

func TestAFailedShardEndWriteIsRetriedByTheNextOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failed atomicBool
		store := newRecordingStore(memlease.WithFault(func(op memlease.Op, key string) error {
			// Manual checkpoints that the processor never writes: the
			// parent's only checkpoint write is SHARD_END.
			if op == memlease.OpCheckpoint && key == shard0 && !failed.get() {
				failed.set(true)
				return errors.New("validation error")
			}
			return nil
		}))
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		j := &journal{}
		putRange(f, 0, 10, 2)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String(streamName), ShardToSplit: aws.String(shard0),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		putRange(f, 10, 20, 2)
		r := start(t, newWorker(t, f, store, factory(j, store, nil), "w1"))
		waitFor(t, "every record", time.Minute, func() bool { return j.hasAll(0, 20) })
		time.Sleep(5 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		// The parent was read twice (its end was not recorded the first
		// time); the children only once, after it.
		recs := j.records()
		seen := map[string]int{}
		for _, r := range recs {
			seen[r.data]++
		}
		for i := range 20 {
			want := 1
			if i < 10 {
				want = 2
			}
			if n := seen[strconv.Itoa(i)]; n != want {
				t.Errorf("record %d delivered %d times, want %d", i, n, want)
			}
		}
		checkChildrenAfterParents(t, f, recs)
		j.checkNoViolations(t)
		store.mu.Lock()
		defer store.mu.Unlock()
		if got := store.shardEnd[shard0]; len(got) != 2 {
			t.Errorf("SHARD_END of the parent written with children %v, want both", got)
		}
	})
}
