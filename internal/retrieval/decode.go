package retrieval

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
)

// decoder turns Kinesis results into batches, the same way for both modes:
// deaggregation, the hash range filter (inside deagg) and the checkpoint
// filter.
type decoder struct {
	deagg *deaggregate.Deaggregator
	start checkpoint.Position
	// skipping is true until the first user record after start has been
	// seen; records come in order, so none after it can be at or before
	// start.
	skipping bool
}

// batch assembles the Batch of one GetRecords result or SubscribeToShard
// event: its records, and its next position (NextShardIterator or
// ContinuationSequenceNumber) or the shard's children. As in KCL, a result
// is valid only when exactly one of next and children is present; an
// invalid one (ok false) is not decoded, so the checkpoint filter is not
// moved by records that will be read again.
func (d *decoder) batch(records []types.Record, behind *int64, next *string, children []types.ChildShard) (b Batch, ok bool) {
	if (next == nil) == (len(children) == 0) {
		return Batch{}, false
	}
	b = d.decode(records, behind)
	if next == nil {
		b.ShardEnd, b.ChildShards = true, children
	}
	return b, true
}

// decode returns the batch of records, without the shard-end fields.
func (d *decoder) decode(records []types.Record, behind *int64) Batch {
	recs := d.deagg.Append(make([]deaggregate.Record, 0, len(records)), records)
	if d.skipping {
		kept := recs[:0]
		for _, rec := range recs {
			if d.skipping {
				if p, err := checkpoint.At(rec.SequenceNumber, rec.SubSequenceNumber); err == nil && p.Compare(d.start) <= 0 {
					continue
				}
				d.skipping = false
			}
			kept = append(kept, rec)
		}
		clear(recs[len(kept):])
		recs = kept
	}
	return Batch{Records: recs, MillisBehindLatest: millis(behind)}
}

// lastSequence returns the sequence number of the last of records, "" when
// there is none.
func lastSequence(records []types.Record) string {
	if n := len(records); n > 0 && records[n-1].SequenceNumber != nil {
		return *records[n-1].SequenceNumber
	}
	return ""
}

// recordsInfo is the CallInfo of a GetRecords call or SubscribeToShard
// event that returned records.
func recordsInfo(op string, d time.Duration, records []types.Record, behind *int64) CallInfo {
	return CallInfo{Op: op, Duration: d, Records: len(records), Bytes: recordBytes(records), MillisBehindLatest: millis(behind)}
}

// recordBytes is the size of records as Kinesis counts it for the 10 MiB
// GetRecords limit: data plus partition key.
func recordBytes(records []types.Record) int {
	n := 0
	for i := range records {
		n += len(records[i].Data)
		if pk := records[i].PartitionKey; pk != nil {
			n += len(*pk)
		}
	}
	return n
}

func millis(ms *int64) time.Duration {
	if ms == nil {
		return 0
	}
	return time.Duration(*ms) * time.Millisecond
}
