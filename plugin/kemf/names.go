package kemf

import "strings"

// Metric names. Where the Java KCL publishes a metric of the same meaning,
// the name is KCL's, under the same Operation dimension, so that existing
// dashboards and alarms keep working; the others are kcl's own.
const (
	// Operation ProcessTask, per shard (dimensions Operation, ShardId).

	// RecordsProcessed counts the user records the processor returned nil
	// for (Count; KCL: the same).
	RecordsProcessed = "RecordsProcessed"
	// DataBytesProcessed counts their data bytes (Bytes; KCL: the same).
	DataBytesProcessed = "DataBytesProcessed"
	// MillisBehindLatest is how far each batch, and each read that found
	// no records, was behind the tip of the shard (Milliseconds; KCL: the
	// same). Under Operation ApplicationTracker it is reported over every
	// shard of the worker: its Maximum is the most behind shard.
	MillisBehindLatest = "MillisBehindLatest"
	// ProcessRecordsTime is each batch's time in the processor, retries
	// and backoff included (Milliseconds; KCL: the same name).
	ProcessRecordsTime = "RecordProcessor.processRecords.Time"
	// BatchesSkipped and RecordsSkipped count batches the error handler
	// skipped and their records (Count; kcl only: KCL skips silently).
	BatchesSkipped = "BatchesSkipped"
	RecordsSkipped = "RecordsSkipped"
	// BatchRetries counts deliveries of a batch again after the processor
	// failed (Count; kcl only).
	BatchRetries = "BatchRetries"
	// ProcessorErrors counts failed processor calls of every method, and
	// ProcessorPanics those that panicked (Count; kcl only).
	ProcessorErrors = "ProcessorErrors"
	ProcessorPanics = "ProcessorPanics"
	// KPLAggregates counts the KPL aggregates the processed records came
	// from; KPLMalformed those passed through as malformed, KPLDropped those
	// dropped by the hash-range filter (Count; kcl only).
	KPLAggregates = "KPLAggregates"
	KPLMalformed  = "KPLMalformed"
	KPLDropped    = "KPLDropped"
	// SubscriptionRenewals counts SubscribeToShard calls that continued
	// the shard after Kinesis ended the previous subscription (Count; kcl
	// only).
	SubscriptionRenewals = "SubscriptionRenewals"
	// ExpiredIterator counts reads that failed with an expired shard
	// iterator (Count; KCL: the same, Operation ProcessTask).
	ExpiredIterator = "ExpiredIterator"
	// UpdateLease is the prefix of the checkpoint writes' metrics
	// (UpdateLease.Success, .Time and .Errors; KCL writes checkpoints as
	// lease updates and names them so).
	UpdateLease = "UpdateLease"

	// Kinesis calls are reported per operation as a prefix and these
	// suffixes: GetRecords as KinesisDataFetcher.getRecords,
	// GetShardIterator as KinesisDataFetcher.getShardIterator (KCL's
	// names), others (SubscribeToShard, SubscribeToShardEvent, ListShards)
	// by their operation's name.

	// SuffixSuccess counts the successful calls (Count; KCL: the same).
	SuffixSuccess = ".Success"
	// SuffixTime is each call's duration, failed calls included
	// (Milliseconds; KCL: the same).
	SuffixTime = ".Time"
	// SuffixThrottled counts calls refused by throttling (Count; kcl only).
	SuffixThrottled = ".Throttled"
	// SuffixErrors counts failed calls, throttled ones included (Count;
	// kcl only: KCL's Success average shows them).
	SuffixErrors = ".Errors"

	// Operation RenewAllLeases and TakeLeases, per worker (dimension
	// Operation, and WorkerIdentifier with WithWorkerDimension).

	// CurrentLeases is the number of leases the worker holds at the flush
	// (Count; KCL: the same, Operation RenewAllLeases).
	CurrentLeases = "CurrentLeases"
	// LostLeases counts leases taken by another worker or expired while
	// processed (Count; KCL: the same, Operation RenewAllLeases).
	LostLeases = "LostLeases"
	// ReleasedLeases counts leases the worker gave up (graceful stop,
	// handoff, stopped shard) and ShardsEnded shards processed to their end
	// (Count; kcl only, Operation RenewAllLeases).
	ReleasedLeases = "ReleasedLeases"
	ShardsEnded    = "ShardsEnded"
	// TakenLeases counts leases the worker took (Count; KCL: the same,
	// Operation TakeLeases).
	TakenLeases = "TakenLeases"

	// Operation ShardSyncTask (dimension Operation): SyncSuccess counts
	// the passes that succeeded and SyncErrors those that failed (Count),
	// SyncTime is each pass's duration (Milliseconds). KCL: Success and
	// Time, the same names.
	SyncSuccess = "Success"
	SyncTime    = "Time"
	SyncErrors  = "Errors"

	// Operation LeaseTable (dimensions Operation, TableName; with
	// WithLeaseStore): the DynamoDB calls of each operation since the
	// previous flush, as <operation>.Calls, and the capacity units they
	// consumed, as <operation>.ConsumedCapacity (Count; kcl only).
	SuffixCalls            = ".Calls"
	SuffixConsumedCapacity = ".ConsumedCapacity"
)

// isMetricName reports whether a dimension named name could collide with a
// metric's member.
func isMetricName(name string) bool {
	switch name {
	case RecordsProcessed, DataBytesProcessed, MillisBehindLatest, ProcessRecordsTime, BatchesSkipped,
		RecordsSkipped, BatchRetries, ProcessorErrors, ProcessorPanics, KPLAggregates, KPLMalformed, KPLDropped,
		SubscriptionRenewals, ExpiredIterator, CurrentLeases, LostLeases, ReleasedLeases, ShardsEnded, TakenLeases,
		SyncSuccess, SyncTime, SyncErrors:
		return true
	}
	for _, s := range []string{SuffixSuccess, SuffixTime, SuffixThrottled, SuffixErrors, SuffixCalls, SuffixConsumedCapacity} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
