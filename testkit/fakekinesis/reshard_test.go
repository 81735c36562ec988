package fakekinesis

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

func rangeOf(t *testing.T, h *types.HashKeyRange) hashkey.Range {
	t.Helper()
	r, err := hashkey.ParseRange(*h.StartingHashKey, *h.EndingHashKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func shardByID(t *testing.T, shards []types.Shard, id string) types.Shard {
	t.Helper()
	for _, sh := range shards {
		if *sh.ShardId == id {
			return sh
		}
	}
	t.Fatalf("no shard %s", id)
	return types.Shard{}
}

// checkLineage checks the invariants every reshard must keep: open shards
// tile the hash key space; each child has one parent or two adjacent ones
// whose ranges together are exactly its own (a split child lies inside its
// parent); a closed shard's EndingSequenceNumber is above its records and
// below its children's StartingSequenceNumber.
func checkLineage(t *testing.T, f *Fake, streamName string) {
	t.Helper()
	shards := f.Shards(streamName)
	var open []hashkey.Range
	for _, sh := range shards {
		rng := rangeOf(t, sh.HashKeyRange)
		start := bigSeq(t, *sh.SequenceNumberRange.StartingSequenceNumber)
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, rng)
		} else {
			end := bigSeq(t, *sh.SequenceNumberRange.EndingSequenceNumber)
			for _, r := range f.Records(streamName, *sh.ShardId) {
				if bigSeq(t, *r.SequenceNumber).Cmp(end) >= 0 {
					t.Errorf("%s: record %s not below EndingSequenceNumber %s", *sh.ShardId, *r.SequenceNumber, end)
				}
			}
		}
		if sh.ParentShardId == nil {
			if sh.AdjacentParentShardId != nil {
				t.Errorf("%s: adjacent parent without parent", *sh.ShardId)
			}
			continue
		}
		parents := []*string{sh.ParentShardId}
		if sh.AdjacentParentShardId != nil {
			parents = append(parents, sh.AdjacentParentShardId)
		}
		var prs []hashkey.Range
		for _, id := range parents {
			p := shardByID(t, shards, *id)
			if p.SequenceNumberRange.EndingSequenceNumber == nil {
				t.Errorf("%s: parent %s is still open", *sh.ShardId, *id)
				continue
			}
			if bigSeq(t, *p.SequenceNumberRange.EndingSequenceNumber).Cmp(start) >= 0 {
				t.Errorf("%s: parent %s ends at %s, not below the child's start %s", *sh.ShardId, *id, *p.SequenceNumberRange.EndingSequenceNumber, start)
			}
			prs = append(prs, rangeOf(t, p.HashKeyRange))
		}
		switch len(prs) {
		case 1:
			if !prs[0].Contains(rng.Start) || !prs[0].Contains(rng.End) {
				t.Errorf("%s: range %v not inside parent's %v", *sh.ShardId, rng, prs[0])
			}
		case 2:
			if !adjacent(prs[0], prs[1]) {
				t.Errorf("%s: parents %v and %v are not adjacent", *sh.ShardId, prs[0], prs[1])
			}
			lo, hi := prs[0], prs[1]
			if hi.Start.Compare(lo.Start) < 0 {
				lo, hi = hi, lo
			}
			if lo.Start != rng.Start || hi.End != rng.End {
				t.Errorf("%s: range %v is not the union of its parents %v and %v", *sh.ShardId, rng, lo, hi)
			}
		}
	}
	slices.SortFunc(open, func(a, b hashkey.Range) int { return a.Start.Compare(b.Start) })
	if len(open) == 0 || open[0].Start != (hashkey.Key{}) || open[len(open)-1].End != hashkey.Max {
		t.Fatalf("open shards %v do not span the hash key space", open)
	}
	for i := 1; i < len(open); i++ {
		if !adjacent(open[i-1], open[i]) {
			t.Fatalf("open shards %v and %v leave a gap or overlap", open[i-1], open[i])
		}
	}
}

func TestSplitThenMergeReadsAcrossParentsAndChildren(t *testing.T) {
	ctx := t.Context()
	f := New(WithStream("s", 1))
	name := aws.String("s")
	for i := range 5 {
		f.Put("s", fmt.Sprint("before-", i), []byte("p"))
	}
	// Split shard 0 at 2^127: children 1 = [0, 2^127-1], 2 = [2^127, max].
	if _, err := f.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	for i := range 20 {
		f.Put("s", fmt.Sprint("between-", i), []byte("c"))
	}
	recs, last := readShard(t, f, "s", "shardId-000000000000")
	if len(recs) != 5 {
		t.Fatalf("parent: read %d records, want 5", len(recs))
	}
	want := []types.ChildShard{
		{ShardId: aws.String("shardId-000000000001"), ParentShards: []string{"shardId-000000000000"}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("170141183460469231731687303715884105727")}},
		{ShardId: aws.String("shardId-000000000002"), ParentShards: []string{"shardId-000000000000"}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(half), EndingHashKey: aws.String(hashkey.Max.String())}},
	}
	if got, wantS := fmt.Sprint(childShardsString(last.ChildShards)), fmt.Sprint(childShardsString(want)); got != wantS {
		t.Fatalf("ChildShards = %s\nwant %s", got, wantS)
	}
	n1, _ := readShard(t, f, "s", "shardId-000000000001")
	n2, _ := readShard(t, f, "s", "shardId-000000000002")
	if len(n1)+len(n2) != 20 {
		t.Fatalf("children hold %d+%d records, want 20", len(n1), len(n2))
	}

	// Merge the children back; the merge child names both as parents.
	if _, err := f.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	f.Put("s", "after", []byte("m"))
	for _, id := range []string{"shardId-000000000001", "shardId-000000000002"} {
		_, last := readShard(t, f, "s", id)
		want := types.ChildShard{ShardId: aws.String("shardId-000000000003"), ParentShards: []string{"shardId-000000000002", "shardId-000000000001"}, HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(hashkey.Max.String())}}
		if got := childShardsString(last.ChildShards); got != childShardsString([]types.ChildShard{want}) {
			t.Fatalf("%s: ChildShards = %s", id, got)
		}
	}
	merged := shardByID(t, f.Shards("s"), "shardId-000000000003")
	if *merged.ParentShardId != "shardId-000000000002" || *merged.AdjacentParentShardId != "shardId-000000000001" {
		t.Fatalf("merge child parents = %s, %s", *merged.ParentShardId, *merged.AdjacentParentShardId)
	}
	if recs, _ := readShard(t, f, "s", "shardId-000000000003"); len(recs) != 1 {
		t.Fatalf("merge child: %d records, want 1", len(recs))
	}
	checkLineage(t, f, "s")

	// A closed shard read from LATEST ends at once with its children.
	it, err := f.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || out.NextShardIterator != nil || len(out.ChildShards) != 2 || len(out.Records) != 0 {
		t.Fatalf("LATEST on a closed shard = %+v, %v", out, err)
	}
}

func childShardsString(cs []types.ChildShard) string {
	var s string
	for _, c := range cs {
		s += fmt.Sprintf("{%s %v [%s,%s]}", *c.ShardId, c.ParentShards, *c.HashKeyRange.StartingHashKey, *c.HashKeyRange.EndingHashKey)
	}
	return s
}

func TestUpdateShardCountLineage(t *testing.T) {
	ctx := t.Context()
	f := New(WithStream("s", 2))
	update := func(n int32) {
		t.Helper()
		out, err := f.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			t.Fatalf("UpdateShardCount(%d): %v", n, err)
		}
		if *out.TargetShardCount != n {
			t.Fatalf("TargetShardCount = %d", *out.TargetShardCount)
		}
		checkLineage(t, f, "s")
	}
	lineage := func() []string {
		var out []string
		for _, sh := range f.Shards("s") {
			s := *sh.ShardId
			if sh.ParentShardId != nil {
				s += " <- " + *sh.ParentShardId
			}
			if sh.AdjacentParentShardId != nil {
				s += " + " + *sh.AdjacentParentShardId
			}
			if sh.SequenceNumberRange.EndingSequenceNumber == nil {
				s += " open"
			}
			out = append(out, s)
		}
		return out
	}
	update(4)
	update(2)
	want := []string{
		"shardId-000000000000",
		"shardId-000000000001",
		"shardId-000000000002 <- shardId-000000000000",
		"shardId-000000000003 <- shardId-000000000000",
		"shardId-000000000004 <- shardId-000000000001",
		"shardId-000000000005 <- shardId-000000000001",
		"shardId-000000000006 <- shardId-000000000002 + shardId-000000000003 open",
		"shardId-000000000007 <- shardId-000000000004 + shardId-000000000005 open",
	}
	if got := lineage(); !slices.Equal(got, want) {
		t.Fatalf("lineage:\n%q\nwant\n%q", got, want)
	}
	// Final ranges equal the original ones.
	if got := f.Shards("s"); *got[6].HashKeyRange.EndingHashKey != "170141183460469231731687303715884105727" || *got[7].HashKeyRange.StartingHashKey != half {
		t.Fatalf("ranges after 2→4→2: %v %v", got[6].HashKeyRange, got[7].HashKeyRange)
	}
}

func TestUpdateShardCountNonUniformSteps(t *testing.T) {
	// Counts whose boundaries do not line up need intermediate shards; every
	// step must keep the lineage invariants and end uniform.
	for _, steps := range [][]int32{{3, 5}, {5, 3}, {3, 6, 4, 7, 4}, {1, 2, 3, 2, 1}} {
		t.Run(fmt.Sprint(steps), func(t *testing.T) {
			f := New(WithStream("s", int(steps[0])))
			f.Put("s", "k", nil)
			for _, n := range steps[1:] {
				if _, err := f.UpdateShardCount(t.Context(), &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
					t.Fatalf("UpdateShardCount(%d): %v", n, err)
				}
				checkLineage(t, f, "s")
				want := uniformRanges(int(n))
				var got []hashkey.Range
				for _, sh := range f.Shards("s") {
					if sh.SequenceNumberRange.EndingSequenceNumber == nil {
						got = append(got, rangeOf(t, sh.HashKeyRange))
					}
				}
				slices.SortFunc(got, func(a, b hashkey.Range) int { return a.Start.Compare(b.Start) })
				if !slices.Equal(got, want) {
					t.Fatalf("open ranges after %d: %v, want %v", n, got, want)
				}
			}
		})
	}
}

func TestReshardRejects(t *testing.T) {
	type call func(f *Fake) error
	split := func(id, key string) call {
		return func(f *Fake) error {
			_, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String(id), NewStartingHashKey: aws.String(key)})
			return err
		}
	}
	merge := func(a, b string) call {
		return func(f *Fake) error {
			_, err := f.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String(a), AdjacentShardToMerge: aws.String(b)})
			return err
		}
	}
	update := func(n int32, st types.ScalingType) call {
		return func(f *Fake) error {
			_, err := f.UpdateShardCount(t.Context(), &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(n), ScalingType: st})
			return err
		}
	}
	const s0, s1, s2 = "shardId-000000000000", "shardId-000000000001", "shardId-000000000002"
	for _, tc := range []struct {
		name    string
		setup   []call
		call    call
		wantErr func(error) bool
	}{
		{name: "splitting at the shard's first key is invalid", call: split(s0, "0"), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "splitting beyond the shard's range is invalid", call: split(s0, half), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "splitting at a non-number is invalid", call: split(s0, "half"), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "splitting an unknown shard is not found", call: split("shardId-000000000099", "1"), wantErr: isErr[*types.ResourceNotFoundException]},
		{name: "splitting a closed shard is invalid", setup: []call{split(s0, "1")}, call: split(s0, "2"), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "splitting past the shard limit is refused", setup: []call{split(s0, "1")}, call: split("shardId-000000000003", "2"), wantErr: isErr[*types.LimitExceededException]},
		{name: "merging non-adjacent shards is invalid", setup: []call{split(s0, "1")}, call: merge(s2, s1), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "merging a shard with itself is invalid", call: merge(s0, s0), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "merging a closed shard is invalid", setup: []call{split(s0, "1")}, call: merge(s0, s1), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "merging an unknown shard is not found", call: merge(s0, "shardId-000000000099"), wantErr: isErr[*types.ResourceNotFoundException]},
		{name: "merging the ends of the hash space is invalid", setup: []call{update(3, types.ScalingTypeUniformScaling)}, call: merge(s2, "shardId-000000000005"), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "scaling above double is refused", call: update(5, types.ScalingTypeUniformScaling), wantErr: isErr[*types.LimitExceededException]},
		{name: "scaling below half is refused", setup: []call{update(4, types.ScalingTypeUniformScaling)}, call: update(1, types.ScalingTypeUniformScaling), wantErr: isErr[*types.LimitExceededException]},
		{name: "scaling needs UNIFORM_SCALING", call: update(3, ""), wantErr: isErr[*types.InvalidArgumentException]},
		{name: "an eleventh rescale in a day is refused", setup: []call{update(3, types.ScalingTypeUniformScaling), update(2, types.ScalingTypeUniformScaling), update(3, types.ScalingTypeUniformScaling), update(2, types.ScalingTypeUniformScaling), update(3, types.ScalingTypeUniformScaling), update(2, types.ScalingTypeUniformScaling), update(3, types.ScalingTypeUniformScaling), update(2, types.ScalingTypeUniformScaling), update(3, types.ScalingTypeUniformScaling), update(2, types.ScalingTypeUniformScaling)}, call: update(3, types.ScalingTypeUniformScaling), wantErr: isErr[*types.LimitExceededException]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := 4
			if tc.name == "splitting past the shard limit is refused" {
				limit = 3
			}
			f := New(WithStream("s", 2), WithShardLimit(limit))
			for i, c := range tc.setup {
				if err := c(f); err != nil {
					t.Fatalf("setup %d: %v", i, err)
				}
			}
			before := len(f.Shards("s"))
			if err := tc.call(f); !tc.wantErr(err) {
				t.Fatalf("error = %v, want a different type", err)
			}
			if len(f.Shards("s")) != before {
				t.Fatal("a refused call changed the shards")
			}
		})
	}
}

func TestShardEndShapes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		pages []string // per response: record count, then "end" or "more"
	}{
		{name: "by default the last records come with the shard end", pages: []string{"3 end"}},
		{name: "WithEmptyShardEnd sends the shard end in an empty response", opts: []Option{WithEmptyShardEnd()}, pages: []string{"3 more", "0 end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(append(tc.opts, WithStream("s", 1))...)
			for range 3 {
				f.Put("s", "k", nil)
			}
			if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
				t.Fatal(err)
			}
			it, err := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			iter := it.ShardIterator
			var got []string
			for iter != nil && len(got) < 5 {
				out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					t.Fatal(err)
				}
				state := "more"
				if out.NextShardIterator == nil && len(out.ChildShards) == 2 {
					state = "end"
				}
				got = append(got, fmt.Sprint(len(out.Records), " ", state))
				iter = out.NextShardIterator
			}
			if !slices.Equal(got, tc.pages) {
				t.Fatalf("responses %q, want %q", got, tc.pages)
			}
		})
	}
}

func TestSequenceNumbersOfClosedShards(t *testing.T) {
	ctx := t.Context()
	f := New(WithStream("s", 1))
	_, parentSeq := f.Put("s", "k", nil)
	if _, err := f.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
		t.Fatal(err)
	}
	_, childSeq := f.Put("s", "k", nil)
	parent := f.Shards("s")[0]
	end := *parent.SequenceNumberRange.EndingSequenceNumber
	if bigSeq(t, end).Cmp(bigSeq(t, parentSeq)) <= 0 || bigSeq(t, end).Cmp(bigSeq(t, childSeq)) >= 0 {
		t.Fatalf("EndingSequenceNumber %s not between the parent's last record %s and the child's first %s", end, parentSeq, childSeq)
	}
	at := func(seq string) (*kinesis.GetRecordsOutput, error) {
		it, err := f.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: parent.ShardId, ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq)})
		if err != nil {
			return nil, err
		}
		return f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	}
	if out, err := at(end); err != nil || len(out.Records) != 0 || out.ChildShards == nil {
		t.Fatalf("AT_SEQUENCE_NUMBER of the EndingSequenceNumber = %+v, %v; want the shard end", out, err)
	}
	if _, err := at(childSeq); !isErr[*types.InvalidArgumentException](err) {
		t.Fatalf("a child's sequence number on the parent: error = %v, want InvalidArgumentException", err)
	}
}

func TestGetRecordsStopsAtTenMiB(t *testing.T) {
	f := New(WithStream("s", 1))
	for range 12 {
		f.Put("s", "k", make([]byte, MaxRecordBytes-1))
	}
	it, _ := f.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	out, err := f.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 10 {
		t.Fatalf("GetRecords = %d records, %v; want the 10 that fit in 10 MiB", len(out.Records), err)
	}
}
