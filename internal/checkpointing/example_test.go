package checkpointing_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/checkpointing"
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

// The Worker creates a Tracker when it takes a lease and reports every batch
// with Delivered; the processor checkpoints what it has finished (through a
// consumer.Checkpointer, which offers only the checkpoint calls).
func ExampleTracker() {
	ctx := context.Background()
	tr := checkpointing.New(printWriter{}, checkpoint.TrimHorizon, checkpoint.Position{}, nil)

	// The Worker hands over a batch whose last user record is 1000/2.
	last, _ := checkpoint.At("1000", 2)
	tr.Delivered(last)

	// The processor finished the first two user records of aggregate 1000.
	if err := tr.CheckpointAt(ctx, "1000", 1); err != nil {
		fmt.Println(err)
	}
	// It cannot checkpoint records it has not been given...
	err := tr.CheckpointAt(ctx, "1001", 0)
	fmt.Println(errors.Is(err, checkpoint.ErrBeyondDelivered), errors.Is(err, checkpoint.ErrInvalid))
	// ...nor go backwards.
	err = tr.CheckpointAt(ctx, "999", 0)
	fmt.Println(errors.Is(err, checkpoint.ErrBeforeLast))

	// The whole batch is done.
	if err := tr.Checkpoint(ctx); err != nil {
		fmt.Println(err)
	}

	// The shard was closed and that was its last batch: SHARD_END is now
	// the largest delivered position.
	tr.AtShardEnd()
	if err := tr.CheckpointPosition(ctx, checkpoint.ShardEnd); err != nil {
		fmt.Println(err)
	}
	fmt.Println("last:", tr.Last())
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
func ExampleTracker_Prepare() {
	ctx := context.Background()
	start, _ := checkpoint.At("500", 0)
	tr := checkpointing.New(printWriter{}, start, checkpoint.Position{}, nil)
	delivered, _ := checkpoint.At("700", 0)
	tr.Delivered(delivered)

	prepared, err := tr.Prepare(ctx, "700", 0, []byte("txn-42"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... commit transaction txn-42 in the external system ...
	if err := prepared.Commit(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("last:", tr.Last())
	// Output:
	// write checkpoint=500/0 pending=700/0 state="txn-42"
	// write checkpoint=700/0
	// last: 700/0
}
