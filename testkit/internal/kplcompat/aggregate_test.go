package kplcompat

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/hashkey"
)

// An aggregation is a set of user records and the Kinesis records one of
// kcl's aggregation paths built from them.
type aggregation struct {
	entries []aggregate.Entry
	// kept is the input minus records the path refused (too large for its
	// maximum size), in order: what must come back.
	kept []aggregate.UserRecord
}

// builder is one way of aggregating with kcl's aggregate package.
type builder struct {
	name  string
	build func(t *testing.T, in []aggregate.UserRecord) aggregation
}

func builders() []builder {
	bs := []builder{{name: "Marshal", build: buildMarshal}}
	for _, n := range []int{256, 4096, aggregate.DefaultMaxSize, 1 << 20} {
		bs = append(bs, builder{
			name:  fmt.Sprintf("Aggregator max=%d", n),
			build: func(t *testing.T, in []aggregate.UserRecord) aggregation { return buildWithAggregator(t, in, n) },
		})
	}
	return bs
}

func buildMarshal(t *testing.T, in []aggregate.UserRecord) aggregation {
	t.Helper()
	b, err := aggregate.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	e := aggregate.Entry{PartitionKey: in[0].PartitionKey, ExplicitHashKey: in[0].ExplicitHashKey, Data: b, Records: len(in)}
	return aggregation{entries: []aggregate.Entry{e}, kept: in}
}

func buildWithAggregator(t *testing.T, in []aggregate.UserRecord, maxSize int) aggregation {
	t.Helper()
	a, err := aggregate.New(aggregate.WithMaxSize(maxSize))
	if err != nil {
		t.Fatalf("New(WithMaxSize(%d)): %v", maxSize, err)
	}
	var out aggregation
	for i, r := range in {
		full, ok, err := a.Add(r)
		switch {
		case errors.Is(err, aggregate.ErrRecordTooLarge) && tooLarge(r, maxSize):
			continue // refused, as it must be
		case err != nil:
			t.Fatalf("Add(record %d, %d bytes of data): %v", i, len(r.Data), err)
		case tooLarge(r, maxSize):
			t.Fatalf("Add(record %d) accepted a record that alone encodes to more than %d bytes", i, maxSize)
		}
		out.kept = append(out.kept, r)
		if ok {
			out.entries = append(out.entries, full)
		}
	}
	if e, ok := a.Flush(); ok {
		out.entries = append(out.entries, e)
	}
	for i, e := range out.entries {
		if n := len(e.Data); n > maxSize {
			t.Errorf("entry %d is %d bytes, over the maximum %d", i, n, maxSize)
		}
	}
	return out
}

// tooLarge reports whether r cannot fit an aggregate of maxSize bytes even
// alone.
func tooLarge(r aggregate.UserRecord, maxSize int) bool {
	b, err := aggregate.Marshal([]aggregate.UserRecord{r})
	return err != nil || len(b) > maxSize
}

// hashKeyTable reads an aggregate's protobuf message and returns the first
// entry of explicit_hash_key_table ("" if empty) and, per user record,
// whether it has an explicit_hash_key_index.
//
// aws-kinesis-agg@4.2.8 reports that first entry as the explicit hash key of
// every user record that has no index: protobufjs decodes the absent
// optional field as 0, and kpl-deagg.js indexes the table with it unchecked.
// Its own aggregates show the same (testdata/kpl/
// explicit-hash-key-after-first.json). The tests expect exactly that
// mistake, for records that really have no index, rather than ignore
// explicit hash keys.
func hashKeyTable(t *testing.T, kinesisData []byte) (first string, hasIndex []bool) {
	t.Helper()
	const magicLen, md5Len = 4, 16
	if len(kinesisData) < magicLen+md5Len {
		t.Fatalf("aggregate of %d bytes is too short", len(kinesisData))
	}
	seenTable := false
	walk(t, kinesisData[magicLen:len(kinesisData)-md5Len], func(num protowire.Number, v []byte) {
		switch num {
		case 2: // explicit_hash_key_table
			if !seenTable {
				first, seenTable = string(v), true
			}
		case 3: // records
			has := false
			walk(t, v, func(num protowire.Number, _ []byte) { has = has || num == 2 })
			hasIndex = append(hasIndex, has)
		}
	})
	return first, hasIndex
}

// walk calls fn for every field of a protobuf message, with the contents
// of length-delimited fields (nil for the others).
func walk(t *testing.T, msg []byte, fn func(protowire.Number, []byte)) {
	t.Helper()
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			t.Fatalf("aggregate: bad tag: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(msg)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			t.Fatalf("aggregate: bad field %d: %v", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		fn(num, v)
	}
}

// nodeRequest turns entries into Kinesis records for deaggregate.js.
func nodeRequest(entries []aggregate.Entry) []nodeKinesisRecord {
	req := make([]nodeKinesisRecord, len(entries))
	for i, e := range entries {
		req[i] = nodeKinesisRecord{PartitionKey: e.PartitionKey, Data: e.Data, SequenceNumber: sequenceNumber(i)}
		if e.ExplicitHashKey != "" {
			req[i].ExplicitHashKey = &e.ExplicitHashKey
		}
	}
	return req
}

// checkNodeResults compares what aws-kinesis-agg made of agg's entries
// (one result per entry) with agg.kept.
func checkNodeResults(t *testing.T, agg aggregation, results []nodeResult) {
	t.Helper()
	k := 0
	for i, res := range results {
		e := agg.entries[i]
		if res.Error != nil {
			t.Fatalf("entry %d (%d records, %d bytes): aws-kinesis-agg: %s", i, e.Records, len(e.Data), *res.Error)
		}
		if len(res.UserRecords) != e.Records {
			t.Errorf("entry %d: aws-kinesis-agg found %d user records, Entry.Records says %d", i, len(res.UserRecords), e.Records)
		}
		// The aggregate must go to the shard of its first user record, as
		// the KPL and the Java aggregator send it.
		if k < len(agg.kept) {
			first := agg.kept[k]
			want, err1 := hashkey.Effective(first.PartitionKey, first.ExplicitHashKey)
			got, err2 := hashkey.Effective(e.PartitionKey, e.ExplicitHashKey)
			if err1 != nil || err2 != nil || got != want {
				t.Errorf("entry %d routes to hash key %v (pk %q, ehk %q), its first record to %v (pk %q, ehk %q)",
					i, got, e.PartitionKey, e.ExplicitHashKey, want, first.PartitionKey, first.ExplicitHashKey)
			}
		}
		quirk, hasIndex := hashKeyTable(t, e.Data)
		if len(hasIndex) != len(res.UserRecords) {
			t.Fatalf("entry %d: %d records in the protobuf, aws-kinesis-agg returned %d", i, len(hasIndex), len(res.UserRecords))
		}
		for sub, u := range res.UserRecords {
			if k >= len(agg.kept) {
				t.Fatalf("aws-kinesis-agg returned more user records than were aggregated (%d)", len(agg.kept))
			}
			w := agg.kept[k]
			if hasIndex[sub] != (w.ExplicitHashKey != "") {
				t.Errorf("record %d (entry %d/%d): has explicit_hash_key_index = %v, but its explicit hash key is %q",
					k, i, sub, hasIndex[sub], w.ExplicitHashKey)
			}
			wantEHK := w.ExplicitHashKey
			if !hasIndex[sub] {
				wantEHK = quirk // aws-kinesis-agg's mistake, see hashKeyTable
			}
			switch {
			case !bytes.Equal(u.Data, w.Data):
				t.Errorf("record %d (entry %d/%d): data %s, want %s", k, i, sub, abbrev(u.Data), abbrev(w.Data))
			case deref(u.PartitionKey) != w.PartitionKey:
				t.Errorf("record %d (entry %d/%d): partition key %q, want %q", k, i, sub, deref(u.PartitionKey), w.PartitionKey)
			case deref(u.ExplicitHashKey) != wantEHK:
				t.Errorf("record %d (entry %d/%d): explicit hash key %q, want %q", k, i, sub, deref(u.ExplicitHashKey), wantEHK)
			case u.SubSequenceNumber == nil || *u.SubSequenceNumber != sub:
				t.Errorf("record %d (entry %d/%d): sub-sequence number %v", k, i, sub, u.SubSequenceNumber)
			}
			k++
		}
	}
	if k != len(agg.kept) {
		t.Fatalf("aws-kinesis-agg returned %d user records, want %d", k, len(agg.kept))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type namedInput struct {
	name    string
	records []aggregate.UserRecord
}

// randomInputs returns seeded random record sets: keys from a pool with
// multi-byte and 256-character ones, explicit hash keys on about a third
// of the records, data from empty to several KiB.
func randomInputs() []namedInput {
	var out []namedInput
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 0x6b706c))
		pool := []string{"a", "caf\u00e9", "cafe\u0301", "\u6570\u636e", "\U0001f680", strings.Repeat("k", 256), strings.Repeat("\u9375", 256)}
		for range 20 + rng.IntN(40) {
			b := make([]byte, 1+rng.IntN(30))
			for i := range b {
				b[i] = byte('!' + rng.IntN(94))
			}
			pool = append(pool, string(b))
		}
		n := 1 + rng.IntN(400)
		recs := make([]aggregate.UserRecord, n)
		for i := range recs {
			r := aggregate.UserRecord{PartitionKey: pool[rng.IntN(len(pool))]}
			switch rng.IntN(6) {
			case 0:
				r.ExplicitHashKey = hashkey.Key{Hi: rng.Uint64(), Lo: rng.Uint64()}.String()
			case 1:
				r.ExplicitHashKey = []string{"0", hashkey.Max.String()}[rng.IntN(2)]
			}
			size := rng.IntN(200)
			if rng.IntN(20) == 0 {
				size = rng.IntN(8 << 10)
			}
			r.Data = make([]byte, size)
			for j := range r.Data {
				r.Data[j] = byte(rng.Uint32())
			}
			recs[i] = r
		}
		out = append(out, namedInput{fmt.Sprintf("random seed=%d", seed), recs})
	}
	return out
}

// TestNodeDeaggregatesOurAggregates builds aggregates with kcl's aggregate
// package from the vectors' inputs and from random ones, expands them with
// aws-kinesis-agg, and expects the user records back.
func TestNodeDeaggregatesOurAggregates(t *testing.T) {
	requireNode(t)
	var inputs []namedInput
	for _, v := range loadVectors(t) {
		recs := make([]aggregate.UserRecord, 0, len(v.UserRecords))
		for _, r := range v.inputs(t) {
			recs = append(recs, aggregate.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data})
		}
		inputs = append(inputs, namedInput{"vector " + v.Name, recs})
	}
	inputs = append(inputs, randomInputs()...)

	// Build everything first and run Node once: starting it costs more
	// than the decoding.
	bs := builders()
	aggs := make([][]aggregation, len(inputs))
	var req []nodeKinesisRecord
	for i, in := range inputs {
		for _, b := range bs {
			agg := b.build(t, in.records)
			aggs[i] = append(aggs[i], agg)
			req = append(req, nodeRequest(agg.entries)...)
		}
	}
	results := nodeDeaggregate(t, req)

	for i, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			for j, b := range bs {
				agg := aggs[i][j]
				mine := results[:len(agg.entries)]
				results = results[len(agg.entries):]
				t.Run(b.name, func(t *testing.T) {
					if len(agg.kept) == 0 {
						t.Log("no record fits an aggregate of this size")
					}
					checkNodeResults(t, agg, mine)
				})
			}
		})
	}
}
