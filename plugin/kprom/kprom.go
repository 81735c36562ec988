// Package kprom exports the metrics of kcl Workers to Prometheus. A
// *Metrics is both the Workers' metric hooks and a prometheus.Collector:
//
//	m := kprom.New(kprom.WithLeaseStore(leases)) // leases: the *dynamolease.Store
//	prometheus.MustRegister(m)
//	w, err := consumer.New(api, leases, "orders", factory, consumer.WithHooks(m))
//	…
//	http.Handle("/metrics", promhttp.Handler())
//
// The metric set, its labels and their cardinality are listed in kcl's
// README (Observability); every name starts with kcl_. One Metrics may serve
// several Workers: every series carries the stream and worker labels.
//
// The hooks update atomic counters and return: no lock, no allocation, no
// I/O on the Workers' goroutines, once per batch or call (never per
// record). A scrape reads those counters without taking any lock the hooks
// take, so a slow or stuck scrape never slows processing.
package kprom

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// Metrics records the hooks of kcl Workers and exports them as Prometheus
// metrics. Create one with New; it is safe for concurrent use.
type Metrics struct {
	o        options
	descOnce sync.Once
	d        *descs

	// mu serializes the creation of workers; readers use workers.
	mu      sync.Mutex
	workers atomic.Pointer[[]*worker]
}

// LeaseStore is what WithLeaseStore reads: *dynamolease.Store has it.
type LeaseStore interface {
	Table() string
	Stats() dynamolease.Stats
}

var _ LeaseStore = (*dynamolease.Store)(nil)

type options struct {
	perShard  bool
	retention time.Duration
	stores    []LeaseStore
}

// Option configures New.
type Option func(*options)

// WithoutShardLabel drops the shard label: the per-shard counters count
// once per worker, and kcl_behind_latest_seconds is not exported (its
// maximum, kcl_max_behind_latest_seconds, still is). For fleets where
// workers × shards series are too many.
func WithoutShardLabel() Option { return func(o *options) { o.perShard = false } }

// WithShardRetention sets how long the per-shard counters of a shard the
// worker no longer holds are still exported, so that the increments of its
// last moments are scraped. The default is 5 minutes. The shard's
// kcl_behind_latest_seconds goes at once, when its lease ends.
func WithShardRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithLeaseStore exports the DynamoDB calls and consumed capacity of the
// lease store s, by operation, read from s.Stats at each scrape, as
// kcl_dynamodb_calls_total and kcl_dynamodb_consumed_capacity_total with
// the label table. May be given several times.
func WithLeaseStore(s LeaseStore) Option {
	return func(o *options) { o.stores = append(o.stores, s) }
}

// New returns a Metrics with no series: they appear as Workers report.
func New(opts ...Option) *Metrics {
	o := options{perShard: true, retention: 5 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{o: o}
	m.workers.Store(&[]*worker{})
	return m
}

var (
	_ consumer.BatchHook          = (*Metrics)(nil)
	_ consumer.FetchHook          = (*Metrics)(nil)
	_ consumer.LeaseHook          = (*Metrics)(nil)
	_ consumer.CheckpointHook     = (*Metrics)(nil)
	_ consumer.ProcessorErrorHook = (*Metrics)(nil)
	_ consumer.ShardSyncHook      = (*Metrics)(nil)
	_ consumer.AggregateHook      = (*Metrics)(nil)
)

// The label values of op, method, kind and reason, by index; unknown
// values (a later kcl release) count under "other".
var (
	ops     = []string{consumer.OpGetRecords, consumer.OpGetShardIterator, consumer.OpSubscribeToShard, consumer.OpSubscribeToShardEvent, consumer.OpListShards, "other"}
	methods = []string{consumer.MethodProcessRecords, consumer.MethodInitialize, consumer.MethodNewProcessor, consumer.MethodShardEnded,
		consumer.MethodShutdownRequested, consumer.MethodLeaseLost, consumer.MethodClose, "other"}
	kinds           = []consumer.ErrorKind{consumer.ErrorThrottled, consumer.ErrorExpiredIterator, consumer.ErrorTransient, consumer.ErrorInUse, consumer.ErrorNotFound, consumer.ErrorDenied, consumer.ErrorInvalid, consumer.ErrorCanceled, consumer.ErrorOther}
	lostReasons     = []string{"expired", "taken"}
	releasedReasons = []string{"stopping", "handoff", "shard_stopped", "error"}
)

func index[T comparable](list []T, v T) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

// opIndex returns op's index in ops, the last ("other") if unknown.
func opIndex(op string) int {
	if i := index(ops, op); i >= 0 {
		return i
	}
	return len(ops) - 1
}

func methodIndex(m string) int {
	if i := index(methods, m); i >= 0 {
		return i
	}
	return len(methods) - 1
}

func kindIndex(k consumer.ErrorKind) int {
	if i := index(kinds, k); i >= 0 {
		return i
	}
	return len(kinds) - 1
}

// Histogram buckets, in the unit each histogram observes.
var (
	secondsBounds = durations(time.Millisecond, 2500*time.Microsecond, 5*time.Millisecond, 10*time.Millisecond, 25*time.Millisecond,
		50*time.Millisecond, 100*time.Millisecond, 250*time.Millisecond, 500*time.Millisecond, time.Second,
		2500*time.Millisecond, 5*time.Second, 10*time.Second, 30*time.Second, time.Minute)
	recordsBounds = []int64{1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
)

func durations(ds ...time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	return out
}

// counters are the per-shard counters: a shard's own, or with
// WithoutShardLabel the worker's, shared by all its shards.
type counters struct {
	records, bytes, aggregates, skipped atomic.Uint64
}

// shard is one shard of a worker.
type shard struct {
	id string
	c  *counters
	// behind is the shard's last MillisBehindLatest, in nanoseconds.
	behind atomic.Int64
	// held is set while the worker holds the lease; endedAt (Unix
	// nanoseconds) is when it last stopped holding it.
	held    atomic.Bool
	endedAt atomic.Int64
}

// worker holds the series of one (stream, worker) pair.
type worker struct {
	stream, id string

	// mu serializes shard creation and removal; readers use shards.
	mu     sync.Mutex
	shards atomic.Pointer[map[string]*shard]
	all    counters // the shards' counters with WithoutShardLabel

	batchRecords, processing          *histogram
	procErrors, procPanics, procRetry [8]atomic.Uint64 // by methods
	calls                             [6]atomic.Uint64 // by ops
	callErrors                        [6][9]atomic.Uint64
	callSeconds                       [6]*histogram
	renewals                          atomic.Uint64
	leasesHeld                        atomic.Int64
	acquired, shardsEnded             atomic.Uint64
	lost                              [2]atomic.Uint64
	released                          [4]atomic.Uint64
	checkpoints, checkpointFailures   atomic.Uint64
	checkpointSeconds                 *histogram
	syncs, syncFailures               atomic.Uint64
	syncSeconds                       *histogram
	kplMalformed, kplDropped          atomic.Uint64
}

func newWorker(stream, id string) *worker {
	w := &worker{
		stream: stream, id: id,
		batchRecords:      newHistogram(recordsBounds),
		processing:        newHistogram(secondsBounds),
		checkpointSeconds: newHistogram(secondsBounds),
		syncSeconds:       newHistogram(secondsBounds),
	}
	for i := range w.callSeconds {
		w.callSeconds[i] = newHistogram(secondsBounds)
	}
	w.shards.Store(&map[string]*shard{})
	return w
}

// worker returns the series of (stream, id), creating them on first use.
func (m *Metrics) worker(stream, id string) *worker {
	for _, w := range *m.workers.Load() {
		if w.id == id && w.stream == stream {
			return w
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.workers.Load()
	for _, w := range old {
		if w.id == id && w.stream == stream {
			return w
		}
	}
	w := newWorker(strings.Clone(stream), strings.Clone(id))
	ws := append(append(make([]*worker, 0, len(old)+1), old...), w)
	m.workers.Store(&ws)
	return w
}

// shard returns the shard id of w, creating it on first use.
func (m *Metrics) shard(w *worker, id string) *shard {
	if s, ok := (*w.shards.Load())[id]; ok {
		return s
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return m.shardLocked(w, id)
}

// shardLocked is shard with w.mu held.
func (m *Metrics) shardLocked(w *worker, id string) *shard {
	old := *w.shards.Load()
	if s, ok := old[id]; ok {
		return s
	}
	s := &shard{id: strings.Clone(id), c: &w.all}
	if m.o.perShard {
		s.c = &counters{}
	}
	next := make(map[string]*shard, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[s.id] = s
	w.shards.Store(&next)
	return s
}

// BatchProcessed implements consumer.BatchHook.
func (m *Metrics) BatchProcessed(i consumer.BatchInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	s := m.shard(w, i.ShardID)
	if i.Skipped != nil {
		s.c.skipped.Add(1)
	} else {
		s.c.records.Add(uint64(i.Records))
		s.c.bytes.Add(uint64(i.Bytes))
		s.c.aggregates.Add(uint64(i.Aggregates))
	}
	w.batchRecords.observe(int64(i.Records))
	w.processing.observe(int64(i.Latency))
}

// Fetched implements consumer.FetchHook.
func (m *Metrics) Fetched(i consumer.FetchInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	op := opIndex(i.Op)
	w.calls[op].Add(1)
	w.callSeconds[op].observe(int64(i.Duration))
	if i.Err != nil {
		w.callErrors[op][kindIndex(i.Kind)].Add(1)
		return
	}
	if i.Renewal {
		w.renewals.Add(1)
	}
	if i.Op == consumer.OpGetRecords || i.Op == consumer.OpSubscribeToShardEvent {
		m.shard(w, i.ShardID).behind.Store(int64(i.MillisBehindLatest))
	}
}

// LeaseChanged implements consumer.LeaseHook.
func (m *Metrics) LeaseChanged(e consumer.LeaseEvent) {
	w := m.worker(e.StreamName, e.WorkerID)
	// Under w.mu, so that a scrape that drops the series of shards no
	// longer held (see WithShardRetention) never drops one being acquired.
	w.mu.Lock()
	defer w.mu.Unlock()
	s := m.shardLocked(w, e.ShardID)
	if e.Kind == consumer.LeaseAcquired {
		w.acquired.Add(1)
		w.leasesHeld.Add(1)
		s.held.Store(true)
		return
	}
	switch e.Kind {
	case consumer.LeaseLost:
		if i := index(lostReasons, e.Reason()); i >= 0 {
			w.lost[i].Add(1)
		}
	case consumer.LeaseReleased:
		if i := index(releasedReasons, e.Reason()); i >= 0 {
			w.released[i].Add(1)
		}
	case consumer.LeaseShardEnded:
		w.shardsEnded.Add(1)
	}
	w.leasesHeld.Add(-1)
	s.behind.Store(0)
	s.endedAt.Store(time.Now().UnixNano())
	s.held.Store(false)
}

// Checkpointed implements consumer.CheckpointHook.
func (m *Metrics) Checkpointed(i consumer.CheckpointInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	w.checkpoints.Add(1)
	if i.Err != nil {
		w.checkpointFailures.Add(1)
	}
	w.checkpointSeconds.observe(int64(i.Duration))
}

// ProcessorFailed implements consumer.ProcessorErrorHook.
func (m *Metrics) ProcessorFailed(i consumer.ProcessorErrorInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	k := methodIndex(i.Method)
	w.procErrors[k].Add(1)
	if i.Panicked {
		w.procPanics[k].Add(1)
	}
	if i.Retry {
		w.procRetry[k].Add(1)
	}
}

// ShardSynced implements consumer.ShardSyncHook.
func (m *Metrics) ShardSynced(i consumer.ShardSyncInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	w.syncs.Add(1)
	if i.Err != nil {
		w.syncFailures.Add(1)
	}
	w.syncSeconds.observe(int64(i.Duration))
}

// AggregateFailed implements consumer.AggregateHook.
func (m *Metrics) AggregateFailed(i consumer.AggregateInfo) {
	w := m.worker(i.StreamName, i.WorkerID)
	if i.Dropped {
		w.kplDropped.Add(1)
	} else {
		w.kplMalformed.Add(1)
	}
}
