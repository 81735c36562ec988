package consumer

import (
	"context"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
)

// Processor processes the records of one shard. The Worker asks the Factory
// for one Processor per shard lease it acquires and calls it from that
// shard's goroutine only, one call at a time, so a Processor needs no locking
// of its own unless it starts goroutines.
//
// ProcessRecords is given each batch in shard order. Returning nil means the
// processor has finished with the batch (it need not have checkpointed it:
// see CheckpointPolicy). Returning an error, or panicking, means it has not:
// the Worker delivers the same *Batch again after a backoff, and never moves
// on to the next batch until ProcessRecords returns nil or the configured
// ErrorHandler says otherwise (see WithRetryLimit). Records are therefore
// delivered at least once; a processor whose side effects must not repeat
// should make them idempotent, for example keyed by sequence number and
// sub-sequence number.
//
// ctx is done when the shard's lease is lost or the Worker is forced to stop;
// ProcessRecords should then return promptly. A graceful stop or handoff does
// not cancel ctx: the in-flight batch is allowed to finish. A batch that
// failed and is waiting for its retry when a graceful stop or handoff comes
// is not retried: the Worker gives the lease up without checkpointing it (and
// without calling ShutdownRequested), and the next owner delivers it again.
type Processor interface {
	ProcessRecords(ctx context.Context, b *Batch) error
}

// ProcessorFunc adapts an ordinary function to a Processor, as
// http.HandlerFunc adapts one to an http.Handler. A ProcessorFunc implements
// none of the optional interfaces.
type ProcessorFunc func(ctx context.Context, b *Batch) error

// ProcessRecords calls f(ctx, b).
func (f ProcessorFunc) ProcessRecords(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Factory creates the Processor for a shard. The Worker calls NewProcessor
// once per acquired lease, on that shard's goroutine, before any other call
// for the shard; shards are processed concurrently, so NewProcessor may be
// called from several goroutines at once. It should not block or do I/O: do
// that in Initialize (see Initializer), which is given a context. An error
// means the Worker does not process the shard now and gives up its lease.
type Factory interface {
	NewProcessor(shard ShardInfo) (Processor, error)
}

// FactoryFunc adapts an ordinary function to a Factory.
type FactoryFunc func(shard ShardInfo) (Processor, error)

// NewProcessor calls f(shard).
func (f FactoryFunc) NewProcessor(shard ShardInfo) (Processor, error) { return f(shard) }

// ShardInfo describes the shard a Processor is created for.
type ShardInfo struct {
	// StreamName is the name of the stream the shard belongs to.
	StreamName string
	// StreamARN is the stream's ARN, when the Worker knows it. It identifies
	// the stream unambiguously across accounts and re-creations, which is
	// what a Worker consuming several streams will key shards by.
	StreamARN string
	// ShardID is the shard's ID, such as "shardId-000000000001".
	ShardID string
	// ParentShardIDs are the shards this one was split or merged from: none,
	// one (split) or two (merge). The Worker finishes them before this one.
	ParentShardIDs []string
	// HashRange is the range of hash keys the shard covers.
	HashRange hashkey.Range
}

// InitInput is what Initialize is given: the shard and where processing of it
// stands.
type InitInput struct {
	// Shard is the shard being initialized.
	Shard ShardInfo
	// Checkpoint is the stored checkpoint: a record position, or the initial
	// position (TRIM_HORIZON, LATEST or AT_TIMESTAMP) for a shard no one has
	// checkpointed yet. Records are delivered from just after it.
	Checkpoint checkpoint.Position
	// PendingCheckpoint is a checkpoint a previous owner prepared but did not
	// commit (see Checkpointer.Prepare), or the zero Position.
	PendingCheckpoint checkpoint.Position
	// PendingState is the application state stored with PendingCheckpoint,
	// or nil. The processor may keep it; it is its own copy.
	PendingState []byte
}

// Initializer is implemented by a Processor that needs to prepare before its
// first batch: open connections, load state, act on a pending checkpoint.
// The Worker calls Initialize once, after NewProcessor and before the first
// ProcessRecords. An error means the processor is not ready: no records are
// delivered to it until a later Initialize succeeds.
type Initializer interface {
	Initialize(ctx context.Context, in InitInput) error
}

// ShardEnder is implemented by a Processor that wants to know when it has
// processed every record of a closed (split or merged) shard. The Worker
// calls ShardEnded after the last batch (the one with AtShardEnd set)
// returned nil, with the shard's Checkpointer, whose last delivered position
// is now SHARD_END. The processor may checkpoint, but need not: when
// ShardEnded returns nil the Worker writes the SHARD_END checkpoint itself, so that the
// child shards can start. An error means the processor has not finished: the
// Worker does not write SHARD_END, and the shard's records are delivered
// again from the last checkpoint later.
type ShardEnder interface {
	ShardEnded(ctx context.Context, cp *Checkpointer) error
}

// LeaseLoser is implemented by a Processor that wants to know when the Worker
// lost the shard's lease (another worker took it, or it could not be
// renewed). No checkpoint can be written any more, so LeaseLost is given no
// Checkpointer; it is for releasing resources. The Worker calls it last, on
// the shard's goroutine, with a context bounded by its shutdown timeout and
// cancelled at the shutdown deadline of a graceful stop (see Worker.Run).
type LeaseLoser interface {
	LeaseLost(ctx context.Context)
}

// Closer is implemented by a Processor that holds resources (a connection, a
// file, a child process) it must release however processing of its shard
// ends. ShardEnded, LeaseLost and ShutdownRequested are each called on one
// path only, and some ends call none of them: a batch that kept failing when
// the ErrorHandler stopped the shard or a graceful stop abandoned it, a read
// error, a failed ShardEnded. Close is called on every path.
//
// The Worker calls Close exactly once per Processor it created, last: after
// every other call for the lease and after the lease was given back (so the
// next owner may already be processing the shard). ev says how processing
// ended: its Kind is LeaseShardEnded, LeaseLost or LeaseReleased, with the
// cause, as LeaseHook is told. Close runs on the shard's goroutine with a
// context bounded by the shutdown timeout and cancelled at the shutdown
// deadline of a graceful stop; Worker.Run waits for it.
type Closer interface {
	Close(ctx context.Context, ev LeaseEvent)
}

// ShutdownRequester is implemented by a Processor that wants a last chance to
// checkpoint before the Worker gives up the lease while still holding it:
// on a graceful stop, or when another worker asks for the shard to balance
// load. The Worker calls ShutdownRequested after the in-flight batch has
// finished, with the shard's Checkpointer (bounded by the last batch
// delivered), and then applies the CheckpointPolicy and releases the lease.
// An error is reported but does not keep the lease.
type ShutdownRequester interface {
	ShutdownRequested(ctx context.Context, cp *Checkpointer) error
}

var (
	_ Processor = ProcessorFunc(nil)
	_ Factory   = FactoryFunc(nil)
)
