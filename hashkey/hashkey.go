package hashkey

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// Key is an unsigned 128-bit Kinesis hash key. Hi holds the most significant
// 64 bits and Lo the least significant ones.
//
// The zero value is hash key 0. Keys are comparable with == and ordered by
// [Key.Compare].
type Key struct{ Hi, Lo uint64 }

// Max is the largest hash key, 2^128-1, the end of a stream's hash key space.
var Max = Key{Hi: math.MaxUint64, Lo: math.MaxUint64}

// ErrInvalid is wrapped by every error that reports text which is not a
// decimal hash key in [0, 2^128-1]. Branch on it with errors.Is.
var ErrInvalid = errors.New("hashkey: invalid hash key")

// ParseError reports why [Parse] rejected its input. It wraps [ErrInvalid].
type ParseError struct {
	// Input is the rejected text.
	Input string
	// Reason says what is wrong with it, for example "value exceeds 2^128-1".
	Reason string
}

// maxQuoted bounds how much of a rejected input an error message repeats.
const maxQuoted = 64

// Error implements error.
func (e *ParseError) Error() string {
	in := e.Input
	if len(in) > maxQuoted {
		in = in[:maxQuoted] + "..."
	}
	return "hashkey: invalid hash key " + strconv.Quote(in) + ": " + e.Reason
}

// Unwrap returns [ErrInvalid].
func (e *ParseError) Unwrap() error { return ErrInvalid }

// Parse parses s as an unsigned decimal integer in [0, 2^128-1], the form in
// which Kinesis APIs carry hash keys (ExplicitHashKey, StartingHashKey,
// EndingHashKey).
//
// s must be one or more ASCII digits and nothing else: no sign, no spaces, no
// underscores. Leading zeros are accepted, as java.math.BigInteger accepts
// them. On failure Parse returns a *[ParseError] wrapping [ErrInvalid]. Parse
// does not allocate when it succeeds.
func Parse(s string) (Key, error) {
	if s == "" {
		return Key{}, &ParseError{Input: s, Reason: "empty"}
	}
	var hi, lo uint64
	// Accumulate up to 19 digits at a time in a uint64 (10^19 < 2^64), then
	// fold each chunk into the 128-bit value with one multiply-add.
	for i := 0; i < len(s); {
		end := min(i+19, len(s))
		var chunk uint64
		for j := i; j < end; j++ {
			d := s[j] - '0'
			if d > 9 {
				return Key{}, &ParseError{Input: s, Reason: badChar(s, j)}
			}
			chunk = chunk*10 + uint64(d)
		}
		// (hi, lo) = (hi, lo)*10^(end-i) + chunk, failing on a carry out of
		// bit 127.
		scale := pow10[end-i]
		carryLo, lo2 := bits.Mul64(lo, scale)
		overHi, hi2 := bits.Mul64(hi, scale)
		hi2, c1 := bits.Add64(hi2, carryLo, 0)
		lo2, c2 := bits.Add64(lo2, chunk, 0)
		hi2, c3 := bits.Add64(hi2, 0, c2)
		if overHi|c1|c3 != 0 {
			return Key{}, &ParseError{Input: s, Reason: "value exceeds 2^128-1"}
		}
		hi, lo = hi2, lo2
		i = end
	}
	return Key{Hi: hi, Lo: lo}, nil
}

// pow10[n] is 10^n for the chunk lengths Parse uses.
var pow10 = [20]uint64{
	1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

func badChar(s string, i int) string {
	switch {
	case i == 0 && (s[0] == '+' || s[0] == '-'):
		return "sign not allowed"
	case s[i] < utf8.RuneSelf:
		return "invalid character " + strconv.QuoteRune(rune(s[i])) + " at offset " + strconv.Itoa(i)
	default:
		return "invalid byte 0x" + strconv.FormatUint(uint64(s[i]), 16) + " at offset " + strconv.Itoa(i)
	}
}

// Compare returns -1 if k < o, 0 if k == o and +1 if k > o.
func (k Key) Compare(o Key) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	default:
		return 0
	}
}

// String returns k in decimal without leading zeros, the form Kinesis APIs
// accept as an ExplicitHashKey.
func (k Key) String() string {
	if k.Hi == 0 {
		return strconv.FormatUint(k.Lo, 10)
	}
	var buf [39]byte // 2^128-1 has 39 decimal digits
	return string(k.appendDecimal(buf[:0]))
}

// AppendText implements [encoding.TextAppender]: it appends the decimal form
// of k to b. It never fails.
func (k Key) AppendText(b []byte) ([]byte, error) { return k.appendDecimal(b), nil }

// MarshalText implements [encoding.TextMarshaler], so a Key encodes to JSON
// as a decimal string, the way Kinesis APIs carry hash keys.
func (k Key) MarshalText() ([]byte, error) { return k.appendDecimal(nil), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with the rules of
// [Parse]. On error k is left unchanged.
func (k *Key) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

func (k Key) appendDecimal(b []byte) []byte {
	if k.Hi == 0 {
		return strconv.AppendUint(b, k.Lo, 10)
	}
	// Split off 19-digit chunks (10^19 < 2^64) from the right until the rest
	// fits in 64 bits; at most two chunks are needed because 2^128 < 10^57.
	const chunk = 1e19
	var lows [2]uint64
	n := 0
	for k.Hi != 0 {
		var r uint64
		k.Hi, r = bits.Div64(0, k.Hi, chunk)
		k.Lo, r = bits.Div64(r, k.Lo, chunk)
		lows[n] = r
		n++
	}
	b = strconv.AppendUint(b, k.Lo, 10)
	for n > 0 {
		n--
		var digits [19]byte
		v := lows[n]
		for i := len(digits) - 1; i >= 0; i-- {
			digits[i] = byte('0' + v%10)
			v /= 10
		}
		b = append(b, digits[:]...)
	}
	return b
}

// FromPartitionKey returns the hash key Kinesis assigns to a record that has
// partition key pk and no explicit hash key: the MD5 digest of pk's bytes
// read as a big-endian unsigned 128-bit integer. Go strings hold UTF-8, so
// this is MD5(UTF-8(pk)); bytes that are not valid UTF-8 are hashed as they
// are.
func FromPartitionKey(pk string) Key {
	sum := md5Sum(pk)
	return Key{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// md5Sum hashes s without converting it to a []byte on the heap when it is
// short, which partition keys (at most 256 characters) always are. The
// buffers live in separate functions so that short keys do not pay for
// zeroing the large one.
func md5Sum(s string) [md5.Size]byte {
	switch {
	case len(s) <= 64:
		return md5Small(s)
	case len(s) <= 1024:
		return md5Large(s)
	default:
		return md5.Sum([]byte(s))
	}
}

func md5Small(s string) [md5.Size]byte {
	var buf [64]byte
	return md5.Sum(buf[:copy(buf[:], s)])
}

func md5Large(s string) [md5.Size]byte {
	var buf [1024]byte
	return md5.Sum(buf[:copy(buf[:], s)])
}

// Effective returns the hash key Kinesis routes a record by: explicitHashKey
// parsed as decimal when it is not empty, else [FromPartitionKey] of
// partitionKey. An explicitHashKey that does not parse yields an error
// wrapping [ErrInvalid].
func Effective(partitionKey, explicitHashKey string) (Key, error) {
	if explicitHashKey != "" {
		return Parse(explicitHashKey)
	}
	return FromPartitionKey(partitionKey), nil
}
