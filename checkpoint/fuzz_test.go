package checkpoint

import (
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// validSequence is the pattern Kinesis documents for sequence numbers.
var validSequence = regexp.MustCompile(`^(0|[1-9][0-9]{0,128})$`)

func isSentinelName(s string) bool {
	switch s {
	case "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END":
		return true
	}
	return false
}

// FuzzParse checks that Parse never panics, accepts exactly the documented
// values, and that a parsed position survives a round trip through its
// lease attributes and its text form.
func FuzzParse(f *testing.F) {
	f.Add("0", uint64(0))
	f.Add(kinesisSeq, uint64(7))
	f.Add(strings.Repeat("9", 129), ^uint64(0))
	f.Add(strings.Repeat("9", 130), uint64(0))
	f.Add("01", uint64(0))
	f.Add("-1", uint64(0))
	f.Add("\u0661", uint64(0))
	f.Add("SHARD_END", uint64(0))
	f.Add("SHARD_END", uint64(1))
	f.Add("", uint64(0))
	f.Fuzz(func(t *testing.T, value string, sub uint64) {
		p, err := Parse(value, sub)
		valid := validSequence.MatchString(value) || (isSentinelName(value) && sub == 0)
		if err != nil {
			if valid {
				t.Fatalf("Parse(%q, %d) rejected a valid value: %v", value, sub, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Value != value || pe.SubSequenceNumber != sub {
				t.Fatalf("Parse(%q, %d) error %#v is not a matching *ParseError", value, sub, err)
			}
			if !p.IsZero() {
				t.Fatalf("Parse(%q, %d) returned %v with its error", value, sub, p)
			}
			return
		}
		if !valid {
			t.Fatalf("Parse(%q, %d) = %v, want an error", value, sub, p)
		}
		if p.SequenceNumber() != value || p.SubSequenceNumber() != sub {
			t.Fatalf("Parse(%q, %d) = %v, which reads back as %q, %d", value, sub, p, p.SequenceNumber(), p.SubSequenceNumber())
		}
		q, err := Parse(p.SequenceNumber(), p.SubSequenceNumber())
		if err != nil || q != p || q.Compare(p) != 0 {
			t.Fatalf("re-parsing %v gave %v, %v", p, q, err)
		}
		text, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var r Position
		if err := r.UnmarshalText(text); err != nil || r != p {
			t.Fatalf("text round trip of %v via %q gave %v, %v", p, text, r, err)
		}
	})
}

// positionFromFuzz maps any fuzz input to a valid position, so that every
// input exercises Compare: kind selects the zero Position, a sentinel or a
// record whose digits are the bytes of s reduced modulo 10.
func positionFromFuzz(kind byte, s string, sub uint64) Position {
	switch kind % 8 {
	case 0:
		return Position{}
	case 1:
		return AtTimestamp
	case 2:
		return TrimHorizon
	case 3:
		return Latest
	case 4:
		return ShardEnd
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		d := '0' + s[i]%10
		if len(b) == 0 && d == '0' {
			continue
		}
		b = append(b, d)
	}
	if len(b) == 0 {
		b = append(b, '0')
	}
	p, err := At(string(b[:min(len(b), maxSequenceDigits)]), sub)
	if err != nil {
		panic(err)
	}
	return p
}

// FuzzCompare checks Compare against math/big with the sub-sequence
// tie-break, and that it is a total order: antisymmetric, consistent with ==
// and transitive over every triple.
func FuzzCompare(f *testing.F) {
	f.Add(byte(5), "9", uint64(0), byte(5), "10", uint64(0), byte(5), "10", uint64(1))
	f.Add(byte(5), kinesisSeq, uint64(2), byte(5), kinesisSeq, uint64(1), byte(4), "", uint64(0))
	f.Add(byte(0), "", uint64(0), byte(1), "", uint64(0), byte(2), "", uint64(0))
	f.Add(byte(3), "", uint64(0), byte(5), "0", uint64(0), byte(4), "", uint64(0))
	f.Add(byte(5), strings.Repeat("9", 200), ^uint64(0), byte(5), "1"+strings.Repeat("0", 128), uint64(0), byte(6), "123", uint64(5))
	f.Fuzz(func(t *testing.T, ka byte, sa string, suba uint64, kb byte, sb string, subb uint64, kc byte, sc string, subc uint64) {
		ps := [3]Position{
			positionFromFuzz(ka, sa, suba),
			positionFromFuzz(kb, sb, subb),
			positionFromFuzz(kc, sc, subc),
		}
		for _, a := range ps {
			for _, b := range ps {
				ab := a.Compare(b)
				if want := oracleCompare(a, b); ab != want {
					t.Fatalf("%v.Compare(%v) = %d, math/big says %d", a, b, ab, want)
				}
				if ba := b.Compare(a); ba != -ab {
					t.Fatalf("not antisymmetric: %v vs %v gives %d, reversed %d", a, b, ab, ba)
				}
				if (ab == 0) != (a == b) {
					t.Fatalf("%v.Compare(%v) = %d disagrees with ==", a, b, ab)
				}
				for _, c := range ps {
					if ab <= 0 && b.Compare(c) <= 0 && a.Compare(c) > 0 {
						t.Fatalf("not transitive: %v <= %v <= %v but %v > %v", a, b, c, a, c)
					}
				}
			}
		}
	})
}

// validText is the canonical text form: a record "sequence/sub", a sentinel
// name or nothing. The sub-sequence number must also fit in 64 bits.
var validText = regexp.MustCompile(`^(?:(?:0|[1-9][0-9]{0,128})/(0|[1-9][0-9]*)|TRIM_HORIZON|LATEST|AT_TIMESTAMP|SHARD_END|)$`)

var maxUint64 = new(big.Int).SetUint64(^uint64(0))

// FuzzUnmarshalText checks that UnmarshalText never panics, accepts exactly
// the canonical text form, leaves the position alone on failure, and that the
// text form and positions correspond one to one.
func FuzzUnmarshalText(f *testing.F) {
	f.Add(kinesisSeq + "/3")
	f.Add("0/0")
	f.Add("SHARD_END")
	f.Add("")
	f.Add("1/18446744073709551615")
	f.Add("1/18446744073709551616")
	f.Add("1/01")
	f.Add("1")
	f.Add("1/2/3")
	f.Fuzz(func(t *testing.T, text string) {
		p := Latest
		err := p.UnmarshalText([]byte(text))
		valid := false
		if m := validText.FindStringSubmatch(text); m != nil {
			valid = true
			if m[1] != "" {
				n, _ := new(big.Int).SetString(m[1], 10)
				valid = n.Cmp(maxUint64) <= 0
			}
		}
		if err != nil {
			if valid {
				t.Fatalf("UnmarshalText(%q) rejected valid text: %v", text, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Value != text {
				t.Fatalf("UnmarshalText(%q) error %#v is not a matching *ParseError", text, err)
			}
			if p != Latest {
				t.Fatalf("UnmarshalText(%q) failed but changed the position to %v", text, p)
			}
			return
		}
		if !valid {
			t.Fatalf("UnmarshalText(%q) = %v, want an error", text, p)
		}
		b, err := p.MarshalText()
		if err != nil || string(b) != text {
			t.Fatalf("UnmarshalText(%q) = %v, which marshals to %q, %v", text, p, b, err)
		}
		if !p.IsZero() {
			q, err := Parse(p.SequenceNumber(), p.SubSequenceNumber())
			if err != nil || q != p {
				t.Fatalf("UnmarshalText(%q) = %v, whose attributes parse as %v, %v", text, p, q, err)
			}
		}
	})
}
