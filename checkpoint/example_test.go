package checkpoint_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kclgo/kcl/checkpoint"
)

// printWriter stands in for the lease holder, which fences each write with
// the lease counter.
type printWriter struct{}

func (printWriter) WriteCheckpoint(_ context.Context, cp, pending checkpoint.Position, state []byte) error {
	if pending.IsZero() {
		fmt.Printf("write checkpoint=%v\n", cp)
	} else {
		fmt.Printf("write checkpoint=%v pending=%v state=%q\n", cp, pending, state)
	}
	return nil
}

// The worker creates a Checkpointer when it takes a lease, reports every
// batch with Delivered, and writes SHARD_END itself at the end of a closed
// shard; the processor checkpoints what it has finished.
func ExampleCheckpointer() {
	ctx := context.Background()
	c := checkpoint.NewCheckpointer(printWriter{}, checkpoint.TrimHorizon, checkpoint.Position{}, nil)

	// The worker hands over a batch whose last user record is 1000/2.
	last, _ := checkpoint.At("1000", 2)
	c.Delivered(last)

	// The processor finished the first two user records of aggregate 1000.
	if err := c.CheckpointAt(ctx, "1000", 1); err != nil {
		fmt.Println(err)
	}
	// It cannot checkpoint records it has not been given...
	err := c.CheckpointAt(ctx, "1001", 0)
	fmt.Println(errors.Is(err, checkpoint.ErrBeyondDelivered), errors.Is(err, checkpoint.ErrInvalid))
	// ...nor go backwards.
	err = c.CheckpointAt(ctx, "999", 0)
	fmt.Println(errors.Is(err, checkpoint.ErrBeforeLast))

	// The whole batch is done.
	if err := c.Checkpoint(ctx); err != nil {
		fmt.Println(err)
	}

	// The shard was closed and that was its last batch: the worker writes
	// SHARD_END so that the child shards can start.
	c.AtShardEnd()
	if err := c.CheckpointPosition(ctx, checkpoint.ShardEnd); err != nil {
		fmt.Println(err)
	}
	fmt.Println("last:", c.Last())
	// Output:
	// write checkpoint=1000/1
	// true true
	// true
	// write checkpoint=1000/2
	// write checkpoint=SHARD_END
	// last: SHARD_END
}

// A processor with side effects outside Kinesis prepares a checkpoint with
// the state it needs to finish them, performs them, then commits. A worker
// that takes the lease over in between finds the prepared position and state.
func ExampleCheckpointer_Prepare() {
	ctx := context.Background()
	start, _ := checkpoint.At("500", 0)
	c := checkpoint.NewCheckpointer(printWriter{}, start, checkpoint.Position{}, nil)
	delivered, _ := checkpoint.At("700", 0)
	c.Delivered(delivered)

	prepared, err := c.Prepare(ctx, "700", 0, []byte("txn-42"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... commit transaction txn-42 in the external system ...
	if err := prepared.Commit(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("last:", c.Last())
	// Output:
	// write checkpoint=500/0 pending=700/0 state="txn-42"
	// write checkpoint=700/0
	// last: 700/0
}

func ExamplePosition_Compare() {
	a, _ := checkpoint.At("9", 0)
	b, _ := checkpoint.At("10", 0) // compared as numbers, not strings
	fmt.Println(a.Compare(b), checkpoint.ShardEnd.Compare(b), checkpoint.TrimHorizon.Compare(a))
	// Output: -1 1 -1
}
