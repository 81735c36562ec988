package kotel

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
)

// The hooks carry no context: measurements are recorded under
// context.Background(), so they carry no exemplars from a trace.
var bg = context.Background()

// BatchProcessed records a batch the processor finished with: records and
// bytes processed (or skipped), its size, duration and retries.
func (m *Metrics) BatchProcessed(b consumer.BatchInfo) {
	a := m.attrs.shard(b.ShardID)
	if b.Skipped != nil {
		m.batchesSkipped.Add(bg, 1, a.add...)
		m.recordsSkipped.Add(bg, int64(b.Records), a.add...)
	} else {
		m.recordsProcessed.Add(bg, int64(b.Records), a.add...)
		m.dataProcessed.Add(bg, int64(b.Bytes), a.add...)
	}
	m.batchSize.Record(bg, int64(b.Records), a.record...)
	m.batchDuration.Record(bg, b.Latency.Seconds(), a.record...)
	if b.Attempts > 1 {
		m.batchRetries.Add(bg, int64(b.Attempts-1), a.add...)
	}
	m.state.setLag(b.ShardID, b.MillisBehindLatest.Seconds())
}

// Fetched records a Kinesis read call. A successful read that returned no
// records is not delivered to the processor, so it sets the shard's lag:
// without it an idle shard would keep reporting the lag of its last batch.
func (m *Metrics) Fetched(f consumer.FetchInfo) {
	errType := ""
	if f.Err != nil {
		errType = errorType(f.Err)
	}
	m.kinesisDuration.Record(bg, f.Duration.Seconds(), m.attrs.call(f.ShardID, f.Op, errType).record...)
	if f.Throttled {
		m.kinesisThrottles.Add(bg, 1, m.attrs.call(f.ShardID, f.Op, "").add...)
	}
	if emptyRead(f) {
		m.state.setLag(f.ShardID, f.MillisBehindLatest.Seconds())
	}
}

// emptyRead reports a successful read of no records: a GetRecords call or
// an enhanced fan-out event, which report MillisBehindLatest, unlike the
// other calls (GetShardIterator, SubscribeToShard, ListShards).
func emptyRead(f consumer.FetchInfo) bool {
	return f.Err == nil && f.Records == 0 && (f.Op == "GetRecords" || f.Op == "SubscribeToShardEvent")
}

// LeaseChanged counts the lease's event and keeps the set of leases held.
func (m *Metrics) LeaseChanged(e consumer.LeaseEvent) {
	a := m.attrs.shard(e.ShardID)
	switch e.Kind {
	case consumer.LeaseAcquired:
		m.state.acquired(e.ShardID)
		m.leasesAcquired.Add(bg, 1, a.add...)
		return
	case consumer.LeaseLost:
		m.leasesLost.Add(bg, 1, a.add...)
	case consumer.LeaseReleased:
		m.leasesReleased.Add(bg, 1, a.add...)
	case consumer.LeaseShardEnded:
		m.shardsEnded.Add(bg, 1, a.add...)
	}
	m.state.dropped(e.ShardID)
}

// Checkpointed records a checkpoint write.
func (m *Metrics) Checkpointed(c consumer.CheckpointInfo) {
	errType := ""
	if c.Err != nil {
		errType = errorType(c.Err)
	}
	m.checkpointDur.Record(bg, c.Duration.Seconds(), m.attrs.call(c.ShardID, "", errType).record...)
}

// errorType names err for error.type with a bounded set of values: lease
// conditions by name, AWS errors by their code, anything else "_OTHER".
func errorType(err error) string {
	switch {
	case errors.Is(err, lease.ErrLeaseLost):
		return "lease_lost"
	case errors.Is(err, lease.ErrThrottled):
		return "throttled"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		return api.ErrorCode()
	}
	return "_OTHER"
}
