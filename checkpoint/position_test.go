package checkpoint

import (
	"encoding"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

var (
	_ encoding.TextAppender    = Position{}
	_ encoding.TextMarshaler   = Position{}
	_ encoding.TextUnmarshaler = (*Position)(nil)
)

// kinesisSeq is a sequence number as Kinesis writes it today (56 digits).
const kinesisSeq = "49590338271490256608559692538361571095921575989136588898"

// mustAt returns the record position, failing the test if it is invalid.
func mustAt(t testing.TB, seq string, sub uint64) Position {
	t.Helper()
	p, err := At(seq, sub)
	if err != nil {
		t.Fatalf("At(%q, %d): %v", seq, sub, err)
	}
	return p
}

func TestParse(t *testing.T) {
	digits128 := "1" + strings.Repeat("0", 128)
	tests := []struct {
		name  string
		value string
		sub   uint64
		want  Kind // 0: invalid
	}{
		{"a one-digit sequence number is a record", "7", 0, KindSequence},
		{"zero is a record", "0", 0, KindSequence},
		{"a 56-digit Kinesis sequence number is a record", kinesisSeq, 3, KindSequence},
		{"129 digits are the longest record", digits128, 0, KindSequence},
		{"the largest sub-sequence number is accepted", "1", math.MaxUint64, KindSequence},
		{"130 digits are too long", digits128 + "0", 0, 0},
		{"an empty value is invalid", "", 0, 0},
		{"a plus sign is invalid", "+1", 0, 0},
		{"a minus sign is invalid", "-1", 0, 0},
		{"negative zero is invalid", "-0", 0, 0},
		{"a leading zero is invalid", "01", 0, 0},
		{"two zeros are invalid", "00", 0, 0},
		{"letters are invalid", "12a", 0, 0},
		{"hexadecimal is invalid", "0x1F", 0, 0},
		{"a decimal point is invalid", "1.0", 0, 0},
		{"an exponent is invalid", "1e9", 0, 0},
		{"a leading space is invalid", " 1", 0, 0},
		{"a trailing newline is invalid", "1\n", 0, 0},
		{"a NUL byte is invalid", "1\x00", 0, 0},
		{"digit separators are invalid", "1_000", 0, 0},
		{"Arabic-Indic digits are invalid", "\u0661\u0662\u0663", 0, 0},
		{"fullwidth digits are invalid", "\uff11\uff12", 0, 0},
		{"invalid UTF-8 is invalid", "1\xff", 0, 0},
		{"TRIM_HORIZON is a sentinel", "TRIM_HORIZON", 0, KindTrimHorizon},
		{"LATEST is a sentinel", "LATEST", 0, KindLatest},
		{"AT_TIMESTAMP is a sentinel", "AT_TIMESTAMP", 0, KindAtTimestamp},
		{"SHARD_END is a sentinel", "SHARD_END", 0, KindShardEnd},
		{"a sentinel with a sub-sequence number is invalid", "SHARD_END", 1, 0},
		{"TRIM_HORIZON with a sub-sequence number is invalid", "TRIM_HORIZON", 7, 0},
		{"a lower-case sentinel is invalid", "shard_end", 0, 0},
		{"a sentinel with surrounding space is invalid", " LATEST", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.value, tt.sub)
			if tt.want == 0 {
				checkParseError(t, p, err, tt.value, tt.sub)
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q, %d): %v", tt.value, tt.sub, err)
			}
			if p.Kind() != tt.want || p.SequenceNumber() != tt.value || p.SubSequenceNumber() != tt.sub {
				t.Fatalf("Parse(%q, %d) = %v (kind %v), want kind %v", tt.value, tt.sub, p, p.Kind(), tt.want)
			}
		})
	}
}

func TestAtRejectsSentinels(t *testing.T) {
	for _, name := range []string{"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END"} {
		p, err := At(name, 0)
		checkParseError(t, p, err, name, 0)
	}
}

func checkParseError(t *testing.T, p Position, err error, value string, sub uint64) {
	t.Helper()
	if err == nil {
		t.Fatalf("got %v, want an error", p)
	}
	if !p.IsZero() {
		t.Errorf("got %v alongside the error, want the zero Position", p)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if pe.Value != value || pe.SubSequenceNumber != sub || pe.Reason == "" {
		t.Errorf("ParseError = %+v, want value %q, sub-sequence %d and a reason", pe, value, sub)
	}
	if !strings.HasPrefix(err.Error(), "checkpoint: ") {
		t.Errorf("message %q lacks the package prefix", err)
	}
}

func TestPositionAccessors(t *testing.T) {
	p := mustAt(t, kinesisSeq, 4)
	if !p.IsSequence() || p.IsZero() || p.String() != kinesisSeq+"/4" {
		t.Errorf("record position: IsSequence %v, IsZero %v, String %q", p.IsSequence(), p.IsZero(), p)
	}
	var zero Position
	if !zero.IsZero() || zero.IsSequence() || zero.String() != "" || zero.SequenceNumber() != "" || zero.Kind() != 0 {
		t.Errorf("zero Position: IsZero %v, String %q, SequenceNumber %q, Kind %v", zero.IsZero(), zero, zero.SequenceNumber(), zero.Kind())
	}
	if ShardEnd.String() != "SHARD_END" || ShardEnd.IsSequence() || ShardEnd.SubSequenceNumber() != 0 {
		t.Errorf("ShardEnd: String %q", ShardEnd)
	}
	if got := Kind(0).String(); got != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
	if got := KindSequence.String(); got != "SEQUENCE" {
		t.Errorf("KindSequence.String() = %q", got)
	}
}

// TestCompareKinds checks every pair of kinds in their documented order:
// zero < AT_TIMESTAMP < TRIM_HORIZON < LATEST < records < SHARD_END.
func TestCompareKinds(t *testing.T) {
	ordered := []struct {
		name string
		p    Position
	}{
		{"the zero Position", Position{}},
		{"AT_TIMESTAMP", AtTimestamp},
		{"TRIM_HORIZON", TrimHorizon},
		{"LATEST", Latest},
		{"record 0/0", mustAt(t, "0", 0)},
		{"a 129-digit record", mustAt(t, strings.Repeat("9", 129), math.MaxUint64)},
		{"SHARD_END", ShardEnd},
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := cmpInt(i, j)
			verb := map[int]string{-1: "sorts before", 0: "equals", 1: "sorts after"}[want]
			t.Run(a.name+" "+verb+" "+b.name, func(t *testing.T) {
				if got := a.p.Compare(b.p); got != want {
					t.Errorf("Compare = %d, want %d", got, want)
				}
			})
		}
	}
}

func TestCompareRecords(t *testing.T) {
	tests := []struct {
		name string
		a, b Position
		want int
	}{
		{name: "a shorter number sorts first although its first digit is larger",
			a: mustAt(t, "9", 0), b: mustAt(t, "10", 0), want: -1},
		{name: "a 56-digit number sorts after a 19-digit one",
			a: mustAt(t, kinesisSeq, 0), b: mustAt(t, "9223372036854775807", 0), want: 1},
		{name: "numbers of equal length compare digit by digit",
			a: mustAt(t, "123", 0), b: mustAt(t, "124", 0), want: -1},
		{name: "the sub-sequence number breaks a tie",
			a: mustAt(t, kinesisSeq, 2), b: mustAt(t, kinesisSeq, 1), want: 1},
		{name: "equal sequence and sub-sequence numbers are equal",
			a: mustAt(t, kinesisSeq, 2), b: mustAt(t, kinesisSeq, 2), want: 0},
		{name: "the sub-sequence number never outweighs the sequence number",
			a: mustAt(t, "1", math.MaxUint64), b: mustAt(t, "2", 0), want: -1},
		{name: "SHARD_END sorts after the largest record, as in KCL",
			a: ShardEnd, b: mustAt(t, strings.Repeat("9", 129), math.MaxUint64), want: 1},
		{name: "SHARD_END sorts after a record above Long.MAX_VALUE",
			a: ShardEnd, b: mustAt(t, "9223372036854775808", 0), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.Compare(tt.a); got != -tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

// oracleCompare orders positions independently of Compare: sentinels get
// KCL's values (zero below them all, SHARD_END above everything), records
// their value as a big integer, then the sub-sequence number.
func oracleCompare(a, b Position) int {
	if a.Kind() == KindShardEnd || b.Kind() == KindShardEnd {
		return cmpBool(a.Kind() == KindShardEnd, b.Kind() == KindShardEnd)
	}
	if c := oracleValue(a).Cmp(oracleValue(b)); c != 0 {
		return c
	}
	return cmpUint(a.SubSequenceNumber(), b.SubSequenceNumber())
}

func oracleValue(p Position) *big.Int {
	switch p.Kind() {
	case 0:
		return big.NewInt(-4)
	case KindAtTimestamp:
		return big.NewInt(-3)
	case KindTrimHorizon:
		return big.NewInt(-2)
	case KindLatest:
		return big.NewInt(-1)
	}
	v, ok := new(big.Int).SetString(p.SequenceNumber(), 10)
	if !ok {
		panic("not a decimal: " + p.SequenceNumber())
	}
	return v
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestCompareAgreesWithBigInt is a property test: for random records of
// random lengths, often sharing a prefix or a sequence number, Compare
// agrees with math/big and the sub-sequence tie-break.
func TestCompareAgreesWithBigInt(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	anyDigits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	randomDigits := func(n int) string { // no leading zero
		return string(byte('1'+r.IntN(9))) + anyDigits(n-1)
	}
	randomPosition := func(like string) Position {
		switch r.IntN(8) {
		case 0:
			return []Position{{}, AtTimestamp, TrimHorizon, Latest, ShardEnd}[r.IntN(5)]
		case 1:
			return mustAt(t, "0", r.Uint64N(3))
		case 2, 3:
			// Share a prefix with like and vary the tail, or keep it whole.
			cut := r.IntN(len(like) + 1)
			s := like[:cut] + anyDigits(r.IntN(3))
			if s == "" || (len(s) > 1 && s[0] == '0') || len(s) > maxSequenceDigits {
				s = like
			}
			return mustAt(t, s, r.Uint64N(3))
		default:
			return mustAt(t, randomDigits(1+r.IntN(maxSequenceDigits)), r.Uint64())
		}
	}
	for range 20000 {
		like := randomDigits(1 + r.IntN(maxSequenceDigits))
		a, b := randomPosition(like), randomPosition(like)
		if got, want := a.Compare(b), oracleCompare(a, b); got != want {
			t.Fatalf("%v.Compare(%v) = %d, math/big says %d", a, b, got, want)
		}
		if (a.Compare(b) == 0) != (a == b) {
			t.Fatalf("%v.Compare(%v) = %d disagrees with ==", a, b, a.Compare(b))
		}
	}
}

func TestMarshalText(t *testing.T) {
	tests := []struct {
		name string
		p    Position
		want string
	}{
		{"a record is sequence/sub", mustAt(t, kinesisSeq, 12), kinesisSeq + "/12"},
		{"a record that was not aggregated has sub-sequence 0", mustAt(t, "0", 0), "0/0"},
		{"TRIM_HORIZON is its name", TrimHorizon, "TRIM_HORIZON"},
		{"LATEST is its name", Latest, "LATEST"},
		{"AT_TIMESTAMP is its name", AtTimestamp, "AT_TIMESTAMP"},
		{"SHARD_END is its name", ShardEnd, "SHARD_END"},
		{"the zero Position is empty", Position{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.MarshalText()
			if err != nil || string(b) != tt.want {
				t.Fatalf("MarshalText() = %q, %v; want %q", b, err, tt.want)
			}
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want the text form %q", got, tt.want)
			}
			b, _ = tt.p.AppendText([]byte("x="))
			if string(b) != "x="+tt.want {
				t.Errorf("AppendText = %q", b)
			}
			q := Latest
			if err := q.UnmarshalText([]byte(tt.want)); err != nil || q != tt.p {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.want, q, err, tt.p)
			}
		})
	}
}

func TestUnmarshalTextRejectsNonCanonicalText(t *testing.T) {
	tests := []struct{ name, text string }{
		{"a sequence number without a sub-sequence number", "123"},
		{"a missing sub-sequence number", "123/"},
		{"a missing sequence number", "/0"},
		{"a sub-sequence number with a leading zero", "123/01"},
		{"a sequence number with a leading zero", "0123/1"},
		{"a negative sub-sequence number", "123/-1"},
		{"a signed sub-sequence number", "123/+1"},
		{"a sub-sequence number above 2^64-1", "123/18446744073709551616"},
		{"a sentinel with a sub-sequence number", "SHARD_END/0"},
		{"a lower-case sentinel", "latest"},
		{"two slashes", "1/2/3"},
		{"surrounding space", " 1/0"},
		{"a 130-digit sequence number", strings.Repeat("1", 130) + "/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is rejected", func(t *testing.T) {
			p := Latest
			err := p.UnmarshalText([]byte(tt.text))
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Value != tt.text || !errors.Is(err, ErrInvalid) {
				t.Fatalf("UnmarshalText(%q) = %v, want a *ParseError for the text", tt.text, err)
			}
			if p != Latest {
				t.Errorf("UnmarshalText changed the position to %v on failure", p)
			}
		})
	}
}

func TestPositionInJSON(t *testing.T) {
	type doc struct {
		Checkpoint Position `json:"checkpoint"`
		Pending    Position `json:"pending"`
	}
	in := doc{Checkpoint: mustAt(t, kinesisSeq, 3), Pending: ShardEnd}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"checkpoint":"` + kinesisSeq + `/3","pending":"SHARD_END"}`
	if string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("json.Unmarshal = %+v, %v; want %+v", out, err, in)
	}
}
