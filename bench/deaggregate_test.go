package bench

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	awslabs "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/deaggregate"
)

// A benchCase is one shape of GetRecords page: kinesisRecords Kinesis
// records, each an aggregate of perAggregate user records of size bytes, or
// plain records when perAggregate is 0.
type benchCase struct {
	name           string
	kinesisRecords int
	perAggregate   int
	size           int
}

var cases = []benchCase{
	{name: "10x100B", kinesisRecords: 1000, perAggregate: 10, size: 100},
	{name: "100x100B", kinesisRecords: 1000, perAggregate: 100, size: 100},
	{name: "1x1KiB", kinesisRecords: 1000, perAggregate: 1, size: 1024},
	{name: "plain100B", kinesisRecords: 1000, perAggregate: 0, size: 100},
}

// userRecords is how many user records a page of the case holds.
func (c benchCase) userRecords() int {
	if c.perAggregate == 0 {
		return c.kinesisRecords
	}
	return c.kinesisRecords * c.perAggregate
}

// input is a page of Kinesis records and the user records inside it.
type input struct {
	records []types.Record
	want    []aggregate.UserRecord
}

var inputs sync.Map // case name → *input

// pageFor builds the case's page once; both implementations decode the same
// bytes. Aggregates come from kcl's aggregate.Marshal; the agreement test
// checks them against the generated user records, and the awslabs
// deaggregator does not use kcl's code, so a Marshal bug cannot hide.
func pageFor(tb testing.TB, c benchCase) *input {
	tb.Helper()
	if in, ok := inputs.Load(c.name); ok {
		return in.(*input)
	}
	rng := rand.New(rand.NewPCG(uint64(c.kinesisRecords), uint64(c.perAggregate*100_000+c.size)))
	arrival := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	in := &input{records: make([]types.Record, c.kinesisRecords)}
	data := func() []byte {
		b := make([]byte, c.size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		b[0] = 'p' // never the KPL magic's first byte
		return b
	}
	for i := range in.records {
		r := types.Record{
			PartitionKey:                aws.String(fmt.Sprintf("pk-%d", i)),
			SequenceNumber:              aws.String(fmt.Sprintf("49590338271490256608559692538361571095921575989136%06d", i)),
			ApproximateArrivalTimestamp: aws.Time(arrival),
		}
		if c.perAggregate == 0 {
			r.Data = data()
			in.want = append(in.want, aggregate.UserRecord{PartitionKey: *r.PartitionKey, Data: r.Data})
		} else {
			users := make([]aggregate.UserRecord, c.perAggregate)
			for j := range users {
				users[j] = aggregate.UserRecord{PartitionKey: fmt.Sprintf("user-%d-%d", i, j), Data: data()}
			}
			b, err := aggregate.Marshal(users)
			if err != nil {
				tb.Fatalf("aggregate.Marshal: %v", err)
			}
			r.Data = b
			in.want = append(in.want, users...)
		}
		in.records[i] = r
	}
	actual, _ := inputs.LoadOrStore(c.name, in)
	return actual.(*input)
}

// TestImplementationsAgree checks that kcl and awslabs decode every
// benchmark page to the user records it was built from, so that the
// benchmarks compare the same work.
func TestImplementationsAgree(t *testing.T) {
	for _, c := range cases {
		t.Run("case="+c.name, func(t *testing.T) {
			in := pageFor(t, c)
			if len(in.want) != c.userRecords() {
				t.Fatalf("page holds %d user records, want %d", len(in.want), c.userRecords())
			}

			ours := deaggregate.Records(in.records)
			theirs, err := awslabs.DeaggregateRecords(in.records)
			if err != nil {
				t.Fatalf("awslabs: %v", err)
			}
			if len(ours) != len(in.want) || len(theirs) != len(in.want) {
				t.Fatalf("kcl gave %d user records, awslabs %d, want %d", len(ours), len(theirs), len(in.want))
			}
			perAggregate := max(c.perAggregate, 1)
			for i, w := range in.want {
				o, th := ours[i], theirs[i]
				seq := *in.records[i/perAggregate].SequenceNumber
				if !bytes.Equal(o.Data, w.Data) || o.PartitionKey != w.PartitionKey || o.SequenceNumber != seq {
					t.Fatalf("kcl record %d: %q %s %x, want %q %s %x", i, o.PartitionKey, o.SequenceNumber, o.Data, w.PartitionKey, seq, w.Data)
				}
				if !bytes.Equal(th.Data, w.Data) || aws.ToString(th.PartitionKey) != w.PartitionKey || aws.ToString(th.SequenceNumber) != seq {
					t.Fatalf("awslabs record %d: %q %s %x, want %q %s %x",
						i, aws.ToString(th.PartitionKey), aws.ToString(th.SequenceNumber), th.Data, w.PartitionKey, seq, w.Data)
				}
				if o.Aggregated != (c.perAggregate > 0) {
					t.Fatalf("kcl record %d: Aggregated = %v", i, o.Aggregated)
				}
			}
		})
	}
}

// sink keeps results alive so the compiler cannot drop the work.
var sink int

// BenchmarkDeaggregate decodes one page per iteration with each
// implementation. Sub-benchmarks are named case=…/impl=… so that
// `benchstat -col /impl` puts the implementations side by side:
//
//   - impl=kcl: a Deaggregator appending into a reused slice, the intended use.
//   - impl=kcl-fresh: deaggregate.Records, a new slice per page.
//   - impl=awslabs: deaggregator.DeaggregateRecords from kinesis-aggregation/go/v2.
//   - impl=md5-floor: not an implementation but the floor under both: the
//     MD5 of every aggregate's message, which each must compute to accept it.
//
// Besides time and allocations per page it reports user-records/s and
// allocations per Kinesis record (allocs/aggregate, or allocs/record for
// plain records).
func BenchmarkDeaggregate(b *testing.B) {
	for _, c := range cases {
		in := pageFor(b, c)
		b.Run("case="+c.name, func(b *testing.B) {
			b.Run("impl=kcl", func(b *testing.B) {
				d, err := deaggregate.New()
				if err != nil {
					b.Fatal(err)
				}
				var dst []deaggregate.Record
				measure(b, c, func() int {
					dst = d.Append(dst[:0], in.records)
					return len(dst)
				})
			})
			b.Run("impl=kcl-fresh", func(b *testing.B) {
				measure(b, c, func() int {
					return len(deaggregate.Records(in.records))
				})
			})
			b.Run("impl=awslabs", func(b *testing.B) {
				measure(b, c, func() int {
					out, err := awslabs.DeaggregateRecords(in.records)
					if err != nil {
						b.Fatal(err)
					}
					return len(out)
				})
			})
			b.Run("impl=md5-floor", func(b *testing.B) {
				measure(b, c, func() int {
					for i := range in.records {
						d := in.records[i].Data
						if len(d) >= 20 && bytes.HasPrefix(d, kplMagic) {
							sum := md5.Sum(d[4 : len(d)-md5.Size])
							sink += int(sum[0])
						}
					}
					return c.userRecords()
				})
			})
		})
	}
}

// kplMagic starts every KPL aggregate.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// measure runs decode in a b.Loop and reports the per-record metrics.
func measure(b *testing.B, c benchCase, decode func() int) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		if got := decode(); got != c.userRecords() {
			b.Fatalf("decoded %d user records, want %d", got, c.userRecords())
		}
		n++
	}
	runtime.ReadMemStats(&after)
	sink += n

	unit := "allocs/aggregate"
	if c.perAggregate == 0 {
		unit = "allocs/record"
	}
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n*c.kinesisRecords), unit)
	b.ReportMetric(float64(n*c.userRecords())/b.Elapsed().Seconds(), "user-records/s")
}
