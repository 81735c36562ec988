package kplcompat

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
)

var arrival = time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)

// sequenceNumber is the fake sequence number of the i-th Kinesis record.
func sequenceNumber(i int) string {
	return fmt.Sprintf("4959033827149025660855969253836157109592157598913658%04d", i)
}

// kinesisRecords turns a vector's aggregated records into what GetRecords
// would return.
func kinesisRecords(t *testing.T, v vector) []types.Record {
	t.Helper()
	in := make([]types.Record, len(v.AggregatedRecords))
	for i, r := range v.AggregatedRecords {
		data, err := r.bytes()
		if err != nil {
			t.Fatalf("aggregated record %d: %v", i, err)
		}
		in[i] = types.Record{
			Data:                        data,
			PartitionKey:                aws.String(r.PartitionKey),
			SequenceNumber:              aws.String(sequenceNumber(i)),
			ApproximateArrivalTimestamp: aws.Time(arrival),
			EncryptionType:              types.EncryptionTypeKms,
		}
	}
	return in
}

// checkDeaggregated compares got with the user records the vector's
// aggregates encode (its inputs, except where the package mis-encodes): same
// order, data, keys, and each sub-record carries its aggregate's sequence
// number, arrival time and encryption type with sub-sequence numbers
// 0..n-1 per aggregate.
func checkDeaggregated(t *testing.T, v vector, got []deaggregate.Record) {
	t.Helper()
	want := v.encoded(t)
	if len(got) != len(want) {
		t.Fatalf("got %d user records, want %d", len(got), len(want))
	}
	i := 0
	for agg, a := range v.AggregatedRecords {
		for sub := range a.RecordCount {
			g, w := got[i], want[i]
			if !bytes.Equal(g.Data, w.Data) {
				t.Errorf("record %d: data %s, want %s", i, abbrev(g.Data), abbrev(w.Data))
			}
			if g.PartitionKey != w.PartitionKey {
				t.Errorf("record %d: partition key %q, want %q", i, g.PartitionKey, w.PartitionKey)
			}
			if g.ExplicitHashKey != w.ExplicitHashKey {
				t.Errorf("record %d: explicit hash key %q, want %q", i, g.ExplicitHashKey, w.ExplicitHashKey)
			}
			if g.SequenceNumber != sequenceNumber(agg) || g.SubSequenceNumber != uint64(sub) {
				t.Errorf("record %d: position %s/%d, want %s/%d", i, g.SequenceNumber, g.SubSequenceNumber, sequenceNumber(agg), sub)
			}
			if !g.Aggregated {
				t.Errorf("record %d: Aggregated is false", i)
			}
			if !g.ApproximateArrivalTimestamp.Equal(arrival) || g.EncryptionType != types.EncryptionTypeKms {
				t.Errorf("record %d: arrival %v, encryption %q; want the aggregate's %v, %q",
					i, g.ApproximateArrivalTimestamp, g.EncryptionType, arrival, types.EncryptionTypeKms)
			}
			i++
		}
	}
	if i != len(want) {
		t.Fatalf("the vector's record counts add up to %d, but it has %d user records", i, len(want))
	}
}

// abbrev shows short data whole and long data by length and edges.
func abbrev(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q…%q", len(b), b[:16], b[len(b)-16:])
}

// TestDeaggregateNodeVectors expands every aggregate aws-kinesis-agg built
// and expects the user records back exactly. It needs no Node.
func TestDeaggregateNodeVectors(t *testing.T) {
	lowest := hashkey.Key{}.String()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			in := kinesisRecords(t, v)
			failOnReport := deaggregate.WithErrorHandler(func(e *deaggregate.RecordError) {
				t.Errorf("error handler called: %v", e)
			})

			t.Run("Append", func(t *testing.T) {
				d, err := deaggregate.New(failOnReport)
				if err != nil {
					t.Fatal(err)
				}
				checkDeaggregated(t, v, d.Append(nil, in))
			})
			t.Run("Append to a used slice", func(t *testing.T) {
				d, err := deaggregate.New(failOnReport)
				if err != nil {
					t.Fatal(err)
				}
				dst := d.Append(nil, in)
				checkDeaggregated(t, v, d.Append(dst[:0], in))
			})
			t.Run("Records", func(t *testing.T) {
				checkDeaggregated(t, v, deaggregate.Records(in))
			})
			t.Run("whole hash range", func(t *testing.T) {
				d, err := deaggregate.New(failOnReport, deaggregate.WithHashRange(lowest, hashkey.Max.String()))
				if err != nil {
					t.Fatal(err)
				}
				checkDeaggregated(t, v, d.Append(nil, in))
			})
		})
	}
}

// TestNodeAggregateSpanningShardsIsDroppedWhole documents a hazard of
// aws-kinesis-agg: unlike the KPL it does not group user records by shard,
// so one aggregate holds keys from the whole hash space. KCL, and kcl with
// a shard's hash range, drop such an aggregate entirely on every shard but
// the one holding all of its keys.
func TestNodeAggregateSpanningShardsIsDroppedWhole(t *testing.T) {
	var v vector
	for _, c := range loadVectors(t) {
		if c.Name == "many-partition-keys" {
			v = c
		}
	}
	if len(v.AggregatedRecords) != 1 {
		t.Fatalf("many-partition-keys: want one aggregate, have %d", len(v.AggregatedRecords))
	}
	// Lower half of the hash space: half of 500 random keys fall outside.
	lowerEnd := hashkey.Key{Hi: 1<<63 - 1, Lo: 1<<64 - 1}
	reports := 0
	d, err := deaggregate.New(
		deaggregate.WithHashRange("0", lowerEnd.String()),
		deaggregate.WithErrorHandler(func(*deaggregate.RecordError) { reports++ }),
	)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Append(nil, kinesisRecords(t, v))
	if len(got) != 0 {
		t.Errorf("got %d user records from an aggregate with keys outside the range, want none", len(got))
	}
	if reports == 0 {
		t.Error("the dropped aggregate was not reported to the error handler")
	}
}
