package consumer_test

import (
	"context"
	"fmt"

	"github.com/kclgo/kcl/consumer"
)

// A processor can be a plain function. Returning an error makes the Worker
// deliver the same batch again after a backoff; returning nil moves on.
func ExampleProcessorFunc() {
	p := consumer.ProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
		for _, r := range b.Records {
			fmt.Printf("%s %s/%d: %s\n", r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
		}
		// Record progress: everything delivered so far is done.
		return b.Checkpointer.Checkpoint(ctx)
	})

	// The Worker would call this, with a Batch whose Checkpointer it created
	// for the shard's lease. Called by hand there is no lease, so the
	// checkpoint fails (and the Worker would deliver the batch again).
	b := &consumer.Batch{
		ShardID: "shardId-000000000000",
		Records: []consumer.Record{
			{PartitionKey: "user-1", SequenceNumber: "1000", Data: []byte("hello")},
			{PartitionKey: "user-2", SequenceNumber: "1001", Data: []byte("world")},
		},
	}
	if err := p.ProcessRecords(context.Background(), b); err != nil {
		fmt.Println(err)
	}
	// Output:
	// user-1 1000/0: hello
	// user-2 1001/0: world
	// consumer: Checkpointer not created by a Worker; it holds no lease
}

// counter is a processor with a lifecycle hook: it implements the optional
// ShardEnder interface, which the Worker finds by type assertion.
type counter struct{ n int }

func (c *counter) ProcessRecords(_ context.Context, b *consumer.Batch) error {
	c.n += len(b.Records)
	return nil
}

// ShardEnded is called after the last batch of a closed shard. The Worker
// writes the SHARD_END checkpoint itself once it returns nil.
func (c *counter) ShardEnded(_ context.Context, _ *consumer.Checkpointer) error {
	fmt.Println("shard ended after", c.n, "records")
	return nil
}

func ExampleShardEnder() {
	var p consumer.Processor = &counter{n: 42}
	if e, ok := p.(consumer.ShardEnder); ok {
		_ = e.ShardEnded(context.Background(), nil)
	}
	// Output: shard ended after 42 records
}

// A Factory creates one processor per shard.
func ExampleFactoryFunc() {
	f := consumer.FactoryFunc(func(shard consumer.ShardInfo) (consumer.Processor, error) {
		fmt.Println("new processor for", shard.ShardID)
		return &counter{}, nil
	})
	_, _ = f.NewProcessor(consumer.ShardInfo{StreamName: "orders", ShardID: "shardId-000000000003"})
	// Output: new processor for shardId-000000000003
}
