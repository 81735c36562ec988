package fakekinesis

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// listAll pages through ListShards with page size max and returns the
// short shard numbers ("0", "1", ...) in order.
func listAll(t *testing.T, f *Fake, first kinesis.ListShardsInput, pageSize int32) []string {
	t.Helper()
	first.MaxResults = aws.Int32(pageSize)
	in := &first
	var ids []string
	for range 100 {
		out, err := f.ListShards(t.Context(), in)
		if err != nil {
			t.Fatalf("ListShards: %v", err)
		}
		if len(out.Shards) > int(pageSize) {
			t.Fatalf("page of %d shards exceeds MaxResults %d", len(out.Shards), pageSize)
		}
		for _, sh := range out.Shards {
			var n int
			fmt.Sscanf(*sh.ShardId, "shardId-%d", &n)
			ids = append(ids, fmt.Sprint(n))
		}
		if out.NextToken == nil {
			return ids
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(pageSize)}
	}
	t.Fatal("ListShards did not finish")
	return nil
}

// reshardHistory builds, from synctest's start T0:
//
//	T0     create 0 = [0, 2^127-1] and 1 = [2^127, max]
//	T0+1h  split 0 at 2^126 into 2 and 3
//	T0+2h  merge 3 and 1 into 4
//
// and leaves the clock at T0+2h.
func reshardHistory(t *testing.T) (*Fake, time.Time) {
	t.Helper()
	t0 := time.Now()
	f := New(WithStream("s", 2))
	time.Sleep(time.Hour)
	if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour)
	if _, err := f.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	return f, t0
}

func TestListShardsFiltersAndPages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wait   time.Duration // after the history, before listing
		filter func(t0 time.Time) *types.ShardFilter
		start  string // ExclusiveStartShardId
		want   []string
	}{
		{name: "no filter lists every shard", want: []string{"0", "1", "2", "3", "4"}},
		{name: "FROM_TRIM_HORIZON lists every shard the fake keeps", filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}
		}, want: []string{"0", "1", "2", "3", "4"}},
		{name: "AT_LATEST lists the open shards", filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}
		}, want: []string{"2", "4"}},
		{name: "AT_TRIM_HORIZON of a young stream lists the first shards", filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}
		}, want: []string{"0", "1"}},
		{name: "AT_TRIM_HORIZON 24h30m after creation lists the shards open half an hour in", wait: 22*time.Hour + 30*time.Minute, filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}
		}, want: []string{"0", "1"}},
		{name: "AT_TRIM_HORIZON 25h30m after creation lists the shards open at 1h30m", wait: 23*time.Hour + 30*time.Minute, filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}
		}, want: []string{"1", "2", "3"}},
		{name: "AT_TIMESTAMP lists the shards open then", filter: func(t0 time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t0.Add(90 * time.Minute))}
		}, want: []string{"1", "2", "3"}},
		{name: "AT_TIMESTAMP at a reshard includes parents and children", filter: func(t0 time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t0.Add(time.Hour))}
		}, want: []string{"0", "1", "2", "3"}},
		{name: "AT_TIMESTAMP before the stream is corrected to the trim horizon", filter: func(t0 time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t0.Add(-time.Hour))}
		}, want: []string{"0", "1"}},
		{name: "FROM_TIMESTAMP lists shards closed since then and open ones", filter: func(t0 time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t0.Add(90 * time.Minute))}
		}, want: []string{"1", "2", "3", "4"}},
		{name: "FROM_TIMESTAMP before the stream lists every shard", filter: func(t0 time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t0.Add(-time.Hour))}
		}, want: []string{"0", "1", "2", "3", "4"}},
		{name: "AFTER_SHARD_ID lists the shards after it", filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000001")}
		}, want: []string{"2", "3", "4"}},
		{name: "ExclusiveStartShardId combines with a filter", start: "shardId-000000000002", filter: func(time.Time) *types.ShardFilter {
			return &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}
		}, want: []string{"4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f, t0 := reshardHistory(t)
				time.Sleep(tc.wait)
				in := kinesis.ListShardsInput{StreamName: aws.String("s")}
				if tc.filter != nil {
					in.ShardFilter = tc.filter(t0)
				}
				if tc.start != "" {
					in.ExclusiveStartShardId = aws.String(tc.start)
				}
				for _, page := range []int32{1, 2, 1000} {
					if got := listAll(t, f, in, page); !slices.Equal(got, tc.want) {
						t.Errorf("pages of %d: got %v, want %v", page, got, tc.want)
					}
				}
			})
		})
	}
}

func TestListShardsRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(WithStream("s", 3))
		first, err := f.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1)})
		if err != nil || first.NextToken == nil {
			t.Fatalf("first page: %v, %v", first, err)
		}
		tok := first.NextToken
		for _, tc := range []struct {
			name    string
			in      kinesis.ListShardsInput
			wantErr func(error) bool
		}{
			{name: "a NextToken with a StreamName is invalid", in: kinesis.ListShardsInput{NextToken: tok, StreamName: aws.String("s")}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "a NextToken with a ShardFilter is invalid", in: kinesis.ListShardsInput{NextToken: tok, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "a garbled NextToken is invalid", in: kinesis.ListShardsInput{NextToken: aws.String("x" + *tok)}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "an iterator is not a NextToken", in: kinesis.ListShardsInput{NextToken: aws.String(f.iterator(f.streams["s"], f.streams["s"].shards[0], 0, time.Now()))}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "MaxResults 0 is invalid", in: kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(0)}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "AT_TIMESTAMP needs a timestamp", in: kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp}}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "AFTER_SHARD_ID needs a shard id", in: kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "an unknown filter type is invalid", in: kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: "SOMETIME"}}, wantErr: isErr[*types.InvalidArgumentException]},
			{name: "an unknown stream is not found", in: kinesis.ListShardsInput{StreamName: aws.String("t")}, wantErr: isErr[*types.ResourceNotFoundException]},
		} {
			if _, err := f.ListShards(t.Context(), &tc.in); !tc.wantErr(err) {
				t.Errorf("%s: error = %v, want a different type", tc.name, err)
			}
		}
		time.Sleep(5*time.Minute + time.Millisecond)
		if _, err := f.ListShards(t.Context(), &kinesis.ListShardsInput{NextToken: tok}); !isErr[*types.ExpiredNextTokenException](err) {
			t.Fatalf("a NextToken older than 5 min: error = %v, want ExpiredNextTokenException", err)
		}
	})
}
