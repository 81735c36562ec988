// Package fakekinesis is an in-process fake of the Kinesis Data Streams data
// plane and of resharding, for unit tests of code that reads and writes
// streams: polling retrieval, shard sync, workers.
//
// A [*Fake] has the exact method signatures of the aws-sdk-go-v2
// *kinesis.Client for the operations it supports, so code that accepts a
// narrow interface (say, GetShardIterator + GetRecords + ListShards) runs
// against either:
//
//	CreateStream, DescribeStreamSummary, ListShards, GetShardIterator,
//	GetRecords, PutRecord, PutRecords, SplitShard, MergeShards,
//	UpdateShardCount, SubscribeToShard
//
// Everything is synchronous under one mutex: apart from one goroutine per
// open SubscribeToShard event stream (which paces its events with timers),
// the fake starts no goroutines and no timers, and reads time only through
// time.Now, so it works inside a testing/synctest bubble, where time.Sleep
// advances a fake clock (iterator expiry, ListShards timestamp filters, read
// throttling, event pacing).
//
// Behaviour follows the AWS documentation rather than the local emulators:
//   - streams and reshards are ACTIVE immediately (no CREATING/UPDATING);
//   - sequence numbers are 56-digit decimal strings, strictly increasing
//     across the whole fake in put order; a shard's StartingSequenceNumber is
//     below its first record and a closed shard's EndingSequenceNumber is
//     above its last record and below its children's StartingSequenceNumber;
//   - at the end of a closed shard GetRecords returns NextShardIterator nil
//     and ChildShards (with ParentShards and HashKeyRange), in the same
//     response as the shard's last records (or, with [WithEmptyShardEnd],
//     in a following empty response);
//   - iterators expire five minutes after they are issued;
//   - errors are the SDK's typed errors (types.ExpiredIteratorException,
//     types.ResourceNotFoundException, ...), wrapped the way the SDK wraps
//     them (*smithy.OperationError around an *awshttp.ResponseError with the
//     HTTP status), so errors.As classifies them as it would against AWS.
//
// Faults are injected with [WithFault]; [Throttled], [ExpiredIterator],
// [ConnectionReset] and [InternalError] build the usual ones. The fake's
// client methods do no retries: a fault reaches the caller at once, as it
// would from a *kinesis.Client configured with aws.NopRetryer.
//
// Test helpers [Fake.Put], [Fake.Records] and [Fake.Shards] bypass fault
// injection and the call counters in [Fake.Stats].
package fakekinesis
