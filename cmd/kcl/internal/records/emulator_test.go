package records

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/testkit/testenv"
)

// TestTailFollowOnKinesisMockAcrossSplitAndMerge tails a kinesis-mock
// stream with Follow while its shards are split and merged and records
// are put throughout: every record is printed once, and no record of a
// child before the last record of its parent.
func TestTailFollowOnKinesisMockAcrossSplitAndMerge(t *testing.T) {
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, 2)
	tl, err := NewTailer(kc, TailConfig{Stream: stream, From: Start{Kind: FromTrimHorizon}, Follow: true, PollInterval: minPoll})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- tl.Run(ctx, c.sink) }()

	n := 0
	put := func(k int) {
		t.Helper()
		var entries []types.PutRecordsRequestEntry
		for range k {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", n)), Data: fmt.Appendf(nil, "r%05d", n)})
			n++
		}
		out, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v", err)
		}
	}
	shards := func() []types.Shard {
		t.Helper()
		out, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Shards
	}
	active := func() {
		t.Helper()
		wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer wcancel()
		if err := testenv.WaitStreamActive(wctx, kc, stream); err != nil {
			t.Fatal(err)
		}
	}

	put(100)
	// Split shard 0 (the lower half of the key space) at a quarter.
	if _, err := kc.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	active()
	put(100)
	// Merge the upper child of shard 0 with shard 1: they are adjacent.
	var upper string
	for _, s := range shards() {
		if aws.ToString(s.ParentShardId) == "shardId-000000000000" && aws.ToString(s.HashKeyRange.StartingHashKey) != "0" {
			upper = aws.ToString(s.ShardId)
		}
	}
	if _, err := kc.MergeShards(t.Context(), &kinesis.MergeShardsInput{StreamName: aws.String(stream),
		ShardToMerge: aws.String(upper), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	active()
	put(100)

	testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool { return c.len() >= 300 },
		"tail printed %d of 300 records", c.len())
	time.Sleep(time.Second) // would a duplicate come?
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	all := shards()
	if len(all) != 5 {
		t.Fatalf("%d shards, want 5 (2, split, merged)", len(all))
	}
	checkOnceParentsFirst(t, all, c.recs, 300)
}
