package retrieval

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
)

// BenchmarkDecode measures the per-record cost of turning a GetRecords
// result into a Batch (deaggregation, hash range filter, checkpoint filter):
// the framework's own work, without the network or the 200 ms pacing that
// Run must keep. 1,000 user records of 100 B per result.
func BenchmarkDecode(b *testing.B) {
	const users = 1000
	data := make([]byte, 100)
	seq := func(i int) *string { return aws.String(fmt.Sprintf("4959%052d", i+1)) }
	now := aws.Time(time.Now())
	plain := make([]types.Record, users)
	for i := range plain {
		plain[i] = types.Record{Data: data, PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), SequenceNumber: seq(i), ApproximateArrivalTimestamp: now}
	}
	agg := make([]types.Record, users/10)
	for i := range agg {
		urs := make([]aggregate.UserRecord, 10)
		for j := range urs {
			urs[j] = aggregate.UserRecord{PartitionKey: fmt.Sprintf("pk-%d-%d", i, j), Data: data}
		}
		d, err := aggregate.Marshal(urs)
		if err != nil {
			b.Fatal(err)
		}
		agg[i] = types.Record{Data: d, PartitionKey: aws.String("pk"), SequenceNumber: seq(i), ApproximateArrivalTimestamp: now}
	}
	deagg, err := deaggregate.New(deaggregate.WithHashRange("0", hashkey.Max.String()))
	if err != nil {
		b.Fatal(err)
	}
	start, _ := checkpoint.At("4959"+fmt.Sprintf("%052d", 0), 0)
	for _, bc := range []struct {
		name string
		in   []types.Record
	}{{"plain", plain}, {"aggregated x10", agg}} {
		b.Run(bc.name, func(b *testing.B) {
			out := &kinesis.GetRecordsOutput{Records: bc.in, MillisBehindLatest: aws.Int64(0)}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				// A resumed fetcher filters until it passes the checkpoint.
				d := decoder{deagg: deagg, start: start, skipping: true}
				n += len(d.decode(out.Records, out.MillisBehindLatest).Records)
			}
			if n != b.N*users {
				b.Fatalf("decoded %d records in %d loops", n, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(testing.AllocsPerRun(10, func() {
				d := decoder{deagg: deagg, start: start, skipping: true}
				d.decode(out.Records, out.MillisBehindLatest)
			}))/users, "allocs/record")
		})
	}
}

// BenchmarkRun measures the per-record cost of Run itself: GetRecords
// results of 10,000 user records of 100 B, each with its own partition
// key, decoded and delivered on the channel. The API is a stub that
// returns the same result every time, so nothing is copied or allocated on
// Kinesis's side, and the 200 ms pacing is switched off. ns/record is wall
// time; cpu-ns/record is process CPU time (both goroutines of Run).
func BenchmarkRun(b *testing.B) {
	const users = 10_000
	data := make([]byte, 100)
	seq := func(i int) *string { return aws.String(fmt.Sprintf("4959%052d", i+1)) }
	now := aws.Time(time.Now())
	plain := make([]types.Record, users)
	for i := range plain {
		plain[i] = types.Record{Data: data, PartitionKey: aws.String(fmt.Sprintf("pk-%06d", i)), SequenceNumber: seq(i), ApproximateArrivalTimestamp: now}
	}
	agg := make([]types.Record, users/100)
	for i := range agg {
		urs := make([]aggregate.UserRecord, 100)
		for j := range urs {
			urs[j] = aggregate.UserRecord{PartitionKey: fmt.Sprintf("pk-%06d", 100*i+j), Data: data}
		}
		d, err := aggregate.Marshal(urs)
		if err != nil {
			b.Fatal(err)
		}
		agg[i] = types.Record{Data: d, PartitionKey: aws.String(urs[0].PartitionKey), SequenceNumber: seq(i), ApproximateArrivalTimestamp: now}
	}
	for _, bc := range []struct {
		name string
		in   []types.Record
	}{{"plain", plain}, {"aggregated x100", agg}} {
		b.Run(bc.name, func(b *testing.B) {
			api := &cannedAPI{out: &kinesis.GetRecordsOutput{Records: bc.in, NextShardIterator: aws.String("it"), MillisBehindLatest: aws.Int64(0)}}
			cfg := config(nil)
			cfg.MaxRecords = DefaultMaxRecords
			f, err := newFetcher(api, cfg)
			if err != nil {
				b.Fatal(err)
			}
			f.poll.IdleTime = 0 // no pacing: measure the work, not the wait
			ctx, cancel := context.WithCancel(b.Context())
			out := make(chan Batch)
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx, out) }()
			defer func() {
				cancel()
				<-done
			}()
			b.ReportAllocs()
			var start, end runtime.MemStats
			runtime.ReadMemStats(&start)
			cpu := processCPU()
			n := 0
			for b.Loop() {
				n += len((<-out).Records)
			}
			cpu = processCPU() - cpu
			runtime.ReadMemStats(&end)
			if n != b.N*users {
				b.Fatalf("received %d records in %d batches", n, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/record")
			b.ReportMetric(float64(end.Mallocs-start.Mallocs)/float64(n), "allocs/record")
		})
	}
}

// cannedAPI answers every GetRecords call with out.
type cannedAPI struct{ out *kinesis.GetRecordsOutput }

func (a *cannedAPI) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (a *cannedAPI) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return a.out, nil
}

// processCPU returns the user and system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
