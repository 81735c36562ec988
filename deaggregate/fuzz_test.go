package deaggregate

import (
	"crypto/md5"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/hashkey"
)

// FuzzDeaggregate feeds arbitrary bytes to Append as a record's data, with
// and without a hash range filter. With framed set, the bytes are wrapped in
// the magic and a matching MD5 digest first, so that mutations reach the
// protobuf decoder instead of failing the checksum. Append never panics, and
// the result is always
// one of: the record passed through unchanged (plain, or malformed and
// reported), nothing (filtered and reported), or user records whose data are
// capacity-limited sub-slices of the input. User records of a valid aggregate
// survive being aggregated again with aggregate.Marshal and deaggregated.
//
// testdata/fuzz/FuzzDeaggregate holds a seed for each kind of malformed
// aggregate.
func FuzzDeaggregate(f *testing.F) {
	valid, _ := aggregate.Marshal([]aggregate.UserRecord{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "12345", Data: []byte("two")},
		{PartitionKey: "a", Data: nil},
	})
	for _, d := range [][]byte{
		valid,
		[]byte("plain"),
		magic[:],
		frame(cat(pkEntry("a"), good)),
		frame(cat(pkEntry("a"), ehkEntry("1"), record(pkIndex(0), ehkIndex(0), data("x"), tag(tagKey("k"), tagValue("v"))))),
		frame(cat(pkEntry("a"), record(pkIndex(1), data("x")))),
		frame(cat(pkEntry("a"), ehkEntry("-1"), record(pkIndex(0), ehkIndex(0), data("x")))),
		frame(cat(varintField(7, 1), pkEntry("a"), good)),
		frame(nil),
	} {
		f.Add(d, false, false, uint64(0), uint64(math.MaxUint64))
		f.Add(d, false, true, uint64(1<<62), uint64(1<<63))
		if hasMagic(d) && len(d) >= minAggregateLen {
			msg := d[len(magic) : len(d)-md5.Size]
			f.Add(msg, true, false, uint64(0), uint64(math.MaxUint64))
			f.Add(msg, true, true, uint64(1<<62), uint64(1<<63))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, framed, filter bool, lo, hi uint64) {
		if framed {
			in = frame(in)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		shard := hashkey.Range{Start: hashkey.Key{Hi: lo}, End: hashkey.Key{Hi: hi, Lo: math.MaxUint64}}
		var c collector
		opts := []Option{WithErrorHandler(c.handle)}
		if filter {
			opts = append(opts, WithHashRange(shard.Start.String(), shard.End.String()))
		}
		d, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		rec := kinesisRecord("1", in)
		out := d.Append(nil, []types.Record{rec})
		s := d.Stats()
		if s.Records != 1 || s.UserRecords != uint64(len(out)) {
			t.Fatalf("Stats = %+v for %d records out", s, len(out))
		}
		if n := countRecords([]types.Record{rec}); n < len(out) {
			t.Fatalf("countRecords = %d for %d records out: Append would grow dst twice", n, len(out))
		}
		passedThrough := len(out) == 1 && !out[0].Aggregated && same(out[0].Data, in) && out[0].PartitionKey == "outer-1"
		switch {
		case !hasMagic(in):
			if !passedThrough || len(c.errs) != 0 || s != (Stats{Records: 1, UserRecords: 1}) {
				t.Fatalf("plain record: out %+v, errors %v, stats %+v", out, c.errs, s)
			}
			return
		case s.Malformed == 1:
			if !passedThrough || len(c.errs) != 1 || !errors.Is(c.errs[0], ErrMalformed) || s.Aggregates != 0 {
				t.Fatalf("malformed record: out %+v, errors %v, stats %+v", out, c.errs, s)
			}
			return
		case s.Filtered == 1:
			if !filter || len(out) != 0 || len(c.errs) != 1 || !errors.Is(c.errs[0], ErrOutOfRange) || s.Aggregates != 1 {
				t.Fatalf("filtered record: out %+v, errors %v, stats %+v", out, c.errs, s)
			}
			return
		}
		if s.Aggregates != 1 || len(c.errs) != 0 {
			t.Fatalf("aggregate: errors %v, stats %+v", c.errs, s)
		}
		checkAggregated(t, out, rec)
		for _, r := range out {
			k, err := hashkey.Effective(r.PartitionKey, r.ExplicitHashKey)
			if err != nil {
				t.Fatalf("user record with an invalid explicit hash key %q: %v", r.ExplicitHashKey, err)
			}
			if filter && !shard.Contains(k) {
				t.Fatalf("user record with hash key %s passed the filter %+v", k, shard)
			}
		}
		if filter {
			// The filter only ever removes whole aggregates.
			if unfiltered := Records([]types.Record{rec}); !slices.Equal(users(unfiltered), users(out)) {
				t.Fatalf("filter changed a kept aggregate: %q vs %q", users(out), users(unfiltered))
			}
		}
		if len(out) == 0 {
			return
		}
		again := make([]aggregate.UserRecord, len(out))
		for i, r := range out {
			again[i] = aggregate.UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
		}
		b, err := aggregate.Marshal(again)
		if err != nil {
			// The aggregator is stricter about partition keys than KCL.
			if !errors.Is(err, aggregate.ErrInvalidPartitionKey) {
				t.Fatalf("re-aggregating: %v", err)
			}
			return
		}
		round := Records([]types.Record{kinesisRecord("2", b)})
		if len(round) != len(out) {
			t.Fatalf("round trip gave %d records, want %d", len(round), len(out))
		}
		for i := range out {
			a, b := out[i], round[i]
			ka, _ := hashkey.Effective(a.PartitionKey, a.ExplicitHashKey)
			kb, _ := hashkey.Effective(b.PartitionKey, b.ExplicitHashKey)
			if a.PartitionKey != b.PartitionKey || string(a.Data) != string(b.Data) || ka != kb ||
				(a.ExplicitHashKey == "") != (b.ExplicitHashKey == "") || !b.Aggregated || b.SubSequenceNumber != uint64(i) {
				t.Fatalf("round trip changed user record %d: %+v became %+v", i, a, b)
			}
		}
	})
}

// TestSeedCorpusCoversEveryOutcome checks that each committed seed in
// testdata/fuzz/FuzzDeaggregate does what its name says, so the corpus keeps
// covering every kind of malformed aggregate.
func TestSeedCorpusCoversEveryOutcome(t *testing.T) {
	want := map[string]faultKind{
		"plain":                                 faultNone,
		"malformed-too-short":                   faultTooShort,
		"malformed-checksum":                    faultChecksum,
		"valid-many-keys":                       faultNone,
		"valid-tables-after-records":            faultNone,
		"valid-unknown-fields":                  faultNone,
		"valid-zero-records":                    faultNone,
		"filtered-explicit-hash-key":            faultOutOfRange,
		"filtered-partition-key-md5":            faultOutOfRange,
		"malformed-syntax":                      faultSyntax,
		"malformed-wire-type":                   faultWireType,
		"malformed-missing-partition-key-index": faultMissingPartitionKeyIndex,
		"malformed-missing-data":                faultMissingData,
		"malformed-missing-tag-key":             faultMissingTagKey,
		"malformed-partition-key-index":         faultPartitionKeyIndex,
		"malformed-explicit-hash-key-index":     faultExplicitHashKeyIndex,
		"malformed-explicit-hash-key":           faultExplicitHashKey,
	}
	// Seeds of a message the fuzz target frames also come complete.
	names := slices.Collect(maps.Keys(want))
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzDeaggregate", "raw-"+name)); err == nil {
			want["raw-"+name] = want[name]
		}
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDeaggregate")
	for name, kind := range want {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(b), "\n")
			if len(lines) < 6 || lines[0] != "go test fuzz v1" {
				t.Fatalf("not a fuzz corpus file: %q", b)
			}
			in, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatal(err)
			}
			if lines[2] == "bool(true)" {
				in = string(frame([]byte(in)))
			}
			filter := lines[3] == "bool(true)"
			lo, err1 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[4], "uint64("), ")"), 10, 64)
			hi, err2 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[5], "uint64("), ")"), 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			var c collector
			opts := []Option{WithErrorHandler(c.handle)}
			if filter {
				opts = append(opts, WithHashRange(hashkey.Key{Hi: lo}.String(), hashkey.Key{Hi: hi, Lo: math.MaxUint64}.String()))
			}
			d, _ := New(opts...)
			d.Append(nil, []types.Record{kinesisRecord("1", []byte(in))})
			if kind == faultNone {
				if len(c.errs) != 0 {
					t.Fatalf("errors %v, want none", c.errs)
				}
				return
			}
			if len(c.errs) != 1 || !errors.Is(c.errs[0], kind) {
				t.Fatalf("errors %v, want %q", c.errs, kind)
			}
		})
	}
}
