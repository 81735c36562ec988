package kprom_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/plugin/kprom"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// The overhead of the plugin, measured two ways.
//
// BenchmarkWorker64Shards runs consumer's no-op Worker benchmark
// (consumer/bench_test.go: an in-process fake Kinesis, an in-memory lease
// table, a processor that does nothing, process CPU time from getrusage)
// over 64 shards, without hooks ("off") and with the plugin ("kprom"), in
// the same process: the difference of ns/record and allocs/record is the
// plugin's. It is small against the run's noise, so
// BenchmarkHooksPerBatch measures the hook calls alone: one batch's worth
// of them (a GetRecords fetch and a processed batch), from parallel
// goroutines over 64 shards, with the records-per-batch figure of the
// Worker benchmark turning it into a cost per record.
//
//	go test -run '^$' -bench . -benchtime 3x -cpu 1,2 ./   (in plugin/kprom)
const (
	benchShards     = 64
	benchRecords    = 64_000
	benchRecordSize = 100
)

func BenchmarkWorker64Shards(b *testing.B) {
	for _, plugin := range []bool{false, true} {
		name := "off"
		if plugin {
			name = "kprom"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var total usage
			batches := 0
			for b.Loop() {
				b.StopTimer()
				f := newBenchStream(b)
				b.StartTimer()
				u, n := runWorker(b, f, plugin)
				total = total.add(u)
				batches += n
			}
			n := float64(b.N * benchRecords)
			b.ReportMetric(float64(total.cpu)/n, "ns/record")
			b.ReportMetric(float64(total.mallocs)/n, "allocs/record")
			b.ReportMetric(n/float64(batches), "records/batch")
		})
	}
}

func newBenchStream(b *testing.B) *fakekinesis.Fake {
	f := fakekinesis.New(fakekinesis.WithStream("s", benchShards))
	data := make([]byte, benchRecordSize)
	for i := range benchRecords {
		f.Put("s", "pk-"+strconv.Itoa(i), data)
	}
	return f
}

// runWorker runs a Worker over f until every record is processed and
// returns the CPU and allocations from Run to the last batch, and how many
// batches were processed.
func runWorker(b *testing.B, f *fakekinesis.Fake, plugin bool) (usage, int) {
	var seen, batches atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	fac := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(_ context.Context, batch *consumer.Batch) error {
			batches.Add(1)
			if seen.Add(int64(len(batch.Records))) >= benchRecords {
				once.Do(func() { close(done) })
			}
			return nil
		}), nil
	})
	opts := []consumer.Option{
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithIdleTime(200 * time.Millisecond),
		consumer.WithMaxRecords(10_000),
	}
	if plugin {
		opts = append(opts, consumer.WithHooks(kprom.New()))
	}
	w, err := consumer.New(f, memlease.New(), "s", fac, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	errc := make(chan error, 1)
	start := settle(b)
	go func() { errc <- w.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("Run returned early: %v", err)
	case <-time.After(time.Minute):
		b.Fatalf("processed %d of %d records in a minute", seen.Load(), benchRecords)
	}
	u := readUsage().sub(start)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return u, int(batches.Load())
}

// BenchmarkHooksPerBatch is the plugin's cost for one batch: the
// GetRecords fetch that brought it and the processed batch, spread over 64
// shards and called from parallel goroutines (-cpu 2: two at once, as the
// Worker's shard goroutines do).
func BenchmarkHooksPerBatch(b *testing.B) {
	m := kprom.New()
	ids := make([]string, benchShards)
	for i := range ids {
		ids[i] = fmt.Sprintf("shardId-%012d", i)
		m.LeaseChanged(consumer.LeaseEvent{StreamName: "s", WorkerID: "w", ShardID: ids[i], Kind: consumer.LeaseAcquired})
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			id := ids[i%benchShards]
			i += 7
			m.Fetched(consumer.FetchInfo{StreamName: "s", WorkerID: "w", ShardID: id, Op: consumer.OpGetRecords,
				Duration: 3 * time.Millisecond, Records: 1000, Bytes: 100_000, MillisBehindLatest: time.Second})
			m.BatchProcessed(consumer.BatchInfo{StreamName: "s", WorkerID: "w", ShardID: id, Records: 1000, Bytes: 100_000,
				Latency: time.Millisecond, Attempts: 1})
		}
	})
}

// settle collects the set-up's garbage and returns the usage so far.
func settle(b *testing.B) usage {
	b.StopTimer()
	defer b.StartTimer()
	runtime.GC()
	return readUsage()
}

// usage is process CPU time and heap allocations.
type usage struct {
	cpu     time.Duration
	mallocs uint64
}

func readUsage() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), mallocs: ms.Mallocs}
}

func (u usage) sub(v usage) usage { return usage{u.cpu - v.cpu, u.mallocs - v.mallocs} }
func (u usage) add(v usage) usage { return usage{u.cpu + v.cpu, u.mallocs + v.mallocs} }
