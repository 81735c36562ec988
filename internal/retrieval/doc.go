// Package retrieval fetches the records of one shard by polling GetRecords,
// for the Worker's per-shard goroutine.
//
// A [Fetcher] is built with [New] from a [Config] (stream, shard, the
// lease's checkpoint, pacing and buffering limits) and run with
// [Fetcher.Run], which sends deaggregated, filtered [Batch]es on a channel
// until the shard ends, the context is done or a non-retryable error occurs.
//
// # Behaviour (and where it follows KCL)
//
//   - Resume: a numeric checkpoint starts AT_SEQUENCE_NUMBER and every user
//     record at or before the checkpoint (sequence, sub-sequence) is
//     dropped, so a half-processed KPL aggregate resumes at the next
//     sub-record. Sentinels start at TRIM_HORIZON, LATEST or AT_TIMESTAMP.
//   - Pacing: every GetRecords call (retries included) starts at least
//     Config.IdleTime after the previous one started, whatever the previous
//     one returned. KCL's PrefetchRecordsPublisher does the same
//     (sleepBeforeNextCall sleeps idleMillisBetweenCalls minus the time since
//     the last call, unconditionally, even after a full page). Skipping the
//     wait after a full page would let a lagging consumer take the whole
//     5-calls-per-second budget that every polling application of the
//     shard shares; with IdleTime >= 200 ms a Fetcher never exceeds it.
//   - Prefetch: at most Config.MaxBatches batches, or Config.MaxBytes bytes,
//     are held fetched but not yet received; no GetRecords call starts while
//     either bound is reached (KCL's PrefetchCounters.waitForConsumer).
//     Empty GetRecords results are not delivered.
//   - Throttling (ProvisionedThroughputExceeded, LimitExceeded), InUse and
//     transient failures (network errors, HTTP 5xx) are retried with
//     exponential backoff and jitter, from the same iterator, so the
//     position is kept.
//   - An expired iterator is replaced by one AFTER_SEQUENCE_NUMBER of the
//     last Kinesis record returned by GetRecords (the start position if
//     there was none yet), as KCL does. From LATEST with nothing read yet,
//     records put between the first and the replacement iterator are not
//     seen (KCL has the same gap).
//   - Shard end: a GetRecords result with NextShardIterator nil and
//     ChildShards set ends the shard; its records and the children come in
//     the final Batch, with ShardEnd set.
//   - Invalid results: KCL accepts a result only when exactly one of
//     NextShardIterator and ChildShards is present. Any other result is
//     discarded, records and all, and the read is retried from a new
//     iterator AFTER the last accepted record, with backoff; after
//     maxInvalidResults such results in a row Run returns an error wrapping
//     ErrInvalidResult rather than end the shard without children
//     (which would drop the lineage) or loop for ever.
//   - ResourceNotFound: KCL treats ResourceNotFound on a shard as its end.
//     Kinesis uses the same exception for a missing stream, and its message
//     is not an API, so a Fetcher asks: when the API value also has
//     DescribeStreamSummary (*kinesis.Client and the fake do), a
//     ResourceNotFound from DescribeStreamSummary means the stream is gone
//     and Run returns an error wrapping ErrStreamNotFound; any other answer
//     means the shard is gone, and Run sends a final Batch with ShardEnd and
//     no ChildShards. Without DescribeStreamSummary every ResourceNotFound is
//     a shard end, as in KCL.
//   - Denied, Invalid and unclassified errors end Run with the error.
package retrieval
