// Package records holds the engines of the kcl put and kcl tail commands,
// apart from their flags and output: a [Producer] that batches lines into
// PutRecords calls (optionally packed into KPL aggregates, one aggregator
// per shard) and retries failed records first, and a [Tailer] that reads a
// stream's shards with GetRecords, deaggregates KPL records and follows
// reshards in parent-to-child order.
//
// [NewPut] and [NewTail] are the cobra commands over them (package ops
// gives their flags, clients and exit statuses).
//
// Both engines take narrow interfaces with the aws-sdk-go-v2 signatures, so a
// *kinesis.Client and testkit/fakekinesis satisfy them.
package records
