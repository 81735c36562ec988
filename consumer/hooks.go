package consumer

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/awserr"
)

// Metric hooks. A value passed to WithHooks implements any of these
// one-method interfaces; the Worker finds them by type assertion, so an
// exporter implements only what it records, and a hook added in a later
// release breaks no one.
//
// Hooks are called synchronously on the Worker's goroutines, possibly
// concurrently for different shards: they must be safe for concurrent use,
// fast, and must not block. A hook that blocks stalls the shard (or the
// lease and shard-sync loop) that called it, for as long as it blocks: an
// exporter that writes to a network or a file must buffer, and drop when
// its buffer is full, rather than wait (the plugins under plugin/ do). A
// hook that panics does not stop the Worker: the panic is recovered, the
// first one of each hook method is logged at error level with its stack,
// and every one is counted in Health.HookPanics; the event that caused it
// is lost to that hook only.
//
// Every event carries the stream and the worker id, so that one exporter
// can serve several Workers (and, later, a Worker that reads several
// streams).

// BatchHook hears about every batch a processor has finished with.
type BatchHook interface {
	BatchProcessed(BatchInfo)
}

// BatchInfo describes one processed batch.
type BatchInfo struct {
	StreamName string
	WorkerID   string
	ShardID    string
	// Records and Bytes count the user records and their data bytes.
	Records, Bytes int
	// Aggregates counts the KPL aggregates the batch's user records came
	// from (0 for a batch of plain records): Records − Aggregates is what
	// deaggregation added.
	Aggregates int
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

// FetchHook hears about every Kinesis call a shard's reader makes:
// GetShardIterator and GetRecords when polling; SubscribeToShard, each
// event of a subscription and the shard-end checks (ListShards,
// GetShardIterator, GetRecords) with enhanced fan-out. Successful,
// throttled or failed: throttles, errors by kind, expired iterators and
// subscription renewals are all told apart by FetchInfo's fields.
type FetchHook interface {
	Fetched(FetchInfo)
}

// The operations FetchInfo.Op names.
const (
	OpGetShardIterator = "GetShardIterator"
	OpGetRecords       = "GetRecords"
	// OpSubscribeToShard is one SubscribeToShard call: a new subscription,
	// or a renewal (FetchInfo.Renewal) of one Kinesis ended after its 5
	// minutes.
	OpSubscribeToShard = "SubscribeToShard"
	// OpSubscribeToShardEvent is one event of a subscription (with the
	// records and MillisBehindLatest it carried), or the failure of its
	// event stream (Err).
	OpSubscribeToShardEvent = "SubscribeToShardEvent"
	OpListShards            = "ListShards"
)

// FetchInfo describes one Kinesis read call.
type FetchInfo struct {
	StreamName string
	WorkerID   string
	ShardID    string
	// Op is one of the Op constants, such as OpGetRecords.
	Op       string
	Duration time.Duration
	// Records and Bytes count the Kinesis records returned (aggregates
	// count once) and their data and partition key bytes.
	Records, Bytes int
	// MillisBehindLatest is what Kinesis reported: meaningful only when Err
	// is nil and Op is OpGetRecords or OpSubscribeToShardEvent (it is 0 for
	// the other calls). An idle shard that is caught up reports 0.
	MillisBehindLatest time.Duration
	// Throttled reports a ProvisionedThroughputExceeded or LimitExceeded
	// refusal (Kind is then ErrorThrottled); Err is the call's error, nil on
	// success, and Kind its class, 0 on success. ErrorExpiredIterator is an
	// iterator expiry, after which the reader gets a new iterator from the
	// last record it accepted.
	Throttled bool
	Err       error
	Kind      ErrorKind
	// Renewal is set on an OpSubscribeToShard call that continues the
	// shard's reading where an earlier subscription of this reader ended.
	Renewal bool
}

// ErrorKind classifies the error of a Kinesis call, as the Worker acts on
// it. Its String is a short snake_case name, fit for a metric label.
type ErrorKind uint8

const (
	// ErrorOther is an error kcl does not recognise.
	ErrorOther ErrorKind = iota + 1
	// ErrorCanceled: the call's context ended (a stop, a lease lost, a
	// call timeout).
	ErrorCanceled
	// ErrorThrottled: ProvisionedThroughputExceeded, LimitExceeded, KMS
	// throttling. Retried after a backoff.
	ErrorThrottled
	// ErrorExpiredIterator: the shard iterator was too old; the reader gets
	// a new one.
	ErrorExpiredIterator
	// ErrorNotFound: the stream, shard or consumer does not exist.
	ErrorNotFound
	// ErrorInUse: ResourceInUse (a stream being resharded, a subscription
	// within 5 s of the previous one).
	ErrorInUse
	// ErrorDenied: credentials or KMS permissions are missing.
	ErrorDenied
	// ErrorInvalid: the request was invalid.
	ErrorInvalid
	// ErrorTransient: a network failure or a server error (5xx). Retried.
	ErrorTransient
)

var errorKindNames = [...]string{
	ErrorOther: "other", ErrorCanceled: "canceled", ErrorThrottled: "throttled", ErrorExpiredIterator: "expired_iterator",
	ErrorNotFound: "not_found", ErrorInUse: "in_use", ErrorDenied: "denied", ErrorInvalid: "invalid", ErrorTransient: "transient",
}

// String returns the kind's snake_case name, such as "expired_iterator".
func (k ErrorKind) String() string {
	if int(k) < len(errorKindNames) && errorKindNames[k] != "" {
		return errorKindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", uint8(k))
}

// errorKind maps the internal classification onto ErrorKind.
func errorKind(k awserr.Kind) ErrorKind {
	switch k {
	case 0:
		return 0
	case awserr.Canceled:
		return ErrorCanceled
	case awserr.Throttled:
		return ErrorThrottled
	case awserr.ExpiredIterator:
		return ErrorExpiredIterator
	case awserr.NotFound:
		return ErrorNotFound
	case awserr.InUse:
		return ErrorInUse
	case awserr.Denied:
		return ErrorDenied
	case awserr.Invalid:
		return ErrorInvalid
	case awserr.Transient:
		return ErrorTransient
	}
	return ErrorOther
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
	StreamName string
	WorkerID   string
	ShardID    string
	Kind       LeaseEventKind
	// Cause is why processing stopped (for LeaseLost and LeaseReleased):
	// it matches ErrStopping or ErrHandoffRequested for a graceful release,
	// and lease.ErrLeaseLost (ErrLeaseExpired among others) for a loss.
	// Reason classifies it.
	Cause error
	// Since is, for LeaseAcquired, when the write that took the lease was
	// sent: the lease became this worker's at some moment between Since
	// and the event, which can be long after it if the process was paused
	// while the write was in flight. Zero for the other kinds.
	Since time.Time
}

// Reason classifies Cause as a short snake_case name, fit for a metric
// label: for LeaseReleased "stopping" (a graceful stop: the lease went to a
// peer or back to the table), "handoff" (handed to a peer that asked for
// it), "shard_stopped" (the ErrorHandler chose StopShard) or "error"
// (the processor could not be created or initialized, the shard could not
// be read, ShardEnded failed); for LeaseLost "expired" (not renewed in
// time) or "taken" (another worker owns it now); "" for the other kinds.
func (e LeaseEvent) Reason() string {
	switch e.Kind {
	case LeaseReleased:
		switch {
		case errors.Is(e.Cause, ErrStopping):
			return "stopping"
		case errors.Is(e.Cause, ErrHandoffRequested):
			return "handoff"
		case errors.Is(e.Cause, ErrShardStopped):
			return "shard_stopped"
		}
		return "error"
	case LeaseLost:
		if errors.Is(e.Cause, ErrLeaseExpired) {
			return "expired"
		}
		return "taken"
	}
	return ""
}

// CheckpointHook hears about every checkpoint write, by the processor or
// by the Worker.
type CheckpointHook interface {
	Checkpointed(CheckpointInfo)
}

// CheckpointInfo describes one checkpoint write.
type CheckpointInfo struct {
	StreamName string
	WorkerID   string
	ShardID    string
	Position   checkpoint.Position
	// Duration is the write's latency.
	Duration time.Duration
	// Err is the write's error, nil if it is durable. It matches
	// lease.ErrLeaseLost when the lease was no longer this worker's.
	Err error
}

// ProcessorErrorHook hears about every failed call of a processor method:
// an error returned, or a panic (recovered by the Worker).
type ProcessorErrorHook interface {
	ProcessorFailed(ProcessorErrorInfo)
}

// The processor methods ProcessorErrorInfo.Method names.
const (
	MethodNewProcessor      = "NewProcessor" // the Factory
	MethodInitialize        = "Initialize"
	MethodProcessRecords    = "ProcessRecords"
	MethodShardEnded        = "ShardEnded"
	MethodShutdownRequested = "ShutdownRequested"
	MethodClose             = "Close"
	MethodLeaseLost         = "LeaseLost"
)

// ProcessorErrorInfo describes one failed processor call.
type ProcessorErrorInfo struct {
	StreamName string
	WorkerID   string
	ShardID    string
	// Method is one of the Method constants.
	Method string
	// Attempts counts the calls made so far with the same input (the batch,
	// for ProcessRecords), this one included.
	Attempts int
	// Err is the error; a *PanicError if the call panicked (Panicked).
	Err      error
	Panicked bool
	// Retry is set when the call will be made again with the same input,
	// after Delay. For ProcessRecords, a failure that is not retried ends
	// in a skipped batch (BatchInfo.Skipped), a stopped shard (a
	// LeaseReleased event with Reason "shard_stopped") or the end of the
	// lease.
	Retry bool
	Delay time.Duration
}

// ShardSyncHook hears about every shard sync pass: ListShards, then lease
// creation for new shards and deletion of finished ones.
type ShardSyncHook interface {
	ShardSynced(ShardSyncInfo)
}

// ShardSyncInfo describes one shard sync pass.
type ShardSyncInfo struct {
	StreamName string
	WorkerID   string
	Duration   time.Duration
	// Shards is how many shards ListShards returned.
	Shards int
	// LeasesCreated and LeasesDeleted count the leases this pass created
	// (for new shards) and deleted (of finished shards).
	LeasesCreated, LeasesDeleted int
	// Holes is set when the leases did not cover the whole hash key space:
	// another pass follows soon.
	Holes bool
	// Err is the pass's error, nil on success.
	Err error
}

// AggregateHook hears about every KPL aggregate that deaggregation passed
// through unchanged because it was malformed (as KCL does), or dropped
// because a user record fell outside the shard's hash range.
type AggregateHook interface {
	AggregateFailed(AggregateInfo)
}

// AggregateInfo describes one malformed or dropped KPL aggregate.
type AggregateInfo struct {
	StreamName string
	WorkerID   string
	ShardID    string
	// SequenceNumber is the Kinesis record's.
	SequenceNumber string
	// Dropped is set when the aggregate was dropped by the hash range
	// filter; otherwise it was malformed and delivered as one plain record.
	Dropped bool
	// Err says what was wrong; it matches deaggregate.ErrMalformed or
	// deaggregate.ErrOutOfRange.
	Err error
}

// hooks holds the hook values found among WithHooks' arguments.
type hooks struct {
	batch      []BatchHook
	fetch      []FetchHook
	lease      []LeaseHook
	checkpoint []CheckpointHook
	procErr    []ProcessorErrorHook
	sync       []ShardSyncHook
	aggregate  []AggregateHook
	// guard recovers hook panics; New sets it.
	guard *hookGuard
}

// WithHooks registers metric hooks: each value must implement at least one
// of BatchHook, FetchHook, LeaseHook, CheckpointHook, ProcessorErrorHook,
// ShardSyncHook and AggregateHook. May be given several times; every hook
// is called, in the order given.
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
			if v, ok := h.(ProcessorErrorHook); ok {
				c.hooks.procErr, found = append(c.hooks.procErr, v), true
			}
			if v, ok := h.(ShardSyncHook); ok {
				c.hooks.sync, found = append(c.hooks.sync, v), true
			}
			if v, ok := h.(AggregateHook); ok {
				c.hooks.aggregate, found = append(c.hooks.aggregate, v), true
			}
			if !found && c.hookErr == nil {
				c.hookErr = configErr(fmt.Sprintf("WithHooks(argument %d: %T)", i, h),
					"implements none of BatchHook, FetchHook, LeaseHook, CheckpointHook, ProcessorErrorHook, ShardSyncHook and AggregateHook")
			}
		}
	}
}

// hookMethod indexes the hook methods, for logging the first panic of each.
type hookMethod uint8

const (
	hookBatch hookMethod = iota
	hookFetch
	hookLease
	hookCheckpoint
	hookProcErr
	hookSync
	hookAggregate
	numHookMethods
)

var hookMethodNames = [numHookMethods]string{
	"BatchHook.BatchProcessed", "FetchHook.Fetched", "LeaseHook.LeaseChanged", "CheckpointHook.Checkpointed",
	"ProcessorErrorHook.ProcessorFailed", "ShardSyncHook.ShardSynced", "AggregateHook.AggregateFailed",
}

// hookGuard recovers the panics of hooks: a metrics exporter must never
// take processing down.
type hookGuard struct {
	log    *zap.Logger
	panics atomic.Int64
	logged [numHookMethods]atomic.Bool
}

// recover is deferred around each hook call.
func (g *hookGuard) recover(m hookMethod, h any) {
	v := recover()
	if v == nil {
		return
	}
	g.panics.Add(1)
	if g.logged[m].CompareAndSwap(false, true) {
		err := &PanicError{Value: v, Stack: debug.Stack()}
		g.log.Error("metric hook panicked; the Worker goes on, and later panics of this hook method are only counted (Health.HookPanics)",
			zap.String("hook", hookMethodNames[m]), zap.String("type", fmt.Sprintf("%T", h)),
			zap.Error(err), zap.ByteString("stack", err.Stack))
	}
}

func (h *hooks) batchProcessed(i BatchInfo) {
	for _, x := range h.batch {
		h.callBatch(x, i)
	}
}

func (h *hooks) callBatch(x BatchHook, i BatchInfo) {
	defer h.guard.recover(hookBatch, x)
	x.BatchProcessed(i)
}

func (h *hooks) fetched(i FetchInfo) {
	for _, x := range h.fetch {
		h.callFetch(x, i)
	}
}

func (h *hooks) callFetch(x FetchHook, i FetchInfo) {
	defer h.guard.recover(hookFetch, x)
	x.Fetched(i)
}

func (h *hooks) leaseChanged(e LeaseEvent) {
	for _, x := range h.lease {
		h.callLease(x, e)
	}
}

func (h *hooks) callLease(x LeaseHook, e LeaseEvent) {
	defer h.guard.recover(hookLease, x)
	x.LeaseChanged(e)
}

func (h *hooks) checkpointed(i CheckpointInfo) {
	for _, x := range h.checkpoint {
		h.callCheckpoint(x, i)
	}
}

func (h *hooks) callCheckpoint(x CheckpointHook, i CheckpointInfo) {
	defer h.guard.recover(hookCheckpoint, x)
	x.Checkpointed(i)
}

func (h *hooks) processorFailed(i ProcessorErrorInfo) {
	for _, x := range h.procErr {
		h.callProcErr(x, i)
	}
}

func (h *hooks) callProcErr(x ProcessorErrorHook, i ProcessorErrorInfo) {
	defer h.guard.recover(hookProcErr, x)
	x.ProcessorFailed(i)
}

func (h *hooks) shardSynced(i ShardSyncInfo) {
	for _, x := range h.sync {
		h.callSync(x, i)
	}
}

func (h *hooks) callSync(x ShardSyncHook, i ShardSyncInfo) {
	defer h.guard.recover(hookSync, x)
	x.ShardSynced(i)
}

func (h *hooks) aggregateFailed(i AggregateInfo) {
	for _, x := range h.aggregate {
		h.callAggregate(x, i)
	}
}

func (h *hooks) callAggregate(x AggregateHook, i AggregateInfo) {
	defer h.guard.recover(hookAggregate, x)
	x.AggregateFailed(i)
}
