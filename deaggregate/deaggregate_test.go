package deaggregate

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/hashkey"
)

// user is the part of a Record that an aggregate determines.
type user struct {
	pk, ehk, data string
}

func users(rs []Record) []user {
	out := make([]user, len(rs))
	for i, r := range rs {
		out[i] = user{r.PartitionKey, r.ExplicitHashKey, string(r.Data)}
	}
	return out
}

// checkAggregated checks what every user record of one aggregate inherits.
func checkAggregated(t *testing.T, rs []Record, in types.Record) {
	t.Helper()
	for i, r := range rs {
		if !r.Aggregated || r.SubSequenceNumber != uint64(i) || r.SequenceNumber != aws.ToString(in.SequenceNumber) ||
			!r.ApproximateArrivalTimestamp.Equal(aws.ToTime(in.ApproximateArrivalTimestamp)) || r.EncryptionType != in.EncryptionType {
			t.Fatalf("user record %d = %+v, does not inherit from %+v", i, r, in)
		}
		if !within(r.Data, in.Data) || cap(r.Data) != len(r.Data) {
			t.Fatalf("user record %d data is not a capacity-limited sub-slice of the input", i)
		}
	}
}

func manyKeys(n int) ([]byte, []user) {
	var msg []byte
	var want []user
	for i := range n {
		msg = append(msg, pkEntry("pk-"+strconv.Itoa(i))...)
		msg = append(msg, ehkEntry(strconv.Itoa(i*1000))...)
	}
	for i := range n {
		j := (i * 7) % n
		msg = append(msg, record(pkIndex(uint64(j)), ehkIndex(uint64(n-1-j)), data("d"+strconv.Itoa(i)))...)
		want = append(want, user{"pk-" + strconv.Itoa(j), strconv.Itoa((n - 1 - j) * 1000), "d" + strconv.Itoa(i)})
	}
	return msg, want
}

func TestValidAggregates(t *testing.T) {
	many, manyWant := manyKeys(100)
	unknown := cat(
		varintField(20, 1), []byte{0xa5, 0x01, 1, 2, 3, 4}, []byte{0xa1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8},
		protowire.AppendTag(nil, 21, protowire.StartGroupType), varintField(1, 5), bytesField(2, []byte("g")),
		protowire.AppendTag(nil, 21, protowire.EndGroupType), bytesField(22, []byte("unknown")),
	)
	tests := []struct {
		name string
		msg  []byte
		want []user
	}{
		{"one user record comes out with its keys and data", cat(pkEntry("a"), record(pkIndex(0), data("hello"))),
			[]user{{"a", "", "hello"}}},
		{"records share a partition key through the table", cat(pkEntry("a"), pkEntry("b"), record(pkIndex(1), data("1")), record(pkIndex(0), data("2")), record(pkIndex(1), data("3"))),
			[]user{{"b", "", "1"}, {"a", "", "2"}, {"b", "", "3"}}},
		{"explicit hash keys come from their table", cat(pkEntry("a"), ehkEntry("0"), ehkEntry(hashkey.Max.String()), record(pkIndex(0), ehkIndex(1), data("1")), record(pkIndex(0), data("2")), record(pkIndex(0), ehkIndex(0), data("3"))),
			[]user{{"a", hashkey.Max.String(), "1"}, {"a", "", "2"}, {"a", "0", "3"}}},
		{"more keys than fit on the stack come out right", many, manyWant},
		{"unicode partition keys are preserved", cat(pkEntry("ключ"), pkEntry("🔑"), record(pkIndex(0), data("1")), record(pkIndex(1), data("2"))),
			[]user{{"ключ", "", "1"}, {"🔑", "", "2"}}},
		{"invalid UTF-8 in a partition key is kept byte for byte", cat(pkEntry("\xff\xfe"), record(pkIndex(0), data("1"))),
			[]user{{"\xff\xfe", "", "1"}}},
		{"an empty partition key is passed on as KCL would", cat(pkEntry(""), record(pkIndex(0), data("1"))),
			[]user{{"", "", "1"}}},
		{"empty data yields an empty user record", cat(pkEntry("a"), record(pkIndex(0), data("")), record(pkIndex(0), data("x"))),
			[]user{{"a", "", ""}, {"a", "", "x"}}},
		{"tables after the records are found", cat(record(pkIndex(1), ehkIndex(0), data("1")), pkEntry("a"), ehkEntry("7"), pkEntry("b")),
			[]user{{"b", "7", "1"}}},
		{"tables interleaved with records are found", cat(pkEntry("a"), record(pkIndex(1), data("1")), ehkEntry("7"), pkEntry("b"), record(pkIndex(0), ehkIndex(0), data("2"))),
			[]user{{"b", "", "1"}, {"a", "7", "2"}}},
		{"unknown fields of every wire type are skipped everywhere", cat(unknown, pkEntry("a"), unknown, record(unknown, pkIndex(0), unknown, data("1"), tag(unknown, tagKey("k"), unknown), unknown), unknown),
			[]user{{"a", "", "1"}}},
		{"tags are validated and skipped", cat(pkEntry("a"), record(pkIndex(0), data("1"), tag(tagKey("k"), tagValue("v")), tag(tagKey("k2")))),
			[]user{{"a", "", "1"}}},
		{"a repeated scalar field keeps its last value as protobuf does", cat(pkEntry("a"), pkEntry("b"), record(pkIndex(0), data("old"), pkIndex(1), data("new"))),
			[]user{{"b", "", "new"}}},
		{"a repeated explicit hash key index keeps its last value", cat(pkEntry("a"), ehkEntry("1"), ehkEntry("2"), record(pkIndex(0), ehkIndex(0), ehkIndex(1), data("x"))),
			[]user{{"a", "2", "x"}}},
		{"an unreferenced invalid explicit hash key is ignored as KCL ignores it", cat(pkEntry("a"), ehkEntry("not a number"), record(pkIndex(0), data("x"))),
			[]user{{"a", "", "x"}}},
		{"an unreferenced table entry past the used ones is fine", cat(pkEntry("a"), pkEntry("b"), record(pkIndex(0), data("x"))),
			[]user{{"a", "", "x"}}},
		{"leading zeros in an explicit hash key are accepted and kept", cat(pkEntry("a"), ehkEntry("007"), record(pkIndex(0), ehkIndex(0), data("x"))),
			[]user{{"a", "007", "x"}}},
		{"an aggregate without user records yields nothing, as in KCL", cat(pkEntry("a"), ehkEntry("1")), nil},
		{"an aggregate of only unknown fields yields nothing", unknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, err := New(WithErrorHandler(c.handle))
			if err != nil {
				t.Fatal(err)
			}
			in := kinesisRecord("7", frame(tt.msg))
			out := d.Append(nil, []types.Record{in})
			if len(c.errs) != 0 {
				t.Fatalf("unexpected reports: %v", c.errs)
			}
			if got := users(out); !slices.Equal(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			checkAggregated(t, out, in)
			if s := d.Stats(); s != (Stats{Records: 1, Aggregates: 1, UserRecords: uint64(len(tt.want))}) {
				t.Fatalf("Stats = %+v", s)
			}
		})
	}
}

func TestPlainRecordsAreNotAggregates(t *testing.T) {
	nearly := frame(cat(pkEntry("a"), record(pkIndex(0), data("x"))))
	nearly[0] = 0xF4
	tests := []struct {
		name string
		data []byte
	}{
		{"nil data is a plain record", nil},
		{"empty data is a plain record", []byte{}},
		{"data shorter than the magic is a plain record", magic[:3]},
		{"text is a plain record", []byte("hello, world, this is a fairly long plain record")},
		{"an aggregate with one magic byte changed is a plain record", nearly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, _ := New(WithErrorHandler(c.handle), WithHashRange("0", "0"))
			in := kinesisRecord("3", tt.data)
			out := d.Append(nil, []types.Record{in})
			if len(out) != 1 || !same(out[0].Data, tt.data) || out[0].Aggregated || out[0].PartitionKey != "outer-3" {
				t.Fatalf("Append = %+v, want the record unchanged", out)
			}
			if len(c.errs) != 0 {
				t.Fatalf("plain record reported: %v", c.errs)
			}
			if s := d.Stats(); s != (Stats{Records: 1, UserRecords: 1}) {
				t.Fatalf("Stats = %+v", s)
			}
		})
	}
}

func TestPlainRecordWithoutOptionalFields(t *testing.T) {
	out := Records([]types.Record{{Data: []byte("x")}})
	if len(out) != 1 || out[0].SequenceNumber != "" || out[0].PartitionKey != "" || !out[0].ApproximateArrivalTimestamp.IsZero() {
		t.Fatalf("Records = %+v", out)
	}
}

func TestHashRangeFilter(t *testing.T) {
	pkHash := hashkey.FromPartitionKey("user-1")
	below := pkHash
	below.Lo-- // user-1's hash does not end in 0
	above := pkHash
	above.Lo++
	tests := []struct {
		name       string
		start, end string
		msg        []byte
		kept       bool
	}{
		{"explicit hash keys inside the range are kept", "100", "200", cat(pkEntry("a"), ehkEntry("150"), ehkEntry("160"), record(pkIndex(0), ehkIndex(0), data("1")), record(pkIndex(0), ehkIndex(1), data("2"))), true},
		{"the start of the range is inclusive", "100", "200", cat(pkEntry("a"), ehkEntry("100"), record(pkIndex(0), ehkIndex(0), data("1"))), true},
		{"the end of the range is inclusive", "100", "200", cat(pkEntry("a"), ehkEntry("200"), record(pkIndex(0), ehkIndex(0), data("1"))), true},
		{"one below the start drops the aggregate", "100", "200", cat(pkEntry("a"), ehkEntry("99"), record(pkIndex(0), ehkIndex(0), data("1"))), false},
		{"one above the end drops the aggregate", "100", "200", cat(pkEntry("a"), ehkEntry("201"), record(pkIndex(0), ehkIndex(0), data("1"))), false},
		{"one outsider among insiders drops the whole aggregate", "100", "200", cat(pkEntry("a"), ehkEntry("150"), ehkEntry("250"), record(pkIndex(0), ehkIndex(0), data("1")), record(pkIndex(0), ehkIndex(0), data("2")), record(pkIndex(0), ehkIndex(1), data("3"))), false},
		{"an outsider first drops the whole aggregate", "100", "200", cat(pkEntry("a"), ehkEntry("150"), ehkEntry("250"), record(pkIndex(0), ehkIndex(1), data("1")), record(pkIndex(0), ehkIndex(0), data("2"))), false},
		{"the partition key's MD5 is used without an explicit hash key", pkHash.String(), pkHash.String(), cat(pkEntry("user-1"), record(pkIndex(0), data("1"))), true},
		{"a range just above the MD5 drops the aggregate", above.String(), hashkey.Max.String(), cat(pkEntry("user-1"), record(pkIndex(0), data("1"))), false},
		{"a range just below the MD5 drops the aggregate", "0", below.String(), cat(pkEntry("user-1"), record(pkIndex(0), data("1"))), false},
		{"an explicit hash key inside wins over a partition key outside", "0", "10", cat(pkEntry("user-1"), ehkEntry("5"), record(pkIndex(0), ehkIndex(0), data("1"))), true},
		{"an explicit hash key outside loses to nothing", pkHash.String(), pkHash.String(), cat(pkEntry("user-1"), ehkEntry("5"), record(pkIndex(0), ehkIndex(0), data("1"))), false},
		{"the whole key space keeps everything", "0", hashkey.Max.String(), cat(pkEntry("user-1"), ehkEntry(hashkey.Max.String()), ehkEntry("0"), record(pkIndex(0), ehkIndex(0), data("1")), record(pkIndex(0), ehkIndex(1), data("2")), record(pkIndex(0), data("3"))), true},
		{"an aggregate without user records is not filtered", "0", "0", cat(pkEntry("user-1")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, err := New(WithHashRange(tt.start, tt.end), WithErrorHandler(c.handle))
			if err != nil {
				t.Fatal(err)
			}
			in := kinesisRecord("5", frame(tt.msg))
			out := d.Append(nil, []types.Record{in})
			unfiltered := Records([]types.Record{in})
			if tt.kept {
				if len(c.errs) != 0 || !slices.Equal(users(out), users(unfiltered)) {
					t.Fatalf("Append = %v, errors %v; want %v kept", users(out), c.errs, users(unfiltered))
				}
				if s := d.Stats(); s.Filtered != 0 || s.Aggregates != 1 {
					t.Fatalf("Stats = %+v", s)
				}
				return
			}
			if len(out) != 0 {
				t.Fatalf("Append = %v, want the aggregate dropped", users(out))
			}
			if len(c.errs) != 1 || !errors.Is(c.errs[0], ErrOutOfRange) || !errors.Is(c.errs[0], faultOutOfRange) || c.errs[0].SequenceNumber != "5" {
				t.Fatalf("errors = %v, want one ErrOutOfRange", c.errs)
			}
			if s := d.Stats(); s != (Stats{Records: 1, Aggregates: 1, Filtered: 1}) {
				t.Fatalf("Stats = %+v", s)
			}
		})
	}
}

func TestTheFirstFaultInRecordOrderDecides(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"an outsider before a bad index is filtered, as KCL stops at the outsider", cat(pkEntry("a"), ehkEntry("20"), record(pkIndex(0), ehkIndex(0), data("1")), record(pkIndex(3), data("2"))), ErrOutOfRange},
		{"a bad index before an outsider is malformed", cat(pkEntry("a"), ehkEntry("20"), record(pkIndex(3), data("2")), record(pkIndex(0), ehkIndex(0), data("1"))), ErrMalformed},
		{"an unparsable record after an outsider is still malformed, because the top level is checked first", cat(pkEntry("a"), ehkEntry("20"), record(pkIndex(0), ehkIndex(0), data("1")), []byte{0x1a, 0x05}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			d, _ := New(WithHashRange("0", "10"), WithErrorHandler(c.handle))
			out := d.Append(nil, []types.Record{kinesisRecord("1", frame(tt.msg))})
			if len(c.errs) != 1 || !errors.Is(c.errs[0], tt.want) {
				t.Fatalf("errors = %v, want one wrapping %v", c.errs, tt.want)
			}
			if wantLen := map[error]int{ErrOutOfRange: 0, ErrMalformed: 1}[tt.want]; len(out) != wantLen {
				t.Fatalf("Append returned %d records, want %d", len(out), wantLen)
			}
		})
	}
}

func TestNewValidatesTheHashRange(t *testing.T) {
	tests := []struct {
		name       string
		start, end string
		want       error
	}{
		{"a start above the end is rejected", "10", "9", hashkey.ErrInvalidRange},
		{"a non-numeric start is rejected", "zero", "9", hashkey.ErrInvalid},
		{"an end beyond 2^128-1 is rejected", "0", "340282366920938463463374607431768211456", hashkey.ErrInvalid},
		{"an empty end is rejected", "0", "", hashkey.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(WithHashRange(tt.start, tt.end))
			if d != nil || !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, %v; want error %v", d, err, tt.want)
			}
		})
	}
}

func TestWithKeyRangeFiltersAsWithHashRange(t *testing.T) {
	agg := func(pk string) []byte {
		b, err := aggregate.Marshal([]aggregate.UserRecord{{PartitionKey: pk, Data: []byte(pk)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := hashkey.Range{Start: hashkey.FromPartitionKey("in"), End: hashkey.FromPartitionKey("in")}
	in := []types.Record{kinesisRecord("1", agg("in")), kinesisRecord("2", agg("out")), kinesisRecord("3", []byte("plain"))}
	var parsed, typed collector
	dp, err := New(WithHashRange(r.Start.String(), r.End.String()), WithErrorHandler(parsed.handle))
	if err != nil {
		t.Fatal(err)
	}
	dt, err := New(WithKeyRange(r), WithErrorHandler(typed.handle))
	if err != nil {
		t.Fatal(err)
	}
	want, got := users(dp.Append(nil, in)), users(dt.Append(nil, in))
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Fatalf("WithKeyRange kept %v, WithHashRange %v (want the outsider dropped by both)", got, want)
	}
	if len(typed.errs) != 1 || !errors.Is(typed.errs[0], ErrOutOfRange) || dt.Stats() != dp.Stats() {
		t.Fatalf("WithKeyRange: errors %v, stats %+v; WithHashRange: stats %+v", typed.errs, dt.Stats(), dp.Stats())
	}
	// The later of the two options wins.
	if d, err := New(WithKeyRange(hashkey.Range{Start: hashkey.Max}), WithHashRange("0", "1")); err != nil || d == nil {
		t.Errorf("WithHashRange after an invalid WithKeyRange: %v", err)
	}
	if d, err := New(WithHashRange("1", "0"), WithKeyRange(r)); err != nil || d == nil {
		t.Errorf("WithKeyRange after an invalid WithHashRange: %v", err)
	}
}

func TestWithKeyRangeRejectsAStartAboveTheEnd(t *testing.T) {
	d, err := New(WithKeyRange(hashkey.Range{Start: hashkey.Max}))
	if d != nil || !errors.Is(err, hashkey.ErrInvalidRange) {
		t.Fatalf("New = %v, %v; want an error wrapping hashkey.ErrInvalidRange", d, err)
	}
}

func TestMixedBatchIsolatesBadRecords(t *testing.T) {
	agg := func(pk string, n int) []byte {
		rs := make([]aggregate.UserRecord, n)
		for i := range rs {
			rs[i] = aggregate.UserRecord{PartitionKey: pk, Data: []byte(pk + strconv.Itoa(i))}
		}
		b, err := aggregate.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkIn, pkOut := "in", "out"
	shard := hashkey.Range{Start: hashkey.FromPartitionKey(pkIn), End: hashkey.FromPartitionKey(pkIn)}
	bad := agg(pkIn, 2)
	bad[len(bad)-1] ^= 0xff
	in := []types.Record{
		kinesisRecord("1", []byte("plain one")),
		kinesisRecord("2", agg(pkIn, 3)),
		kinesisRecord("3", bad),
		kinesisRecord("4", agg(pkOut, 2)),
		kinesisRecord("5", agg(pkIn, 1)),
		kinesisRecord("6", []byte("plain two")),
	}
	var c collector
	d, err := New(WithHashRange(shard.Start.String(), shard.End.String()), WithErrorHandler(c.handle))
	if err != nil {
		t.Fatal(err)
	}
	out := d.Append(nil, in)
	type id struct {
		seq  string
		sub  uint64
		data string
		agg  bool
	}
	var got []id
	for _, r := range out {
		got = append(got, id{r.SequenceNumber, r.SubSequenceNumber, string(r.Data), r.Aggregated})
	}
	want := []id{
		{"1", 0, "plain one", false},
		{"2", 0, "in0", true}, {"2", 1, "in1", true}, {"2", 2, "in2", true},
		{"3", 0, string(bad), false},
		{"5", 0, "in0", true},
		{"6", 0, "plain two", false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if len(c.errs) != 2 || c.errs[0].SequenceNumber != "3" || !errors.Is(c.errs[0], ErrMalformed) ||
		c.errs[1].SequenceNumber != "4" || !errors.Is(c.errs[1], ErrOutOfRange) {
		t.Fatalf("errors = %v", c.errs)
	}
	if s := d.Stats(); s != (Stats{Records: 6, Aggregates: 3, UserRecords: 7, Malformed: 1, Filtered: 1}) {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestUserRecordDataAliasesTheInput(t *testing.T) {
	b, err := aggregate.Marshal([]aggregate.UserRecord{
		{PartitionKey: "a", Data: []byte("first")},
		{PartitionKey: "b", Data: []byte("second")},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := kinesisRecord("1", b)
	out := Records([]types.Record{in})
	checkAggregated(t, out, in)
	// Writing through the input shows through the user record: no copy.
	i := bytes.Index(b, []byte("second"))
	b[i] = 'S'
	if string(out[1].Data) != "Second" {
		t.Fatalf("user record data = %q after changing the input, want a view of it", out[1].Data)
	}
	// Appending to a user record's data cannot overwrite its neighbours.
	_ = append(out[0].Data, "XXXXXXXX"...)
	if string(out[1].Data) != "Second" {
		t.Fatal("appending to one user record's data overwrote the next")
	}
}

func TestAppendKeepsExistingElements(t *testing.T) {
	b, _ := aggregate.Marshal([]aggregate.UserRecord{{PartitionKey: "a", Data: []byte("x")}})
	dst := make([]Record, 1, 10)
	dst[0].PartitionKey = "keep"
	out := Records(nil)
	if len(out) != 0 {
		t.Fatalf("Records(nil) = %v", out)
	}
	d, _ := New()
	out = d.Append(dst, []types.Record{kinesisRecord("1", b), kinesisRecord("2", b)})
	if len(out) != 3 || out[0].PartitionKey != "keep" || &out[0] != &dst[0] {
		t.Fatalf("Append = %+v, want the existing element kept in place", out)
	}
}

func TestAppendIsSafeForConcurrentUse(t *testing.T) {
	var in []types.Record
	var want []user
	for i := range 20 {
		rs := []aggregate.UserRecord{}
		for j := range 1 + i%5 {
			k := fmt.Sprintf("pk-%d-%d", i, j)
			rs = append(rs, aggregate.UserRecord{PartitionKey: k, Data: []byte(k)})
			want = append(want, user{k, "", k})
		}
		b, _ := aggregate.Marshal(rs)
		in = append(in, kinesisRecord(strconv.Itoa(i), b))
	}
	var mu sync.Mutex
	reported := 0
	d, _ := New(WithHashRange("0", hashkey.Max.String()), WithErrorHandler(func(*RecordError) { mu.Lock(); reported++; mu.Unlock() }))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var dst []Record
			for range 50 {
				dst = d.Append(dst[:0], in)
				if got := users(dst); !slices.Equal(got, want) {
					t.Errorf("concurrent Append = %v", got)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := d.Stats(); s.Records != 8*50*20 || s.Aggregates != s.Records || s.UserRecords != uint64(8*50*len(want)) || reported != 0 {
		t.Fatalf("Stats = %+v, reported %d", s, reported)
	}
}

func TestRoundTripRandomRecords(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	runes := []rune("abcxyz09-_/ éßж語🔑")
	randString := func(n int) string {
		s := make([]rune, n)
		for i := range s {
			s[i] = runes[r.IntN(len(runes))]
		}
		return string(s)
	}
	for iter := range 300 {
		n := 1 + r.IntN(60)
		pks := make([]string, 1+r.IntN(n))
		for i := range pks {
			pks[i] = randString(1 + r.IntN(aggregate.MaxPartitionKeyLen))
		}
		var rs []aggregate.UserRecord
		var want []user
		for range n {
			u := aggregate.UserRecord{PartitionKey: pks[r.IntN(len(pks))], Data: []byte(randString(r.IntN(200)))}
			if r.IntN(3) == 0 {
				u.ExplicitHashKey = hashkey.Key{Hi: r.Uint64() >> r.IntN(64), Lo: r.Uint64()}.String()
			}
			rs = append(rs, u)
			want = append(want, user{u.PartitionKey, u.ExplicitHashKey, string(u.Data)})
		}
		b, err := aggregate.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		in := types.Record{Data: b, SequenceNumber: aws.String(strconv.Itoa(iter)), ApproximateArrivalTimestamp: aws.Time(time.Unix(int64(iter), 0))}
		out := Records([]types.Record{in})
		if got := users(out); !slices.Equal(got, want) {
			t.Fatalf("iteration %d: round trip changed the records\ngot  %q\nwant %q", iter, got, want)
		}
		checkAggregated(t, out, in)
	}
}

func TestAllocationsPerAggregate(t *testing.T) {
	tests := []struct {
		name    string
		records int
		keys    int
		limit   float64
		opts    []Option
	}{
		{"a small aggregate costs one allocation", 10, 10, 1, nil},
		{"a small aggregate with the filter costs one allocation", 10, 10, 1, []Option{WithHashRange("0", almostMax)}},
		{"a large aggregate costs at most two allocations", 100, 100, 2, nil},
		{"a large aggregate with the filter costs at most two", 100, 100, 2, []Option{WithHashRange("0", almostMax)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := benchInput(20, tt.records, 100, tt.keys)
			d, err := New(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			dst := d.Append(nil, in)
			n := testing.AllocsPerRun(50, func() { dst = d.Append(dst[:0], in) })
			if perAggregate := n / float64(len(in)); perAggregate > tt.limit {
				t.Fatalf("%.2f allocations per aggregate, want at most %v", perAggregate, tt.limit)
			}
		})
	}
}

func TestAppendGrowsDstOnce(t *testing.T) {
	// The fetcher passes room for one record per Kinesis record; with ten
	// user records per aggregate dst used to grow four times. (Small
	// aggregates, so that no scratch table comes from the pool, which -race
	// empties at random.)
	in := benchInput(200, 10, 100, 1<<30)
	d, _ := New()
	allocs := func(size int) float64 {
		return testing.AllocsPerRun(20, func() {
			if out := d.Append(make([]Record, 0, size), in); len(out) != 200*10 {
				t.Fatalf("%d records out, want %d", len(out), 200*10)
			}
		})
	}
	// One growth is one allocation, or two under -race, which does not
	// elide slices.Grow's temporary.
	if short, enough := allocs(len(in)), allocs(200*10); short > enough+2 {
		t.Fatalf("%v allocations with a short dst, %v with one large enough: want at most two more", short, enough)
	}
}

func TestPlainRecordsDoNotAllocate(t *testing.T) {
	in := benchInput(100, 0, 100, 0)
	d, _ := New()
	dst := d.Append(nil, in)
	if n := testing.AllocsPerRun(50, func() { dst = d.Append(dst[:0], in) }); n != 0 {
		t.Fatalf("plain records allocated %v times", n)
	}
}

func TestTheWholeKeySpaceDisablesTheFilter(t *testing.T) {
	whole, _ := New(WithHashRange("0", hashkey.Max.String()))
	almost, _ := New(WithHashRange("0", almostMax))
	if whole.filter || !almost.filter {
		t.Fatalf("filter on for the whole key space: %v; for all but one key: %v", whole.filter, almost.filter)
	}
	// Explicit hash keys are still checked without the filter.
	var c collector
	d, _ := New(WithHashRange("0", hashkey.Max.String()), WithErrorHandler(c.handle))
	d.Append(nil, []types.Record{kinesisRecord("1", frame(cat(pkEntry("a"), ehkEntry("x"), record(pkIndex(0), ehkIndex(0), data("1")))))})
	if len(c.errs) != 1 || !errors.Is(c.errs[0], faultExplicitHashKey) {
		t.Fatalf("errors = %v", c.errs)
	}
}
