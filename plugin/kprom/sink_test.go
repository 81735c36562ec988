package kprom_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/plugin/kprom"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// panicky is a hook that panics on every batch, registered before the
// plugin: a faulty neighbour.
type panicky struct{}

func (panicky) BatchProcessed(consumer.BatchInfo) { panic("sink exploded") }

// TestAStuckScrapeAndAPanickingHookNeverStallProcessing starts a scrape
// whose consumer never reads (Collect blocks on its first send, in the
// middle of a worker's shards), then runs a second worker that takes half
// of the shards — new series, lease changes, a new worker — beside a hook
// that panics on every batch. Every record must be processed and counted.
func TestAStuckScrapeAndAPanickingHookNeverStallProcessing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream("s", 4))
		store := memlease.New()
		m := kprom.New()
		var processed atomic.Int64
		fac := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
			return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
				processed.Add(int64(len(b.Records)))
				return nil
			}), nil
		})
		newWorker := func(id string) *consumer.Worker {
			w, err := consumer.New(f, store, "s", fac, consumer.WithWorkerID(id),
				consumer.WithInitialPosition(checkpoint.TrimHorizon), consumer.WithIdleTime(200*time.Millisecond),
				consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
				consumer.WithCoordination(consumer.CoordinationKCL()), consumer.WithLeaseDuration(3*time.Second),
				consumer.WithHooks(panicky{}, m))
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		run := func(w *consumer.Worker) (stop func()) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			return func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run of %s: %v", w.ID(), err)
				}
			}
		}
		put := func(from, to int) {
			for i := from; i < to; i++ {
				f.Put("s", fmt.Sprintf("k%d", i), []byte("x"))
			}
		}
		waitProcessed := func(n int64) {
			deadline := time.Now().Add(time.Minute)
			for processed.Load() < n {
				if time.Now().After(deadline) {
					t.Fatalf("processed %d of %d records: processing stalled", processed.Load(), n)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}

		put(0, 100)
		stop1 := run(newWorker("w1"))
		waitProcessed(100)

		stuck := make(chan prometheus.Metric) // nobody reads it
		collected := make(chan struct{})
		go func() {
			defer close(collected)
			m.Collect(stuck)
		}()
		time.Sleep(time.Second)

		stop2 := run(newWorker("w2"))
		put(100, 400)
		waitProcessed(400)
		time.Sleep(3 * time.Second) // w2 takes its share: leases move
		put(400, 500)
		waitProcessed(500)

		// Let the stuck scrape finish, then scrape for real.
		go func() {
			for range stuck {
			}
		}()
		<-collected
		close(stuck)
		stop2()
		stop1()
		got, _ := scrapeHandler(t, handler(t, m))
		if n := got.sum("kcl_records_processed_total", nil); n != 500 {
			t.Errorf("records counted %v, want 500", n)
		}
		if a := got.sum("kcl_leases_acquired_total", map[string]string{"worker": "w2"}); a == 0 {
			t.Error("w2 acquired no lease while the scrape was stuck; the test proved nothing")
		}
	})
}
