package consumer_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// The Worker benchmarks measure the framework's cost per user record: a
// Worker reads benchRecords records of 100 B from one shard of an
// in-process fake Kinesis and hands them to a processor that does nothing.
//
// The cost is counted in process CPU time (user + system, from getrusage)
// and heap allocations, not wall time: the Worker waits 200 ms between
// GetRecords calls, as Kinesis requires, and that wait is not work. ns/op
// is therefore mostly the pacing and means little.
//
// The fake does work a real client does not do in this process (it copies
// every record it returns and seals and opens iterator tokens), so each
// iteration then replays the same GetRecords calls against the fake alone
// and reports that as fake-ns/record and fake-allocs/record; the
// framework-* metrics are the difference. Everything else in the process
// (lease renewal, shard sync, GC) counts towards the framework.
//
// Run with:
//
//	go test -run '^$' -bench BenchmarkWorker -benchmem ./consumer/
const (
	benchRecords      = 100_000
	benchRecordSize   = 100
	benchPerAggregate = 100 // user records per KPL aggregate
)

func BenchmarkWorkerPlain(b *testing.B) { benchmarkWorker(b, 1) }

func BenchmarkWorkerAggregated(b *testing.B) { benchmarkWorker(b, benchPerAggregate) }

// benchmarkWorker runs the Worker benchmark with perRecord user records per
// Kinesis record; 1 puts plain records.
func benchmarkWorker(b *testing.B, perRecord int) {
	b.ReportAllocs()
	var total, fake usage
	for b.Loop() {
		b.StopTimer()
		f := newBenchStream(b, perRecord)
		b.StartTimer()
		total = total.add(runWorker(b, f))
		fake = fake.add(replayFake(b, f))
	}
	n := float64(b.N * benchRecords)
	b.ReportMetric(float64(total.cpu)/n, "ns/record")
	b.ReportMetric(float64(total.mallocs)/n, "allocs/record")
	b.ReportMetric(float64(fake.cpu)/n, "fake-ns/record")
	b.ReportMetric(float64(fake.mallocs)/n, "fake-allocs/record")
	b.ReportMetric(float64(total.cpu-fake.cpu)/n, "framework-ns/record")
	b.ReportMetric((float64(total.mallocs)-float64(fake.mallocs))/n, "framework-allocs/record")
}

// newBenchStream returns a fake with stream "s" of one shard holding
// benchRecords user records of benchRecordSize bytes, each with its own
// partition key, packed perRecord to a Kinesis record.
func newBenchStream(b *testing.B, perRecord int) *fakekinesis.Fake {
	f := fakekinesis.New(fakekinesis.WithStream("s", 1))
	data := make([]byte, benchRecordSize)
	if perRecord == 1 {
		for i := range benchRecords {
			f.Put("s", fmt.Sprintf("pk-%06d", i), data)
		}
		return f
	}
	urs := make([]aggregate.UserRecord, perRecord)
	for i := 0; i < benchRecords; i += perRecord {
		for j := range urs {
			urs[j] = aggregate.UserRecord{PartitionKey: fmt.Sprintf("pk-%06d", i+j), Data: data}
		}
		agg, err := aggregate.Marshal(urs)
		if err != nil {
			b.Fatal(err)
		}
		f.Put("s", urs[0].PartitionKey, agg)
	}
	return f
}

// runWorker runs a Worker over f until its processor has seen every record
// and returns what that cost, from the call of Run to the last
// ProcessRecords (stopping the Worker is not counted).
func runWorker(b *testing.B, f *fakekinesis.Fake) usage {
	var seen atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	fac := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(_ context.Context, batch *consumer.Batch) error {
			if seen.Add(int64(len(batch.Records))) >= benchRecords {
				once.Do(func() { close(done) })
			}
			return nil
		}), nil
	})
	w, err := consumer.New(f, memlease.New(), "s", fac,
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithMaxRecords(10_000))
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
	if got := seen.Load(); got != benchRecords {
		b.Fatalf("processed %d records, want %d", got, benchRecords)
	}
	return u
}

// replayFake reads the shard of f as the Worker does, GetRecords with a
// limit of 10,000 until it is caught up, and returns what the fake's side
// of that cost.
func replayFake(b *testing.B, f *fakekinesis.Fake) usage {
	ctx := b.Context()
	start := settle(b)
	it, err := f.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		b.Fatal(err)
	}
	limit := int32(10_000)
	next := it.ShardIterator
	for {
		out, err := f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next, Limit: &limit})
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Records) == 0 {
			break
		}
		next = out.NextShardIterator
	}
	return readUsage().sub(start)
}

// settle collects the garbage of the set-up, so that its cost is not
// counted in what follows, and returns the usage so far.
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
	return usage{
		cpu:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		mallocs: ms.Mallocs,
	}
}

func (u usage) sub(v usage) usage { return usage{u.cpu - v.cpu, u.mallocs - v.mallocs} }
func (u usage) add(v usage) usage { return usage{u.cpu + v.cpu, u.mallocs + v.mallocs} }
