package kemf

import (
	"github.com/kclgo/kcl/consumer"
)

// BatchProcessed implements consumer.BatchHook.
func (e *Exporter) BatchProcessed(b consumer.BatchInfo) {
	e.update(b.StreamName, b.ShardID, func(a *shardAgg) {
		if b.Skipped != nil {
			a.skippedBatches++
			a.skipped += int64(b.Records)
		} else {
			a.records += int64(b.Records)
			a.bytes += int64(b.Bytes)
			a.aggregates += int64(b.Aggregates)
		}
		if b.Attempts > 1 {
			a.retries += int64(b.Attempts - 1)
		}
		a.lag.add(millis(b.MillisBehindLatest))
		a.processTime.add(millis(b.Latency))
	})
}

// Fetched implements consumer.FetchHook. A successful read of no records
// is not delivered to the processor, so its MillisBehindLatest is counted
// here, as KCL counts its empty process tasks'.
func (e *Exporter) Fetched(f consumer.FetchInfo) {
	e.update(f.StreamName, f.ShardID, func(a *shardAgg) {
		c := a.call(f.Op)
		c.time.add(millis(f.Duration))
		if f.Err != nil {
			c.errors++
			if f.Throttled || f.Kind == consumer.ErrorThrottled {
				c.throttled++
			}
			if f.Kind == consumer.ErrorExpiredIterator {
				a.expiredIterators++
			}
			return
		}
		c.success++
		if f.Renewal {
			a.renewals++
		}
		if f.Records == 0 && (f.Op == consumer.OpGetRecords || f.Op == consumer.OpSubscribeToShardEvent) {
			a.lag.add(millis(f.MillisBehindLatest))
		}
	})
}

// LeaseChanged implements consumer.LeaseHook: it counts the event and
// keeps the set of leases held.
func (e *Exporter) LeaseChanged(ev consumer.LeaseEvent) {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	e.streams[e.streamKey(ev.StreamName)] = true
	wk := e.workerKey(ev.StreamName, ev.WorkerID)
	a := e.leases[wk]
	if a == nil {
		a = &leaseAgg{}
		e.leases[wk] = a
	}
	held := heldKey{ev.StreamName, ev.WorkerID, ev.ShardID}
	switch ev.Kind {
	case consumer.LeaseAcquired:
		e.held[held] = struct{}{}
		a.acquired++
		return
	case consumer.LeaseLost:
		a.lost++
	case consumer.LeaseReleased:
		a.released++
	case consumer.LeaseShardEnded:
		a.ended++
	}
	delete(e.held, held)
}

// Checkpointed implements consumer.CheckpointHook.
func (e *Exporter) Checkpointed(c consumer.CheckpointInfo) {
	e.update(c.StreamName, c.ShardID, func(a *shardAgg) {
		a.checkpoints++
		if c.Err != nil {
			a.checkpointE++
		}
		a.checkpointTime.add(millis(c.Duration))
	})
}

// ProcessorFailed implements consumer.ProcessorErrorHook.
func (e *Exporter) ProcessorFailed(p consumer.ProcessorErrorInfo) {
	e.update(p.StreamName, p.ShardID, func(a *shardAgg) {
		a.procErrors++
		if p.Panicked {
			a.procPanics++
		}
	})
}

// ShardSynced implements consumer.ShardSyncHook.
func (e *Exporter) ShardSynced(s consumer.ShardSyncInfo) {
	e.leaseMu.Lock()
	defer e.leaseMu.Unlock()
	k := e.streamKey(s.StreamName)
	e.streams[k] = true
	a := e.syncs[k]
	if a == nil {
		a = &syncAgg{}
		e.syncs[k] = a
	}
	if s.Err != nil {
		a.errors++
	} else {
		a.success++
	}
	a.time.add(millis(s.Duration))
}

// AggregateFailed implements consumer.AggregateHook.
func (e *Exporter) AggregateFailed(i consumer.AggregateInfo) {
	e.update(i.StreamName, i.ShardID, func(a *shardAgg) {
		if i.Dropped {
			a.kplDropped++
		} else {
			a.kplMalformed++
		}
	})
}
