package consumer

import (
	"fmt"
	"time"

	"github.com/kclgo/kcl/checkpoint"
)

// Metric hooks. A value passed to WithHooks implements any of these
// one-method interfaces; the Worker finds them by type assertion, so an
// exporter implements only what it records. Hooks are called synchronously
// on the Worker's goroutines, possibly concurrently for different shards:
// they must be safe for concurrent use, fast, and must not block.

// BatchHook hears about every batch a processor has finished with.
type BatchHook interface {
	BatchProcessed(BatchInfo)
}

// BatchInfo describes one processed batch.
type BatchInfo struct {
	ShardID string
	// Records and Bytes count the user records and their data bytes.
	Records, Bytes int
	// MillisBehindLatest is how far the batch was behind the tip of the
	// shard when it was fetched.
	MillisBehindLatest time.Duration
	// Latency is the time from the first delivery of the batch to the
	// processor until it returned nil (retries included).
	Latency time.Duration
	// Attempts is how many times ProcessRecords was called with the batch.
	Attempts int
	// Skipped is set when the ErrorHandler chose Skip.
	Skipped *SkippedBatch
}

// FetchHook hears about every Kinesis read call: GetShardIterator and
// GetRecords, successful, throttled or failed.
type FetchHook interface {
	Fetched(FetchInfo)
}

// FetchInfo describes one Kinesis read call.
type FetchInfo struct {
	ShardID string
	// Op is "GetShardIterator" or "GetRecords".
	Op       string
	Duration time.Duration
	// Records and Bytes count the Kinesis records returned (aggregates
	// count once) and their data bytes.
	Records, Bytes     int
	MillisBehindLatest time.Duration
	// Throttled reports a ProvisionedThroughputExceeded or LimitExceeded
	// refusal; Err is the call's error, nil on success.
	Throttled bool
	Err       error
}

// LeaseHook hears about the leases this worker starts and stops processing.
type LeaseHook interface {
	LeaseChanged(LeaseEvent)
}

// LeaseEventKind says what happened to a lease.
type LeaseEventKind uint8

const (
	// LeaseAcquired: the worker took the lease and will process the shard.
	LeaseAcquired LeaseEventKind = iota + 1
	// LeaseLost: the lease was taken by another worker or expired; the
	// shard's processing stopped without a final checkpoint.
	LeaseLost
	// LeaseReleased: the worker gave the lease up (graceful stop, handoff
	// to another worker, or a shard stopped by the error handler).
	LeaseReleased
	// LeaseShardEnded: the shard was processed to its end and SHARD_END was
	// written.
	LeaseShardEnded
)

func (k LeaseEventKind) String() string {
	switch k {
	case LeaseAcquired:
		return "acquired"
	case LeaseLost:
		return "lost"
	case LeaseReleased:
		return "released"
	case LeaseShardEnded:
		return "shard ended"
	}
	return fmt.Sprintf("LeaseEventKind(%d)", uint8(k))
}

// LeaseEvent is a change of one lease.
type LeaseEvent struct {
	ShardID string
	Kind    LeaseEventKind
	// Cause is why processing stopped (for LeaseLost and LeaseReleased):
	// it matches ErrStopping or ErrHandoffRequested for a graceful release,
	// and lease.ErrLeaseLost (ErrLeaseExpired among others) for a loss.
	Cause error
	// Since is, for LeaseAcquired, when the write that took the lease was
	// sent: the lease became this worker's at some moment between Since
	// and the event, which can be long after it if the process was paused
	// while the write was in flight. Zero for the other kinds.
	Since time.Time
}

// CheckpointHook hears about every checkpoint write, by the processor or
// by the Worker.
type CheckpointHook interface {
	Checkpointed(CheckpointInfo)
}

// CheckpointInfo describes one checkpoint write.
type CheckpointInfo struct {
	ShardID  string
	Position checkpoint.Position
	Duration time.Duration
	// Err is the write's error, nil if it is durable.
	Err error
}

// hooks holds the hook values found among WithHooks' arguments.
type hooks struct {
	batch      []BatchHook
	fetch      []FetchHook
	lease      []LeaseHook
	checkpoint []CheckpointHook
}

// WithHooks registers metric hooks: each value must implement at least one
// of BatchHook, FetchHook, LeaseHook and CheckpointHook. May be given
// several times; every hook is called.
func WithHooks(hs ...any) Option {
	return func(c *config) {
		for i, h := range hs {
			found := false
			if v, ok := h.(BatchHook); ok {
				c.hooks.batch, found = append(c.hooks.batch, v), true
			}
			if v, ok := h.(FetchHook); ok {
				c.hooks.fetch, found = append(c.hooks.fetch, v), true
			}
			if v, ok := h.(LeaseHook); ok {
				c.hooks.lease, found = append(c.hooks.lease, v), true
			}
			if v, ok := h.(CheckpointHook); ok {
				c.hooks.checkpoint, found = append(c.hooks.checkpoint, v), true
			}
			if !found && c.hookErr == nil {
				c.hookErr = configErr(fmt.Sprintf("WithHooks(argument %d: %T)", i, h),
					"implements none of BatchHook, FetchHook, LeaseHook and CheckpointHook")
			}
		}
	}
}

func (h *hooks) batchProcessed(i BatchInfo) {
	for _, x := range h.batch {
		x.BatchProcessed(i)
	}
}

func (h *hooks) fetched(i FetchInfo) {
	for _, x := range h.fetch {
		x.Fetched(i)
	}
}

func (h *hooks) leaseChanged(e LeaseEvent) {
	for _, x := range h.lease {
		x.LeaseChanged(e)
	}
}

func (h *hooks) checkpointed(i CheckpointInfo) {
	for _, x := range h.checkpoint {
		x.Checkpointed(i)
	}
}
