package kotel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/kclgo/kcl/consumer"
)

// Attribute keys set on kcl's measurements.
const (
	// StreamKey names the stream, as given to New.
	StreamKey = attribute.Key("kcl.stream.name")
	// WorkerKey is the Worker's id, as given to WithWorkerID.
	WorkerKey = attribute.Key("kcl.worker.id")
	// ShardKey is the shard id, on per-shard measurements unless
	// WithoutShardAttributes is given.
	ShardKey = attribute.Key("kcl.shard.id")
	// OperationKey is the Kinesis operation, as consumer.FetchInfo.Op
	// names it: GetRecords, GetShardIterator, and with enhanced fan-out
	// SubscribeToShard, SubscribeToShardEvent (one per event or event
	// stream failure) and ListShards.
	OperationKey = attribute.Key("kcl.operation")
	// ErrorTypeKey is OpenTelemetry's error.type: set on a measurement of a
	// failed call only, to the AWS error code (such as
	// ExpiredIteratorException) or "_OTHER".
	ErrorTypeKey = attribute.Key("error.type")
)

// ScopeName is the instrumentation scope of the meter the instruments are
// created on.
const ScopeName = "github.com/kclgo/kcl/plugin/kotel"

// Bucket boundaries, in the instruments' units.
var (
	// durationBuckets suit calls and batches from a millisecond to a minute.
	durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// batchSizeBuckets span GetRecords' limit of 10,000 records.
	batchSizeBuckets = []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
)

// Metrics records a Worker's hooks as OpenTelemetry measurements. Pass it to
// consumer.WithHooks; it implements consumer.BatchHook, consumer.FetchHook,
// consumer.LeaseHook and consumer.CheckpointHook. Its methods are safe for
// concurrent use and do not block: each hook updates instruments with
// attribute sets built once per shard.
type Metrics struct {
	opts options
	base attribute.Set // stream, worker and WithAttributes

	recordsProcessed metric.Int64Counter
	dataProcessed    metric.Int64Counter
	batchSize        metric.Int64Histogram
	batchDuration    metric.Float64Histogram
	batchRetries     metric.Int64Counter
	batchesSkipped   metric.Int64Counter
	recordsSkipped   metric.Int64Counter
	kinesisDuration  metric.Float64Histogram
	kinesisThrottles metric.Int64Counter
	leasesAcquired   metric.Int64Counter
	leasesLost       metric.Int64Counter
	leasesReleased   metric.Int64Counter
	shardsEnded      metric.Int64Counter
	checkpointDur    metric.Float64Histogram
	shardLag         metric.Float64ObservableGauge // nil WithoutShardAttributes
	shardLagMax      metric.Float64ObservableGauge
	leasesHeld       metric.Int64ObservableGauge
	registration     metric.Registration

	attrs attrCache
	state shardState
}

// Compile-time checks that Metrics is every hook.
var (
	_ consumer.BatchHook      = (*Metrics)(nil)
	_ consumer.FetchHook      = (*Metrics)(nil)
	_ consumer.LeaseHook      = (*Metrics)(nil)
	_ consumer.CheckpointHook = (*Metrics)(nil)
)

// New creates the instruments on a meter of mp named ScopeName. stream is
// the stream the Worker reads (its name or ARN, as given to consumer.New),
// set as kcl.stream.name on every measurement. It returns an error if stream
// is empty or an instrument cannot be created; call Close when the Worker has
// stopped to unregister the gauges' callback.
func New(mp metric.MeterProvider, stream string, opts ...Option) (*Metrics, error) {
	if mp == nil {
		return nil, errors.New("kotel: nil MeterProvider")
	}
	if stream == "" {
		return nil, errors.New("kotel: empty stream name")
	}
	o := options{}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	kvs := append([]attribute.KeyValue{StreamKey.String(stream)}, o.attrs...)
	if o.workerID != "" {
		kvs = append(kvs, WorkerKey.String(o.workerID))
	}
	m := &Metrics{opts: o, base: attribute.NewSet(kvs...)}
	m.attrs.init(m.base, !o.noShard)
	m.state.lags = map[string]float64{}
	if err := m.instruments(mp.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("kotel: %w", err)
	}
	return m, nil
}

// Close unregisters the callback that observes the gauges (leases held and
// lag), so that a MeterProvider that outlives the Worker stops reporting
// them. The other instruments are the MeterProvider's to shut down.
func (m *Metrics) Close() error { return m.registration.Unregister() }

// instruments creates every instrument on meter and registers the gauges'
// callback.
func (m *Metrics) instruments(meter metric.Meter) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	i64 := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		add(err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		add(err)
		return h
	}
	var err error

	m.recordsProcessed = i64("kcl.records.processed", "{record}", "User records the processor returned nil for (KPL aggregates count their user records).")
	m.dataProcessed = i64("kcl.data.processed", "By", "Data bytes of the user records processed.")
	m.batchSize, err = meter.Int64Histogram("kcl.batch.size", metric.WithUnit("{record}"),
		metric.WithDescription("User records per batch delivered to the processor."),
		metric.WithExplicitBucketBoundaries(batchSizeBuckets...))
	add(err)
	m.batchDuration = seconds("kcl.batch.duration", "Time from a batch's first delivery to the processor until it returned nil or was skipped, retries and backoff included.")
	m.batchRetries = i64("kcl.batch.retries", "{retry}", "Deliveries of a batch again after ProcessRecords failed (returned an error or panicked).")
	m.batchesSkipped = i64("kcl.batches.skipped", "{batch}", "Batches the error handler chose to skip after their retries.")
	m.recordsSkipped = i64("kcl.records.skipped", "{record}", "User records in skipped batches.")
	m.kinesisDuration = seconds("kcl.kinesis.operation.duration", "Duration of Kinesis read calls; its count is the number of calls, error.type marks failed ones.")
	m.kinesisThrottles = i64("kcl.kinesis.throttles", "{call}", "Kinesis read calls refused by throttling (ProvisionedThroughputExceeded, LimitExceeded).")
	m.leasesAcquired = i64("kcl.leases.acquired", "{lease}", "Leases this worker took and started processing.")
	m.leasesLost = i64("kcl.leases.lost", "{lease}", "Leases taken by another worker or expired while this worker processed them.")
	m.leasesReleased = i64("kcl.leases.released", "{lease}", "Leases this worker gave up: graceful stop, handoff, or a shard stopped.")
	m.shardsEnded = i64("kcl.shards.ended", "{shard}", "Shards processed to their end (SHARD_END written).")
	m.checkpointDur = seconds("kcl.checkpoint.duration", "Duration of checkpoint writes; its count is the number of writes, error.type marks failed ones.")

	m.leasesHeld, err = meter.Int64ObservableGauge("kcl.leases.held", metric.WithUnit("{lease}"),
		metric.WithDescription("Leases this worker holds and processes."))
	add(err)
	m.shardLagMax, err = meter.Float64ObservableGauge("kcl.shard.lag.max", metric.WithUnit("s"),
		metric.WithDescription("Greatest MillisBehindLatest over the shards this worker holds."))
	add(err)
	observables := []metric.Observable{m.leasesHeld, m.shardLagMax}
	if !m.opts.noShard {
		m.shardLag, err = meter.Float64ObservableGauge("kcl.shard.lag", metric.WithUnit("s"),
			metric.WithDescription("How far the shard's last batch (or empty read) was behind the tip of the shard: MillisBehindLatest."))
		add(err)
		observables = append(observables, m.shardLag)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.registration, err = meter.RegisterCallback(m.observe, observables...)
	return err
}

// observe reports the gauges.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	m.state.mu.Lock()
	lags := maps.Clone(m.state.lags)
	m.state.mu.Unlock()

	base := metric.WithAttributeSet(m.base)
	o.ObserveInt64(m.leasesHeld, int64(len(lags)), base)
	maxLag := 0.0
	for shard, lag := range lags {
		maxLag = max(maxLag, lag)
		if m.shardLag != nil {
			o.ObserveFloat64(m.shardLag, lag, m.attrs.shard(shard).measure)
		}
	}
	if len(lags) > 0 {
		o.ObserveFloat64(m.shardLagMax, maxLag, base)
	}
	return nil
}

// shardState is what the gauges report: the shards this worker holds and
// the lag each last reported.
type shardState struct {
	mu sync.Mutex
	// lags holds a key for every shard held, with its last lag in seconds
	// (0 until a batch or an empty read reports one).
	lags map[string]float64
}

func (s *shardState) acquired(shard string) {
	s.mu.Lock()
	s.lags[shard] = 0
	s.mu.Unlock()
}

func (s *shardState) dropped(shard string) {
	s.mu.Lock()
	delete(s.lags, shard)
	s.mu.Unlock()
}

// setLag records a shard's lag if the shard is held: a late hook call after
// the lease went must not bring its gauge back.
func (s *shardState) setLag(shard string, seconds float64) {
	s.mu.Lock()
	if _, ok := s.lags[shard]; ok {
		s.lags[shard] = seconds
	}
	s.mu.Unlock()
}
