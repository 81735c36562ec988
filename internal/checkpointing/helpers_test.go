package checkpointing

import (
	"testing"

	"github.com/kclgo/kcl/checkpoint"
)

// Short names for the checkpoint package's identifiers, which the tests use
// on nearly every line.
type (
	Position   = checkpoint.Position
	ParseError = checkpoint.ParseError
)

var (
	TrimHorizon        = checkpoint.TrimHorizon
	Latest             = checkpoint.Latest
	AtTimestamp        = checkpoint.AtTimestamp
	ShardEnd           = checkpoint.ShardEnd
	ErrInvalid         = checkpoint.ErrInvalid
	ErrBeforeLast      = checkpoint.ErrBeforeLast
	ErrBeyondDelivered = checkpoint.ErrBeyondDelivered
)

var _ Writer = (*recorder)(nil)

// kinesisSeq is a sequence number as Kinesis writes it today (56 digits).
const kinesisSeq = "49590338271490256608559692538361571095921575989136588898"

// mustAt returns the record position, failing the test if it is invalid.
func mustAt(t testing.TB, seq string, sub uint64) Position {
	t.Helper()
	p, err := checkpoint.At(seq, sub)
	if err != nil {
		t.Fatalf("At(%q, %d): %v", seq, sub, err)
	}
	return p
}
