package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func TestWorkerDeliversEveryRecordOnceInOrderAndStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 4))
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 200, 16)
		w := newWorker(t, f, store, factory(j, store, nil), "w1",
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()), consumer.WithMaxRecords(7))
		r := start(t, w)
		waitFor(t, "the first 200 records", time.Minute, func() bool { return j.count() >= 200 })
		putRange(f, 200, 400, 16)
		waitFor(t, "400 records", time.Minute, func() bool { return j.count() >= 400 })
		time.Sleep(5 * time.Second) // let duplicates, if any, arrive
		if err := r.stop(); err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
		checkNoWorkerGoroutines(t)
		recs := j.records()
		checkExactlyOnce(t, recs, 0, 400)
		checkOrder(t, recs)
		j.checkNoViolations(t)
		for _, l := range store.Leases() {
			if l.Owner != "" {
				t.Errorf("lease %s still owned by %q after Run returned", l.Key, l.Owner)
			}
			last := f.Records(streamName, l.Key)
			want, _ := checkpoint.At(*last[len(last)-1].SequenceNumber, 0)
			if l.Checkpoint != want {
				t.Errorf("lease %s checkpoint %v, want its last record %v", l.Key, l.Checkpoint, want)
			}
		}
		if n := len(j.eventsOf("new")); n != 4 {
			t.Errorf("%d processors created, want 4 (one per shard)", n)
		}
	})
}

func TestInitialPositionOnAnEmptyLeaseTable(t *testing.T) {
	tests := []struct {
		name string
		opt  func(mid time.Time) consumer.Option
		from int // first record delivered
	}{
		{"TRIM_HORIZON delivers every record kept", func(time.Time) consumer.Option { return consumer.WithInitialPosition(checkpoint.TrimHorizon) }, 0},
		{"LATEST delivers only records put after the worker started", func(time.Time) consumer.Option { return consumer.WithInitialPosition(checkpoint.Latest) }, 20},
		{"AT_TIMESTAMP delivers records put from the timestamp on", func(mid time.Time) consumer.Option { return consumer.WithInitialTimestamp(mid) }, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				j := &journal{}
				putRange(f, 0, 10, 4)
				time.Sleep(10 * time.Second)
				mid := time.Now()
				time.Sleep(10 * time.Second)
				putRange(f, 10, 20, 4)
				w := newWorker(t, f, store, factory(j, store, nil), "w1", tt.opt(mid))
				r := start(t, w)
				time.Sleep(5 * time.Second) // every shard is being read
				putRange(f, 20, 30, 4)
				waitFor(t, "records 20-29", time.Minute, func() bool { return j.count() >= 30-tt.from })
				time.Sleep(5 * time.Second)
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				recs := j.records()
				checkExactlyOnce(t, recs, tt.from, 30)
				checkOrder(t, recs)
			})
		})
	}
}

func TestRestartResumesAfterTheCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		putRange(f, 0, 20, 3)

		// The first worker checkpoints each record up to record 9 only.
		j1 := &journal{}
		w1 := newWorker(t, f, store, factory(j1, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				for _, r := range b.Records {
					if n, _ := strconv.Atoi(string(r.Data)); n <= 9 {
						if err := b.Checkpointer.CheckpointAt(ctx, r.SequenceNumber, r.SubSequenceNumber); err != nil {
							return err
						}
					}
				}
				return nil
			}
		}), "w1")
		r1 := start(t, w1)
		waitFor(t, "20 records", time.Minute, func() bool { return j1.count() >= 20 })
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run: %v", err)
		}
		checkExactlyOnce(t, j1.records(), 0, 20)

		// The second worker resumes after record 9, whatever its initial
		// position: the table is not empty.
		putRange(f, 20, 25, 3)
		j2 := &journal{}
		w2 := newWorker(t, f, store, factory(j2, store, nil), "w2", consumer.WithInitialPosition(checkpoint.Latest))
		r2 := start(t, w2)
		waitFor(t, "records 10-24", time.Minute, func() bool { return j2.count() >= 15 })
		time.Sleep(3 * time.Second)
		if err := r2.stop(); err != nil {
			t.Fatalf("second Run: %v", err)
		}
		recs := j2.records()
		checkExactlyOnce(t, recs, 10, 25)
		checkOrder(t, recs)
		if recs[0].data != "10" {
			t.Errorf("second worker started at record %s, want 10", recs[0].data)
		}
	})
}

func TestRestartResumesInsideAKPLAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		putAggregate := func(prefix string, n int) string {
			var urs []aggregate.UserRecord
			for i := range n {
				urs = append(urs, aggregate.UserRecord{PartitionKey: "p" + strconv.Itoa(i), Data: []byte(prefix + strconv.Itoa(i))})
			}
			data, err := aggregate.Marshal(urs)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(streamName), PartitionKey: aws.String("p0"), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			return *out.SequenceNumber
		}
		seqA := putAggregate("a", 5)
		putAggregate("b", 5)

		// The first worker checkpoints at sub-record 2 of aggregate a.
		j1 := &journal{}
		w1 := newWorker(t, f, store, factory(j1, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				for _, r := range b.Records {
					if string(r.Data) == "a2" {
						return b.Checkpointer.CheckpointAt(ctx, r.SequenceNumber, r.SubSequenceNumber)
					}
				}
				return nil
			}
		}), "w1")
		r1 := start(t, w1)
		waitFor(t, "10 user records", time.Minute, func() bool { return j1.count() >= 10 })
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run: %v", err)
		}
		want, _ := checkpoint.At(seqA, 2)
		if l := leaseMap(store)["shardId-000000000000"]; l.Checkpoint != want {
			t.Fatalf("checkpoint %v after the first worker, want %v", l.Checkpoint, want)
		}

		j2 := &journal{}
		w2 := newWorker(t, f, store, factory(j2, store, nil), "w2")
		r2 := start(t, w2)
		waitFor(t, "7 user records", time.Minute, func() bool { return j2.count() >= 7 })
		time.Sleep(3 * time.Second)
		if err := r2.stop(); err != nil {
			t.Fatalf("second Run: %v", err)
		}
		var got []string
		for _, r := range j2.records() {
			got = append(got, r.data)
		}
		if w := "a3 a4 b0 b1 b2 b3 b4"; strings.Join(got, " ") != w {
			t.Errorf("second worker got %v, want %s", got, w)
		}
		checkOrder(t, j2.records())
	})
}

// pollingOnly has the methods polling needs and none of those of enhanced
// fan-out.
type pollingOnly struct{ consumer.KinesisAPI }

func TestNewRejectsBadInputWithAConfigError(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
	store := memlease.New()
	fac := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) { return nil, nil })
	tests := []struct {
		name   string
		api    consumer.KinesisAPI
		store  lease.Store
		stream string
		f      consumer.Factory
		opts   []consumer.Option
		want   string // in ConfigError.Option
	}{
		{name: "a nil Kinesis client", store: store, stream: streamName, f: fac, want: "api"},
		{name: "a nil lease store", api: f, stream: streamName, f: fac, want: "store"},
		{name: "a nil factory", api: f, store: store, stream: streamName, want: "factory"},
		{name: "a nil FactoryFunc", api: f, store: store, stream: streamName, f: consumer.FactoryFunc(nil), want: "factory"},
		{name: "an empty stream name", api: f, store: store, stream: "", f: fac, want: "stream"},
		{name: "a stream name with a slash", api: f, store: store, stream: "a/b", f: fac, want: "stream"},
		{name: "a stream name of 129 characters", api: f, store: store, stream: strings.Repeat("s", 129), f: fac, want: "stream"},
		{name: "an ARN of another service", api: f, store: store, stream: "arn:aws:sqs:us-east-1:123456789012:stream/x", f: fac, want: "stream"},
		{name: "an ARN without stream/", api: f, store: store, stream: "arn:aws:kinesis:us-east-1:123456789012:x", f: fac, want: "stream"},
		{name: "an ARN with an empty stream name", api: f, store: store, stream: "arn:aws:kinesis:us-east-1:123456789012:stream/", f: fac, want: "stream"},
		{name: "a truncated ARN", api: f, store: store, stream: "arn:aws:kinesis", f: fac, want: "stream"},
		{name: "a nil logger", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithLogger(nil)}, want: "WithLogger"},
		{name: "initial position SHARD_END", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithInitialPosition(checkpoint.ShardEnd)}, want: "WithInitialPosition"},
		{name: "initial position AT_TIMESTAMP without a timestamp", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithInitialPosition(checkpoint.AtTimestamp)}, want: "WithInitialPosition"},
		{name: "the zero initial position", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithInitialPosition(checkpoint.Position{})}, want: "WithInitialPosition"},
		{name: "a zero shard sync interval", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithShardSyncInterval(0)}, want: "WithShardSyncInterval"},
		{name: "a negative parent poll interval", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithParentPollInterval(-time.Second)}, want: "WithParentPollInterval"},
		{name: "zero max records", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithMaxRecords(0)}, want: "WithMaxRecords"},
		{name: "max records above 10000", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithMaxRecords(10001)}, want: "WithMaxRecords"},
		{name: "an idle time below 200ms", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithIdleTime(199 * time.Millisecond)}, want: "WithIdleTime"},
		{name: "zero prefetch batches", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithPrefetch(0, 1)}, want: "WithPrefetch"},
		{name: "negative prefetch bytes", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithPrefetch(1, -1)}, want: "WithPrefetch"},
		{name: "a zero shutdown timeout", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithShutdownTimeout(0)}, want: "WithShutdownTimeout"},
		{name: "a hook implementing no hook interface", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithHooks(struct{}{})}, want: "WithHooks"},
		{name: "a nil hook", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithHooks(nil)}, want: "WithHooks"},
		{name: "invalid lease options", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithLeaseDuration(-time.Second)}, want: "WithLeaseDuration"},
		{name: "a renew interval above half the lease duration", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithLeaseDuration(time.Second), consumer.WithRenewInterval(time.Second)}, want: "WithRenewInterval"},
		{name: "a negative retry limit", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithRetryLimit(-1)}, want: "WithRetryLimit"},
		{name: "enhanced fan-out with a polling option", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithEnhancedFanOut("app"), consumer.WithIdleTime(time.Second)}, want: "WithIdleTime"},
		{name: "enhanced fan-out by name and by ARN", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithEnhancedFanOut("app"), consumer.WithEnhancedFanOutConsumerARN("arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app:1")}, want: "WithEnhancedFanOut"},
		{name: "an enhanced fan-out consumer name with a space", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithEnhancedFanOut("my app")}, want: "WithEnhancedFanOut"},
		{name: "an enhanced fan-out consumer ARN that is not an ARN", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithEnhancedFanOutConsumerARN("app")}, want: "WithEnhancedFanOutConsumerARN"},
		{name: "enhanced fan-out with a client that cannot subscribe", api: pollingOnly{f}, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithEnhancedFanOut("app")}, want: "WithEnhancedFanOut"},
		{name: "an error handler without a retry limit", api: f, store: store, stream: streamName, f: fac, opts: []consumer.Option{consumer.WithErrorHandler(func(context.Context, *consumer.Batch, error) consumer.Decision { return consumer.Skip })}, want: "WithErrorHandler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := consumer.New(tt.api, tt.store, tt.stream, tt.f, tt.opts...)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error", w)
			}
			if !errors.Is(err, consumer.ErrInvalidConfig) {
				t.Errorf("error %v does not match ErrInvalidConfig", err)
			}
			var ce *consumer.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError", err)
			}
			if !strings.Contains(ce.Option, tt.want) {
				t.Errorf("ConfigError.Option = %q, want it to name %q", ce.Option, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "consumer: ") {
				t.Errorf("error %q is not prefixed by the package name", err)
			}
		})
	}
}

func TestNewAcceptsAStreamARN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		arn := "arn:aws:kinesis:us-east-1:123456789012:stream/" + streamName
		putRange(f, 0, 5, 2)
		var infos []consumer.ShardInfo
		fac := consumer.FactoryFunc(func(si consumer.ShardInfo) (consumer.Processor, error) {
			infos = append(infos, si)
			return &proc{j: j, info: si}, nil
		})
		w, err := consumer.New(f, store, arn, fac, baseOptions(t, "w1")...)
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, w)
		waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(infos) != 1 || infos[0].StreamName != streamName || infos[0].StreamARN != arn {
			t.Errorf("ShardInfos %+v, want stream %q with ARN %q", infos, streamName, arn)
		}
	})
}

func TestWorkerIDIsTheLeaseOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		w := newWorker(t, f, store, factory(&journal{}, store, nil), "the-worker")
		if w.ID() != "the-worker" {
			t.Errorf("ID() = %q", w.ID())
		}
		r := start(t, w)
		waitFor(t, "both leases taken", time.Minute, func() bool {
			n := 0
			for _, l := range store.Leases() {
				if l.Owner == "the-worker" {
					n++
				}
			}
			return n == 2
		})
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		w2, err := consumer.New(f, store, streamName, factory(&journal{}, store, nil))
		if err != nil {
			t.Fatal(err)
		}
		if w2.ID() == "" {
			t.Error("default worker id is empty")
		}
	})
}

func TestSecondRunReturnsErrAlreadyRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		w := newWorker(t, f, store, factory(&journal{}, store, nil), "w1")
		r := start(t, w)
		time.Sleep(time.Second)
		if err := w.Run(t.Context()); !errors.Is(err, consumer.ErrAlreadyRunning) {
			t.Errorf("second Run while running: %v, want ErrAlreadyRunning", err)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if err := w.Run(t.Context()); !errors.Is(err, consumer.ErrAlreadyRunning) {
			t.Errorf("Run after Run returned: %v, want ErrAlreadyRunning", err)
		}
	})
}

func TestRunAgainstAMissingStreamFailsQuickly(t *testing.T) {
	for _, stream := range []string{"missing", "arn:aws:kinesis:us-east-1:123456789012:stream/missing"} {
		t.Run(stream, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
				store := memlease.New()
				w, err := consumer.New(f, store, stream, factory(&journal{}, store, nil), baseOptions(t, "w1")...)
				if err != nil {
					t.Fatal(err)
				}
				began := time.Now()
				err = w.Run(t.Context())
				if !errors.Is(err, consumer.ErrStreamNotFound) {
					t.Fatalf("Run: %v, want ErrStreamNotFound", err)
				}
				if d := time.Since(began); d > time.Second {
					t.Errorf("Run took %v to report a missing stream", d)
				}
				if n := len(store.Leases()); n != 0 {
					t.Errorf("%d leases created for a missing stream", n)
				}
			})
		})
	}
}

func TestRunReturnsAPermanentLeaseTableError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("table does not exist")
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
			if op == memlease.OpList {
				return boom
			}
			return nil
		}))
		w := newWorker(t, f, store, factory(&journal{}, store, nil), "w1")
		began := time.Now()
		err := w.Run(t.Context())
		if !errors.Is(err, boom) {
			t.Fatalf("Run: %v, want the store's error", err)
		}
		if d := time.Since(began); d > time.Second {
			t.Errorf("Run took %v to return a permanent error", d)
		}
	})
}

// A lease store that reports a missing table with DynamoDB's
// ResourceNotFoundException (as a store of the user's own may pass it
// through) stops Run with that error, not with ErrStreamNotFound: NotFound
// means the stream only when Kinesis said it.
func TestRunDoesNotTakeAMissingLeaseTableForAMissingStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		missing := &ddbtypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
			if op == memlease.OpList {
				return missing
			}
			return nil
		}))
		w := newWorker(t, f, store, factory(&journal{}, store, nil), "w1")
		err := w.Run(t.Context())
		if errors.Is(err, consumer.ErrStreamNotFound) {
			t.Fatalf("Run: %v, reported as the stream missing", err)
		}
		var got *ddbtypes.ResourceNotFoundException
		if !errors.As(err, &got) {
			t.Fatalf("Run: %v, want the store's ResourceNotFoundException", err)
		}
	})
}

func TestRunStopsWithAnErrorWhenTheLeaseTableFailsLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("table deleted")
		var broken atomicBool
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
			if op == memlease.OpList && broken.get() {
				return boom
			}
			return nil
		}))
		j := &journal{}
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithShardSyncInterval(5*time.Second))
		r := start(t, w)
		putRange(f, 0, 5, 2)
		waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
		broken.set(true)
		waitFor(t, "Run to return", time.Minute, r.returned)
		checkNoWorkerGoroutines(t)
		if !errors.Is(r.err, boom) {
			t.Fatalf("Run: %v, want the store's error", r.err)
		}
		if errors.Is(r.err, consumer.ErrShutdownTimeout) {
			t.Errorf("Run: %v; the graceful stop after the error did not need the deadline", r.err)
		}
	})
}

func TestHooksSeeEveryBatchFetchLeaseAndCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 50, 5)
		w := newWorker(t, f, store, factory(j, store, nil), "w1",
			consumer.WithHooks(h), consumer.WithMaxRecords(4),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		waitFor(t, "50 records", time.Minute, func() bool { return j.count() >= 50 })
		time.Sleep(2 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}

		h.mu.Lock()
		defer h.mu.Unlock()
		records, bytes := 0, 0
		for _, b := range h.batches {
			records += b.Records
			bytes += b.Bytes
			if b.Attempts != 1 || b.Skipped != nil {
				t.Errorf("batch %+v: want one attempt, not skipped", b)
			}
		}
		wantBytes := 0
		for _, r := range j.records() {
			wantBytes += len(r.data)
		}
		if records != 50 || bytes != wantBytes {
			t.Errorf("BatchHook saw %d records of %d bytes, want 50 of %d", records, bytes, wantBytes)
		}

		fetched := 0
		ops := map[string]int{}
		for _, fi := range h.fetches {
			ops[fi.Op]++
			if fi.Err != nil || fi.Throttled {
				t.Errorf("fetch %+v failed without a fault", fi)
			}
			if fi.Op == "GetRecords" {
				fetched += fi.Records
				if fi.Records > 4 {
					t.Errorf("GetRecords returned %d records, above WithMaxRecords(4)", fi.Records)
				}
			}
		}
		if fetched != 50 || ops["GetShardIterator"] != 2 || ops["GetRecords"] == 0 {
			t.Errorf("FetchHook saw %v calls and %d records, want 2 GetShardIterator and 50 records", ops, fetched)
		}

		kinds := map[string][]consumer.LeaseEventKind{}
		for _, e := range h.leases {
			kinds[e.ShardID] = append(kinds[e.ShardID], e.Kind)
			if (e.Kind == consumer.LeaseAcquired) == e.Since.IsZero() || e.Since.After(time.Now()) {
				t.Errorf("lease event %+v: Since must be set, and in the past, for acquired only", e)
			}
		}
		for _, id := range []string{"shardId-000000000000", "shardId-000000000001"} {
			if got := kinds[id]; len(got) != 2 || got[0] != consumer.LeaseAcquired || got[1] != consumer.LeaseReleased {
				t.Errorf("lease events of %s: %v, want [acquired released]", id, got)
			}
		}

		last := map[string]checkpoint.Position{}
		for _, c := range h.checkpoints {
			if c.Err != nil {
				t.Errorf("checkpoint %+v failed", c)
			}
			if p, ok := last[c.ShardID]; ok && c.Position.Compare(p) < 0 {
				t.Errorf("shard %s: checkpoint went back from %v to %v", c.ShardID, p, c.Position)
			}
			last[c.ShardID] = c.Position
		}
		for _, l := range store.Leases() {
			if last[l.Key] != l.Checkpoint {
				t.Errorf("last CheckpointHook position of %s is %v, the lease has %v", l.Key, last[l.Key], l.Checkpoint)
			}
		}
	})
}

func TestFetchHookReportsThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n callCounter
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1), fakekinesis.WithFault(func(op string, in any) error {
			if op == "GetRecords" && n.next()%2 == 1 {
				return fakekinesis.Throttled()
			}
			return nil
		}))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 10, 2)
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h))
		r := start(t, w)
		waitFor(t, "10 records", time.Minute, func() bool { return j.count() >= 10 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		throttled := 0
		for _, fi := range h.fetches {
			if fi.Throttled {
				throttled++
				if fi.Err == nil {
					t.Errorf("throttled fetch %+v has no error", fi)
				}
			}
		}
		if throttled == 0 {
			t.Error("no FetchInfo reported throttling")
		}
		checkExactlyOnce(t, j.records(), 0, 10)
	})
}

// hookFunc implements LeaseHook only.
type hookFunc func(consumer.LeaseEvent)

func (f hookFunc) LeaseChanged(e consumer.LeaseEvent) { f(e) }

func TestWithHooksAcceptsAValueImplementingOneHook(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
	store := memlease.New()
	if _, err := consumer.New(f, store, streamName, factory(&journal{}, store, nil),
		consumer.WithHooks(hookFunc(func(consumer.LeaseEvent) {}))); err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err := consumer.New(f, store, streamName, factory(&journal{}, store, nil),
		consumer.WithHooks(hookFunc(func(consumer.LeaseEvent) {}), 42))
	var ce *consumer.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Option, "argument 1: int") {
		t.Fatalf("New with a non-hook second argument: %v, want a ConfigError naming argument 1", err)
	}
}

func TestCancellingRunDuringItsStartReturnsNil(t *testing.T) {
	tests := []struct {
		name    string
		kinesis func(op string, in any) error
		store   func(op memlease.Op, key string) error
	}{
		{name: "DescribeStreamSummary throttled", kinesis: func(op string, in any) error {
			if op == "DescribeStreamSummary" {
				return fakekinesis.Throttled()
			}
			return nil
		}},
		{name: "ListShards failing", kinesis: func(op string, in any) error {
			if op == "ListShards" {
				return fakekinesis.InternalError()
			}
			return nil
		}},
		{name: "the lease table throttled", store: func(op memlease.Op, key string) error { return lease.ErrThrottled }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1), fakekinesis.WithFault(tt.kinesis))
				store := memlease.New(memlease.WithFault(tt.store))
				w := newWorker(t, f, store, factory(&journal{}, store, nil), "w1")
				r := start(t, w)
				time.Sleep(10 * time.Second)
				if r.returned() {
					t.Fatalf("Run returned %v while its start was being retried", r.err)
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run cancelled during its start: %v, want nil", err)
				}
				checkNoWorkerGoroutines(t)
			})
		})
	}
}

func TestRunStopsWhenTheStreamDisappearsOrAccessIsDenied(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
		want error // nil: any error
	}{
		{"stream deleted", func() error { return &types.ResourceNotFoundException{Message: aws.String("Stream orders not found")} }, consumer.ErrStreamNotFound},
		{"access denied", func() error { return &types.AccessDeniedException{Message: aws.String("no")} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var broken atomicBool
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2), fakekinesis.WithFault(func(op string, in any) error {
					if broken.get() {
						return tt.err()
					}
					return nil
				}))
				store := memlease.New()
				j := &journal{}
				putRange(f, 0, 10, 4)
				w := newWorker(t, f, store, factory(j, store, nil), "w1",
					consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
				r := start(t, w)
				waitFor(t, "10 records", time.Minute, func() bool { return j.count() >= 10 })
				broken.set(true)
				waitFor(t, "Run to return", time.Minute, r.returned)
				if r.err == nil || tt.want != nil && !errors.Is(r.err, tt.want) {
					t.Fatalf("Run: %v, want an error matching %v", r.err, tt.want)
				}
				checkNoWorkerGoroutines(t)
				// The stop was graceful: leases released, processed records
				// checkpointed.
				for _, l := range store.Leases() {
					if l.Owner != "" {
						t.Errorf("lease %s still owned by %q", l.Key, l.Owner)
					}
					if want := lastRecord(t, f, l.Key); l.Checkpoint != want {
						t.Errorf("lease %s at %v, want %v", l.Key, l.Checkpoint, want)
					}
				}
			})
		})
	}
}

func TestAPreparedCheckpointReachesTheNextOwnersInitialize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		putRange(f, 0, 10, 2)
		var prepared checkpoint.Position
		j1 := &journal{}
		w1 := newWorker(t, f, store, factory(j1, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				for _, r := range b.Records {
					if string(r.Data) == "3" {
						pr, err := b.Checkpointer.Prepare(ctx, r.SequenceNumber, r.SubSequenceNumber, []byte("state at 3"))
						if err != nil {
							return err
						}
						prepared = pr.Position()
					}
				}
				return nil
			}
		}), "w1")
		r1 := start(t, w1)
		waitFor(t, "10 records", time.Minute, func() bool { return j1.count() >= 10 })
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run: %v", err)
		}

		var got consumer.InitInput
		j2 := &journal{}
		w2 := newWorker(t, f, store, factory(j2, store, func(p *proc) {
			p.init = func(ctx context.Context, in consumer.InitInput) error {
				got = in
				return nil
			}
		}), "w2")
		r2 := start(t, w2)
		waitFor(t, "10 records again", time.Minute, func() bool { return j2.count() >= 10 })
		if err := r2.stop(); err != nil {
			t.Fatalf("second Run: %v", err)
		}
		if got.Checkpoint != checkpoint.TrimHorizon || got.PendingCheckpoint != prepared || string(got.PendingState) != "state at 3" {
			t.Errorf("Initialize got checkpoint %v, pending %v with %q; want TRIM_HORIZON, %v with %q",
				got.Checkpoint, got.PendingCheckpoint, got.PendingState, prepared, "state at 3")
		}
		checkExactlyOnce(t, j2.records(), 0, 10)
	})
}

func TestALeaseWithoutACheckpointStartsAtTrimHorizon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		store.Put(lease.Lease{Key: "shardId-000000000000"}) // a store that lost the checkpoint
		putRange(f, 0, 10, 2)
		j := &journal{}
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithInitialPosition(checkpoint.Latest))
		run := start(t, w)
		waitFor(t, "10 records", time.Minute, func() bool { return j.count() >= 10 })
		if err := run.stop(); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, j.records(), 0, 10)
	})
}

func TestHooksReportAShardEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 10, 2)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String(streamName), ShardToSplit: aws.String(shard0),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h))
		r := start(t, w)
		waitFor(t, "10 records", time.Minute, func() bool { return j.count() >= 10 })
		time.Sleep(5 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		var parentEvents []consumer.LeaseEventKind
		for _, e := range h.leaseEvents() {
			if e.ShardID == shard0 {
				parentEvents = append(parentEvents, e.Kind)
			}
		}
		if len(parentEvents) != 2 || parentEvents[0] != consumer.LeaseAcquired || parentEvents[1] != consumer.LeaseShardEnded {
			t.Errorf("parent lease events %v, want [acquired shard ended]", parentEvents)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		var ends int
		for _, c := range h.checkpoints {
			if c.ShardID == shard0 && c.Position == checkpoint.ShardEnd && c.Err == nil {
				ends++
			}
		}
		if ends != 1 {
			t.Errorf("CheckpointHook saw %d SHARD_END writes of the parent, want 1", ends)
		}
	})
}

func TestShardInfoCarriesTheStreamARNLearnedAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		infos := make(chan consumer.ShardInfo, 1)
		fac := consumer.FactoryFunc(func(si consumer.ShardInfo) (consumer.Processor, error) {
			infos <- si
			return &proc{j: j, info: si}, nil
		})
		r := start(t, newWorker(t, f, store, fac, "w1"))
		si := <-infos
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		wantRange := f.Shards(streamName)[0].HashKeyRange
		if si.StreamName != streamName || si.StreamARN != "arn:aws:kinesis:us-east-1:123456789012:stream/"+streamName ||
			si.ShardID != shard0 || len(si.ParentShardIDs) != 0 ||
			si.HashRange.Start.String() != *wantRange.StartingHashKey || si.HashRange.End.String() != *wantRange.EndingHashKey {
			t.Errorf("ShardInfo %+v", si)
		}
	})
}

func TestAnAtTimestampLeaseReadByAWorkerWithoutATimestampStartsAtTrimHorizon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		putRange(f, 0, 10, 2)
		time.Sleep(time.Minute)
		putRange(f, 10, 20, 2)
		// A worker configured with AT_TIMESTAMP created the lease and never
		// checkpointed.
		store.Put(lease.Lease{Key: shard0, Checkpoint: checkpoint.AtTimestamp})
		j := &journal{}
		r := start(t, newWorker(t, f, store, factory(j, store, nil), "w1"))
		waitFor(t, "every record", time.Minute, func() bool { return j.count() >= 20 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, j.records(), 0, 20)
	})
}

func TestLatestFollowsShardsCreatedAfterTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		putRange(f, -10, 0, 4) // before the start: skipped
		j := &journal{}
		r := start(t, newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithInitialPosition(checkpoint.Latest)))
		time.Sleep(3 * time.Second)
		putRange(f, 0, 10, 4)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String(streamName), ShardToSplit: aws.String(shard0),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		putRange(f, 10, 30, 4) // in the children, which start at their first record
		waitFor(t, "records 0-29", time.Minute, func() bool { return j.hasAll(0, 30) })
		time.Sleep(3 * time.Second)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		recs := j.records()
		checkExactlyOnce(t, recs, 0, 30)
		checkOrder(t, recs)
		checkChildrenAfterParents(t, f, recs)
	})
}
