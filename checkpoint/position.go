package checkpoint

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind says what a Position denotes. The zero Kind is not valid; Kinds start
// at one so that a zero Position is recognisable as "no position".
type Kind uint8

const (
	// KindSequence is a position at a record: a sequence number and a
	// sub-sequence number (the index of a user record inside a KPL aggregate).
	KindSequence Kind = iota + 1
	// KindTrimHorizon is the oldest record still retained in the shard.
	KindTrimHorizon
	// KindLatest is just after the newest record in the shard.
	KindLatest
	// KindAtTimestamp is the first record at or after a timestamp kept
	// elsewhere (KCL stores only the sentinel in the lease).
	KindAtTimestamp
	// KindShardEnd means every record of a closed shard has been processed.
	KindShardEnd
)

// String returns the sentinel spelling KCL uses in the lease table, or
// "SEQUENCE" for KindSequence.
func (k Kind) String() string {
	switch k {
	case KindSequence:
		return "SEQUENCE"
	case KindTrimHorizon:
		return sentinelTrimHorizon
	case KindLatest:
		return sentinelLatest
	case KindAtTimestamp:
		return sentinelAtTimestamp
	case KindShardEnd:
		return sentinelShardEnd
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

const (
	sentinelTrimHorizon = "TRIM_HORIZON"
	sentinelLatest      = "LATEST"
	sentinelAtTimestamp = "AT_TIMESTAMP"
	sentinelShardEnd    = "SHARD_END"
)

// maxSequenceDigits is the longest sequence number Kinesis documents
// (pattern 0|([1-9]\d{0,128})).
const maxSequenceDigits = 129

// ErrInvalid is matched (errors.Is) by every validation failure: every
// *ParseError, ErrBeforeLast, ErrBeyondDelivered and a checkpoint requested at
// a sentinel other than SHARD_END. Such an error is the caller's mistake;
// retrying the same call fails the same way.
var ErrInvalid = errors.New("checkpoint: invalid position")

// ParseError reports a sequence number or checkpoint value that is not a
// valid position. It matches ErrInvalid.
type ParseError struct {
	Value             string // the sequence number, checkpoint attribute or text form as given
	SubSequenceNumber uint64 // as given; 0 for the text form
	Reason            string
}

func (e *ParseError) Error() string {
	if e.SubSequenceNumber == 0 {
		return fmt.Sprintf("checkpoint: invalid position %q: %s", e.Value, e.Reason)
	}
	return fmt.Sprintf("checkpoint: invalid position %q (sub-sequence %d): %s", e.Value, e.SubSequenceNumber, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// Position is where processing of a shard stands: a record (sequence number
// plus sub-sequence number) or one of the sentinels. The zero Position means
// "none" (for example no pending checkpoint). Positions are comparable values;
// == compares representation, Compare compares order.
type Position struct {
	kind Kind
	seq  string // canonical decimal digits, only for KindSequence
	sub  uint64
}

// The sentinel positions. Their sub-sequence number is always zero.
var (
	TrimHorizon = Position{kind: KindTrimHorizon}
	Latest      = Position{kind: KindLatest}
	AtTimestamp = Position{kind: KindAtTimestamp}
	ShardEnd    = Position{kind: KindShardEnd}
)

// At returns the position of the user record with the given sequence number
// and sub-sequence number. The sequence number must be a decimal number as
// Kinesis writes it: no sign, no leading zeros, at most 129 digits.
func At(sequenceNumber string, subSequenceNumber uint64) (Position, error) {
	if reason := checkSequence(sequenceNumber); reason != "" {
		return Position{}, &ParseError{Value: sequenceNumber, SubSequenceNumber: subSequenceNumber, Reason: reason}
	}
	return Position{kind: KindSequence, seq: sequenceNumber, sub: subSequenceNumber}, nil
}

// Parse reads a position stored the way KCL stores it: the checkpoint
// attribute (a sequence number or one of TRIM_HORIZON, LATEST, AT_TIMESTAMP,
// SHARD_END) and the sub-sequence number attribute. A sentinel with a non-zero
// sub-sequence number is rejected: KCL never writes one.
func Parse(value string, subSequenceNumber uint64) (Position, error) {
	var p Position
	switch value {
	case sentinelTrimHorizon:
		p = TrimHorizon
	case sentinelLatest:
		p = Latest
	case sentinelAtTimestamp:
		p = AtTimestamp
	case sentinelShardEnd:
		p = ShardEnd
	default:
		return At(value, subSequenceNumber)
	}
	if subSequenceNumber != 0 {
		return Position{}, &ParseError{Value: value, SubSequenceNumber: subSequenceNumber, Reason: "a sentinel has no sub-sequence number"}
	}
	return p, nil
}

// checkSequence returns why s is not a sequence number as Kinesis writes it,
// or "" if it is one.
func checkSequence(s string) string {
	if reason := checkDecimal(s, "sequence number"); reason != "" {
		return reason
	}
	if len(s) > maxSequenceDigits {
		return "sequence number longer than 129 digits"
	}
	return ""
}

// checkDecimal returns why s is not a canonical unsigned decimal number (no
// sign, no leading zero), naming it what, or "" if it is one. Only ASCII
// digits count: Kinesis writes no others, although Java's Character.isDigit,
// which KCL uses, also admits the digits of other scripts.
func checkDecimal(s, what string) string {
	if s == "" {
		return "empty " + what
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return what + " is not a decimal number"
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return what + " with a leading zero"
	}
	return ""
}

// Kind returns what p denotes; 0 for the zero Position.
func (p Position) Kind() Kind { return p.kind }

// IsZero reports whether p is the zero Position ("no position").
func (p Position) IsZero() bool { return p.kind == 0 }

// IsSequence reports whether p is at a record rather than a sentinel.
func (p Position) IsSequence() bool { return p.kind == KindSequence }

// SequenceNumber returns the value of KCL's checkpoint attribute for p: the
// sequence number of a record position or the sentinel's name. It returns ""
// for the zero Position.
func (p Position) SequenceNumber() string {
	switch p.kind {
	case 0:
		return ""
	case KindSequence:
		return p.seq
	default:
		return p.kind.String()
	}
}

// SubSequenceNumber returns the sub-sequence number (0 for sentinels).
func (p Position) SubSequenceNumber() uint64 { return p.sub }

// String formats p as "sequence/sub" for records and the sentinel name
// otherwise; "" for the zero Position.
func (p Position) String() string {
	if p.kind == KindSequence {
		return p.seq + "/" + strconv.FormatUint(p.sub, 10)
	}
	return p.SequenceNumber()
}

// rank orders kinds: AT_TIMESTAMP < TRIM_HORIZON < LATEST < records <
// SHARD_END, with the zero Position below everything. This is KCL's order
// (ExtendedSequenceNumber.compareTo gives the first three the values -3, -2
// and -1 and special-cases SHARD_END as the greatest), so SHARD_END sorts after
// every record however long its sequence number.
func (k Kind) rank() int {
	switch k {
	case KindAtTimestamp:
		return 1
	case KindTrimHorizon:
		return 2
	case KindLatest:
		return 3
	case KindSequence:
		return 4
	case KindShardEnd:
		return 5
	default:
		return 0
	}
}

// Compare returns -1, 0 or +1 as p sorts before, equal to or after o.
// Records compare by sequence number as unsigned integers, then by
// sub-sequence number.
func (p Position) Compare(o Position) int {
	if rp, ro := p.kind.rank(), o.kind.rank(); rp != ro {
		return cmpInt(rp, ro)
	}
	if p.kind != KindSequence {
		return 0
	}
	// Canonical decimals without leading zeros: longer is larger.
	if len(p.seq) != len(o.seq) {
		return cmpInt(len(p.seq), len(o.seq))
	}
	switch {
	case p.seq < o.seq:
		return -1
	case p.seq > o.seq:
		return 1
	case p.sub < o.sub:
		return -1
	case p.sub > o.sub:
		return 1
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AppendText appends the text form of p to b: String's form, which is
// "sequence/sub" for a record, the sentinel's name otherwise and nothing for
// the zero Position. It implements encoding.TextAppender and never fails.
func (p Position) AppendText(b []byte) ([]byte, error) {
	if p.kind != KindSequence {
		return append(b, p.SequenceNumber()...), nil
	}
	b = append(b, p.seq...)
	b = append(b, '/')
	return strconv.AppendUint(b, p.sub, 10), nil
}

// MarshalText returns the text form of p (see AppendText), so that a Position
// is a string in JSON and in structured logs. It never fails.
func (p Position) MarshalText() ([]byte, error) { return p.AppendText(nil) }

// UnmarshalText sets p from its text form (see AppendText). It accepts only
// the canonical form MarshalText writes — "sequence/sub" with both numbers in
// decimal without leading zeros, a sentinel name without "/", or empty text
// for the zero Position — so that text and Positions correspond one to one.
// On failure it returns a *ParseError and leaves p unchanged.
func (p *Position) UnmarshalText(text []byte) error {
	s := string(text)
	if s == "" {
		*p = Position{}
		return nil
	}
	seq, sub, found := strings.Cut(s, "/")
	if !found {
		q, err := Parse(s, 0)
		if err != nil || q.kind == KindSequence {
			return &ParseError{Value: s, Reason: `want "sequence/sub" or a sentinel name`}
		}
		*p = q
		return nil
	}
	if reason := checkSequence(seq); reason != "" {
		return &ParseError{Value: s, Reason: reason}
	}
	if reason := checkDecimal(sub, "sub-sequence number"); reason != "" {
		return &ParseError{Value: s, Reason: reason}
	}
	n, err := strconv.ParseUint(sub, 10, 64)
	if err != nil {
		return &ParseError{Value: s, Reason: "sub-sequence number out of range"}
	}
	*p = Position{kind: KindSequence, seq: seq, sub: n}
	return nil
}
