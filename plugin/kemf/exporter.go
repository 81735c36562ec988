package kemf

import (
	"cmp"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// Exporter aggregates a Worker's hooks and writes them as CloudWatch
// Embedded Metric Format lines. Pass it to consumer.WithHooks (it
// implements consumer.BatchHook, consumer.FetchHook, consumer.LeaseHook and
// consumer.CheckpointHook) and run Run beside the Worker.
//
// The hooks only update aggregates in memory under a per-shard lock; the
// writer is called by Run's goroutines alone, so a slow, blocked, failing
// or panicking writer costs flushes (counted in Stats), never a hook's time.
type Exporter struct {
	w         io.Writer
	namespace string
	opts      options
	dimValues map[string]string // WithDimension's
	dimNames  []string          // their names, in the order given

	mu     sync.RWMutex
	shards map[shardKey]*shardState // every shard held or reported since the last flush

	// leaseMu guards the worker-level state below.
	leaseMu sync.Mutex
	held    map[heldKey]struct{}
	leases  map[workerKey]*leaseAgg      // every worker seen: its CurrentLeases is reported at 0 too
	syncs   map[string]*syncAgg          // by stream key
	streams map[string]bool              // every stream key seen, for ApplicationTracker
	last    map[string]dynamolease.Stats // WithLeaseStore's, by table, at the previous flush

	queue    chan [][]byte // flushes waiting for the writer, one line per element
	flushNow chan struct{}
	started  atomic.Bool
	stats    stats
}

// The keys of the aggregates: a field is "" when its dimension is off.
type (
	// shardKey identifies a ProcessTask line: the stream (with
	// WithStreamDimension) and the shard.
	shardKey struct{ stream, shard string }
	// workerKey identifies a worker's lease lines: the stream (with
	// WithStreamDimension) and the worker (with WithWorkerDimension).
	workerKey struct{ stream, worker string }
	// heldKey is a lease held, whatever the dimensions.
	heldKey struct{ stream, worker, shard string }
)

func (e *Exporter) shardKey(stream, shard string) shardKey {
	if !e.opts.streamDim {
		stream = ""
	}
	return shardKey{stream, shard}
}

func (e *Exporter) workerKey(stream, worker string) workerKey {
	if !e.opts.streamDim {
		stream = ""
	}
	if !e.opts.workerDim {
		worker = ""
	}
	return workerKey{stream, worker}
}

func (e *Exporter) streamKey(stream string) string {
	if !e.opts.streamDim {
		return ""
	}
	return stream
}

// shardState is one shard's aggregate, swapped out at each flush.
type shardState struct {
	mu      sync.Mutex
	agg     *shardAgg
	removed bool // dropped from Exporter.shards: look the shard up again
}

// Compile-time checks that Exporter is every hook.
var (
	_ consumer.BatchHook          = (*Exporter)(nil)
	_ consumer.FetchHook          = (*Exporter)(nil)
	_ consumer.LeaseHook          = (*Exporter)(nil)
	_ consumer.CheckpointHook     = (*Exporter)(nil)
	_ consumer.ProcessorErrorHook = (*Exporter)(nil)
	_ consumer.ShardSyncHook      = (*Exporter)(nil)
	_ consumer.AggregateHook      = (*Exporter)(nil)
)

// New returns an Exporter writing EMF lines to w, in the CloudWatch
// namespace namespace (the Java KCL uses the application's name). It starts
// nothing: Run flushes. It returns an error naming the option at fault.
func New(w io.Writer, namespace string, opts ...Option) (*Exporter, error) {
	if w == nil {
		return nil, errors.New("kemf: nil writer")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.validate(namespace); err != nil {
		return nil, err
	}
	e := &Exporter{
		w:         w,
		namespace: namespace,
		opts:      o,
		dimValues: map[string]string{},
		shards:    map[shardKey]*shardState{},
		held:      map[heldKey]struct{}{},
		leases:    map[workerKey]*leaseAgg{},
		syncs:     map[string]*syncAgg{},
		streams:   map[string]bool{},
		last:      map[string]dynamolease.Stats{},
		queue:     make(chan [][]byte, o.buffer),
		flushNow:  make(chan struct{}, 1),
	}
	for _, d := range o.dims {
		e.dimValues[d.name] = d.value
		e.dimNames = append(e.dimNames, d.name)
	}
	return e, nil
}

// Run flushes the aggregates every flush interval until ctx is done, then
// once more, and waits for the writer to take what is buffered, at most the
// drain timeout; it then returns nil. A Write still blocked then is left to
// return on its own: its goroutine exits when it does. Run may be called
// once; a second call returns an error.
//
// Cancel Run's context after the Worker's Run has returned, so that the
// final flush holds the graceful stop's lease releases.
func (e *Exporter) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("kemf: Run called twice")
	}
	written := make(chan struct{})
	go e.writeLoop(written)

	t := time.NewTicker(e.opts.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.enqueue(e.collect(time.Now()))
			close(e.queue)
			drain := time.NewTimer(e.opts.drainTimeout)
			defer drain.Stop()
			select {
			case <-written:
			case <-drain.C:
			}
			return nil
		case now := <-t.C:
			e.enqueue(e.collect(now))
		case <-e.flushNow:
			e.enqueue(e.collect(time.Now()))
		}
	}
}

// Flush asks Run to flush now, without waiting for it: for a process about
// to be frozen, such as a Lambda function at the end of an invocation. It
// never blocks.
func (e *Exporter) Flush() {
	select {
	case e.flushNow <- struct{}{}:
	default: // a flush is already asked for
	}
}

// Stats counts what the Exporter did with its flushes.
type Stats struct {
	// Flushes is how many times the aggregates were taken and encoded.
	Flushes int64
	// Lines is how many EMF lines the writer accepted.
	Lines int64
	// DroppedFlushes counts flushes dropped unwritten because the writer
	// fell behind and the buffer was full (the oldest waiting flush goes),
	// or because Run returned before the writer took them; DroppedLines
	// counts their lines.
	DroppedFlushes, DroppedLines int64
	// WriteErrors counts lines the writer failed (an error or a panic),
	// and lines that could not be encoded; each is lost.
	WriteErrors int64
}

type stats struct {
	flushes, lines, droppedFlushes, droppedLines, writeErrors atomic.Int64
}

// Stats returns the counts so far. It is safe to call at any time.
func (e *Exporter) Stats() Stats {
	return Stats{
		Flushes:        e.stats.flushes.Load(),
		Lines:          e.stats.lines.Load(),
		DroppedFlushes: e.stats.droppedFlushes.Load(),
		DroppedLines:   e.stats.droppedLines.Load(),
		WriteErrors:    e.stats.writeErrors.Load(),
	}
}

// enqueue hands a flush to the writer, dropping the oldest waiting flush
// if the buffer is full. Run is the only sender, so it never waits.
func (e *Exporter) enqueue(lines [][]byte) {
	for {
		select {
		case e.queue <- lines:
			return
		default:
		}
		select {
		case old := <-e.queue:
			e.stats.droppedFlushes.Add(1)
			e.stats.droppedLines.Add(int64(len(old)))
		default: // the writer took one meanwhile
		}
	}
}

// writeLoop writes the flushes until the queue is closed and empty.
func (e *Exporter) writeLoop(done chan<- struct{}) {
	defer close(done)
	for lines := range e.queue {
		for _, l := range lines {
			e.write(l)
		}
	}
}

// write writes one line; a failing or panicking writer loses the line.
func (e *Exporter) write(l []byte) {
	defer func() {
		if r := recover(); r != nil {
			e.stats.writeErrors.Add(1)
		}
	}()
	if _, err := e.w.Write(l); err != nil {
		e.stats.writeErrors.Add(1)
		return
	}
	e.stats.lines.Add(1)
}

// shard returns the state of a shard, creating it.
func (e *Exporter) shard(id shardKey) *shardState {
	e.mu.RLock()
	s := e.shards[id]
	e.mu.RUnlock()
	if s != nil {
		return s
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s = e.shards[id]; s == nil {
		s = &shardState{agg: &shardAgg{}}
		e.shards[id] = s
	}
	return s
}

// update applies f to the aggregate of a stream's shard under its lock.
func (e *Exporter) update(stream, shard string, f func(*shardAgg)) {
	id := e.shardKey(stream, shard)
	for {
		s := e.shard(id)
		s.mu.Lock()
		if !s.removed {
			f(s.agg)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// collect takes the aggregates of the interval that ends at now and
// encodes them.
func (e *Exporter) collect(now time.Time) [][]byte {
	e.stats.flushes.Add(1)

	// The worker-level state: lease events and syncs are taken, the
	// leases held counted by worker line.
	e.leaseMu.Lock()
	leases := make(map[workerKey]leaseAgg, len(e.leases))
	current := make(map[workerKey]int64, len(e.leases))
	for k, a := range e.leases {
		leases[k] = *a
		*a = leaseAgg{}
	}
	heldShards := make(map[shardKey]bool, len(e.held))
	for h := range e.held {
		current[e.workerKey(h.stream, h.worker)]++
		heldShards[e.shardKey(h.stream, h.shard)] = true
	}
	syncs := make(map[string]syncAgg, len(e.syncs))
	for k, a := range e.syncs {
		syncs[k] = *a
		*a = syncAgg{}
	}
	streams := slices.Sorted(maps.Keys(e.streams))
	e.leaseMu.Unlock()

	// Every shard's aggregate; shards neither held nor reported in the
	// interval are forgotten.
	e.mu.Lock()
	keys := slices.SortedFunc(maps.Keys(e.shards), func(a, b shardKey) int {
		return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.shard, b.shard))
	})
	aggs := make([]*shardAgg, len(keys))
	for i, k := range keys {
		s := e.shards[k]
		s.mu.Lock()
		aggs[i] = s.agg
		s.agg = &shardAgg{}
		if !heldShards[k] && aggs[i].empty() {
			s.removed = true
			delete(e.shards, k)
		}
		s.mu.Unlock()
	}
	e.mu.Unlock()

	var lines []*line
	byStream := map[string]*shardAgg{}
	for _, st := range streams {
		byStream[st] = &shardAgg{}
	}
	for i, k := range keys {
		all := byStream[k.stream]
		if all == nil {
			all = &shardAgg{}
			byStream[k.stream] = all
		}
		all.merge(aggs[i])
		if !e.opts.noShard && (heldShards[k] || !aggs[i].empty()) {
			lines = append(lines, e.processTask(k, aggs[i]))
		}
	}
	for _, st := range slices.Sorted(maps.Keys(byStream)) {
		all := byStream[st]
		if e.opts.noShard {
			lines = append(lines, e.processTask(shardKey{stream: st}, all))
		}
		tracker := e.newLine(opApplicationTracker, st, "", "")
		tracker.dist(MillisBehindLatest, unitMilliseconds, &all.lag)
		lines = append(lines, tracker)
		if a, ok := syncs[st]; ok && (a.success > 0 || a.errors > 0) {
			l := e.newLine(opShardSyncTask, st, "", "")
			l.count(SyncSuccess, unitCount, a.success)
			l.dist(SyncTime, unitMilliseconds, &a.time)
			l.countNonZero(SyncErrors, a.errors)
			lines = append(lines, l)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(leases), func(a, b workerKey) int {
		return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.worker, b.worker))
	}) {
		a := leases[k]
		renew := e.newLine(opRenewAllLeases, k.stream, "", k.worker)
		renew.count(CurrentLeases, unitCount, current[k])
		renew.count(LostLeases, unitCount, a.lost)
		renew.countNonZero(ReleasedLeases, a.released)
		renew.countNonZero(ShardsEnded, a.ended)
		take := e.newLine(opTakeLeases, k.stream, "", k.worker)
		take.count(TakenLeases, unitCount, a.acquired)
		lines = append(lines, renew, take)
	}
	lines = append(lines, e.leaseTables()...)

	out := make([][]byte, 0, len(lines))
	for _, l := range lines {
		b, err := l.encode(nil, e.namespace, now)
		if err != nil {
			e.stats.writeErrors.Add(1)
			continue
		}
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// leaseTables returns the lines of WithLeaseStore's stores: each
// operation's calls and consumed capacity since the previous flush.
func (e *Exporter) leaseTables() []*line {
	var lines []*line
	for _, s := range e.opts.stores {
		table, st := s.Table(), s.Stats()
		prev := e.last[table]
		e.last[table] = st
		l := newLine(e.dimSets([]string{dimOperation, dimTable}), e.values(opLeaseTable, "", "", ""))
		l.members[dimTable] = table
		c, p := st.Calls, prev.Calls
		for _, v := range []struct {
			op    string
			delta int64
		}{
			{"GetItem", c.GetItem - p.GetItem}, {"PutItem", c.PutItem - p.PutItem}, {"UpdateItem", c.UpdateItem - p.UpdateItem},
			{"DeleteItem", c.DeleteItem - p.DeleteItem}, {"Scan", c.Scan - p.Scan}, {"Query", c.Query - p.Query},
			{"BatchGetItem", c.BatchGetItem - p.BatchGetItem}, {"DescribeTable", c.DescribeTable - p.DescribeTable},
			{"CreateTable", c.CreateTable - p.CreateTable},
		} {
			l.countNonZero(v.op+SuffixCalls, v.delta)
		}
		u, q := st.Capacity, prev.Capacity
		for _, v := range []struct {
			op    string
			delta float64
		}{
			{"GetItem", u.GetItem - q.GetItem}, {"PutItem", u.PutItem - q.PutItem}, {"UpdateItem", u.UpdateItem - q.UpdateItem},
			{"DeleteItem", u.DeleteItem - q.DeleteItem}, {"Scan", u.Scan - q.Scan}, {"Query", u.Query - q.Query},
			{"BatchGetItem", u.BatchGetItem - q.BatchGetItem},
		} {
			if v.delta != 0 {
				l.value(v.op+SuffixConsumedCapacity, unitCount, v.delta)
			}
		}
		lines = append(lines, l)
	}
	return lines
}

// processTask is the line of one shard's metrics (k.shard "" for those
// of every shard, without the ShardId dimension).
func (e *Exporter) processTask(k shardKey, a *shardAgg) *line {
	l := e.newLine(opProcessTask, k.stream, k.shard, "")
	l.count(RecordsProcessed, unitCount, a.records)
	l.count(DataBytesProcessed, unitBytes, a.bytes)
	l.dist(MillisBehindLatest, unitMilliseconds, &a.lag)
	l.dist(ProcessRecordsTime, unitMilliseconds, &a.processTime)
	l.countNonZero(KPLAggregates, a.aggregates)
	l.countNonZero(KPLMalformed, a.kplMalformed)
	l.countNonZero(KPLDropped, a.kplDropped)
	l.countNonZero(BatchesSkipped, a.skippedBatches)
	l.countNonZero(RecordsSkipped, a.skipped)
	l.countNonZero(BatchRetries, a.retries)
	l.countNonZero(ProcessorErrors, a.procErrors)
	l.countNonZero(ProcessorPanics, a.procPanics)
	for _, op := range slices.Sorted(maps.Keys(a.calls)) {
		c, p := a.calls[op], fetchPrefix(op)
		l.count(p+SuffixSuccess, unitCount, c.success)
		l.dist(p+SuffixTime, unitMilliseconds, &c.time)
		l.countNonZero(p+SuffixThrottled, c.throttled)
		l.countNonZero(p+SuffixErrors, c.errors)
	}
	l.countNonZero(ExpiredIterator, a.expiredIterators)
	l.countNonZero(SubscriptionRenewals, a.renewals)
	if a.checkpoints > 0 {
		l.count(UpdateLease+SuffixSuccess, unitCount, a.checkpoints-a.checkpointE)
		l.dist(UpdateLease+SuffixTime, unitMilliseconds, &a.checkpointTime)
		l.countNonZero(UpdateLease+SuffixErrors, a.checkpointE)
	}
	return l
}

// newLine starts a line of operation op with the dimensions that are set:
// ShardId when shard is not "", WorkerIdentifier when worker is not "",
// StreamName when stream is not "", then WithDimension's.
func (e *Exporter) newLine(op, stream, shard, worker string) *line {
	dims := []string{dimOperation}
	if shard != "" {
		dims = append(dims, dimShardID)
	}
	if worker != "" {
		dims = append(dims, dimWorkerID)
	}
	if stream != "" {
		dims = append(dims, dimStream)
	}
	return newLine(e.dimSets(dims), e.values(op, stream, shard, worker))
}

// dimSets returns the dimension set of kcl's dimensions dims followed by
// WithDimension's.
func (e *Exporter) dimSets(dims []string) [][]string {
	return [][]string{append(dims, e.dimNames...)}
}

// values returns the dimension values of a line: the operation, the
// stream, shard and worker when not "", and WithDimension's.
func (e *Exporter) values(op, stream, shard, worker string) map[string]string {
	v := maps.Clone(e.dimValues)
	v[dimOperation] = op
	if stream != "" {
		v[dimStream] = stream
	}
	if shard != "" {
		v[dimShardID] = shard
	}
	if worker != "" {
		v[dimWorkerID] = worker
	}
	return v
}
