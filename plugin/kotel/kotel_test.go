package kotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
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
	m, err := kotel.New(mp, "orders", opts...)
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

func TestBatchesAreCountedPerShard(t *testing.T) {
	m, c := newMetrics(t, kotel.WithWorkerID("w1"))
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s1", Kind: consumer.LeaseAcquired})
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s2", Kind: consumer.LeaseAcquired})
	m.BatchProcessed(consumer.BatchInfo{ShardID: "s1", Records: 10, Bytes: 1000, MillisBehindLatest: 3 * time.Second, Latency: 20 * time.Millisecond, Attempts: 1})
	m.BatchProcessed(consumer.BatchInfo{ShardID: "s1", Records: 5, Bytes: 500, MillisBehindLatest: 2 * time.Second, Latency: 10 * time.Millisecond, Attempts: 3})
	m.BatchProcessed(consumer.BatchInfo{ShardID: "s2", Records: 7, Bytes: 70, MillisBehindLatest: 9 * time.Second, Latency: time.Millisecond, Attempts: 4,
		Skipped: &consumer.SkippedBatch{Records: 7, Attempts: 4}})

	s := c.collect()
	for _, tc := range []struct {
		name  string
		shard string
		want  float64
	}{
		{"kcl.records.processed", "s1", 15},
		{"kcl.records.processed", "s2", 0},
		{"kcl.data.processed", "s1", 1500},
		{"kcl.batch.retries", "s1", 2},
		{"kcl.batch.retries", "s2", 3},
		{"kcl.batches.skipped", "s2", 1},
		{"kcl.records.skipped", "s2", 7},
		{"kcl.leases.acquired", "s1", 1},
		{"kcl.leases.acquired", "s2", 1},
		{"kcl.shard.lag", "s1", 2},
		{"kcl.shard.lag", "s2", 9},
	} {
		if got := s.value(tc.name, shard(tc.shard)); got != tc.want {
			t.Errorf("%s{shard=%s} = %v, want %v", tc.name, tc.shard, got, tc.want)
		}
	}
	if got := s.count("kcl.batch.size", shard("s1")); got != 2 {
		t.Errorf("kcl.batch.size count for s1 = %d, want 2", got)
	}
	if got := s.value("kcl.batch.size"); got != 22 {
		t.Errorf("kcl.batch.size sum = %v, want 22", got)
	}
	if got, want := s.value("kcl.batch.duration", shard("s1")), 0.030; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("kcl.batch.duration sum for s1 = %v, want %v", got, want)
	}
	if got := s.value("kcl.leases.held"); got != 2 {
		t.Errorf("kcl.leases.held = %v, want 2", got)
	}
	if got := s.value("kcl.shard.lag.max"); got != 9 {
		t.Errorf("kcl.shard.lag.max = %v, want 9", got)
	}
	for name := range s.metrics {
		for _, p := range s.points(name) {
			if v, _ := p.attrs.Value(kotel.StreamKey); v.AsString() != "orders" {
				t.Errorf("%s %v: kcl.stream.name = %q, want orders", name, p.attrs.ToSlice(), v.AsString())
			}
			if v, _ := p.attrs.Value(kotel.WorkerKey); v.AsString() != "w1" {
				t.Errorf("%s %v: kcl.worker.id = %q, want w1", name, p.attrs.ToSlice(), v.AsString())
			}
		}
	}

	// The lease of s2 goes: its lag is no longer reported, the maximum
	// is s1's, one lease is held.
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s2", Kind: consumer.LeaseLost, Cause: lease.ErrLeaseLost})
	m.BatchProcessed(consumer.BatchInfo{ShardID: "s2", Records: 1, MillisBehindLatest: time.Hour}) // late: does not bring s2 back
	s = c.collect()
	if got := s.value("kcl.leases.held"); got != 1 {
		t.Errorf("after a loss, kcl.leases.held = %v, want 1", got)
	}
	if got := s.match("kcl.shard.lag", shard("s2")); len(got) != 0 {
		t.Errorf("after a loss, kcl.shard.lag for s2 is still reported: %v", got)
	}
	if got := s.value("kcl.shard.lag.max"); got != 2 {
		t.Errorf("after a loss, kcl.shard.lag.max = %v, want 2", got)
	}
	if got := s.value("kcl.leases.lost", shard("s2")); got != 1 {
		t.Errorf("kcl.leases.lost for s2 = %v, want 1", got)
	}

	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s1", Kind: consumer.LeaseShardEnded})
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s3", Kind: consumer.LeaseAcquired})
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s3", Kind: consumer.LeaseReleased})
	s = c.collect()
	if got := s.value("kcl.leases.held"); got != 0 {
		t.Errorf("with no lease, kcl.leases.held = %v, want 0", got)
	}
	if got := s.points("kcl.shard.lag.max"); len(got) != 0 {
		t.Errorf("with no lease, kcl.shard.lag.max is reported: %v", got)
	}
	if got := s.value("kcl.shards.ended", shard("s1")); got != 1 {
		t.Errorf("kcl.shards.ended for s1 = %v, want 1", got)
	}
	if got := s.value("kcl.leases.released", shard("s3")); got != 1 {
		t.Errorf("kcl.leases.released for s3 = %v, want 1", got)
	}
}

func TestFetchedCallsAreCountedByOperationAndError(t *testing.T) {
	m, c := newMetrics(t)
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s1", Kind: consumer.LeaseAcquired})
	expired := &smithy.GenericAPIError{Code: "ExpiredIteratorException", Message: "expired"}
	throttled := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	for _, f := range []consumer.FetchInfo{
		{ShardID: "s1", Op: "GetShardIterator", Duration: 5 * time.Millisecond},
		{ShardID: "s1", Op: "GetRecords", Duration: 10 * time.Millisecond, Records: 3, Bytes: 30, MillisBehindLatest: 4 * time.Second},
		{ShardID: "s1", Op: "GetRecords", Duration: 10 * time.Millisecond, Err: fmt.Errorf("reading: %w", expired)},
		{ShardID: "s1", Op: "GetRecords", Duration: 10 * time.Millisecond, Err: throttled, Throttled: true},
		{ShardID: "s1", Op: "GetRecords", Duration: 10 * time.Millisecond, Err: errors.New("connection reset")},
	} {
		m.Fetched(f)
	}
	s := c.collect()
	getRecords := kotel.OperationKey.String("GetRecords")
	if got := s.count("kcl.kinesis.operation.duration", getRecords); got != 4 {
		t.Errorf("GetRecords calls = %d, want 4", got)
	}
	if got := s.count("kcl.kinesis.operation.duration", kotel.OperationKey.String("GetShardIterator")); got != 1 {
		t.Errorf("GetShardIterator calls = %d, want 1", got)
	}
	for _, code := range []string{"ExpiredIteratorException", "ProvisionedThroughputExceededException", "_OTHER"} {
		if got := s.count("kcl.kinesis.operation.duration", getRecords, kotel.ErrorTypeKey.String(code)); got != 1 {
			t.Errorf("GetRecords calls with error.type %s = %d, want 1", code, got)
		}
	}
	ok := 0
	for _, p := range s.match("kcl.kinesis.operation.duration", getRecords) {
		if !p.attrs.HasValue(kotel.ErrorTypeKey) {
			ok += int(p.count)
		}
	}
	if ok != 1 {
		t.Errorf("successful GetRecords calls (no error.type) = %d, want 1", ok)
	}
	if got := s.value("kcl.kinesis.throttles", getRecords, shard("s1")); got != 1 {
		t.Errorf("kcl.kinesis.throttles = %v, want 1", got)
	}
	// Reads with records do not set the lag (their batch does); an empty
	// one does.
	if got := s.value("kcl.shard.lag", shard("s1")); got != 0 {
		t.Errorf("kcl.shard.lag after a read with records = %v, want 0 (set by the batch)", got)
	}
	m.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "GetRecords", MillisBehindLatest: 1500 * time.Millisecond})
	if got := c.collect().value("kcl.shard.lag", shard("s1")); got != 1.5 {
		t.Errorf("kcl.shard.lag after an empty read = %v, want 1.5", got)
	}
	m.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "SubscribeToShardEvent", MillisBehindLatest: 500 * time.Millisecond})
	if got := c.collect().value("kcl.shard.lag", shard("s1")); got != 0.5 {
		t.Errorf("kcl.shard.lag after an empty enhanced fan-out event = %v, want 0.5", got)
	}
	// Calls that carry no MillisBehindLatest leave it.
	m.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "SubscribeToShard"})
	m.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "GetShardIterator"})
	m.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "ListShards"})
	if got := c.collect().value("kcl.shard.lag", shard("s1")); got != 0.5 {
		t.Errorf("kcl.shard.lag after calls without MillisBehindLatest = %v, want 0.5 (unchanged)", got)
	}
}

func TestCheckpointWritesAreTimedWithTheirErrors(t *testing.T) {
	m, c := newMetrics(t)
	m.Checkpointed(consumer.CheckpointInfo{ShardID: "s1", Duration: 4 * time.Millisecond})
	m.Checkpointed(consumer.CheckpointInfo{ShardID: "s1", Duration: 6 * time.Millisecond})
	m.Checkpointed(consumer.CheckpointInfo{ShardID: "s1", Duration: time.Millisecond, Err: fmt.Errorf("checkpoint: %w", lease.ErrLeaseLost)})
	s := c.collect()
	if got := s.count("kcl.checkpoint.duration", shard("s1")); got != 3 {
		t.Errorf("checkpoint writes = %d, want 3", got)
	}
	if got := s.count("kcl.checkpoint.duration", kotel.ErrorTypeKey.String("lease_lost")); got != 1 {
		t.Errorf("checkpoint writes with error.type lease_lost = %d, want 1", got)
	}
}

func TestWithoutShardAttributesDropsTheShard(t *testing.T) {
	m, c := newMetrics(t, kotel.WithoutShardAttributes(), kotel.WithAttributes(attribute.String("app", "billing")))
	for i := range 50 {
		id := fmt.Sprintf("shard-%d", i)
		m.LeaseChanged(consumer.LeaseEvent{ShardID: id, Kind: consumer.LeaseAcquired})
		m.BatchProcessed(consumer.BatchInfo{ShardID: id, Records: 2, Bytes: 20, MillisBehindLatest: time.Duration(i) * time.Second, Attempts: 1})
		m.Fetched(consumer.FetchInfo{ShardID: id, Op: "GetRecords", Records: 2})
		m.Checkpointed(consumer.CheckpointInfo{ShardID: id})
	}
	s := c.collect()
	if _, ok := s.metrics["kcl.shard.lag"]; ok {
		t.Error("kcl.shard.lag is reported without shard attributes")
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
	if got := s.value("kcl.shard.lag.max"); got != 49 {
		t.Errorf("kcl.shard.lag.max = %v, want 49", got)
	}
}

func TestCloseStopsTheGauges(t *testing.T) {
	m, c := newMetrics(t)
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s1", Kind: consumer.LeaseAcquired})
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

func TestNewRejectsMissingArguments(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"a nil MeterProvider", func() error { _, err := kotel.New(nil, "s"); return err }},
		{"an empty stream", func() error { _, err := kotel.New(mp, ""); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err() == nil {
				t.Error("New returned no error")
			}
		})
	}
}

// TestHooksAllocateNothing holds the hooks to no allocation per call once a
// shard's attributes are built, with the SDK behind them.
func TestHooksAllocateNothing(t *testing.T) {
	m, _ := newMetrics(t, kotel.WithWorkerID("w1"))
	m.LeaseChanged(consumer.LeaseEvent{ShardID: "s1", Kind: consumer.LeaseAcquired})
	b := consumer.BatchInfo{ShardID: "s1", Records: 100, Bytes: 10000, MillisBehindLatest: time.Second, Latency: time.Millisecond, Attempts: 1}
	f := consumer.FetchInfo{ShardID: "s1", Op: "GetRecords", Records: 100, Duration: time.Millisecond}
	cp := consumer.CheckpointInfo{ShardID: "s1", Duration: time.Millisecond}
	m.BatchProcessed(b)
	m.Fetched(f)
	m.Checkpointed(cp)
	if n := testing.AllocsPerRun(100, func() { m.BatchProcessed(b); m.Fetched(f); m.Checkpointed(cp) }); n != 0 {
		t.Errorf("hooks allocate %v times per batch, want 0", n)
	}
}

func BenchmarkBatchProcessed(b *testing.B) {
	m, _ := newMetrics(b)
	shards := make([]string, 64)
	for i := range shards {
		shards[i] = fmt.Sprintf("shardId-%012d", i)
		m.LeaseChanged(consumer.LeaseEvent{ShardID: shards[i], Kind: consumer.LeaseAcquired})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.BatchProcessed(consumer.BatchInfo{ShardID: shards[i%len(shards)], Records: 100, Bytes: 10000, Latency: time.Millisecond, Attempts: 1})
			i++
		}
	})
}
