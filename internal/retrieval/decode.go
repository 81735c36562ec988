package retrieval

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
)

// decoder turns GetRecords results into batches: deaggregation, the hash
// range filter (inside deagg) and the checkpoint filter.
type decoder struct {
	deagg *deaggregate.Deaggregator
	start checkpoint.Position
	// skipping is true until the first user record after start has been
	// seen; records come in order, so none after it can be at or before
	// start.
	skipping bool
}

// decode returns the batch of one GetRecords result, without the shard-end
// fields.
func (d *decoder) decode(out *kinesis.GetRecordsOutput) Batch {
	recs := d.deagg.Append(make([]deaggregate.Record, 0, len(out.Records)), out.Records)
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
	return Batch{Records: recs, MillisBehindLatest: millis(out.MillisBehindLatest)}
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
