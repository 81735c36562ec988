package fakekinesis

import (
	"context"
	"math"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// Resharding takes effect at once: parents close, children open and the
// stream stays ACTIVE. A parent's EndingSequenceNumber is issued when it
// closes, so it is above all of its records and below its children's
// StartingSequenceNumber.

// maxUpdatesPerDay is how many UpdateShardCount calls AWS allows per stream
// in a rolling 24 hours.
const maxUpdatesPerDay = 10

// SplitShard closes ShardToSplit and opens two children, [start,
// NewStartingHashKey−1] and [NewStartingHashKey, end], both with
// ParentShardId = ShardToSplit. NewStartingHashKey must be above the
// shard's starting hash key and at most its ending one. Splitting a closed
// shard gives InvalidArgumentException.
func (f *Fake) SplitShard(ctx context.Context, in *kinesis.SplitShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error) {
	return run(ctx, f, "SplitShard", in, func(in *kinesis.SplitShardInput) (*kinesis.SplitShardOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		sh, err := s.shard(aws.ToString(in.ShardToSplit))
		if err != nil {
			return nil, err
		}
		if !sh.isOpen() {
			return nil, invalidArg("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for splitting.", sh.id, s.name, account)
		}
		at, err := hashkey.Parse(aws.ToString(in.NewStartingHashKey))
		if err != nil {
			return nil, invalidArg("NewStartingHashKey: %v", err)
		}
		if at.Compare(sh.rng.Start) <= 0 || at.Compare(sh.rng.End) > 0 {
			return nil, invalidArg("NewStartingHashKey %s must be in (%s, %s] of shard %s", at, sh.rng.Start, sh.rng.End, sh.id)
		}
		if f.totalOpen()+1 > f.opts.shardLimit {
			return nil, limitExceeded("This request would exceed the shard limit for the account %s (%d).", account, f.opts.shardLimit)
		}
		f.split(s, sh, at, time.Now())
		return &kinesis.SplitShardOutput{}, nil
	})
}

// split closes sh and opens its two children. f.mu is held.
func (f *Fake) split(s *stream, sh *shard, at hashkey.Key, now time.Time) {
	f.closeShard(s, sh, now)
	left := f.addShard(s, hashkey.Range{Start: sh.rng.Start, End: prev(at)}, sh.id, "", now)
	right := f.addShard(s, hashkey.Range{Start: at, End: sh.rng.End}, sh.id, "", now)
	sh.children = []string{left.id, right.id}
}

// MergeShards closes ShardToMerge and AdjacentShardToMerge, whose hash key
// ranges must be adjacent, and opens one child covering both, with
// ParentShardId = ShardToMerge and AdjacentParentShardId =
// AdjacentShardToMerge. Non-adjacent, identical or closed shards give
// InvalidArgumentException.
func (f *Fake) MergeShards(ctx context.Context, in *kinesis.MergeShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.MergeShardsOutput, error) {
	return run(ctx, f, "MergeShards", in, func(in *kinesis.MergeShardsInput) (*kinesis.MergeShardsOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		a, err := s.shard(aws.ToString(in.ShardToMerge))
		if err != nil {
			return nil, err
		}
		b, err := s.shard(aws.ToString(in.AdjacentShardToMerge))
		if err != nil {
			return nil, err
		}
		for _, sh := range []*shard{a, b} {
			if !sh.isOpen() {
				return nil, invalidArg("Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging.", sh.id, s.name, account)
			}
		}
		if !adjacent(a.rng, b.rng) {
			return nil, invalidArg("Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging.", a.id, b.id, s.name, account)
		}
		f.merge(s, a, b, time.Now())
		return &kinesis.MergeShardsOutput{}, nil
	})
}

// merge closes a and b and opens their child. f.mu is held.
func (f *Fake) merge(s *stream, a, b *shard, now time.Time) *shard {
	f.closeShard(s, a, now)
	f.closeShard(s, b, now)
	rng := hashkey.Range{Start: a.rng.Start, End: b.rng.End}
	if b.rng.Start.Compare(a.rng.Start) < 0 {
		rng = hashkey.Range{Start: b.rng.Start, End: a.rng.End}
	}
	c := f.addShard(s, rng, a.id, b.id, now)
	a.children = []string{c.id}
	b.children = []string{c.id}
	return c
}

// adjacent reports whether one range starts right after the other ends.
func adjacent(a, b hashkey.Range) bool {
	return (a.End != hashkey.Max && next(a.End) == b.Start) || (b.End != hashkey.Max && next(b.End) == a.Start)
}

// UpdateShardCount reshards the stream to TargetShardCount shards of equal
// hash key ranges (UNIFORM_SCALING, the only scaling type). As AWS, it
// refuses with LimitExceededException a target above twice or below half
// the open shard count, and an eleventh call for the stream in 24 hours.
//
// The new lineage is built from splits and merges, as AWS builds it: first
// every open shard that straddles a new boundary is split there (repeatedly
// if it straddles several, the intermediate children closing at once), then
// the pieces of each new range are merged left to right. So a child has
// either one parent (split) or two adjacent parents (merge), and a shard
// whose range is already a target range stays open. For example 2→4 splits
// each shard in two, and 4→2 merges each pair.
func (f *Fake) UpdateShardCount(ctx context.Context, in *kinesis.UpdateShardCountInput, optFns ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error) {
	return run(ctx, f, "UpdateShardCount", in, func(in *kinesis.UpdateShardCountInput) (*kinesis.UpdateShardCountOutput, error) {
		s, err := f.lookup(in.StreamName, in.StreamARN)
		if err != nil {
			return nil, err
		}
		if in.ScalingType != types.ScalingTypeUniformScaling {
			return nil, invalidArg("ScalingType %q is not valid; use UNIFORM_SCALING", in.ScalingType)
		}
		if in.TargetShardCount == nil || *in.TargetShardCount < 1 {
			return nil, invalidArg("TargetShardCount must be at least 1")
		}
		target, current := int(*in.TargetShardCount), s.openCount
		if target > 2*current || 2*target < current {
			return nil, limitExceeded("TargetShardCount %d must be between half and double the current shard count %d.", target, current)
		}
		if f.totalOpen()-current+target > f.opts.shardLimit {
			return nil, limitExceeded("This request would exceed the shard limit for the account %s (%d).", account, f.opts.shardLimit)
		}
		now := time.Now()
		recent := s.updates[:0]
		for _, t := range s.updates {
			if now.Sub(t) < 24*time.Hour {
				recent = append(recent, t)
			}
		}
		s.updates = recent
		if len(recent) >= maxUpdatesPerDay {
			return nil, limitExceeded("Stream %s under account %s has already been rescaled %d times in the last 24 hours.", s.name, account, maxUpdatesPerDay)
		}
		s.updates = append(s.updates, now)
		f.rescale(s, target, now)
		return &kinesis.UpdateShardCountOutput{
			StreamName:        aws.String(s.name),
			StreamARN:         aws.String(s.arn),
			CurrentShardCount: aws.Int32(int32(current)),
			TargetShardCount:  aws.Int32(int32(target)),
		}, nil
	})
}

// rescale reshapes the open shards into n uniform ranges. f.mu is held.
func (f *Fake) rescale(s *stream, n int, now time.Time) {
	ranges := uniformRanges(n)
	for _, r := range ranges[1:] {
		for _, sh := range s.openShards() {
			if sh.rng.Start.Compare(r.Start) < 0 && r.Start.Compare(sh.rng.End) <= 0 {
				f.split(s, sh, r.Start, now)
				break
			}
		}
	}
	open := s.openShards()
	for _, r := range ranges {
		var group []*shard
		for _, sh := range open {
			if r.Contains(sh.rng.Start) {
				group = append(group, sh)
			}
		}
		cur := group[0]
		for _, sh := range group[1:] {
			cur = f.merge(s, cur, sh, now)
		}
	}
}

// uniformRanges divides the hash key space into n ranges the way AWS does
// for a new stream: range i starts at i·⌊2^128/n⌋ and the last one ends at
// 2^128−1.
func uniformRanges(n int) []hashkey.Range {
	step := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
	out := make([]hashkey.Range, n)
	for i := range out {
		out[i].Start = fromBig(new(big.Int).Mul(step, big.NewInt(int64(i))))
		if i > 0 {
			out[i-1].End = prev(out[i].Start)
		}
	}
	out[n-1].End = hashkey.Max
	return out
}

func fromBig(b *big.Int) hashkey.Key {
	lo := new(big.Int).And(b, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
	return hashkey.Key{Hi: new(big.Int).Rsh(b, 64).Uint64(), Lo: lo}
}

// prev returns k−1; k must not be 0.
func prev(k hashkey.Key) hashkey.Key {
	if k.Lo == 0 {
		return hashkey.Key{Hi: k.Hi - 1, Lo: math.MaxUint64}
	}
	return hashkey.Key{Hi: k.Hi, Lo: k.Lo - 1}
}

// next returns k+1; k must not be [hashkey.Max].
func next(k hashkey.Key) hashkey.Key {
	if k.Lo == math.MaxUint64 {
		return hashkey.Key{Hi: k.Hi + 1}
	}
	return hashkey.Key{Hi: k.Hi, Lo: k.Lo + 1}
}
