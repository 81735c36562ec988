package consumertest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/consumer/consumertest"
	"github.com/kclgo/kcl/lease"
)

// sink is the processor under test: it handles records and checkpoints after
// every second record of a batch, and stops working on the shard when its lease is lost.
type sink struct{ handled []string }

func (s *sink) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	for i, r := range b.Records {
		s.handled = append(s.handled, string(r.Data))
		if i%2 == 1 {
			err := b.Checkpointer.CheckpointAt(ctx, r.SequenceNumber, r.SubSequenceNumber)
			if errors.Is(err, lease.ErrLeaseLost) {
				return fmt.Errorf("sink: shard %s taken over: %w", b.ShardID, err)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// A unit test of a processor that checkpoints: deliver batches, run the
// processor, and look at what it wrote. In a test function the prints would
// be t.Errorf checks.
func ExampleNewBatch() {
	ctx := context.Background()
	s := &sink{}

	b, cps := consumertest.NewBatch("shardId-000000000000", []consumer.Record{
		{SequenceNumber: "100", Data: []byte("a")},
		{SequenceNumber: "101", Data: []byte("b")},
		{SequenceNumber: "102", Data: []byte("c")},
	})
	if err := s.ProcessRecords(ctx, b); err != nil {
		fmt.Println(err)
	}
	fmt.Println("after batch 1:", cps.Last())

	// The next batch of the same lease; this time the lease is lost.
	b = cps.NextBatch([]consumer.Record{
		{SequenceNumber: "103", Data: []byte("d")},
		{SequenceNumber: "104", Data: []byte("e")},
	})
	cps.FailWrites(lease.ErrLeaseLost)
	err := s.ProcessRecords(ctx, b)
	fmt.Println("lease lost:", errors.Is(err, lease.ErrLeaseLost))
	fmt.Println("handled:", s.handled, "checkpoints:", cps.All())
	// Output:
	// after batch 1: 101/0
	// lease lost: true
	// handled: [a b c d e] checkpoints: [101/0]
}

// The last batch of a closed shard: the processor may checkpoint SHARD_END
// (the Worker would write it anyway after ShardEnded).
func ExampleAtShardEnd() {
	ctx := context.Background()
	b, cps := consumertest.NewBatch("shardId-000000000000",
		[]consumer.Record{{SequenceNumber: "100", Data: []byte("a")}},
		consumertest.AtShardEnd())
	if err := b.Checkpointer.Checkpoint(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(b.AtShardEnd, cps.All())
	// Output:
	// true [SHARD_END]
}
