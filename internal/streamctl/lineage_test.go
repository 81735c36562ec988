package streamctl

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

func shard(id, parent, adjacent, start, end string, closed bool) types.Shard {
	sh := types.Shard{
		ShardId:             aws.String(id),
		HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
		SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
	}
	if parent != "" {
		sh.ParentShardId = aws.String(parent)
	}
	if adjacent != "" {
		sh.AdjacentParentShardId = aws.String(adjacent)
	}
	if closed {
		sh.SequenceNumberRange.EndingSequenceNumber = aws.String("9223372036854775807")
	}
	return sh
}

const (
	half    = "170141183460469231731687303715884105728" // 2^127
	halfM1  = "170141183460469231731687303715884105727"
	maxKey  = "340282366920938463463374607431768211455"
	quarter = "85070591730234615865843651857942052864" // 2^126
)

// split0 is a one-shard stream whose shard 0 was split in two halves, and
// whose halves were merged back into shard 3.
var split0 = []types.Shard{
	shard("s0", "", "", "0", maxKey, true),
	shard("s1", "s0", "", "0", halfM1, true),
	shard("s2", "s0", "", half, maxKey, true),
	shard("s3", "s1", "s2", "0", maxKey, false),
}

func TestLineageLinksParentsAndChildren(t *testing.T) {
	l, err := NewLineage(split0)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Shard("s0").Children; !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("children of s0 = %v, want [s1 s2]", got)
	}
	if got := l.Shard("s2").Children; !slices.Equal(got, []string{"s3"}) {
		t.Errorf("children of s2 = %v, want [s3]", got)
	}
	if got := l.Shard("s3").Parents(); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("parents of s3 = %v", got)
	}
	if roots := l.Roots(); len(roots) != 1 || roots[0].ID != "s0" {
		t.Errorf("roots = %v, want [s0]", roots)
	}
	if open := l.Open(); len(open) != 1 || open[0].ID != "s3" {
		t.Errorf("open = %v, want [s3]", open)
	}
	if got := l.Shard("s1").Share(); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("share of s1 = %v, want 0.5", got)
	}
	if got := l.Shard("s0").Share(); math.Abs(got-1) > 1e-12 {
		t.Errorf("share of s0 = %v, want 1", got)
	}
}

func TestLineageRootsIncludeShardsWhoseParentsExpired(t *testing.T) {
	l, err := NewLineage(split0[1:])
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range l.Roots() {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Errorf("roots = %v, want [s1 s2]", ids)
	}
}

func TestCheckMerge(t *testing.T) {
	three := []types.Shard{
		shard("a", "", "", "0", quarter, false),
		shard("b", "", "", "85070591730234615865843651857942052865", halfM1, false),
		shard("c", "", "", half, maxKey, false),
		shard("old", "", "", "0", maxKey, true),
	}
	l, err := NewLineage(three)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, a, b string
		want       error
	}{
		{"adjacent shards merge", "a", "b", nil},
		{"adjacent shards given high first merge", "c", "b", nil},
		{"shards that do not touch are refused", "a", "c", ErrNotAdjacent},
		{"an unknown shard is named", "a", "zz", ErrNoShard},
		{"a closed shard is refused", "old", "a", ErrShardClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			lo, hi, err := l.CheckMerge(c.a, c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("CheckMerge(%s, %s) = %v, want %v", c.a, c.b, err, c.want)
			}
			if err == nil && lo.Range.Start.Compare(hi.Range.Start) >= 0 {
				t.Errorf("CheckMerge returned %s before %s", lo.ID, hi.ID)
			}
		})
	}
}

func TestSplitPoint(t *testing.T) {
	l, err := NewLineage([]types.Shard{
		shard("all", "", "", "0", maxKey, false),
		shard("one", "", "", "5", "5", false),
		shard("two", "", "", "5", "6", false),
	})
	if err != nil {
		t.Fatal(err)
	}
	key := func(s string) *hashkey.Key {
		k, err := hashkey.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return &k
	}
	for _, c := range []struct {
		name, id string
		at       *hashkey.Key
		want     string
		err      error
	}{
		{"half of the whole key space is 2^127", "all", nil, half, nil},
		{"half of a two-key range is its upper key", "two", nil, "6", nil},
		{"a given key inside the range is used", "all", key("1000"), "1000", nil},
		{"the range's start would leave an empty child", "all", key("0"), "", ErrSplitPoint},
		{"a key past the range is refused", "two", key("7"), "", ErrSplitPoint},
		{"a one-key range cannot be split", "one", nil, "", ErrSplitPoint},
		{"an unknown shard is named", "nope", nil, "", ErrNoShard},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := l.SplitPoint(c.id, c.at)
			if !errors.Is(err, c.err) {
				t.Fatalf("SplitPoint = %v, want %v", err, c.err)
			}
			if err == nil && got.String() != c.want {
				t.Errorf("SplitPoint = %s, want %s", got, c.want)
			}
		})
	}
}

func TestCheckScale(t *testing.T) {
	for _, c := range []struct {
		name         string
		open, target int
		ok           bool
	}{
		{"doubling is allowed", 4, 8, true},
		{"more than double is refused", 4, 9, false},
		{"halving is allowed", 4, 2, true},
		{"less than half is refused", 4, 1, false},
		{"half of an odd count rounds up", 5, 3, true},
		{"below half of an odd count is refused", 5, 2, false},
		{"zero is refused", 1, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckScale(c.open, c.target)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrScaleRange)) {
				t.Errorf("CheckScale(%d, %d) = %v, want ok=%v", c.open, c.target, err, c.ok)
			}
		})
	}
}
