package consumer

import (
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/hashkey"
)

// Record is one user record: a plain Kinesis record or one unpacked from a
// KPL aggregate. It is deaggregate.Record, named here so that processors
// need import only this package.
type Record = deaggregate.Record

// Batch is what ProcessRecords is given: user records of one shard, in shard
// order, and the means to checkpoint them.
//
// The Worker owns a Batch. A processor may read it and keep the records
// after returning, but must not modify the Batch or its Records slice: when
// ProcessRecords fails, the same *Batch is delivered again and must hold the
// same records. Record.Data shares memory with the fetched response and is
// never reused by the Worker.
//
// Today every Batch holds consecutive records of the whole shard and
// ProcessRecords is never called concurrently for one shard. A later,
// opt-in option may deliver the records of different partition keys of one
// shard to concurrent ProcessRecords calls, each as a Batch of this same type
// holding the records of some keys only; processors written for the default
// remain correct because that mode is never switched on implicitly. Such
// processors checkpoint with Checkpointer.CheckpointAt, at positions taken
// from their own records, rather than Checkpointer.Checkpoint.
type Batch struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Records are the user records, in shard order: by sequence number, then
	// sub-sequence number. It may be empty, for example in the last batch of
	// a closed shard.
	Records []Record
	// MillisBehindLatest is how far the records are behind the tip of the
	// shard, as Kinesis reported it when they were fetched; 0 means caught
	// up. (KCL's millisBehindLatest, as a Duration.)
	MillisBehindLatest time.Duration
	// AtShardEnd reports that the shard is closed and this is its last
	// batch: after it returns nil the Worker calls ShardEnded (see
	// ShardEnder) and writes the SHARD_END checkpoint.
	AtShardEnd bool
	// ChildShards are the shards the closed shard was split or merged into.
	// They are set only in the batch with AtShardEnd.
	ChildShards []ChildShard
	// Checkpointer records how far the processor has got in the shard. It is
	// the same for every batch of one lease, may be used from any goroutine,
	// and may be kept after ProcessRecords returns (until the lease ends).
	// Its bound is the last record of the batches delivered so far.
	Checkpointer *Checkpointer
}

// ChildShard is a shard that a closed shard was split or merged into.
type ChildShard struct {
	// ShardID is the child's shard ID.
	ShardID string
	// ParentShardIDs are the child's parents: the closed shard and, for a
	// merge, the other shard merged into it.
	ParentShardIDs []string
	// HashRange is the range of hash keys the child covers.
	HashRange hashkey.Range
}

// bounds returns the positions of the first and last records of b, or zero
// Positions for an empty batch. A record whose sequence number does not
// parse (Kinesis never returns one) yields a zero Position too.
func bounds(b *Batch) (first, last checkpoint.Position) {
	if len(b.Records) == 0 {
		return checkpoint.Position{}, checkpoint.Position{}
	}
	f, l := b.Records[0], b.Records[len(b.Records)-1]
	first, _ = checkpoint.At(f.SequenceNumber, f.SubSequenceNumber)
	last, _ = checkpoint.At(l.SequenceNumber, l.SubSequenceNumber)
	return first, last
}
