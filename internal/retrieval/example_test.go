package retrieval_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/retrieval"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// A Worker's shard goroutine builds a Reader for its lease (here a polling
// one) and processes batches until the final one.
func Example() {
	ctx := context.Background()
	fk := fakekinesis.New(fakekinesis.WithStream("orders", 1))
	fk.Put("orders", "customer-1", []byte("hello"))
	fk.Put("orders", "customer-2", []byte("world"))
	_, _ = fk.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName:         aws.String("orders"),
		ShardToSplit:       aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	})

	r, err := retrieval.NewReader(fk, retrieval.Config{
		Shard: retrieval.Shard{
			StreamName: "orders",
			ShardID:    "shardId-000000000000",
			Start:      checkpoint.TrimHorizon, // the lease's checkpoint
		},
		Mode: retrieval.Polling{}, // or retrieval.FanOut{ConsumerARN: ...}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	out := make(chan retrieval.Batch)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, out) }()
	for b := range out {
		for _, r := range b.Records {
			fmt.Printf("%s ", r.Data)
		}
		if b.ShardEnd {
			fmt.Println("| shard end, children:", len(b.ChildShards))
			break
		}
	}
	fmt.Println("Run:", <-errc)
	// Output:
	// hello world | shard end, children: 2
	// Run: <nil>
}
