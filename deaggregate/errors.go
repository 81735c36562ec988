package deaggregate

import (
	"errors"
	"strconv"
	"strings"

	"github.com/kclgo/kcl/hashkey"
)

var (
	// ErrMalformed is wrapped by the [RecordError] reported for a record whose
	// data starts with the KPL magic bytes but is not a valid aggregate: too
	// short, checksum mismatch, not a protobuf AggregatedRecord, a required
	// field missing, a key-table index out of range or an explicit hash key
	// that is not a decimal 128-bit number. Such a record was appended
	// unchanged, as one plain record with Aggregated false, exactly as KCL
	// passes it through.
	ErrMalformed = errors.New("deaggregate: malformed aggregated record")

	// ErrOutOfRange is wrapped by the [RecordError] reported for an aggregate
	// that held a user record whose effective hash key lies outside the hash
	// key range given to [WithHashRange]. KCL's rule applies: none of the
	// aggregate's user records were appended, because a KPL that put the
	// aggregate on a shard that does not own all of its keys (typically
	// around a reshard) also put it where those keys are owned.
	ErrOutOfRange = errors.New("deaggregate: user record outside the shard's hash key range")
)

// RecordError describes one input record that [Deaggregator.Append] passed
// through as malformed or dropped as out of range. It is what the function
// given to [WithErrorHandler] receives.
type RecordError struct {
	// SequenceNumber is the sequence number of the Kinesis record concerned.
	SequenceNumber string
	// Err wraps [ErrMalformed] or [ErrOutOfRange] and says what was wrong.
	Err error
}

// Error implements error.
func (e *RecordError) Error() string {
	if e.Err == nil {
		return "deaggregate: record " + e.SequenceNumber
	}
	msg, _ := strings.CutPrefix(e.Err.Error(), "deaggregate: ")
	return "deaggregate: record " + e.SequenceNumber + ": " + msg
}

// Unwrap returns Err.
func (e *RecordError) Unwrap() error { return e.Err }

// faultKind names what is wrong with an aggregate. It is an error so that a
// reported error wraps it and tests can branch on the exact reason.
type faultKind uint8

const (
	faultNone faultKind = iota
	faultTooShort
	faultChecksum
	faultSyntax
	faultWireType
	faultMissingPartitionKeyIndex
	faultMissingData
	faultMissingTagKey
	faultPartitionKeyIndex
	faultExplicitHashKeyIndex
	faultExplicitHashKey
	faultOutOfRange
)

var faultText = [...]string{
	faultNone:                     "no fault",
	faultTooShort:                 "too short for magic, protobuf message and MD5 digest",
	faultChecksum:                 "MD5 digest mismatch",
	faultSyntax:                   "unparsable protobuf",
	faultWireType:                 "wrong wire type",
	faultMissingPartitionKeyIndex: "missing required field partition_key_index",
	faultMissingData:              "missing required field data",
	faultMissingTagKey:            "missing required field Tag.key",
	faultPartitionKeyIndex:        "partition key index out of range",
	faultExplicitHashKeyIndex:     "explicit hash key index out of range",
	faultExplicitHashKey:          "explicit hash key is not a decimal number in [0, 2^128-1]",
	faultOutOfRange:               "effective hash key outside the shard's range",
}

func (k faultKind) Error() string {
	if int(k) < len(faultText) {
		return faultText[k]
	}
	return "fault " + strconv.Itoa(int(k))
}

// fault is what the decoder returns instead of an error, so that a malformed
// record costs no allocation unless someone asked to hear about it.
type fault struct {
	kind   faultKind
	record int         // index of the user record concerned; -1 for the aggregate itself
	field  string      // for faultWireType: the field, as Message.field
	index  uint64      // for index faults: the offending index
	size   int         // for index faults: the size of the table
	hash   hashkey.Key // for faultOutOfRange: the effective hash key
	cause  error       // for faultExplicitHashKey: the parse error
}

func (f fault) ok() bool { return f.kind == faultNone }

// faultError is the error built from a fault when it is reported.
type faultError struct{ f fault }

func (e *faultError) Error() string {
	var b strings.Builder
	if e.f.kind == faultOutOfRange {
		b.WriteString(ErrOutOfRange.Error())
	} else {
		b.WriteString(ErrMalformed.Error())
	}
	b.WriteString(": ")
	b.WriteString(e.f.kind.Error())
	if e.f.field != "" {
		b.WriteString(" for ")
		b.WriteString(e.f.field)
	}
	if e.f.record >= 0 {
		b.WriteString(": user record ")
		b.WriteString(strconv.Itoa(e.f.record))
	}
	switch e.f.kind {
	case faultPartitionKeyIndex, faultExplicitHashKeyIndex:
		b.WriteString(" has index ")
		b.WriteString(strconv.FormatUint(e.f.index, 10))
		b.WriteString(", table has ")
		b.WriteString(strconv.Itoa(e.f.size))
		b.WriteString(" entries")
	case faultExplicitHashKey:
		b.WriteString(": ")
		b.WriteString(e.f.cause.Error())
	case faultOutOfRange:
		b.WriteString(" has hash key ")
		b.WriteString(e.f.hash.String())
	}
	return b.String()
}

func (e *faultError) Unwrap() []error {
	top := ErrMalformed
	if e.f.kind == faultOutOfRange {
		top = ErrOutOfRange
	}
	if e.f.cause != nil {
		return []error{top, e.f.kind, e.f.cause}
	}
	return []error{top, e.f.kind}
}
