package kotel_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/plugin/kotel"
)

// collector reads what a Metrics recorded through the SDK's manual reader.
type collector struct {
	t      testing.TB
	reader *sdkmetric.ManualReader
}

func newMetrics(t testing.TB, opts ...kotel.Option) (*kotel.Metrics, *collector) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := kotel.New(mp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, &collector{t: t, reader: reader}
}

// snapshot is one collection: every data point by instrument name.
type snapshot struct {
	metrics map[string]metricdata.Metrics
}

func (c *collector) collect() snapshot {
	c.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err != nil {
		c.t.Fatal(err)
	}
	s := snapshot{metrics: map[string]metricdata.Metrics{}}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != kotel.ScopeName {
			c.t.Errorf("scope %q, want %q", sm.Scope.Name, kotel.ScopeName)
		}
		for _, m := range sm.Metrics {
			s.metrics[m.Name] = m
		}
	}
	return s
}

// point is one data point's value and attributes, whatever its type.
type point struct {
	attrs attribute.Set
	value float64 // sum, gauge value, or histogram sum
	count uint64  // histogram count
}

func (s snapshot) points(name string) []point {
	m, ok := s.metrics[name]
	if !ok {
		return nil
	}
	var out []point
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: float64(p.Value)})
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: p.Value})
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: float64(p.Value)})
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: p.Value})
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: float64(p.Sum), count: p.Count})
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, point{attrs: p.Attributes, value: p.Sum, count: p.Count})
		}
	default:
		panic(fmt.Sprintf("%s: unexpected data %T", name, m.Data))
	}
	return out
}

// match returns the points of name whose attributes include every kv.
func (s snapshot) match(name string, kv ...attribute.KeyValue) []point {
	var out []point
	for _, p := range s.points(name) {
		ok := true
		for _, want := range kv {
			if got, found := p.attrs.Value(want.Key); !found || got != want.Value {
				ok = false
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// value sums the values of the points of name matching kv.
func (s snapshot) value(name string, kv ...attribute.KeyValue) float64 {
	v := 0.0
	for _, p := range s.match(name, kv...) {
		v += p.value
	}
	return v
}

// count sums the histogram counts of the points of name matching kv.
func (s snapshot) count(name string, kv ...attribute.KeyValue) uint64 {
	var n uint64
	for _, p := range s.match(name, kv...) {
		n += p.count
	}
	return n
}

func shard(id string) attribute.KeyValue { return kotel.ShardKey.String(id) }

var w1 = kotel.WorkerKey.String("w1")

// batch and fetch tag hook values with stream orders and worker w1.
func batch(b consumer.BatchInfo) consumer.BatchInfo {
	b.StreamName, b.WorkerID = "orders", "w1"
	return b
}

func fetch(f consumer.FetchInfo) consumer.FetchInfo {
	f.StreamName, f.WorkerID = "orders", "w1"
	return f
}

func leaseEvent(shardID string, kind consumer.LeaseEventKind, cause error) consumer.LeaseEvent {
	return consumer.LeaseEvent{StreamName: "orders", WorkerID: "w1", ShardID: shardID, Kind: kind, Cause: cause}
}

func TestBatchesAndLeasesAreCountedPerShard(t *testing.T) {
	m, c := newMetrics(t)
	m.LeaseChanged(leaseEvent("s1", consumer.LeaseAcquired, nil))
	m.LeaseChanged(leaseEvent("s2", consumer.LeaseAcquired, nil))
	m.BatchProcessed(batch(consumer.BatchInfo{ShardID: "s1", Records: 10, Bytes: 1000, Aggregates: 2, Latency: 20 * time.Millisecond, Attempts: 1}))
	m.BatchProcessed(batch(consumer.BatchInfo{ShardID: "s1", Records: 5, Bytes: 500, Latency: 10 * time.Millisecond, Attempts: 3}))
	m.BatchProcessed(batch(consumer.BatchInfo{ShardID: "s2", Records: 7, Bytes: 70, Latency: time.Millisecond, Attempts: 4,
		Skipped: &consumer.SkippedBatch{Records: 7, Attempts: 4}}))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords, Records: 15, MillisBehindLatest: 2 * time.Second}))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s2", Op: consumer.OpGetRecords, MillisBehindLatest: 9 * time.Second}))
	// Another worker of the same stream, served by the same Metrics.
	m.LeaseChanged(consumer.LeaseEvent{StreamName: "orders", WorkerID: "w2", ShardID: "s3", Kind: consumer.LeaseAcquired})
	m.BatchProcessed(consumer.BatchInfo{StreamName: "orders", WorkerID: "w2", ShardID: "s3", Records: 100, Attempts: 1})

	s := c.collect()
	for _, tc := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"kcl.records.processed", []attribute.KeyValue{w1, shard("s1")}, 15},
		{"kcl.records.processed", []attribute.KeyValue{w1, shard("s2")}, 0},
		{"kcl.records.processed", []attribute.KeyValue{kotel.WorkerKey.String("w2"), shard("s3")}, 100},
		{"kcl.bytes.processed", []attribute.KeyValue{w1, shard("s1")}, 1500},
		{"kcl.kpl.aggregates", []attribute.KeyValue{w1, shard("s1")}, 2},
		{"kcl.batches.skipped", []attribute.KeyValue{w1, shard("s2")}, 1},
		{"kcl.leases.acquired", []attribute.KeyValue{w1}, 2},
		{"kcl.leases.held", []attribute.KeyValue{w1}, 2},
		{"kcl.leases.held", []attribute.KeyValue{kotel.WorkerKey.String("w2")}, 1},
		{"kcl.behind_latest", []attribute.KeyValue{w1, shard("s1")}, 2},
		{"kcl.behind_latest", []attribute.KeyValue{w1, shard("s2")}, 9},
		{"kcl.max_behind_latest", []attribute.KeyValue{w1}, 9},
	} {
		if got := s.value(tc.name, tc.attrs...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.attrs, got, tc.want)
		}
	}
	if got := s.count("kcl.batch.records", w1); got != 3 {
		t.Errorf("kcl.batch.records count for w1 = %d, want 3", got)
	}
	if got := s.value("kcl.batch.records", w1); got != 22 {
		t.Errorf("kcl.batch.records sum for w1 = %v, want 22", got)
	}
	if got, want := s.value("kcl.processing.duration", w1), 0.031; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("kcl.processing.duration sum for w1 = %v, want %v", got, want)
	}
	for name := range s.metrics {
		for _, p := range s.points(name) {
			if v, _ := p.attrs.Value(kotel.StreamKey); v.AsString() != "orders" {
				t.Errorf("%s %v: stream = %q, want orders", name, p.attrs.ToSlice(), v.AsString())
			}
			if !p.attrs.HasValue(kotel.WorkerKey) {
				t.Errorf("%s %v: no worker", name, p.attrs.ToSlice())
			}
			perShard := name == "kcl.records.processed" || name == "kcl.bytes.processed" || name == "kcl.kpl.aggregates" ||
				name == "kcl.batches.skipped" || name == "kcl.behind_latest"
			if p.attrs.HasValue(kotel.ShardKey) != perShard {
				t.Errorf("%s %v: shard attribute present = %v, want %v", name, p.attrs.ToSlice(), !perShard, perShard)
			}
		}
	}

	// The lease of s2 is lost: its MillisBehindLatest goes, the maximum is
	// s1's, one lease is held.
	m.LeaseChanged(leaseEvent("s2", consumer.LeaseLost, consumer.ErrLeaseExpired))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s2", Op: consumer.OpGetRecords, MillisBehindLatest: time.Hour})) // late: does not bring s2 back
	s = c.collect()
	if got := s.value("kcl.leases.held", w1); got != 1 {
		t.Errorf("after a loss, kcl.leases.held = %v, want 1", got)
	}
	if got := s.match("kcl.behind_latest", shard("s2")); len(got) != 0 {
		t.Errorf("after a loss, kcl.behind_latest for s2 is still reported: %v", got)
	}
	if got := s.value("kcl.max_behind_latest", w1); got != 2 {
		t.Errorf("after a loss, kcl.max_behind_latest = %v, want 2", got)
	}
	if got := s.value("kcl.leases.lost", w1, kotel.ReasonKey.String("expired")); got != 1 {
		t.Errorf("kcl.leases.lost{reason=expired} = %v, want 1", got)
	}

	m.LeaseChanged(leaseEvent("s1", consumer.LeaseShardEnded, nil))
	m.LeaseChanged(leaseEvent("s4", consumer.LeaseAcquired, nil))
	m.LeaseChanged(leaseEvent("s4", consumer.LeaseReleased, consumer.ErrStopping))
	s = c.collect()
	if got := s.match("kcl.leases.held", w1); len(got) != 1 || got[0].value != 0 {
		t.Errorf("with no lease, kcl.leases.held = %v, want one series at 0", got)
	}
	if got := s.match("kcl.max_behind_latest", w1); len(got) != 0 {
		t.Errorf("with no lease, kcl.max_behind_latest is reported: %v", got)
	}
	if got := s.value("kcl.shards.ended", w1); got != 1 {
		t.Errorf("kcl.shards.ended = %v, want 1", got)
	}
	if got := s.value("kcl.leases.released", w1, kotel.ReasonKey.String("stopping")); got != 1 {
		t.Errorf("kcl.leases.released{reason=stopping} = %v, want 1", got)
	}
}

func TestFetchedCallsAreCountedByOperationAndKind(t *testing.T) {
	m, c := newMetrics(t)
	m.LeaseChanged(leaseEvent("s1", consumer.LeaseAcquired, nil))
	for _, f := range []consumer.FetchInfo{
		{ShardID: "s1", Op: consumer.OpGetShardIterator, Duration: 5 * time.Millisecond},
		{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, Records: 3, Bytes: 30, MillisBehindLatest: 4 * time.Second},
		{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, Err: errors.New("expired"), Kind: consumer.ErrorExpiredIterator},
		{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, Err: errors.New("slow down"), Kind: consumer.ErrorThrottled, Throttled: true},
		{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, Err: errors.New("unclassified")},
		{ShardID: "s1", Op: consumer.OpSubscribeToShard, Duration: 30 * time.Millisecond},
		{ShardID: "s1", Op: consumer.OpSubscribeToShard, Duration: 30 * time.Millisecond, Renewal: true},
	} {
		m.Fetched(fetch(f))
	}
	s := c.collect()
	getRecords := kotel.OpKey.String(consumer.OpGetRecords)
	for _, tc := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"kcl.kinesis.calls", []attribute.KeyValue{getRecords}, 4},
		{"kcl.kinesis.calls", []attribute.KeyValue{kotel.OpKey.String(consumer.OpGetShardIterator)}, 1},
		{"kcl.kinesis.calls", []attribute.KeyValue{kotel.OpKey.String(consumer.OpSubscribeToShard)}, 2},
		{"kcl.kinesis.errors", []attribute.KeyValue{getRecords}, 3},
		{"kcl.kinesis.errors", []attribute.KeyValue{getRecords, kotel.KindKey.String("expired_iterator")}, 1},
		{"kcl.kinesis.errors", []attribute.KeyValue{getRecords, kotel.KindKey.String("throttled")}, 1},
		{"kcl.kinesis.errors", []attribute.KeyValue{getRecords, kotel.KindKey.String("other")}, 1},
		{"kcl.subscription.renewals", []attribute.KeyValue{w1}, 1},
		{"kcl.behind_latest", []attribute.KeyValue{shard("s1")}, 4},
	} {
		if got := s.value(tc.name, tc.attrs...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.attrs, got, tc.want)
		}
	}
	if got := s.count("kcl.kinesis.call.duration", getRecords); got != 4 {
		t.Errorf("kcl.kinesis.call.duration count for GetRecords = %d, want 4", got)
	}
	// Subscription events report MillisBehindLatest; calls that carry none
	// leave it.
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpSubscribeToShardEvent, MillisBehindLatest: 500 * time.Millisecond}))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpSubscribeToShard}))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetShardIterator}))
	m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpListShards}))
	if got := c.collect().value("kcl.behind_latest", shard("s1")); got != 0.5 {
		t.Errorf("kcl.behind_latest after a subscription event and calls without MillisBehindLatest = %v, want 0.5", got)
	}
}

func TestCheckpointsProcessorErrorsSyncsAndAggregatesAreCounted(t *testing.T) {
	m, c := newMetrics(t)
	m.Checkpointed(consumer.CheckpointInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Duration: 4 * time.Millisecond})
	m.Checkpointed(consumer.CheckpointInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Duration: 6 * time.Millisecond, Err: lease.ErrLeaseLost})
	m.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: "orders", WorkerID: "w1", Method: consumer.MethodProcessRecords, Retry: true})
	m.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: "orders", WorkerID: "w1", Method: consumer.MethodProcessRecords, Panicked: true, Retry: true})
	m.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: "orders", WorkerID: "w1", Method: consumer.MethodInitialize})
	m.ShardSynced(consumer.ShardSyncInfo{StreamName: "orders", WorkerID: "w1", Duration: 50 * time.Millisecond, Shards: 4})
	m.ShardSynced(consumer.ShardSyncInfo{StreamName: "orders", WorkerID: "w1", Duration: 50 * time.Millisecond, Err: errors.New("throttled")})
	m.AggregateFailed(consumer.AggregateInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1"})
	m.AggregateFailed(consumer.AggregateInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Dropped: true})
	m.AggregateFailed(consumer.AggregateInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Dropped: true})
	s := c.collect()
	processRecords := kotel.MethodKey.String(consumer.MethodProcessRecords)
	for _, tc := range []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"kcl.checkpoints", []attribute.KeyValue{w1}, 2},
		{"kcl.checkpoint.failures", []attribute.KeyValue{w1}, 1},
		{"kcl.processor.errors", []attribute.KeyValue{processRecords}, 2},
		{"kcl.processor.errors", []attribute.KeyValue{kotel.MethodKey.String(consumer.MethodInitialize)}, 1},
		{"kcl.processor.panics", []attribute.KeyValue{processRecords}, 1},
		{"kcl.processor.retries", []attribute.KeyValue{processRecords}, 2},
		{"kcl.shard_syncs", []attribute.KeyValue{w1}, 2},
		{"kcl.shard_sync.failures", []attribute.KeyValue{w1}, 1},
		{"kcl.kpl.malformed", []attribute.KeyValue{w1}, 1},
		{"kcl.kpl.dropped", []attribute.KeyValue{w1}, 2},
	} {
		if got := s.value(tc.name, tc.attrs...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.attrs, got, tc.want)
		}
	}
	if got := s.count("kcl.checkpoint.duration", w1); got != 2 {
		t.Errorf("kcl.checkpoint.duration count = %d, want 2", got)
	}
	if got := s.count("kcl.shard_sync.duration", w1); got != 2 {
		t.Errorf("kcl.shard_sync.duration count = %d, want 2", got)
	}
}

func TestWithoutShardAttributesDropsTheShard(t *testing.T) {
	m, c := newMetrics(t, kotel.WithoutShardAttributes(), kotel.WithAttributes(attribute.String("app", "billing")))
	for i := range 50 {
		id := fmt.Sprintf("shard-%d", i)
		m.LeaseChanged(leaseEvent(id, consumer.LeaseAcquired, nil))
		m.BatchProcessed(batch(consumer.BatchInfo{ShardID: id, Records: 2, Bytes: 20, Attempts: 1}))
		m.Fetched(fetch(consumer.FetchInfo{ShardID: id, Op: consumer.OpGetRecords, Records: 2, MillisBehindLatest: time.Duration(i) * time.Second}))
	}
	s := c.collect()
	if _, ok := s.metrics["kcl.behind_latest"]; ok {
		t.Error("kcl.behind_latest is reported without shard attributes")
	}
	for name := range s.metrics {
		pts := s.points(name)
		if len(pts) != 1 {
			t.Errorf("%s has %d series, want 1", name, len(pts))
		}
		for _, p := range pts {
			if p.attrs.HasValue(kotel.ShardKey) {
				t.Errorf("%s %v carries the shard", name, p.attrs.ToSlice())
			}
			if v, _ := p.attrs.Value("app"); v.AsString() != "billing" {
				t.Errorf("%s %v: app = %q, want billing", name, p.attrs.ToSlice(), v.AsString())
			}
		}
	}
	if got := s.value("kcl.records.processed"); got != 100 {
		t.Errorf("kcl.records.processed = %v, want 100", got)
	}
	if got := s.value("kcl.leases.held"); got != 50 {
		t.Errorf("kcl.leases.held = %v, want 50", got)
	}
	if got := s.value("kcl.max_behind_latest"); got != 49 {
		t.Errorf("kcl.max_behind_latest = %v, want 49", got)
	}
}

// fakeStore is a LeaseStore with fixed counts.
type fakeStore struct{ stats dynamolease.Stats }

func (s fakeStore) Table() string            { return "leases" }
func (s fakeStore) Stats() dynamolease.Stats { return s.stats }

func TestLeaseStoreCallsAndCapacityAreReported(t *testing.T) {
	var st dynamolease.Stats
	st.Calls.UpdateItem, st.Calls.Query = 12, 3
	st.Capacity.UpdateItem, st.Capacity.Query = 12, 1.5
	_, c := newMetrics(t, kotel.WithLeaseStore(fakeStore{st}))
	s := c.collect()
	table := kotel.TableKey.String("leases")
	for _, tc := range []struct {
		name, op string
		want     float64
	}{
		{"kcl.dynamodb.calls", "UpdateItem", 12},
		{"kcl.dynamodb.calls", "Query", 3},
		{"kcl.dynamodb.calls", "Scan", 0},
		{"kcl.dynamodb.consumed_capacity", "UpdateItem", 12},
		{"kcl.dynamodb.consumed_capacity", "Query", 1.5},
	} {
		pts := s.match(tc.name, table, kotel.OperationKey.String(tc.op))
		if len(pts) != 1 || pts[0].value != tc.want {
			t.Errorf("%s{operation=%s} = %v, want one point at %v", tc.name, tc.op, pts, tc.want)
		}
	}
}

func TestCloseStopsTheGauges(t *testing.T) {
	m, c := newMetrics(t)
	m.LeaseChanged(leaseEvent("s1", consumer.LeaseAcquired, nil))
	if got := c.collect().value("kcl.leases.held"); got != 1 {
		t.Fatalf("kcl.leases.held = %v, want 1", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.collect().points("kcl.leases.held"); len(got) != 0 {
		t.Errorf("after Close, kcl.leases.held is still reported: %v", got)
	}
}

func TestNewRejectsANilMeterProvider(t *testing.T) {
	if _, err := kotel.New(nil); err == nil {
		t.Error("New(nil) returned no error")
	}
}

// TestHooksAllocateNothing holds the hooks to no allocation per call once
// their attribute sets are built, with the SDK behind them.
func TestHooksAllocateNothing(t *testing.T) {
	m, _ := newMetrics(t)
	m.LeaseChanged(leaseEvent("s1", consumer.LeaseAcquired, nil))
	b := batch(consumer.BatchInfo{ShardID: "s1", Records: 100, Bytes: 10000, Latency: time.Millisecond, Attempts: 1})
	f := fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords, Records: 100, Duration: time.Millisecond, MillisBehindLatest: time.Second})
	cp := consumer.CheckpointInfo{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Duration: time.Millisecond}
	m.BatchProcessed(b)
	m.Fetched(f)
	m.Checkpointed(cp)
	if n := testing.AllocsPerRun(100, func() { m.BatchProcessed(b); m.Fetched(f); m.Checkpointed(cp) }); n != 0 {
		t.Errorf("hooks allocate %v times per batch, want 0", n)
	}
}

// BenchmarkBatch is the plugin's cost per batch (one BatchProcessed and
// one GetRecords Fetched), over 64 shards.
func BenchmarkBatch(b *testing.B) {
	m, _ := newMetrics(b)
	shards := make([]string, 64)
	for i := range shards {
		shards[i] = fmt.Sprintf("shardId-%012d", i)
		m.LeaseChanged(leaseEvent(shards[i], consumer.LeaseAcquired, nil))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			id := shards[i%len(shards)]
			m.BatchProcessed(batch(consumer.BatchInfo{ShardID: id, Records: 100, Bytes: 10000, Latency: time.Millisecond, Attempts: 1}))
			m.Fetched(fetch(consumer.FetchInfo{ShardID: id, Op: consumer.OpGetRecords, Records: 100, Duration: time.Millisecond}))
			i++
		}
	})
}

// blockingExporter is an SDK exporter whose Export blocks until release is
// closed.
type blockingExporter struct {
	release chan struct{}
	exports atomic.Int64
}

func (e *blockingExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return sdkmetric.DefaultTemporalitySelector(k)
}

func (e *blockingExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}

func (e *blockingExporter) ForceFlush(context.Context) error { return nil }
func (e *blockingExporter) Shutdown(context.Context) error   { return nil }

func (e *blockingExporter) Export(ctx context.Context, _ *metricdata.ResourceMetrics) error {
	e.exports.Add(1)
	select {
	case <-e.release:
	case <-ctx.Done():
	}
	return nil
}

// TestBlockedExporterNeverStallsTheHooks runs the hooks while the SDK's
// periodic reader is stuck exporting: the hooks return at once, since they
// only add to the SDK's in-memory aggregates.
func TestBlockedExporterNeverStallsTheHooks(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Millisecond), sdkmetric.WithTimeout(time.Hour))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() {
		close(exp.release)
		_ = mp.Shutdown(context.Background())
	}()
	m, err := kotel.New(mp)
	if err != nil {
		t.Fatal(err)
	}
	m.LeaseChanged(leaseEvent("s1", consumer.LeaseAcquired, nil))
	deadline := time.Now().Add(10 * time.Second)
	for exp.exports.Load() == 0 && time.Now().Before(deadline) {
		m.BatchProcessed(batch(consumer.BatchInfo{ShardID: "s1", Records: 1, Attempts: 1}))
	}
	if exp.exports.Load() == 0 {
		t.Fatal("the periodic reader never exported")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100_000 {
			m.BatchProcessed(batch(consumer.BatchInfo{ShardID: fmt.Sprintf("s%d", i%64), Records: 1, Attempts: 1}))
			m.Fetched(fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords}))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("100,000 hook calls did not return within 10 s while the exporter is blocked")
	}
}
