package e2e

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/checker"
)

// leaseHook forwards a Worker's lease events to the recorder.
type leaseHook struct {
	worker string
	rec    *recorder
}

func (h leaseHook) LeaseChanged(e consumer.LeaseEvent) {
	h.rec.lease(h.worker, e.ShardID, e.Kind.String())
}

// startWorker runs a polling Worker with the test timings that records
// what it processes and its lease events in rec (see launchWorker).
func startWorker(t *testing.T, f *fixture, rec *recorder, id string) (stop func()) {
	t.Helper()
	return launchWorker(t, f.kc, f.newStore(t), f.stream, id, recordingFactory(rec, id),
		consumer.WithIdleTime(idleTime), consumer.WithHooks(leaseHook{worker: id, rec: rec}))
}

// launchWorker runs a Worker on f's stream and lease table with the test
// timings, the processor factory fac and the retrieval mode in mode
// (consumer.WithIdleTime for polling, consumer.WithEnhancedFanOut), in a
// goroutine until stop is called or the test ends; stop waits for Run and
// fails the test if it returned an error.
func launchWorker(t *testing.T, api consumer.KinesisAPI, store lease.Store, stream, id string, fac consumer.Factory, mode ...consumer.Option) (stop func()) {
	t.Helper()
	opts := append([]consumer.Option{
		consumer.WithWorkerID(id),
		consumer.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(id)),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithLeaseDuration(leaseDuration),
		consumer.WithTakeInterval(takeInterval),
		consumer.WithAssignmentPollInterval(assignmentPoll),
		consumer.WithShardSyncInterval(shardSync),
		consumer.WithParentPollInterval(parentPoll),
		consumer.WithShutdownTimeout(stopTimeout),
	}, mode...)
	w, err := consumer.New(api, store, stream, fac, opts...)
	if err != nil {
		t.Fatalf("consumer.New(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: Run: %v", id, err)
			}
		case <-time.After(stopTimeout + 5*time.Second):
			t.Errorf("worker %s: Run did not return within %v of the stop", id, stopTimeout+5*time.Second)
		}
	}
	t.Cleanup(stop)
	return stop
}

// recordingFactory returns processors that report every record of worker
// id to rec.
func recordingFactory(rec *recorder, id string) consumer.Factory {
	return consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			for _, r := range b.Records {
				rec.record(id, b.ShardID, r.Data, r.SequenceNumber, r.SubSequenceNumber)
			}
			return nil
		}), nil
	})
}

// TestInProcessResharding runs three Workers in one process on a stream that
// is split, merged and rescaled while a producer writes to it, and proves
// that every record is processed exactly once and each key in order.
func TestInProcessResharding(t *testing.T) {
	start := time.Now()
	f := newFixture(t, 2)
	chk := checker.New()
	rec := newRecorder(chk)
	keys := spreadKeys(16)
	prod := startProducer(t, f, chk, keys, 100*time.Millisecond)

	ids := workerIDs("w", 3)
	var stops []func()
	for _, id := range ids {
		stops = append(stops, startWorker(t, f, rec, id))
	}
	initial := shardIDs(f.openShards(t))
	waitFor(t, 20*time.Second, func() bool { return rec.processing(initial, start) },
		"workers did not start processing every shard: %v", prod)

	settle := func(step string) {
		// Let records flow through the new shards before the next change.
		since := time.Now()
		open := shardIDs(f.openShards(t))
		waitFor(t, 30*time.Second, func() bool { return rec.processing(open, since) },
			"after %s, open shards %v were not all processed: %v", step, open, prod)
		t.Logf("%s: %d open shards processing after %v", step, len(open), time.Since(since).Round(100*time.Millisecond))
	}
	n := f.reshard(t, settle)
	waitShared(t, rec, shardIDs(f.openShards(t)), ids)

	produced := prod.stop()
	rep := rec.check(t, 60*time.Second, true)
	for _, stop := range stops {
		stop()
	}
	t.Logf("in-process: %d records over %d keys, %d open shards at the end, %d duplicates, %v",
		produced, len(keys), n, rep.Duplicates, time.Since(start).Round(100*time.Millisecond))
}

// TestInProcessStartAfterResharding starts three Workers on an empty lease
// table after the stream was split, merged and rescaled under a producer:
// the first shard sync must lease the closed shards still in retention and
// the Workers must finish every parent before its children, so that each
// key's records come out in order.
func TestInProcessStartAfterResharding(t *testing.T) {
	start := time.Now()
	f := newFixture(t, 2)
	chk := checker.New()
	rec := newRecorder(chk)
	keys := spreadKeys(16)
	prod := startProducer(t, f, chk, keys, 100*time.Millisecond)

	// Each step waits until the producer has put records on the new shards.
	settle := func(string) {
		n := prod.produced()
		waitFor(t, 10*time.Second, func() bool { return prod.produced() >= n+3*len(keys) },
			"the producer made no progress: %v", prod)
	}
	n := f.reshard(t, settle)
	closed := len(f.listShards(t)) - n

	ids := workerIDs("s", 3)
	var stops []func()
	for _, id := range ids {
		stops = append(stops, startWorker(t, f, rec, id))
	}
	waitShared(t, rec, shardIDs(f.openShards(t)), ids)

	produced := prod.stop()
	rep := rec.check(t, 60*time.Second, true)
	for _, stop := range stops {
		stop()
	}
	t.Logf("start after resharding: %d records over %d keys, %d closed and %d open shards, %d duplicates, %v",
		produced, len(keys), closed, n, rep.Duplicates, time.Since(start).Round(100*time.Millisecond))
}
