package kotel

import (
	"context"

	"github.com/kclgo/kcl/consumer"
)

// The hooks carry no context: measurements are recorded under
// context.Background(), so they carry no exemplars from a trace.
var bg = context.Background()

// BatchProcessed implements consumer.BatchHook: records, bytes and KPL
// aggregates processed (or the batch skipped), its size and duration.
func (m *Metrics) BatchProcessed(b consumer.BatchInfo) {
	s := m.attrs.shard(b.StreamName, b.WorkerID, b.ShardID)
	if b.Skipped != nil {
		m.batchesSkipped.Add(bg, 1, s.add...)
	} else {
		m.recordsProcessed.Add(bg, int64(b.Records), s.add...)
		m.bytesProcessed.Add(bg, int64(b.Bytes), s.add...)
		m.kplAggregates.Add(bg, int64(b.Aggregates), s.add...)
	}
	w := m.attrs.worker(b.StreamName, b.WorkerID)
	m.batchRecords.Record(bg, int64(b.Records), w.record...)
	m.processing.Record(bg, b.Latency.Seconds(), w.record...)
}

// Fetched implements consumer.FetchHook: calls, errors by kind, latency,
// subscription renewals, and the shard's MillisBehindLatest from a
// successful GetRecords or subscription event.
func (m *Metrics) Fetched(f consumer.FetchInfo) {
	op := m.attrs.get(attrKey{stream: f.StreamName, worker: f.WorkerID, op: f.Op})
	m.kinesisCalls.Add(bg, 1, op.add...)
	m.kinesisDuration.Record(bg, f.Duration.Seconds(), op.record...)
	if f.Err != nil {
		kind := f.Kind
		if kind == 0 {
			kind = consumer.ErrorOther
		}
		m.kinesisErrors.Add(bg, 1, m.attrs.get(attrKey{stream: f.StreamName, worker: f.WorkerID, op: f.Op, kind: kind.String()}).add...)
		return
	}
	if f.Renewal {
		m.renewals.Add(bg, 1, m.attrs.worker(f.StreamName, f.WorkerID).add...)
	}
	if f.Op == consumer.OpGetRecords || f.Op == consumer.OpSubscribeToShardEvent {
		m.state.behind(workerKey{f.StreamName, f.WorkerID}, f.ShardID, f.MillisBehindLatest.Seconds())
	}
}

// LeaseChanged implements consumer.LeaseHook: lease events by reason, and
// the leases each worker holds.
func (m *Metrics) LeaseChanged(e consumer.LeaseEvent) {
	k := workerKey{e.StreamName, e.WorkerID}
	if e.Kind == consumer.LeaseAcquired {
		m.state.acquired(k, e.ShardID)
		m.leasesAcquired.Add(bg, 1, m.attrs.worker(e.StreamName, e.WorkerID).add...)
		return
	}
	m.state.ended(k, e.ShardID)
	reason := m.attrs.get(attrKey{stream: e.StreamName, worker: e.WorkerID, reason: e.Reason()})
	switch e.Kind {
	case consumer.LeaseLost:
		m.leasesLost.Add(bg, 1, reason.add...)
	case consumer.LeaseReleased:
		m.leasesReleased.Add(bg, 1, reason.add...)
	case consumer.LeaseShardEnded:
		m.shardsEnded.Add(bg, 1, m.attrs.worker(e.StreamName, e.WorkerID).add...)
	}
}

// Checkpointed implements consumer.CheckpointHook.
func (m *Metrics) Checkpointed(c consumer.CheckpointInfo) {
	w := m.attrs.worker(c.StreamName, c.WorkerID)
	m.checkpoints.Add(bg, 1, w.add...)
	if c.Err != nil {
		m.checkpointFailures.Add(bg, 1, w.add...)
	}
	m.checkpointDuration.Record(bg, c.Duration.Seconds(), w.record...)
}

// ProcessorFailed implements consumer.ProcessorErrorHook.
func (m *Metrics) ProcessorFailed(p consumer.ProcessorErrorInfo) {
	a := m.attrs.get(attrKey{stream: p.StreamName, worker: p.WorkerID, method: p.Method})
	m.procErrors.Add(bg, 1, a.add...)
	if p.Panicked {
		m.procPanics.Add(bg, 1, a.add...)
	}
	if p.Retry {
		m.procRetries.Add(bg, 1, a.add...)
	}
}

// ShardSynced implements consumer.ShardSyncHook.
func (m *Metrics) ShardSynced(s consumer.ShardSyncInfo) {
	w := m.attrs.worker(s.StreamName, s.WorkerID)
	m.shardSyncs.Add(bg, 1, w.add...)
	if s.Err != nil {
		m.shardSyncFailures.Add(bg, 1, w.add...)
	}
	m.shardSyncDuration.Record(bg, s.Duration.Seconds(), w.record...)
}

// AggregateFailed implements consumer.AggregateHook.
func (m *Metrics) AggregateFailed(a consumer.AggregateInfo) {
	w := m.attrs.worker(a.StreamName, a.WorkerID)
	if a.Dropped {
		m.kplDropped.Add(bg, 1, w.add...)
	} else {
		m.kplMalformed.Add(bg, 1, w.add...)
	}
}
