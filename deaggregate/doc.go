// Package deaggregate expands the aggregated records that the Kinesis
// Producer Library (KPL) writes into the user records they hold, the way the
// Kinesis Client Library (KCL) does before it calls a record processor.
//
// A [Deaggregator] appends the user records of a batch of Kinesis records
// ([types.Record], as GetRecords and SubscribeToShard return them) to a
// caller-owned slice of [Record]. User records point into the input's Data
// instead of copying it, and an aggregate costs one allocation however many
// user records it holds, so a consumer that reuses its slice deaggregates
// without garbage proportional to its traffic. [Records] is the one-call form.
//
// # Format
//
// An aggregated record's data is the magic bytes F3 89 9A C2, then a protobuf
// AggregatedRecord message (see messages.proto in the KPL), then the 16-byte
// MD5 digest of that message. The message holds a table of partition keys, a
// table of explicit hash keys, and the user records, each of which names its
// keys by table index.
//
// # Compatibility with KCL
//
// The rules are those of KCL's AggregatorUtil.deaggregate:
//
//   - A record is an aggregate if its data starts with the magic bytes, is
//     longer than magic plus digest (at least 21 bytes) and the digest matches.
//     Data without the magic bytes is a plain record and is not an error.
//   - User records inherit the sequence number, arrival time and encryption
//     type of the Kinesis record, and get sub-sequence numbers 0..n-1.
//   - A record with the magic bytes that is not a valid aggregate is passed
//     through unchanged as one plain record. Here it is also counted in
//     [Stats].Malformed and reported with [ErrMalformed].
//   - An aggregate without user records yields nothing, silently.
//   - With [WithHashRange], the whole aggregate is dropped if any of its user
//     records has an effective hash key outside the shard's range (see
//     [ErrOutOfRange]). KCL applies the same rule with the range of the
//     shard it reads.
//
// Where KCL's behaviour is accidental this package makes the safe choice,
// and says so:
//
//   - Index out of range. KCL hits an IndexOutOfBoundsException, logs it,
//     keeps the user records it had already emitted from the aggregate and
//     silently drops the rest. Here the aggregate is treated as malformed and
//     passed through whole, so no data disappears. An index of 2^32 or more
//     is out of range; KCL would truncate it to a Java int first.
//   - Explicit hash keys that are not decimal numbers in [0, 2^128-1]. KCL's
//     new BigInteger(key) throws on text (with the partial result above) and
//     its default 0..2^128-1 range drops the aggregate for a negative or too
//     large number. Here any such key, when a user record refers to it, makes
//     the aggregate malformed, filter or not; table entries no user record
//     refers to are ignored, as in KCL. Leading zeros are accepted, as
//     BigInteger accepts them, and the key is returned as written.
//   - A known field with the wrong wire type (say a partition key index sent
//     as bytes) makes the aggregate malformed. protobuf-java would file it
//     with unknown fields and, for the optional explicit hash key index,
//     silently drop it; no KPL writes such data, so it is treated as
//     corruption instead. Unknown fields, including groups, are skipped as
//     protobuf-java skips them.
//   - Invalid UTF-8 in a key table is accepted, as protobuf-java accepts it in
//     proto2 string fields. KCL would then turn it into U+FFFD replacement
//     characters; here PartitionKey and ExplicitHashKey hold the bytes as
//     they were, and the hash range filter hashes those bytes, as the
//     producer that chose the shard did.
//   - Tags (Record.tags) are validated, because protobuf-java rejects a
//     malformed or key-less tag, but not returned, as KCL does not return
//     them.
//   - User records are checked in order and the first problem decides, as in
//     KCL: an aggregate whose first user record is out of range and whose
//     second has a bad index is filtered, and the other way round it is
//     malformed. Problems in the message's framing (syntax outside the user
//     records, the checksum) are found before any user record is looked at.
//
// [types.Record]: https://pkg.go.dev/github.com/aws/aws-sdk-go-v2/service/kinesis/types#Record
package deaggregate
