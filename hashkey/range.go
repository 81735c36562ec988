package hashkey

import (
	"errors"
	"fmt"
)

// ErrInvalidRange is wrapped by the error [ParseRange] returns when the
// start of a range is greater than its end.
var ErrInvalidRange = errors.New("hashkey: invalid hash key range")

// Range is an inclusive range of hash keys, such as the HashKeyRange of a
// shard. A Range whose Start is greater than its End contains no key.
type Range struct{ Start, End Key }

// ParseRange parses the decimal bounds of a hash key range as ListShards
// returns them (StartingHashKey, EndingHashKey). It returns an error wrapping
// [ErrInvalid] when a bound does not parse and one wrapping [ErrInvalidRange]
// when start is greater than end.
func ParseRange(start, end string) (Range, error) {
	s, err := Parse(start)
	if err != nil {
		return Range{}, fmt.Errorf("%w (range start)", err)
	}
	e, err := Parse(end)
	if err != nil {
		return Range{}, fmt.Errorf("%w (range end)", err)
	}
	if s.Compare(e) > 0 {
		return Range{}, fmt.Errorf("%w: start %s is greater than end %s", ErrInvalidRange, start, end)
	}
	return Range{Start: s, End: e}, nil
}

// Contains reports whether Start <= k <= End.
func (r Range) Contains(k Key) bool {
	return r.Start.Compare(k) <= 0 && k.Compare(r.End) <= 0
}
