package host

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// BenchmarkShardSend measures the multilang layer alone: one shard's
// processRecords calls (encoding, pipe writes, reading the child's
// checkpoint request and status, writing the reply) on a running child,
// without a Worker, a fake stream or their garbage. host-ns/rec is this
// process's CPU (user + system, getrusage) per record; the child (this test
// binary in testChild mode) is not counted.
//
//	go test -run '^$' -bench BenchmarkShardSend ./internal/multilang/host/
func BenchmarkShardSend(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.Setenv("KCL_HOST_TEST_CHILD", "1")
			b.Setenv("KCL_HOST_TEST_LOG", "/dev/null")
			b.Setenv("KCL_HOST_TEST_CHECKPOINT", "batch")
			h, err := New(Config{Properties: testProps(), Kinesis: fakekinesis.New(), Store: memlease.New()})
			if err != nil {
				b.Fatal(err)
			}
			s := &shard{h: h, info: consumer.ShardInfo{ShardID: "shardId-000000000000"}, log: zap.NewNop()}
			ctx := context.Background()
			if err := s.spawn(ctx, checkpoint.TrimHorizon); err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx, consumer.LeaseEvent{})
			const perBatch = 1000
			data := bytes.Repeat([]byte{'x'}, size)
			recs := make([]consumer.Record, perBatch)
			for i := range recs {
				recs[i] = consumer.Record{
					Data: data, PartitionKey: fmt.Sprintf("pk-%06d", i),
					SequenceNumber:              fmt.Sprintf("4963%052d", i),
					ApproximateArrivalTimestamp: time.UnixMilli(1765000000000),
				}
			}
			if err := s.send(ctx, recs, 0); err != nil { // the buffer's first growth
				b.Fatal(err)
			}
			b.SetBytes(int64(perBatch * size))
			cpu0 := selfCPU()
			for b.Loop() {
				if err := s.send(ctx, recs, 0); err != nil {
					b.Fatal(err)
				}
			}
			cpu := selfCPU() - cpu0
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*perBatch), "host-ns/rec")
			b.ReportMetric(0, "ns/op")
		})
	}
}
