package deaggregate

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/hashkey"
)

// benchInput returns n Kinesis records. With perAggregate > 0 each is an
// aggregate of perAggregate user records of size bytes, spread over keys
// distinct partition keys; with perAggregate 0 each is a plain record of
// size bytes.
func benchInput(n, perAggregate, size, keys int) []types.Record {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	in := make([]types.Record, n)
	for i := range in {
		d := payload
		if perAggregate > 0 {
			rs := make([]aggregate.UserRecord, perAggregate)
			for j := range rs {
				rs[j] = aggregate.UserRecord{PartitionKey: "partition-key-" + strconv.Itoa((i*perAggregate+j)%keys), Data: payload}
			}
			var err error
			if d, err = aggregate.Marshal(rs); err != nil {
				panic(err) // test setup only
			}
		}
		in[i] = types.Record{
			Data:           d,
			PartitionKey:   aws.String("outer"),
			SequenceNumber: aws.String(fmt.Sprintf("4959%052d", i)),
		}
	}
	return in
}

// almostMax is 2^128-2: a hash range ending there filters, unlike one
// ending at 2^128-1, yet keeps every realistic key.
var almostMax = hashkey.Key{Hi: hashkey.Max.Hi, Lo: hashkey.Max.Lo - 1}.String()

func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		name               string
		n, per, size, keys int
		filter             bool
		// fresh passes a new dst with room for one record per input
		// record, as the fetcher does, instead of reusing one.
		fresh bool
	}{
		{"1000x10x100B", 1000, 10, 100, 1 << 30, false, false},
		{"1000x10x100B/filter", 1000, 10, 100, 1 << 30, true, false},
		{"1000x100x100B", 1000, 100, 100, 1 << 30, false, false},
		{"1000x100x100B/fresh", 1000, 100, 100, 1 << 30, false, true},
		{"1000x1x1KiB", 1000, 1, 1024, 1 << 30, false, false},
		{"1000-plain", 1000, 0, 100, 1, false, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := benchInput(c.n, c.per, c.size, c.keys)
			var opts []Option
			if c.filter {
				// Not the whole key space, which would skip the filter.
				opts = append(opts, WithHashRange("0", almostMax))
			}
			d, err := New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			dst := d.Append(nil, in)
			var bytes int64
			for _, r := range in {
				bytes += int64(len(r.Data))
			}
			b.SetBytes(bytes)
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			iters := 0
			for b.Loop() {
				if c.fresh {
					dst = make([]Record, 0, len(in))
				}
				dst = d.Append(dst[:0], in)
				iters++
			}
			runtime.ReadMemStats(&after)
			unit := "aggregate"
			if c.per == 0 {
				unit = "record"
			}
			perOp := float64(iters) * float64(len(in))
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/perOp, "allocs/"+unit)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/perOp, "ns/"+unit)
		})
	}
}
