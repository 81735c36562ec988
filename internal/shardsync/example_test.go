package shardsync_test

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/shardsync"
	"github.com/kclgo/kcl/lease"
)

// A split seen through the lifecycle: the parent is leased first, its
// children when it ends, and the parent lease goes once both children started.
func Example() {
	const max = "340282366920938463463374607431768211455"
	const half = "170141183460469231731687303715884105728"
	const below = "170141183460469231731687303715884105727"
	listing, err := shardsync.FromTypes([]types.Shard{
		{ShardId: aws.String("shardId-0"), HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(max)},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1"), EndingSequenceNumber: aws.String("9")}},
		{ShardId: aws.String("shardId-1"), ParentShardId: aws.String("shardId-0"),
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(below)}},
		{ShardId: aws.String("shardId-2"), ParentShardId: aws.String("shardId-0"),
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(half), EndingHashKey: aws.String(max)}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	table := map[string]lease.Lease{}
	for _, l := range shardsync.NewLeases(listing, nil, checkpoint.TrimHorizon) {
		table[l.Key] = l
	}
	fmt.Println("empty table:", len(table), "lease, shardId-0 at", table["shardId-0"].Checkpoint)

	// The worker reaches the parent's end; GetRecords lists its children.
	parent := table["shardId-0"]
	kids, _ := shardsync.ChildLeases(parent, []types.ChildShard{
		{ShardId: aws.String("shardId-1"), ParentShards: []string{"shardId-0"},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String(below)}},
		{ShardId: aws.String("shardId-2"), ParentShards: []string{"shardId-0"},
			HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(half), EndingHashKey: aws.String(max)}},
	})
	for _, k := range kids {
		if len(shardsync.MissingParents(k, table)) == 0 {
			table[k.Key] = k
		}
		ready, waiting := shardsync.Ready(k, table)
		fmt.Println(k.Key, "ready before the parent's SHARD_END:", ready, waiting)
		parent.ChildShardIDs = append(parent.ChildShardIDs, k.Key)
	}
	parent.Checkpoint = checkpoint.ShardEnd
	table["shardId-0"] = parent
	ready, _ := shardsync.Ready(table["shardId-1"], table)
	fmt.Println("shardId-1 ready after:", ready)

	all := func() []lease.Lease {
		var ls []lease.Lease
		for _, k := range []string{"shardId-0", "shardId-1", "shardId-2"} {
			if l, ok := table[k]; ok {
				ls = append(ls, l)
			}
		}
		return ls
	}
	fmt.Println("deletable before the children start:", len(shardsync.Cleanup(all())))
	for _, k := range []string{"shardId-1", "shardId-2"} {
		l := table[k]
		l.Checkpoint, _ = checkpoint.At("12345", 0)
		table[k] = l
	}
	for _, l := range shardsync.Cleanup(all()) {
		fmt.Println("delete", l.Key)
		delete(table, l.Key)
	}
	fmt.Println("holes:", shardsync.Coverage(all()))
	// Output:
	// empty table: 1 lease, shardId-0 at TRIM_HORIZON
	// shardId-1 ready before the parent's SHARD_END: false [shardId-0]
	// shardId-2 ready before the parent's SHARD_END: false [shardId-0]
	// shardId-1 ready after: true
	// deletable before the children start: 0
	// delete shardId-0
	// holes: []
}
