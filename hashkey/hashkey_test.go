package hashkey

import (
	"crypto/md5"
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// two128 is 2^128, one more than the largest hash key.
var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

// toBig is the test oracle's view of a Key.
func toBig(k Key) *big.Int {
	hi := new(big.Int).SetUint64(k.Hi)
	return hi.Lsh(hi, 64).Or(hi, new(big.Int).SetUint64(k.Lo))
}

func TestParse(t *testing.T) {
	maxStr := new(big.Int).Sub(two128, big.NewInt(1)).String()
	tests := []struct {
		name string
		in   string
		want Key
	}{
		{"zero parses as the zero key", "0", Key{}},
		{"one parses as one", "1", Key{Lo: 1}},
		{"2^64-1 fills the low word", "18446744073709551615", Key{Lo: 1<<64 - 1}},
		{"2^64 carries into the high word", "18446744073709551616", Key{Hi: 1}},
		{"2^128-1 is the largest key", maxStr, Max},
		{"leading zeros are accepted like BigInteger does", "000000000000000000000000000000000000000000042", Key{Lo: 42}},
		{"a shard boundary from ListShards parses", "170141183460469231731687303715884105727", Key{Hi: 1<<63 - 1, Lo: 1<<64 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string
	}{
		{"an empty string is rejected", "", "empty"},
		{"a leading plus sign is rejected", "+1", "sign not allowed"},
		{"a minus sign is rejected", "-1", "sign not allowed"},
		{"a leading space is rejected", " 1", "invalid character"},
		{"a trailing space is rejected", "1 ", "invalid character"},
		{"an underscore separator is rejected", "1_000", "invalid character"},
		{"a hexadecimal prefix is rejected", "0x10", "invalid character"},
		{"a non-ASCII digit is rejected", "١", "invalid byte 0xd9 at offset 0"},
		{"2^128 overflows by one", two128.String(), "exceeds"},
		{"a 40-digit number overflows", "9999999999999999999999999999999999999999", "exceeds"},
		{"overflow is detected in the multiply as well as the add", "3402823669209384634633746074317682114560", "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error = %v, want one wrapping ErrInvalid", tt.in, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Input != tt.in || !strings.Contains(pe.Reason, tt.reason) {
				t.Fatalf("Parse(%q) error = %#v, want a *ParseError with reason containing %q", tt.in, err, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "hashkey: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseErrorQuotesLongInputBriefly(t *testing.T) {
	_, err := Parse(strings.Repeat("x", 10000))
	if len(err.Error()) > 200 {
		t.Fatalf("error message is %d bytes long", len(err.Error()))
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	s := Max.String()
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(s) }); n != 0 {
		t.Fatalf("Parse allocated %v times", n)
	}
}

func TestStringRoundTripsRandomKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []Key{{}, {Lo: 1}, {Lo: 1<<64 - 1}, {Hi: 1}, Max, {Hi: 1<<64 - 1}, {Lo: 1e19}, {Hi: 1, Lo: 1e19 - 1}}
	for range 10000 {
		k := Key{Hi: r.Uint64(), Lo: r.Uint64()}
		switch r.IntN(3) {
		case 0:
			k.Hi = 0
		case 1:
			k.Hi >>= r.UintN(64)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		s := k.String()
		if want := toBig(k).String(); s != want {
			t.Fatalf("%+v.String() = %s, want %s", k, s, want)
		}
		back, err := Parse(s)
		if err != nil || back != k {
			t.Fatalf("Parse(%s) = %+v, %v; want %+v", s, back, err, k)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b Key
		want int
	}{
		{"equal keys compare equal", Key{Hi: 3, Lo: 4}, Key{Hi: 3, Lo: 4}, 0},
		{"the high word decides first", Key{Hi: 1}, Key{Lo: 1<<64 - 1}, 1},
		{"a smaller high word is less", Key{Lo: 5}, Key{Hi: 1}, -1},
		{"the low word breaks ties", Key{Hi: 1, Lo: 1}, Key{Hi: 1, Lo: 2}, -1},
		{"max is greater than everything else", Max, Key{Hi: 1<<64 - 1, Lo: 1<<64 - 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Fatalf("Compare = %d, want %d", got, tt.want)
			}
			if got := tt.b.Compare(tt.a); got != -tt.want {
				t.Fatalf("reverse Compare = %d, want %d", got, -tt.want)
			}
			if got, want := tt.a.Compare(tt.b), toBig(tt.a).Cmp(toBig(tt.b)); got != want {
				t.Fatalf("Compare = %d, math/big says %d", got, want)
			}
		})
	}
}

func TestFromPartitionKeyMatchesMD5AsBigEndianInteger(t *testing.T) {
	for _, pk := range []string{"", "a", "partition-key-1", "ключ", "🔑 emoji key", strings.Repeat("長", 256), "\xff not utf-8"} {
		sum := md5.Sum([]byte(pk))
		want := new(big.Int).SetBytes(sum[:])
		if got := toBig(FromPartitionKey(pk)); got.Cmp(want) != 0 {
			t.Fatalf("FromPartitionKey(%q) = %s, want %s", pk, got, want)
		}
	}
}

func TestFromPartitionKeyDoesNotAllocate(t *testing.T) {
	pk := strings.Repeat("é", 256)
	if n := testing.AllocsPerRun(100, func() { _ = FromPartitionKey(pk) }); n != 0 {
		t.Fatalf("FromPartitionKey allocated %v times", n)
	}
}

func TestEffective(t *testing.T) {
	tests := []struct {
		name    string
		pk, ehk string
		want    Key
		wantErr bool
	}{
		{"no explicit hash key hashes the partition key", "pk", "", FromPartitionKey("pk"), false},
		{"an explicit hash key wins over the partition key", "pk", "12345", Key{Lo: 12345}, false},
		{"an explicit hash key of zero is honoured", "pk", "0", Key{}, false},
		{"an invalid explicit hash key is an error", "pk", "-1", Key{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Effective(tt.pk, tt.ehk)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Effective error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Effective = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRange(t *testing.T) {
	r, err := ParseRange("100", "200")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		k    Key
		want bool
	}{
		{"a key inside the range is contained", Key{Lo: 150}, true},
		{"the start bound is inclusive", Key{Lo: 100}, true},
		{"the end bound is inclusive", Key{Lo: 200}, true},
		{"one below the start is outside", Key{Lo: 99}, false},
		{"one above the end is outside", Key{Lo: 201}, false},
		{"a key with a high word is far outside", Key{Hi: 1, Lo: 150}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Contains(tt.k); got != tt.want {
				t.Fatalf("Contains(%s) = %v, want %v", tt.k, got, tt.want)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name       string
		start, end string
		want       Range
		wantErr    error
	}{
		{"the whole key space parses", "0", Max.String(), Range{End: Max}, nil},
		{"a single-key range parses", "7", "7", Range{Start: Key{Lo: 7}, End: Key{Lo: 7}}, nil},
		{"a start above the end is rejected", "8", "7", Range{}, ErrInvalidRange},
		{"an unparsable start is rejected", "x", "7", Range{}, ErrInvalid},
		{"an unparsable end is rejected", "0", two128.String(), Range{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRange(tt.start, tt.end)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseRange error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRange = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFullRangeContainsExtremes(t *testing.T) {
	r := Range{End: Max}
	for _, k := range []Key{{}, Max, {Hi: 1 << 63}} {
		if !r.Contains(k) {
			t.Fatalf("the full range does not contain %s", k)
		}
	}
}

func TestKeyMarshalsAsJSONDecimalString(t *testing.T) {
	in := struct{ K Key }{K: Key{Hi: 1, Lo: 2}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"K":"18446744073709551618"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var out struct{ K Key }
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"K":"-1"}`), &out); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unmarshal of -1 error = %v, want ErrInvalid", err)
	}
}

func BenchmarkParse(b *testing.B) {
	s := Max.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	k := Key{Hi: 0x0123456789abcdef, Lo: 0xfedcba9876543210}
	b.ReportAllocs()
	for b.Loop() {
		_ = k.String()
	}
}

func BenchmarkFromPartitionKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = FromPartitionKey("user-4711")
	}
}

func BenchmarkRangeContains(b *testing.B) {
	r := Range{Start: Key{Hi: 1 << 62}, End: Key{Hi: 1 << 63}}
	k := Key{Hi: 3 << 61}
	b.ReportAllocs()
	for b.Loop() {
		if !r.Contains(k) {
			b.Fatal("not contained")
		}
	}
}
