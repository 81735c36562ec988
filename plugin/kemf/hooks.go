package kemf

import (
	"errors"

	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/consumer"
)

// BatchProcessed aggregates a batch the processor finished with.
func (e *Exporter) BatchProcessed(b consumer.BatchInfo) {
	e.update(b.ShardID, func(a *shardAgg) {
		if b.Skipped != nil {
			a.skippedBatches++
			a.skipped += int64(b.Records)
		} else {
			a.records += int64(b.Records)
			a.bytes += int64(b.Bytes)
		}
		if b.Attempts > 1 {
			a.retries += int64(b.Attempts - 1)
		}
		a.lag.add(millis(b.MillisBehindLatest))
		a.processTime.add(millis(b.Latency))
	})
}

// Fetched aggregates a Kinesis call. A successful read of no records is
// not delivered to the processor, so its MillisBehindLatest is counted
// here, as KCL counts its empty process tasks'.
func (e *Exporter) Fetched(f consumer.FetchInfo) {
	e.update(f.ShardID, func(a *shardAgg) {
		c := a.call(f.Op)
		c.time.add(millis(f.Duration))
		switch {
		case f.Err == nil:
			c.success++
		case f.Throttled:
			c.throttled++
			c.errors++
		default:
			c.errors++
			var api smithy.APIError
			if errors.As(f.Err, &api) && api.ErrorCode() == "ExpiredIteratorException" {
				a.expiredIterators++
			}
		}
		if f.Err == nil && f.Records == 0 && (f.Op == "GetRecords" || f.Op == "SubscribeToShardEvent") {
			a.lag.add(millis(f.MillisBehindLatest))
		}
	})
}

// LeaseChanged counts the lease event and keeps the set of leases held.
func (e *Exporter) LeaseChanged(ev consumer.LeaseEvent) {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	switch ev.Kind {
	case consumer.LeaseAcquired:
		e.held[ev.ShardID] = struct{}{}
		e.leases.acquired++
		return
	case consumer.LeaseLost:
		e.leases.lost++
	case consumer.LeaseReleased:
		e.leases.released++
	case consumer.LeaseShardEnded:
		e.leases.ended++
	}
	delete(e.held, ev.ShardID)
}

// Checkpointed aggregates a checkpoint write.
func (e *Exporter) Checkpointed(c consumer.CheckpointInfo) {
	e.update(c.ShardID, func(a *shardAgg) {
		a.checkpoints++
		if c.Err != nil {
			a.checkpointE++
		}
		a.checkpointTime.add(millis(c.Duration))
	})
}
