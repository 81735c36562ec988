package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/kclgo/kcl/internal/backoff"
)

// dispatchPolicy is how deliver treats a failing batch. The Worker builds one
// per shard goroutine with config.dispatchPolicy: its backoff has its own
// random source and is not safe for concurrent use.
type dispatchPolicy struct {
	// retryLimit is how many redeliveries follow a failure before handler is
	// asked; 0 means never ask, retry forever.
	retryLimit int
	backoff    backoff.Policy
	// handler decides after retryLimit failed retries; nil means StopShard.
	handler ErrorHandler
	// onRetry, if set, is called after each failed attempt that will be
	// retried, with the number of attempts so far, the error and the delay
	// before the next one. The Worker logs it. It must not block.
	onRetry func(attempts int, err error, delay time.Duration)
	// onGiveUp, if set, is called after a failed attempt that will not be
	// retried: the batch is skipped, the shard stopped, or the retries
	// abandoned for a stop or a lost lease. It must not block.
	onGiveUp func(attempts int, err error)
	// stop, if set, is done when the Worker is to give the shard up
	// gracefully (a stop or a handoff): a failed batch is then not retried
	// (see errAbandoned).
	stop context.Context
}

// errAbandoned is wrapped by the error deliver returns when pol.stop ended
// the retries of a failed batch. The batch was not processed; the Worker
// gives the lease up without checkpointing it, so the next owner delivers
// it again at once instead of after the shutdown timeout and a lease expiry.
var errAbandoned = errors.New("consumer: failed batch abandoned for a graceful stop")

// dispatchPolicy returns the policy c describes. r seeds the backoff jitter;
// nil means a randomly seeded source.
func (c *config) dispatchPolicy(r *rand.Rand) dispatchPolicy {
	return dispatchPolicy{
		retryLimit: c.retryLimit,
		backoff:    backoff.New(c.retryBase, c.retryMax, r),
		handler:    c.errorHandler,
	}
}

// outcome is what deliver did with a batch besides succeeding or failing.
type outcome struct {
	// attempts is how many times ProcessRecords was called.
	attempts int
	// skipped is set when the error handler chose Skip; deliver then
	// returns a nil error and the Worker moves on as if the batch had been
	// processed.
	skipped *SkippedBatch
}

// deliver hands b to p until p has processed it: ProcessRecords returns nil,
// or the error handler skips it. After a failure (an error or a recovered
// panic, as *PanicError) it restores b's fields, waits a backoff that
// honours ctx, and delivers the same *Batch again; it never moves past a
// failed batch on its own. After pol.retryLimit failed retries (if above
// 0) it asks pol.handler: Retry goes on, Skip returns a nil error with
// outcome.skipped set, and StopShard (also for a nil handler, an unknown
// Decision or a handler panic) returns an error matching ErrShardStopped.
//
// If ctx is done before an attempt, or after a failed one, deliver returns
// an error wrapping context.Cause(ctx): the batch was not processed. A
// ProcessRecords that returns nil has processed the batch even if ctx is
// done by then.
//
// deliver runs on the shard's goroutine and blocks until one of the above.
func deliver(ctx context.Context, p Processor, b *Batch, pol dispatchPolicy) (outcome, error) {
	var (
		out     outcome
		lastErr error
		retries int // redeliveries since the handler was last asked
	)
	orig := *b
	for {
		if ctx.Err() != nil {
			return out, notProcessed(ctx, b, lastErr)
		}
		err := call(ctx, p, b)
		out.attempts++
		if err == nil {
			return out, nil
		}
		lastErr = err
		*b = orig // undo any changes to the Batch's fields before redelivery
		if ctx.Err() != nil {
			pol.gaveUp(out.attempts, err)
			return out, notProcessed(ctx, b, lastErr)
		}
		if pol.retryLimit > 0 && retries >= pol.retryLimit {
			d, herr := decide(ctx, pol.handler, b, err)
			if d != Retry {
				pol.gaveUp(out.attempts, err)
			}
			switch d {
			case Retry:
				retries = 0
			case Skip:
				first, last := bounds(b)
				out.skipped = &SkippedBatch{
					ShardID:  b.ShardID,
					First:    first,
					Last:     last,
					Records:  len(b.Records),
					Attempts: out.attempts,
					Err:      err,
				}
				return out, nil
			default:
				if herr != nil {
					return out, fmt.Errorf("%w: shard %s: batch failed %d times (%v): %w", ErrShardStopped, b.ShardID, out.attempts, herr, err)
				}
				return out, fmt.Errorf("%w: shard %s: batch failed %d times: %w", ErrShardStopped, b.ShardID, out.attempts, err)
			}
		}
		delay := pol.backoff.Delay(out.attempts - 1)
		if pol.stop != nil && pol.stop.Err() != nil {
			pol.gaveUp(out.attempts, err)
			return out, fmt.Errorf("%w: shard %s after %d attempts: %w", errAbandoned, b.ShardID, out.attempts, lastErr)
		}
		if pol.onRetry != nil {
			pol.onRetry(out.attempts, err, delay)
		}
		if err := waitOrStop(ctx, pol.stop, delay); err != nil {
			if ctx.Err() == nil {
				return out, fmt.Errorf("%w: shard %s after %d attempts: %w", errAbandoned, b.ShardID, out.attempts, lastErr)
			}
			return out, notProcessed(ctx, b, lastErr)
		}
		retries++
	}
}

// gaveUp calls onGiveUp if it is set.
func (pol *dispatchPolicy) gaveUp(attempts int, err error) {
	if pol.onGiveUp != nil {
		pol.onGiveUp(attempts, err)
	}
}

// call calls p.ProcessRecords, turning a panic into a *PanicError.
func call(ctx context.Context, p Processor, b *Batch) (err error) {
	defer func() {
		// recover returns a *runtime.PanicNilError for panic(nil), so every
		// panic is seen.
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return p.ProcessRecords(ctx, b)
}

// decide asks h what to do with b. A nil handler, an unknown Decision and a
// panic all mean StopShard; the returned error says which of the last two
// happened.
func decide(ctx context.Context, h ErrorHandler, b *Batch, err error) (d Decision, herr error) {
	if h == nil {
		return StopShard, nil
	}
	defer func() {
		if v := recover(); v != nil {
			d, herr = StopShard, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	switch d := h(ctx, b, err); d {
	case Retry, Skip, StopShard:
		return d, nil
	default:
		return StopShard, fmt.Errorf("consumer: error handler returned invalid %v", d)
	}
}

// wait waits for d or until ctx is done, returning context.Cause(ctx).
func wait(ctx context.Context, d time.Duration) error { return waitOrStop(ctx, nil, d) }

// waitOrStop is wait that also ends, with context.Cause(stop), when stop
// (if not nil) is done.
func waitOrStop(ctx, stop context.Context, d time.Duration) error {
	var stopped <-chan struct{} // nil: never
	if stop != nil {
		stopped = stop.Done()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-stopped:
		return context.Cause(stop)
	}
}

// notProcessed is the error deliver returns when ctx ends its attempts.
func notProcessed(ctx context.Context, b *Batch, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("consumer: shard %s: batch not processed (last error: %v): %w", b.ShardID, lastErr, context.Cause(ctx))
	}
	return fmt.Errorf("consumer: shard %s: batch not processed: %w", b.ShardID, context.Cause(ctx))
}
