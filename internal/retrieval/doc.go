// Package retrieval reads the records of one shard, for the Worker's
// per-shard goroutine: by polling GetRecords or through enhanced fan-out.
//
// One contract covers both. [NewReader] builds a [Reader] from a [Config]:
// the [Shard] (stream, shard id, hash range and the lease's checkpoint,
// whatever the mode) and a [Mode], either [Polling] (pacing and
// prefetch limits; the Reader is a [Fetcher]) or [FanOut] (the registered
// consumer's ARN; a [Subscriber]). [Reader.Run] sends deaggregated,
// filtered [Batch]es on a channel until the shard ends (a final Batch with
// the children), the context is done or a non-retryable error occurs.
//
// Written once for both modes: the deaggregator with the shard's hash
// range filter and the checkpoint filter (decode.go), the assembly of a
// Batch from a GetRecords result or an event, the mapping of AWS errors to
// what a reader does next (outcomeOf, over internal/awserr) and the retry
// state (reader.go), and the start position (config.go).
//
// # Behaviour (and where it follows KCL)
//
//   - Resume: a numeric checkpoint starts AT_SEQUENCE_NUMBER and every user
//     record at or before the checkpoint (sequence, sub-sequence) is
//     dropped, so a half-processed KPL aggregate resumes at the next
//     sub-record. Sentinels start at TRIM_HORIZON, LATEST or AT_TIMESTAMP.
//   - Pacing: every GetRecords call (retries included) starts at least
//     Polling.IdleTime after the previous one started, whatever the previous
//     one returned. KCL's PrefetchRecordsPublisher does the same
//     (sleepBeforeNextCall sleeps idleMillisBetweenCalls minus the time since
//     the last call, unconditionally, even after a full page). Skipping the
//     wait after a full page would let a lagging consumer take the whole
//     5-calls-per-second budget that every polling application of the
//     shard shares; with IdleTime >= 200 ms a Fetcher never exceeds it.
//   - Prefetch: at most Polling.MaxBatches batches, or Polling.MaxBytes bytes,
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
//     seen (KCL has the same gap). The first expiry is retried at once (after
//     IdleTime); the next ones in a row back off, with jitter.
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
//
// # Enhanced fan-out
//
// A [Subscriber] is built by [NewReader] from a [FanOut] mode (the
// registered consumer's ARN, as [EnsureConsumer] returns it) and the same
// [Shard]. It reads the shard with SubscribeToShard; what it delivers is
// what a Fetcher would deliver (same deaggregation, filters and final
// batch).
//
//   - Positions: the first subscription starts at the checkpoint
//     (AT_SEQUENCE_NUMBER, dropping user records at or before it, as
//     above), TRIM_HORIZON, LATEST or AT_TIMESTAMP. Every later one starts
//     AFTER_SEQUENCE_NUMBER of the ContinuationSequenceNumber of the last
//     event accepted (delivered, or empty), so renewals neither skip nor
//     repeat records (KCL's FanOutRecordsPublisher does the same). From
//     LATEST, a subscription that fails before its first event is retried
//     from LATEST (the Fetcher's gap, again).
//   - Renewal: Kinesis ends a subscription after about 5 minutes (the
//     event channel closes with a nil Err); Run subscribes again at once.
//     A subscription that ended without any event is retried after a
//     backoff instead, so a misbehaving service cannot make Run spin.
//   - One event in flight: Run reads an event, sends its batch, and reads
//     the next one only when out has received the batch. Events whose
//     records are all filtered out are not delivered.
//   - Watchdog: a subscription that delivers no event for
//     FanOut.Silence (default 30 s; KCL waits 60 s) is
//     closed and replaced, after a backoff. The time the consumer takes to
//     receive a batch does not count. A SubscribeToShard call is bounded by
//     the same duration.
//   - Stale events: Run reads one subscription at a time, on its own
//     goroutine, and closes a subscription (the event stream's Close, and
//     the request's context) before it opens the next, so an event of a
//     replaced subscription is never read. KCL needs an explicit check
//     because its subscriptions deliver on SDK threads; Run does not.
//   - Failures of SubscribeToShard or of the event stream (its Err):
//     ResourceInUse (a subscription of this consumer to this shard less
//     than 5 s old, or one taking over) waits at least
//     MinResubscribeInUse; throttling, network errors and 5xx back off
//     exponentially with jitter; both resubscribe from the continuation.
//     Denied, Invalid and unclassified errors end Run.
//   - ResourceNotFound: Kinesis returns it for a missing stream, shard or
//     consumer alike, so Run asks ListShards. No stream: an error wrapping
//     ErrStreamNotFound. No such shard (trimmed): the shard's end without
//     children, as for the Fetcher. A closed shard: its end is confirmed
//     with GetRecords (below). An open shard: the consumer is missing, an
//     error wrapping ErrConsumerNotFound (ending an open shard would drop
//     its records for good).
//   - Shard end: an event with ContinuationSequenceNumber nil and
//     ChildShards gives the final Batch. An event with both or neither is
//     dropped and Run resubscribes from the continuation, after a backoff;
//     after maxInvalidResults in a row Run returns an error wrapping
//     ErrInvalidResult.
//   - Closed shards that never end: kinesis-mock (and, should it ever
//     happen, any service) may keep sending empty events with an unchanged
//     continuation at the end of a closed shard, without ChildShards. When
//     a subscription has done so for FanOut.EndCheck (default
//     10 s), Run looks the shard up with ListShards; if it is closed
//     (EndingSequenceNumber present: its value is not compared, since
//     kinesis-mock's is bogus), Run closes the subscription and reads the
//     rest with GetShardIterator AFTER_SEQUENCE_NUMBER of the continuation
//     (or from the start position) and GetRecords, paced MinIdleTime
//     apart, delivering any records in order and then the final batch with
//     the children. If GetRecords finds no end after all, Run subscribes
//     again after what it delivered. On an open, idle shard each check
//     doubles the wait for the next, up to MaxEndCheck, so idle shards
//     cost few ListShards calls.
//   - Goroutines: Run starts none of its own (a timer bounding a
//     SubscribeToShard call runs its cancel in a goroutine of the runtime
//     when it fires); the SDK runs one or two per open event stream, and
//     they end when Run closes the stream. Run returns only after closing
//     every subscription it opened.
package retrieval
