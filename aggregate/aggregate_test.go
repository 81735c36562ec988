package aggregate

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
)

// expand deaggregates one aggregate, failing the test if it is not one.
func expand(t testing.TB, data []byte) []deaggregate.Record {
	t.Helper()
	var bad error
	d, err := deaggregate.New(deaggregate.WithErrorHandler(func(e *deaggregate.RecordError) { bad = e }))
	if err != nil {
		t.Fatal(err)
	}
	out := d.Append(nil, []types.Record{{Data: data}})
	if bad != nil {
		t.Fatalf("aggregate does not deaggregate: %v", bad)
	}
	for _, r := range out {
		if !r.Aggregated {
			t.Fatalf("record came out as not aggregated: %+v", r)
		}
	}
	return out
}

func userRecords(rs []deaggregate.Record) []UserRecord {
	out := make([]UserRecord, len(rs))
	for i, r := range rs {
		out[i] = UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
	}
	return out
}

func equalRecords(a, b []UserRecord) bool {
	return slices.EqualFunc(a, b, func(x, y UserRecord) bool {
		return x.PartitionKey == y.PartitionKey && x.ExplicitHashKey == y.ExplicitHashKey && bytes.Equal(x.Data, y.Data)
	})
}

func TestNewValidatesMaxSize(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"the default size is accepted", DefaultMaxSize, true},
		{"the smallest useful size is accepted", MinMaxSize, true},
		{"1 MiB is accepted", MaxSizeLimit, true},
		{"one byte below the smallest useful size is rejected", MinMaxSize - 1, false},
		{"one byte above 1 MiB is rejected", MaxSizeLimit + 1, false},
		{"zero is rejected", 0, false},
		{"a negative size is rejected", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(WithMaxSize(tt.n))
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidMaxSize)) || (a == nil) == tt.ok {
				t.Fatalf("New(WithMaxSize(%d)) = %v, %v", tt.n, a, err)
			}
		})
	}
}

func TestMinMaxSizeHoldsTheSmallestRecord(t *testing.T) {
	a, err := New(WithMaxSize(MinMaxSize))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Add(UserRecord{PartitionKey: "p"}); err != nil {
		t.Fatalf("the smallest record does not fit in MinMaxSize: %v", err)
	}
	if a.Size() != MinMaxSize {
		t.Fatalf("Size = %d, want %d", a.Size(), MinMaxSize)
	}
	if _, _, err := a.Add(UserRecord{PartitionKey: "pq"}); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("a two-byte partition key fits in MinMaxSize: %v", err)
	}
}

func TestAddRejectsInvalidRecords(t *testing.T) {
	tests := []struct {
		name string
		r    UserRecord
		want error
	}{
		{"an empty partition key is rejected", UserRecord{}, ErrInvalidPartitionKey},
		{"a partition key of 257 characters is rejected", UserRecord{PartitionKey: strings.Repeat("k", 257)}, ErrInvalidPartitionKey},
		{"a partition key of 257 multi-byte characters is rejected", UserRecord{PartitionKey: strings.Repeat("ж", 257)}, ErrInvalidPartitionKey},
		{"a partition key that is not UTF-8 is rejected", UserRecord{PartitionKey: "\xff"}, ErrInvalidPartitionKey},
		{"a negative explicit hash key is rejected", UserRecord{PartitionKey: "p", ExplicitHashKey: "-1"}, ErrInvalidExplicitHashKey},
		{"an explicit hash key of 2^128 is rejected", UserRecord{PartitionKey: "p", ExplicitHashKey: "340282366920938463463374607431768211456"}, ErrInvalidExplicitHashKey},
		{"an explicit hash key with a space is rejected", UserRecord{PartitionKey: "p", ExplicitHashKey: " 1"}, ErrInvalidExplicitHashKey},
		{"a record too large for any aggregate is rejected", UserRecord{PartitionKey: "p", Data: make([]byte, DefaultMaxSize)}, ErrRecordTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := New()
			if _, _, err := a.Add(UserRecord{PartitionKey: "first", Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			size := a.Size()
			full, ok, err := a.Add(tt.r)
			if !errors.Is(err, tt.want) || ok || full.Data != nil {
				t.Fatalf("Add = %+v, %v, %v; want error %v", full, ok, err, tt.want)
			}
			if a.Len() != 1 || a.Size() != size {
				t.Fatalf("a rejected Add changed the aggregator: Len %d, Size %d", a.Len(), a.Size())
			}
			if tt.want == ErrInvalidExplicitHashKey && !errors.Is(err, hashkey.ErrInvalid) {
				t.Fatalf("error %v does not wrap hashkey.ErrInvalid", err)
			}
			if _, err := Marshal([]UserRecord{{PartitionKey: "ok"}, tt.r}); tt.want != ErrRecordTooLarge && !errors.Is(err, tt.want) {
				t.Fatalf("Marshal error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPartitionKeyLengthCountsCharactersNotBytes(t *testing.T) {
	a, _ := New()
	for _, pk := range []string{"k", strings.Repeat("k", 256), strings.Repeat("ж", 256), strings.Repeat("🔑", 256)} {
		if _, _, err := a.Add(UserRecord{PartitionKey: pk}); err != nil {
			t.Fatalf("Add(%d bytes, %d characters): %v", len(pk), len([]rune(pk)), err)
		}
	}
}

func TestFlushOnEmptyReturnsNothing(t *testing.T) {
	a, _ := New()
	if e, ok := a.Flush(); ok || e.Data != nil || e.Records != 0 {
		t.Fatalf("Flush on empty = %+v, %v", e, ok)
	}
	if a.Len() != 0 || a.Size() != 0 {
		t.Fatalf("empty aggregator has Len %d, Size %d", a.Len(), a.Size())
	}
	if _, err := Marshal(nil); !errors.Is(err, ErrNoRecords) {
		t.Fatalf("Marshal(nil) error = %v", err)
	}
}

func TestEntryCarriesTheFirstRecordsKeys(t *testing.T) {
	tests := []struct {
		name     string
		first    UserRecord
		wantHash string
		wantEHK  string // the first user record's explicit hash key inside
	}{
		{"the partition key's MD5 routes an aggregate without explicit hash key", UserRecord{PartitionKey: "user-1"}, hashkey.FromPartitionKey("user-1").String(), ""},
		{"an explicit hash key routes the aggregate", UserRecord{PartitionKey: "user-1", ExplicitHashKey: "42"}, "42", "42"},
		{"leading zeros are dropped from an explicit hash key", UserRecord{PartitionKey: "user-1", ExplicitHashKey: "00042"}, "42", "42"},
		{"an explicit hash key of zero stays zero", UserRecord{PartitionKey: "user-1", ExplicitHashKey: "000"}, "0", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := New()
			for _, r := range []UserRecord{tt.first, {PartitionKey: "other", ExplicitHashKey: "7"}} {
				if _, _, err := a.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			e, ok := a.Flush()
			if !ok || e.PartitionKey != tt.first.PartitionKey || e.ExplicitHashKey != tt.wantHash || e.Records != 2 {
				t.Fatalf("Entry = %+v, want partition key %q and hash key %s", e, tt.first.PartitionKey, tt.wantHash)
			}
			got := expand(t, e.Data)
			if got[0].ExplicitHashKey != tt.wantEHK {
				t.Fatalf("first user record's explicit hash key = %q", got[0].ExplicitHashKey)
			}
		})
	}
}

func TestKeysAreStoredOnce(t *testing.T) {
	a, _ := New()
	var want []UserRecord
	for i := range 30 {
		r := UserRecord{PartitionKey: "pk-" + strconv.Itoa(i%3), Data: []byte{byte(i)}}
		if i%2 == 0 {
			r.ExplicitHashKey = strconv.Itoa(i % 4)
		}
		want = append(want, r)
		if _, _, err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := a.Flush()
	for _, key := range []string{"pk-0", "pk-1", "pk-2"} {
		if n := bytes.Count(e.Data, []byte(key)); n != 1 {
			t.Fatalf("partition key %q stored %d times", key, n)
		}
	}
	if got := userRecords(expand(t, e.Data)); !equalRecords(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Explicit hash keys "0" and "2" each appear once in their table: the
	// table entries are the only places where a quoted digit follows tag 0x12.
	for _, key := range []string{"0", "2"} {
		if n := bytes.Count(e.Data, []byte{0x12, 1, key[0]}); n != 1 {
			t.Fatalf("explicit hash key %q stored %d times", key, n)
		}
	}
}

func TestAddCopiesData(t *testing.T) {
	a, _ := New()
	buf := []byte("original")
	if _, _, err := a.Add(UserRecord{PartitionKey: "p", Data: buf}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	e, _ := a.Flush()
	if got := string(expand(t, e.Data)[0].Data); got != "original" {
		t.Fatalf("data = %q, want the value at Add time", got)
	}
}

func TestSizeIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, _ := New(WithMaxSize(MaxSizeLimit))
	var records []UserRecord
	for range 400 {
		u := UserRecord{PartitionKey: "pk-" + strconv.Itoa(r.IntN(300)), Data: make([]byte, r.IntN(300))}
		if r.IntN(2) == 0 { // enough distinct keys for two-byte table indexes
			u.ExplicitHashKey = strconv.FormatUint(r.Uint64()>>r.IntN(64), 10)
		}
		if _, ok, err := a.Add(u); err != nil || ok {
			t.Fatalf("Add = %v, %v", ok, err)
		}
		records = append(records, u)
		want, err := Marshal(records)
		if err != nil {
			t.Fatal(err)
		}
		if a.Size() != len(want) {
			t.Fatalf("after %d records Size = %d, encoded length %d", len(records), a.Size(), len(want))
		}
	}
	size := a.Size()
	e, _ := a.Flush()
	if len(e.Data) != size {
		t.Fatalf("flushed %d bytes, Size said %d", len(e.Data), size)
	}
}

func TestBiggestRecordThatFitsAlone(t *testing.T) {
	for _, max := range []int{MinMaxSize, 100, 150, 200, 1000, 16400, DefaultMaxSize, MaxSizeLimit} {
		for _, ehk := range []string{"", "170141183460469231731687303715884105728"} {
			t.Run(strconv.Itoa(max)+"/"+strconv.Itoa(len(ehk)), func(t *testing.T) {
				// The truth is the length of the actual encoding.
				fits := func(n int) bool {
					b, err := Marshal([]UserRecord{{PartitionKey: "p", ExplicitHashKey: ehk, Data: make([]byte, n)}})
					if err != nil {
						t.Fatal(err)
					}
					return len(b) <= max
				}
				n := max
				for n >= 0 && !fits(n) {
					n--
				}
				a, _ := New(WithMaxSize(max))
				if n >= 0 {
					if _, _, err := a.Add(UserRecord{PartitionKey: "p", ExplicitHashKey: ehk, Data: make([]byte, n)}); err != nil {
						t.Fatalf("%d bytes of data should fit in %d: %v", n, max, err)
					}
					if e, _ := a.Flush(); len(e.Data) > max {
						t.Fatalf("aggregate of %d bytes exceeds %d", len(e.Data), max)
					}
				}
				if _, _, err := a.Add(UserRecord{PartitionKey: "p", ExplicitHashKey: ehk, Data: make([]byte, n+1)}); !errors.Is(err, ErrRecordTooLarge) {
					t.Fatalf("%d bytes of data should not fit in %d: %v", n+1, max, err)
				}
				if a.Len() != 0 {
					t.Fatal("a rejected record was kept")
				}
			})
		}
	}
}

func TestAggregatesAreFullButNeverTooFull(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, max := range []int{MinMaxSize, 64, 200, 1024, DefaultMaxSize} {
		a, err := New(WithMaxSize(max))
		if err != nil {
			t.Fatal(err)
		}
		var pending, all []UserRecord
		var got []UserRecord
		check := func(e Entry) {
			if len(e.Data) > max {
				t.Fatalf("max %d: aggregate of %d bytes", max, len(e.Data))
			}
			out := userRecords(expand(t, e.Data))
			if e.Records != len(out) || !equalRecords(out, pending[:len(out)]) {
				t.Fatalf("max %d: aggregate holds %+v, want %+v", max, out, pending[:len(out)])
			}
			got = append(got, out...)
			pending = pending[len(out):]
		}
		for range 3000 {
			u := UserRecord{PartitionKey: strings.Repeat("k", 1+r.IntN(5)), Data: make([]byte, r.IntN(max/4+1))}
			if r.IntN(3) == 0 {
				u.ExplicitHashKey = strconv.Itoa(r.IntN(1000))
			}
			full, ok, err := a.Add(u)
			if errors.Is(err, ErrRecordTooLarge) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				// The aggregate was flushed only because u did not fit.
				with, _ := Marshal(append(slices.Clone(pending), u))
				if len(with) <= max {
					t.Fatalf("max %d: flushed a %d-byte aggregate that had room for the next record", max, len(full.Data))
				}
				check(full)
			}
			pending = append(pending, u)
			all = append(all, u)
			if a.Size() > max {
				t.Fatalf("max %d: pending Size %d", max, a.Size())
			}
		}
		if e, ok := a.Flush(); ok {
			check(e)
		}
		if !equalRecords(got, all) || len(pending) != 0 {
			t.Fatalf("max %d: records lost or reordered", max)
		}
	}
}

func TestMarshalRoundTrips(t *testing.T) {
	in := []UserRecord{
		{PartitionKey: "ключ", Data: []byte("unicode key")},
		{PartitionKey: "p", ExplicitHashKey: hashkey.Max.String(), Data: nil},
		{PartitionKey: "p", ExplicitHashKey: "0", Data: bytes.Repeat([]byte{0xff}, 300)},
		{PartitionKey: strings.Repeat("🔑", 256), Data: []byte{}},
	}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := userRecords(expand(t, b)); !equalRecords(got, in) {
		t.Fatalf("got %+v\nwant %+v", got, in)
	}
}

func BenchmarkAggregator(b *testing.B) {
	for _, c := range []struct {
		name     string
		n, size  int
		distinct int
	}{
		{"10x100B", 10, 100, 10},
		{"100x100B", 100, 100, 100},
		{"1x1KiB", 1, 1024, 1},
		{"500x100B-one-key", 500, 100, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			records := make([]UserRecord, c.n)
			for i := range records {
				records[i] = UserRecord{PartitionKey: "partition-key-" + strconv.Itoa(i%c.distinct), Data: make([]byte, c.size)}
			}
			a, err := New(WithMaxSize(MaxSizeLimit))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(c.n * c.size))
			b.ReportAllocs()
			aggregates := 0
			for b.Loop() {
				for _, r := range records {
					if _, _, err := a.Add(r); err != nil {
						b.Fatal(err)
					}
				}
				if _, ok := a.Flush(); ok {
					aggregates++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(aggregates), "ns/aggregate")
		})
	}
}
