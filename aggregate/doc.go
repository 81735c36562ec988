// Package aggregate packs user records into KPL aggregated records, the
// format the Kinesis Producer Library (KPL) writes and the Kinesis Client
// Library (KCL) and package deaggregate expand.
//
// Aggregation puts many small user records into one Kinesis record, which
// cuts PutRecords calls and shard throughput spent on per-record overhead.
// An [Aggregator] fills aggregates up to a size limit ([WithMaxSize],
// [DefaultMaxSize] by default) and hands each full one back as an [Entry] to
// put with PutRecords; [Marshal] encodes one aggregate of any size for tests
// and tools.
//
// An aggregate is the magic bytes F3 89 9A C2, a protobuf AggregatedRecord
// message and the MD5 digest of that message. Each distinct partition key and
// explicit hash key is stored once in the message's key tables, which come
// before the records, as the KPL writes them. Sizes are computed exactly, so
// [Aggregator.Size] is the length the flushed [Entry].Data will have.
//
// Kinesis routes an aggregate by the [Entry]'s keys, which are those of its
// first user record, so the aggregate lands on the shard that owns the first
// user record. KCL (and package deaggregate with WithHashRange) drops a whole
// aggregate if any of its user records has a hash key outside the range of
// the shard that received it. On a stream with more than one shard, keep one
// Aggregator per shard and hand each user record to the Aggregator of the
// shard whose hash key range contains its hashkey.Effective key, as the KPL
// does.
package aggregate
