package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kclgo/kcl/checkpoint"
)

// ErrShardStopped is matched (errors.Is) by the error with which the Worker
// stops processing a shard because the ErrorHandler returned StopShard. The
// error also wraps the processor's last error. The Worker does not checkpoint
// the failed batch; it gives up the shard's lease, so the batch is delivered
// again, from the last checkpoint, to whichever worker takes the shard next.
var ErrShardStopped = errors.New("consumer: shard stopped by error handler")

// Decision is what an ErrorHandler tells the Worker to do with a batch that
// ProcessRecords keeps failing.
type Decision int

const (
	// Retry keeps redelivering the batch. The ErrorHandler is asked again
	// after another retry limit's worth of failures.
	Retry Decision = iota + 1
	// Skip gives up on the batch and moves on to the next one, as if
	// ProcessRecords had returned nil. The Worker reports the skipped batch
	// (see SkippedBatch) in its logs and metrics. The records are lost to
	// this processor unless it saved them itself.
	Skip
	// StopShard stops processing the shard with an error matching
	// ErrShardStopped.
	StopShard
)

// String returns the Decision's name, such as "Skip".
func (d Decision) String() string {
	switch d {
	case Retry:
		return "Retry"
	case Skip:
		return "Skip"
	case StopShard:
		return "StopShard"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// ErrorHandler decides what happens to a batch whose delivery failed once
// and then on every one of the configured number of retries (see
// WithRetryLimit). err is the last error ProcessRecords returned (a
// *PanicError if it panicked). The Worker calls it on the shard's goroutine
// and waits for it; it must not modify b. A Decision other than Retry, Skip
// and StopShard, or a panic, is treated as StopShard: a batch is never
// skipped by accident.
type ErrorHandler func(ctx context.Context, b *Batch, err error) Decision

// PanicError is the error a ProcessRecords call that panicked is treated as
// having returned. The Worker recovers the panic, so a faulty processor
// never crashes the program, and redelivers the batch as for any other
// error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the panicking goroutine's stack trace, as debug.Stack
	// formats it.
	Stack []byte
}

// Error describes the panic value; it does not include the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("consumer: processor panicked: %v", e.Value)
}

// Unwrap returns Value if it is an error, so that errors.Is and errors.As
// see through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// SkippedBatch records a batch the ErrorHandler chose to Skip. The Worker
// logs it and reports it to hooks; it is not an error.
type SkippedBatch struct {
	// ShardID is the shard the batch came from.
	ShardID string
	// First and Last are the positions of the batch's first and last
	// records; both are the zero Position for an empty batch.
	First, Last checkpoint.Position
	// Records is the number of user records skipped.
	Records int
	// Attempts is how many times ProcessRecords was called with the batch.
	Attempts int
	// Err is the last error ProcessRecords returned.
	Err error
}
