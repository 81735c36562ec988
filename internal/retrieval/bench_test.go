package retrieval

import (
	"fmt"
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
				n += len(d.decode(out).Records)
			}
			if n != b.N*users {
				b.Fatalf("decoded %d records in %d loops", n, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(testing.AllocsPerRun(10, func() {
				d := decoder{deagg: deagg, start: start, skipping: true}
				d.decode(out)
			}))/users, "allocs/record")
		})
	}
}
