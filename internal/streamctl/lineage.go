package streamctl

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// Errors of the checks made before a reshard, so that a bad request fails
// with a message naming what is wrong instead of Kinesis's.
var (
	// ErrNoShard: the stream has no shard with that id.
	ErrNoShard = errors.New("streamctl: no such shard")
	// ErrShardClosed: the shard was already split or merged.
	ErrShardClosed = errors.New("streamctl: shard is closed")
	// ErrNotAdjacent: the two shards' hash key ranges do not touch.
	ErrNotAdjacent = errors.New("streamctl: shards are not adjacent")
	// ErrScaleRange: UpdateShardCount's target is outside [½, 2×] of the
	// open shard count, or not positive.
	ErrScaleRange = errors.New("streamctl: shard count out of range")
	// ErrSplitPoint: the split point is not strictly inside the shard's
	// hash key range (or the range has no room to split).
	ErrSplitPoint = errors.New("streamctl: bad split point")
)

// Shard is one shard of a stream's lineage.
type Shard struct {
	ID string
	// Parent and AdjacentParent are the shards it came from, if any: a
	// split child has Parent, a merge child both.
	Parent, AdjacentParent string
	Range                  hashkey.Range
	// Open is true until the shard is split or merged.
	Open bool
	// StartingSequence and EndingSequence are its sequence number range;
	// EndingSequence is empty while it is open.
	StartingSequence, EndingSequence string
	// Children are the shards it was split or merged into, ordered by
	// hash key.
	Children []string
}

// Parents returns the ids of the shard's parents (zero, one or two).
func (s *Shard) Parents() []string {
	var p []string
	for _, id := range []string{s.Parent, s.AdjacentParent} {
		if id != "" {
			p = append(p, id)
		}
	}
	return p
}

// Share returns the fraction of the hash key space (0 to 1) the shard
// covers.
func (s *Shard) Share() float64 {
	return toFloat(s.Range.End) - toFloat(s.Range.Start) + oneKey
}

// oneKey is one hash key as a fraction of the key space.
var oneKey = math.Ldexp(1, -128)

// Position returns where k sits in the key space, from 0 to 1.
func Position(k hashkey.Key) float64 { return toFloat(k) }

func toFloat(k hashkey.Key) float64 {
	return math.Ldexp(float64(k.Hi), -64) + math.Ldexp(float64(k.Lo), -128)
}

// Lineage is a stream's shards, open and closed, with the links between
// parents and children.
type Lineage struct {
	// Shards are in ListShards order, which is creation order.
	Shards []*Shard
	byID   map[string]*Shard
}

// NewLineage builds the lineage of shards as ListShards returns them.
// Parents that are not in the list (expired past the retention period) are
// kept as ids but have no entry. Malformed hash key ranges are errors.
func NewLineage(shards []types.Shard) (*Lineage, error) {
	l := &Lineage{byID: make(map[string]*Shard, len(shards))}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		var r hashkey.Range
		if sh.HashKeyRange != nil {
			var err error
			if r, err = hashkey.ParseRange(aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)); err != nil {
				return nil, fmt.Errorf("streamctl: shard %s: %w", id, err)
			}
		}
		s := &Shard{ID: id, Parent: aws.ToString(sh.ParentShardId), AdjacentParent: aws.ToString(sh.AdjacentParentShardId), Range: r, Open: true}
		if sn := sh.SequenceNumberRange; sn != nil {
			s.StartingSequence = aws.ToString(sn.StartingSequenceNumber)
			// kinesis-mock ends closed shards at 2^63-1 (smaller than real
			// sequence numbers): the field's presence is what says closed.
			if sn.EndingSequenceNumber != nil {
				s.Open = false
				s.EndingSequence = *sn.EndingSequenceNumber
			}
		}
		l.Shards = append(l.Shards, s)
		l.byID[id] = s
	}
	for _, s := range l.Shards {
		for _, p := range s.Parents() {
			if ps, ok := l.byID[p]; ok {
				ps.Children = append(ps.Children, s.ID)
			}
		}
	}
	for _, s := range l.Shards {
		slices.SortFunc(s.Children, func(a, b string) int { return l.byID[a].Range.Start.Compare(l.byID[b].Range.Start) })
	}
	return l, nil
}

// Shard returns the shard with id, or nil.
func (l *Lineage) Shard(id string) *Shard { return l.byID[id] }

// Roots returns the shards whose parents are not in the lineage (the
// stream's first shards, or the oldest still listed), ordered by hash key.
func (l *Lineage) Roots() []*Shard {
	var roots []*Shard
	for _, s := range l.Shards {
		known := false
		for _, p := range s.Parents() {
			if l.byID[p] != nil {
				known = true
			}
		}
		if !known {
			roots = append(roots, s)
		}
	}
	slices.SortStableFunc(roots, func(a, b *Shard) int { return a.Range.Start.Compare(b.Range.Start) })
	return roots
}

// Open returns the open shards ordered by hash key.
func (l *Lineage) Open() []*Shard {
	var open []*Shard
	for _, s := range l.Shards {
		if s.Open {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b *Shard) int { return a.Range.Start.Compare(b.Range.Start) })
	return open
}

// openShard returns the open shard id, or ErrNoShard or ErrShardClosed.
func (l *Lineage) openShard(id string) (*Shard, error) {
	s := l.byID[id]
	switch {
	case s == nil:
		return nil, fmt.Errorf("%w: %s", ErrNoShard, id)
	case !s.Open:
		return nil, fmt.Errorf("%w: %s was split or merged into %v", ErrShardClosed, id, s.Children)
	}
	return s, nil
}

// CheckMerge returns the two shards in hash key order if a and b are open
// and adjacent, else an error wrapping ErrNoShard, ErrShardClosed or
// ErrNotAdjacent.
func (l *Lineage) CheckMerge(a, b string) (lo, hi *Shard, err error) {
	sa, err := l.openShard(a)
	if err != nil {
		return nil, nil, err
	}
	sb, err := l.openShard(b)
	if err != nil {
		return nil, nil, err
	}
	if sa.Range.Start.Compare(sb.Range.Start) > 0 {
		sa, sb = sb, sa
	}
	if next(sa.Range.End) != sb.Range.Start || sa.Range.End == hashkey.Max {
		return nil, nil, fmt.Errorf("%w: %s ends at %s, %s starts at %s", ErrNotAdjacent, sa.ID, sa.Range.End, sb.ID, sb.Range.Start)
	}
	return sa, sb, nil
}

// SplitPoint returns the NewStartingHashKey for splitting shard id: at,
// when given, must be strictly inside its range (above its start, at most
// its end); nil means the middle of the range.
func (l *Lineage) SplitPoint(id string, at *hashkey.Key) (hashkey.Key, error) {
	s, err := l.openShard(id)
	if err != nil {
		return hashkey.Key{}, err
	}
	if at == nil {
		if s.Range.Start == s.Range.End {
			return hashkey.Key{}, fmt.Errorf("%w: %s covers a single hash key", ErrSplitPoint, id)
		}
		return mid(s.Range.Start, s.Range.End), nil
	}
	if at.Compare(s.Range.Start) <= 0 || at.Compare(s.Range.End) > 0 {
		return hashkey.Key{}, fmt.Errorf("%w: %s is not inside %s's range %s..%s", ErrSplitPoint, at, id, s.Range.Start, s.Range.End)
	}
	return *at, nil
}

// CheckScale returns nil if UpdateShardCount from open to target shards is
// allowed: Kinesis accepts at most double and at least half the current
// count of open shards (rounded up).
func CheckScale(open, target int) error {
	switch {
	case target <= 0:
		return fmt.Errorf("%w: %d is not a positive number of shards", ErrScaleRange, target)
	case target > 2*open:
		return fmt.Errorf("%w: %d is more than double the %d open shards (at most %d)", ErrScaleRange, target, open, 2*open)
	case 2*target < open:
		return fmt.Errorf("%w: %d is less than half the %d open shards (at least %d)", ErrScaleRange, target, open, (open+1)/2)
	}
	return nil
}

// next returns k+1 (wrapping at Max).
func next(k hashkey.Key) hashkey.Key {
	lo, c := bits.Add64(k.Lo, 1, 0)
	return hashkey.Key{Hi: k.Hi + c, Lo: lo}
}

// mid returns the first key of the upper half of [lo, hi]: (lo+hi+1)/2,
// which is above lo whenever hi > lo.
func mid(lo, hi hashkey.Key) hashkey.Key {
	sLo, c := bits.Add64(lo.Lo, hi.Lo, 1)
	sHi, top := bits.Add64(lo.Hi, hi.Hi, c)
	// Shift the 129-bit sum top:sHi:sLo right by one.
	return hashkey.Key{Hi: sHi>>1 | top<<63, Lo: sLo>>1 | sHi<<63}
}
