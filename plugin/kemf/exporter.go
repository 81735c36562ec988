package kemf

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kclgo/kcl/consumer"
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
	shards map[string]*shardState // every shard held or reported since the last flush

	leaseMu sync.Mutex
	held    map[string]struct{}
	leases  leaseAgg

	queue    chan [][]byte // flushes waiting for the writer, one line per element
	flushNow chan struct{}
	started  atomic.Bool
	stats    stats
}

// shardState is one shard's aggregate, swapped out at each flush.
type shardState struct {
	mu      sync.Mutex
	agg     *shardAgg
	removed bool // dropped from Exporter.shards: look the shard up again
}

// Compile-time checks that Exporter is every hook.
var (
	_ consumer.BatchHook      = (*Exporter)(nil)
	_ consumer.FetchHook      = (*Exporter)(nil)
	_ consumer.LeaseHook      = (*Exporter)(nil)
	_ consumer.CheckpointHook = (*Exporter)(nil)
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
		shards:    map[string]*shardState{},
		held:      map[string]struct{}{},
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
func (e *Exporter) shard(id string) *shardState {
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

// update applies f to the shard's aggregate under its lock.
func (e *Exporter) update(id string, f func(*shardAgg)) {
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
	e.leaseMu.Lock()
	leases, held := e.leases, len(e.held)
	heldIDs := maps.Clone(e.held)
	e.leases = leaseAgg{}
	e.leaseMu.Unlock()

	// Take every shard's aggregate; forget shards neither held nor
	// reported in the interval.
	e.mu.Lock()
	ids := slices.Sorted(maps.Keys(e.shards))
	aggs := make([]*shardAgg, 0, len(ids))
	for _, id := range ids {
		s := e.shards[id]
		s.mu.Lock()
		a := s.agg
		s.agg = &shardAgg{}
		_, isHeld := heldIDs[id]
		if !isHeld && a.empty() {
			s.removed = true
			delete(e.shards, id)
		}
		s.mu.Unlock()
		aggs = append(aggs, a)
	}
	e.mu.Unlock()

	var lines []*line
	all := &shardAgg{}
	for i, id := range ids {
		all.merge(aggs[i])
		if e.opts.noShard {
			continue
		}
		if _, isHeld := heldIDs[id]; isHeld || !aggs[i].empty() {
			lines = append(lines, e.processTask(id, aggs[i]))
		}
	}
	if e.opts.noShard && (held > 0 || !all.empty()) {
		lines = append(lines, e.processTask("", all))
	}

	tracker := newLine(e.dimSets([]string{dimOperation}), e.values(opApplicationTracker, "", ""))
	tracker.dist(MillisBehindLatest, unitMilliseconds, &all.lag)
	lines = append(lines, tracker)

	workerDims := []string{dimOperation}
	if e.opts.workerID != "" {
		workerDims = append(workerDims, dimWorkerID)
	}
	renew := newLine(e.dimSets(workerDims), e.values(opRenewAllLeases, "", e.opts.workerID))
	renew.count(CurrentLeases, unitCount, int64(held))
	renew.count(LostLeases, unitCount, leases.lost)
	renew.countNonZero(ReleasedLeases, leases.released)
	renew.countNonZero(ShardsEnded, leases.ended)
	take := newLine(e.dimSets(workerDims), e.values(opTakeLeases, "", e.opts.workerID))
	take.count(TakenLeases, unitCount, leases.acquired)
	lines = append(lines, renew, take)

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

// processTask is the line of one shard's metrics (shard "" for all of
// them, without the ShardId dimension).
func (e *Exporter) processTask(shard string, a *shardAgg) *line {
	dims := []string{dimOperation}
	if shard != "" {
		dims = append(dims, dimShardID)
	}
	l := newLine(e.dimSets(dims), e.values(opProcessTask, shard, ""))
	l.count(RecordsProcessed, unitCount, a.records)
	l.count(DataBytesProcessed, unitBytes, a.bytes)
	l.dist(MillisBehindLatest, unitMilliseconds, &a.lag)
	l.dist(ProcessRecordsTime, unitMilliseconds, &a.processTime)
	l.countNonZero(BatchesSkipped, a.skippedBatches)
	l.countNonZero(RecordsSkipped, a.skipped)
	l.countNonZero(BatchRetries, a.retries)
	for _, op := range slices.Sorted(maps.Keys(a.calls)) {
		c, p := a.calls[op], fetchPrefix(op)
		l.count(p+SuffixSuccess, unitCount, c.success)
		l.dist(p+SuffixTime, unitMilliseconds, &c.time)
		l.countNonZero(p+SuffixThrottled, c.throttled)
		l.countNonZero(p+SuffixErrors, c.errors)
	}
	l.countNonZero(ExpiredIterator, a.expiredIterators)
	if a.checkpoints > 0 {
		l.count(UpdateLease+SuffixSuccess, unitCount, a.checkpoints-a.checkpointE)
		l.dist(UpdateLease+SuffixTime, unitMilliseconds, &a.checkpointTime)
		l.countNonZero(UpdateLease+SuffixErrors, a.checkpointE)
	}
	return l
}

// dimSets returns the dimension set of kcl's dimensions dims followed by
// WithDimension's.
func (e *Exporter) dimSets(dims []string) [][]string {
	return [][]string{append(dims, e.dimNames...)}
}

// values returns the dimension values of a line: the operation, the shard
// and worker when not "", and WithDimension's.
func (e *Exporter) values(op, shard, worker string) map[string]string {
	v := maps.Clone(e.dimValues)
	v[dimOperation] = op
	if shard != "" {
		v[dimShardID] = shard
	}
	if worker != "" {
		v[dimWorkerID] = worker
	}
	return v
}

func (a *shardAgg) empty() bool {
	return a.records == 0 && a.skippedBatches == 0 && a.lag.n == 0 && a.processTime.n == 0 &&
		len(a.calls) == 0 && a.checkpoints == 0
}
