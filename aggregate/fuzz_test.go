package aggregate

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/kclgo/kcl/hashkey"
)

// decodeRecords turns fuzz input into user records, valid or not: per record
// one byte of partition key length, the key's bytes (not always UTF-8), one
// byte choosing the explicit hash key (none, a number, or text), and one byte
// of data length.
func decodeRecords(b []byte) []UserRecord {
	var rs []UserRecord
	take := func(n int) []byte {
		n = min(n, len(b))
		v := b[:n]
		b = b[n:]
		return v
	}
	for len(b) > 0 && len(rs) < 200 {
		var r UserRecord
		l := take(1)
		r.PartitionKey = string(take(int(l[0]) % 40))
		if sel := take(1); len(sel) == 1 {
			switch sel[0] % 4 {
			case 1:
				k := hashkey.Key{Hi: uint64(sel[0]) << 56, Lo: uint64(len(rs))}
				r.ExplicitHashKey = k.String()
			case 2:
				r.ExplicitHashKey = "00" + string(take(int(sel[0]>>2)%5))
			}
		}
		if dl := take(1); len(dl) == 1 {
			r.Data = take(int(dl[0]) * 3)
		}
		rs = append(rs, r)
	}
	return rs
}

// valid is the oracle for what Add accepts, written apart from validate.
func valid(r UserRecord) error {
	if n := utf8.RuneCountInString(r.PartitionKey); n < 1 || n > 256 || !utf8.ValidString(r.PartitionKey) {
		return ErrInvalidPartitionKey
	}
	if r.ExplicitHashKey != "" {
		if _, err := hashkey.Parse(r.ExplicitHashKey); err != nil {
			return ErrInvalidExplicitHashKey
		}
	}
	return nil
}

// FuzzAggregateRoundTrip adds arbitrary user records to an Aggregator with an
// arbitrary size limit. Add rejects exactly the invalid records, no aggregate
// exceeds the limit, Size always predicts the flushed length, and
// deaggregating the aggregates gives back every accepted record, in order.
func FuzzAggregateRoundTrip(f *testing.F) {
	f.Add([]byte("\x03abc\x01\x05\x01xyz"), uint32(DefaultMaxSize))
	f.Add([]byte("\x00\x00\x00"), uint32(MinMaxSize))
	f.Add([]byte("\x02\xff\xfe\x02\x10\x09"), uint32(100))
	f.Add([]byte("\x05hello\x02\x07\x50\x05hello\x01\x01\x50\x05world\x00\x30"), uint32(300))
	f.Add([]byte("\x01k\x00\xff\x01k\x00\xff\x01k\x00\xff"), uint32(800))
	f.Fuzz(func(t *testing.T, raw []byte, max uint32) {
		maxSize := MinMaxSize + int(max%uint32(MaxSizeLimit-MinMaxSize+1))
		a, err := New(WithMaxSize(maxSize))
		if err != nil {
			t.Fatal(err)
		}
		var accepted, got []UserRecord
		var entries []Entry
		for _, r := range decodeRecords(raw) {
			before, size := a.Len(), a.Size()
			full, ok, err := a.Add(r)
			if want := valid(r); want != nil {
				if !errors.Is(err, want) {
					t.Fatalf("Add(%+v) error = %v, want %v", r, err, want)
				}
			}
			if err != nil {
				if ok || a.Len() != before || a.Size() != size {
					t.Fatalf("a failed Add changed the aggregator")
				}
				if valid(r) == nil && !errors.Is(err, ErrRecordTooLarge) {
					t.Fatalf("Add(%+v) rejected a valid record: %v", r, err)
				}
				continue
			}
			accepted = append(accepted, r)
			if ok {
				if len(full.Data) != size || full.Records != before {
					t.Fatalf("flushed %d bytes and %d records; Size and Len said %d and %d", len(full.Data), full.Records, size, before)
				}
				entries = append(entries, full)
			}
			if a.Size() > maxSize {
				t.Fatalf("Size %d exceeds %d", a.Size(), maxSize)
			}
		}
		size := a.Size()
		if e, ok := a.Flush(); ok {
			if len(e.Data) != size {
				t.Fatalf("flushed %d bytes, Size said %d", len(e.Data), size)
			}
			entries = append(entries, e)
		}
		for _, e := range entries {
			if len(e.Data) > maxSize {
				t.Fatalf("aggregate of %d bytes exceeds %d", len(e.Data), maxSize)
			}
			out := userRecords(expand(t, e.Data))
			first := out[0]
			want, _ := hashkey.Effective(first.PartitionKey, first.ExplicitHashKey)
			if e.PartitionKey != first.PartitionKey || e.ExplicitHashKey != want.String() || e.Records != len(out) {
				t.Fatalf("Entry %q/%q/%d does not match its first record %+v", e.PartitionKey, e.ExplicitHashKey, e.Records, first)
			}
			got = append(got, out...)
		}
		if len(got) != len(accepted) {
			t.Fatalf("got %d records back, accepted %d", len(got), len(accepted))
		}
		for i := range got {
			g, w := got[i], accepted[i]
			gk, _ := hashkey.Effective(g.PartitionKey, g.ExplicitHashKey)
			wk, _ := hashkey.Effective(w.PartitionKey, w.ExplicitHashKey)
			if g.PartitionKey != w.PartitionKey || string(g.Data) != string(w.Data) || gk != wk || (g.ExplicitHashKey == "") != (w.ExplicitHashKey == "") {
				t.Fatalf("record %d came back as %+v, want %+v", i, g, w)
			}
		}
		if len(accepted) > 0 {
			b, err := Marshal(accepted)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(userRecords(expand(t, b))); n != len(accepted) {
				t.Fatalf("Marshal round trip gave %d records, want %d", n, len(accepted))
			}
		}
	})
}
