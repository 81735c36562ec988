// Package consumer runs record processors over the shards of a Kinesis
// stream, as Amazon's Kinesis Client Library does.
//
// A Processor is one method, ProcessRecords, given a Batch of user records of
// one shard and the shard's Checkpointer; ProcessorFunc adapts a function to
// it. A Factory creates one Processor per shard lease.
//
// # Checkpoints
//
// A Checkpointer offers what KCL's RecordProcessorCheckpointer offers:
// Checkpoint (at the last delivered record), CheckpointAt (at a given
// record), Prepare and PreparedCheckpoint.Commit (two-phase), Last and
// Pending. It can only cover records the Worker has delivered: the Worker
// alone moves that bound, before each batch. Instead of checkpointing, or as
// well, a processor may let the Worker checkpoint for it (CheckpointPolicy).
// Positions and the errors to branch on (checkpoint.ErrInvalid and the
// errors that match it) are in package checkpoint.
//
// # Optional interfaces
//
// A Processor may implement any of these lifecycle interfaces; the Worker
// finds them by type assertion, so a processor implements only the ones it
// needs:
//
//   - Initializer: Initialize is called before the first batch, with the
//     stored checkpoint and any pending (prepared) checkpoint.
//   - ShardEnder: ShardEnded is called after the last batch of a closed
//     shard. The Worker writes SHARD_END itself afterwards; the processor
//     need not checkpoint.
//   - LeaseLoser: LeaseLost is called when the lease was lost and no
//     checkpoint can be written.
//   - ShutdownRequester: ShutdownRequested is called before the Worker gives
//     up a lease it still holds (graceful stop, or a handoff to another
//     worker), as a last chance to checkpoint.
//   - Closer: Close is called once, last, however processing ended, after
//     the lease was given back: the place to release what the processor
//     holds.
//
// Each shard's Processor ends with at most one of ShardEnded, LeaseLost and
// ShutdownRequested, and then Close.
//
// # Failures
//
// Unlike KCL, which logs an exception from processRecords and skips the
// batch, the Worker never moves past a batch that ProcessRecords did not
// finish. An error, or a panic (recovered as *PanicError), makes it deliver
// the same *Batch again after an exponential backoff (WithRetryBackoff),
// forever by default. With WithRetryLimit, an ErrorHandler (WithErrorHandler)
// decides after the last retry: Retry, Skip (reported as a SkippedBatch) or
// StopShard (an error matching ErrShardStopped).
package consumer
