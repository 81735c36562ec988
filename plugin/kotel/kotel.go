package kotel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/metric"

	"github.com/kclgo/kcl/consumer"
)

// ScopeName is the instrumentation scope of the meter the instruments are
// created on.
const ScopeName = "github.com/kclgo/kcl/plugin/kotel"

// Bucket boundaries, in the instruments' units: those of kcl's Prometheus
// plugin.
var (
	// secondsBuckets suit calls and batches from a millisecond to a minute.
	secondsBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	// recordsBuckets span GetRecords' limit of 10,000 records.
	recordsBuckets = []float64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
)

// Metrics records the hooks of kcl Workers as OpenTelemetry measurements.
// Pass it to consumer.WithHooks; it implements every hook interface. One
// Metrics may serve several Workers: every measurement carries the stream
// and worker attributes. Its methods are safe for concurrent use and never
// block: each updates instruments with an attribute set built on first use.
type Metrics struct {
	opts  options
	attrs attrCache
	state leaseState

	recordsProcessed, bytesProcessed, kplAggregates, batchesSkipped metric.Int64Counter
	batchRecords                                                    metric.Int64Histogram
	processing                                                      metric.Float64Histogram
	procErrors, procPanics, procRetries                             metric.Int64Counter
	kinesisCalls, kinesisErrors, renewals                           metric.Int64Counter
	kinesisDuration                                                 metric.Float64Histogram
	leasesAcquired, leasesLost, leasesReleased, shardsEnded         metric.Int64Counter
	checkpoints, checkpointFailures                                 metric.Int64Counter
	checkpointDuration                                              metric.Float64Histogram
	shardSyncs, shardSyncFailures                                   metric.Int64Counter
	shardSyncDuration                                               metric.Float64Histogram
	kplMalformed, kplDropped                                        metric.Int64Counter

	leasesHeld      metric.Int64ObservableGauge
	behindLatest    metric.Float64ObservableGauge // nil WithoutShardAttributes
	maxBehindLatest metric.Float64ObservableGauge
	dynamoCalls     metric.Int64ObservableCounter   // nil without WithLeaseStore
	dynamoCapacity  metric.Float64ObservableCounter // nil without WithLeaseStore
	registration    metric.Registration
}

// Compile-time checks that Metrics is every hook.
var (
	_ consumer.BatchHook          = (*Metrics)(nil)
	_ consumer.FetchHook          = (*Metrics)(nil)
	_ consumer.LeaseHook          = (*Metrics)(nil)
	_ consumer.CheckpointHook     = (*Metrics)(nil)
	_ consumer.ProcessorErrorHook = (*Metrics)(nil)
	_ consumer.ShardSyncHook      = (*Metrics)(nil)
	_ consumer.AggregateHook      = (*Metrics)(nil)
)

// New creates the instruments on a meter of mp named ScopeName and
// registers the callback that observes the gauges (and WithLeaseStore's
// counters). It returns an error if an instrument cannot be created. Call
// Close when the Workers have stopped, to unregister the callback.
func New(mp metric.MeterProvider, opts ...Option) (*Metrics, error) {
	if mp == nil {
		return nil, errors.New("kotel: nil MeterProvider")
	}
	o := options{}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	m := &Metrics{opts: o, attrs: attrCache{extra: o.attrs, withShard: !o.noShard}}
	m.state.workers = map[workerKey]map[string]float64{}
	if err := m.instruments(mp.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("kotel: %w", err)
	}
	return m, nil
}

// Close unregisters the callback that observes the gauges (leases held,
// MillisBehindLatest) and the lease stores' counters, so that a
// MeterProvider that outlives the Workers stops reporting them. The other
// instruments are the MeterProvider's to shut down.
func (m *Metrics) Close() error { return m.registration.Unregister() }

// instruments creates every instrument on meter and registers the
// callback.
func (m *Metrics) instruments(meter metric.Meter) error {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(secondsBuckets...))
		errs = append(errs, err)
		return h
	}
	var err error

	m.recordsProcessed = counter("kcl.records.processed", "{record}", "User records the processor finished with (skipped batches excluded).")
	m.bytesProcessed = counter("kcl.bytes.processed", "By", "Data bytes of the user records processed.")
	m.kplAggregates = counter("kcl.kpl.aggregates", "{aggregate}", "KPL aggregates the processed user records came from.")
	m.batchesSkipped = counter("kcl.batches.skipped", "{batch}", "Batches the ErrorHandler skipped.")
	m.batchRecords, err = meter.Int64Histogram("kcl.batch.records", metric.WithUnit("{record}"),
		metric.WithDescription("User records per processed batch."), metric.WithExplicitBucketBoundaries(recordsBuckets...))
	errs = append(errs, err)
	m.processing = seconds("kcl.processing.duration", "Time from a batch's first delivery to the processor until it succeeded, retries included.")
	m.procErrors = counter("kcl.processor.errors", "{error}", "Failed processor calls, panics included.")
	m.procPanics = counter("kcl.processor.panics", "{panic}", "Processor calls that panicked.")
	m.procRetries = counter("kcl.processor.retries", "{retry}", "Failed processor calls that are made again.")
	m.kinesisCalls = counter("kcl.kinesis.calls", "{call}", "Kinesis calls of the shard readers, failed ones included.")
	m.kinesisErrors = counter("kcl.kinesis.errors", "{error}", "Failed Kinesis calls of the shard readers, by kind of error.")
	m.kinesisDuration = seconds("kcl.kinesis.call.duration", "Kinesis call latency.")
	m.renewals = counter("kcl.subscription.renewals", "{renewal}", "SubscribeToShard calls that continued a shard after Kinesis ended the previous subscription.")
	m.leasesAcquired = counter("kcl.leases.acquired", "{lease}", "Leases acquired.")
	m.leasesLost = counter("kcl.leases.lost", "{lease}", "Leases lost, by reason: expired, taken.")
	m.leasesReleased = counter("kcl.leases.released", "{lease}", "Leases given up, by reason: stopping, handoff, shard_stopped, error.")
	m.shardsEnded = counter("kcl.shards.ended", "{shard}", "Shards processed to their end (SHARD_END written).")
	m.checkpoints = counter("kcl.checkpoints", "{checkpoint}", "Checkpoint writes, failed ones included.")
	m.checkpointFailures = counter("kcl.checkpoint.failures", "{checkpoint}", "Checkpoint writes that failed.")
	m.checkpointDuration = seconds("kcl.checkpoint.duration", "Checkpoint write latency.")
	m.shardSyncs = counter("kcl.shard_syncs", "{pass}", "Shard sync passes.")
	m.shardSyncFailures = counter("kcl.shard_sync.failures", "{pass}", "Shard sync passes that failed.")
	m.shardSyncDuration = seconds("kcl.shard_sync.duration", "Shard sync pass duration.")
	m.kplMalformed = counter("kcl.kpl.malformed", "{aggregate}", "KPL aggregates passed through as malformed.")
	m.kplDropped = counter("kcl.kpl.dropped", "{aggregate}", "KPL aggregates dropped by the hash-range filter.")

	m.leasesHeld, err = meter.Int64ObservableGauge("kcl.leases.held", metric.WithUnit("{lease}"),
		metric.WithDescription("Leases the worker processes now."))
	errs = append(errs, err)
	m.maxBehindLatest, err = meter.Float64ObservableGauge("kcl.max_behind_latest", metric.WithUnit("s"),
		metric.WithDescription("The largest kcl.behind_latest over the shards the worker holds."))
	errs = append(errs, err)
	observables := []metric.Observable{m.leasesHeld, m.maxBehindLatest}
	if !m.opts.noShard {
		m.behindLatest, err = meter.Float64ObservableGauge("kcl.behind_latest", metric.WithUnit("s"),
			metric.WithDescription("How far the shard's last GetRecords result or subscription event was behind the tip of the shard (MillisBehindLatest)."))
		errs = append(errs, err)
		observables = append(observables, m.behindLatest)
	}
	if len(m.opts.stores) > 0 {
		m.dynamoCalls, err = meter.Int64ObservableCounter("kcl.dynamodb.calls", metric.WithUnit("{call}"),
			metric.WithDescription("Lease table calls, by DynamoDB operation."))
		errs = append(errs, err)
		m.dynamoCapacity, err = meter.Float64ObservableCounter("kcl.dynamodb.consumed_capacity", metric.WithUnit("{capacity_unit}"),
			metric.WithDescription("Capacity units the lease table calls consumed, by DynamoDB operation, as DynamoDB reported them."))
		errs = append(errs, err)
		observables = append(observables, m.dynamoCalls, m.dynamoCapacity)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.registration, err = meter.RegisterCallback(m.observe, observables...)
	return err
}

// observe reports the gauges and the lease stores' counters.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	type shardLag struct {
		id  string
		lag float64
	}
	type workerObs struct {
		key  workerKey
		lags []shardLag
	}
	m.state.mu.Lock()
	ws := make([]workerObs, 0, len(m.state.workers))
	for k, shards := range m.state.workers {
		w := workerObs{key: k, lags: make([]shardLag, 0, len(shards))}
		for id, lag := range shards {
			w.lags = append(w.lags, shardLag{id, lag})
		}
		ws = append(ws, w)
	}
	m.state.mu.Unlock()

	for _, w := range ws {
		wa := m.attrs.worker(w.key.stream, w.key.worker)
		o.ObserveInt64(m.leasesHeld, int64(len(w.lags)), wa.measure)
		if len(w.lags) == 0 {
			continue
		}
		maxLag := 0.0
		for _, s := range w.lags {
			maxLag = max(maxLag, s.lag)
			if m.behindLatest != nil {
				o.ObserveFloat64(m.behindLatest, s.lag, m.attrs.shard(w.key.stream, w.key.worker, s.id).measure)
			}
		}
		o.ObserveFloat64(m.maxBehindLatest, maxLag, wa.measure)
	}

	for _, s := range m.opts.stores {
		st, table := s.Stats(), s.Table()
		c, u := st.Calls, st.Capacity
		for _, v := range []struct {
			op    string
			calls int64
		}{
			{"GetItem", c.GetItem}, {"PutItem", c.PutItem}, {"UpdateItem", c.UpdateItem}, {"DeleteItem", c.DeleteItem},
			{"Scan", c.Scan}, {"Query", c.Query}, {"BatchGetItem", c.BatchGetItem}, {"DescribeTable", c.DescribeTable},
			{"CreateTable", c.CreateTable},
		} {
			o.ObserveInt64(m.dynamoCalls, v.calls, metric.WithAttributes(TableKey.String(table), OperationKey.String(v.op)))
		}
		for _, v := range []struct {
			op       string
			capacity float64
		}{
			{"GetItem", u.GetItem}, {"PutItem", u.PutItem}, {"UpdateItem", u.UpdateItem}, {"DeleteItem", u.DeleteItem},
			{"Scan", u.Scan}, {"Query", u.Query}, {"BatchGetItem", u.BatchGetItem},
		} {
			o.ObserveFloat64(m.dynamoCapacity, v.capacity, metric.WithAttributes(TableKey.String(table), OperationKey.String(v.op)))
		}
	}
	return nil
}

// workerKey identifies a Worker.
type workerKey struct{ stream, worker string }

// leaseState is what the gauges report: the shards each worker holds and
// the MillisBehindLatest each last reported, in seconds (0 until it
// reports). A worker stays once seen, so that its leases held go to 0
// rather than vanish.
type leaseState struct {
	mu      sync.Mutex
	workers map[workerKey]map[string]float64
}

func (s *leaseState) shards(k workerKey) map[string]float64 {
	shards := s.workers[k]
	if shards == nil {
		shards = map[string]float64{}
		s.workers[k] = shards
	}
	return shards
}

func (s *leaseState) acquired(k workerKey, shard string) {
	s.mu.Lock()
	s.shards(k)[shard] = 0
	s.mu.Unlock()
}

func (s *leaseState) ended(k workerKey, shard string) {
	s.mu.Lock()
	delete(s.shards(k), shard)
	s.mu.Unlock()
}

// behind records a shard's lag if the worker holds it: a late call after
// the lease went must not bring its gauge back.
func (s *leaseState) behind(k workerKey, shard string, seconds float64) {
	s.mu.Lock()
	if shards := s.workers[k]; shards != nil {
		if _, ok := shards[shard]; ok {
			shards[shard] = seconds
		}
	}
	s.mu.Unlock()
}
