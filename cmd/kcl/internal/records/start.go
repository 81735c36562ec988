package records

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// StartKind is where a [Tailer] starts reading.
type StartKind int

// Start kinds.
const (
	FromLatest StartKind = iota + 1
	FromTrimHorizon
	FromTime
	FromSequence
)

// Start is a starting position: latest, trim horizon, a time or a
// sequence number.
type Start struct {
	Kind     StartKind
	Time     time.Time // FromTime
	Sequence string    // FromSequence
}

// ErrBadStart is wrapped by ParseStart's errors.
var ErrBadStart = errors.New("bad start position")

// ParseStart parses "latest", "trim-horizon", an RFC 3339 time or a
// sequence number (decimal digits, at most 128 of them).
func ParseStart(s string) (Start, error) {
	switch strings.ToLower(s) {
	case "latest":
		return Start{Kind: FromLatest}, nil
	case "trim-horizon", "trim_horizon":
		return Start{Kind: FromTrimHorizon}, nil
	case "":
		return Start{}, fmt.Errorf("%w: empty (want latest, trim-horizon, an RFC 3339 time or a sequence number)", ErrBadStart)
	}
	if allDigits(s) {
		if len(s) > 128 {
			return Start{}, fmt.Errorf("%w: sequence number %.20s... has %d digits, at most 128", ErrBadStart, s, len(s))
		}
		return Start{Kind: FromSequence, Sequence: s}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Start{}, fmt.Errorf("%w: %q is not latest, trim-horizon, an RFC 3339 time (2006-01-02T15:04:05Z) or a sequence number", ErrBadStart, s)
	}
	return Start{Kind: FromTime, Time: t}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String returns the form ParseStart reads.
func (s Start) String() string {
	switch s.Kind {
	case FromLatest:
		return "latest"
	case FromTrimHorizon:
		return "trim-horizon"
	case FromTime:
		return s.Time.Format(time.RFC3339Nano)
	case FromSequence:
		return s.Sequence
	}
	return fmt.Sprintf("StartKind(%d)", int(s.Kind))
}
