package fakekinesis_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// A test reads a shard through the same calls it would make on a
// *kinesis.Client, follows it to its children after a split, and injects a
// throttling fault.
func Example() {
	ctx := context.Background()
	throttle := false
	f := fakekinesis.New(
		fakekinesis.WithStream("orders", 1),
		fakekinesis.WithFault(func(op string, _ any) error {
			if op == "GetRecords" && throttle {
				return fakekinesis.Throttled()
			}
			return nil
		}),
	)
	f.Put("orders", "customer-1", []byte("hello"))
	_, _ = f.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName:         aws.String("orders"),
		ShardToSplit:       aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	})

	it, _ := f.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName:        aws.String("orders"),
		ShardId:           aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	out, _ := f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	fmt.Printf("%s, shard ended: %v\n", out.Records[0].Data, out.NextShardIterator == nil)
	for _, c := range out.ChildShards {
		fmt.Println("child", *c.ShardId, "of", c.ParentShards)
	}

	throttle = true
	_, err := f.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	var pte *types.ProvisionedThroughputExceededException
	fmt.Println("throttled:", errors.As(err, &pte))
	// Output:
	// hello, shard ended: true
	// child shardId-000000000001 of [shardId-000000000000]
	// child shardId-000000000002 of [shardId-000000000000]
	// throttled: true
}
