package consumer_test

// Shared test harness for the Worker tests: a journal that records what
// processors were given, a configurable processor, and helpers that run a
// Worker inside a testing/synctest bubble against fakekinesis and memlease.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

const streamName = "orders"

// delivered is one user record a processor finished with (its
// ProcessRecords call returned nil).
type delivered struct {
	shard string
	pos   checkpoint.Position
	key   string
	data  string
}

// journal records, in the order it happened, everything the processors of
// one test were given. It is safe for concurrent use.
type journal struct {
	mu     sync.Mutex
	recs   []delivered
	events []string // "<kind> <shard>", e.g. "init shardId-000000000000"
	errs   []string // violations seen by processors and factories
}

func (j *journal) event(kind, shard string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, kind+" "+shard)
}

func (j *journal) violation(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.errs = append(j.errs, fmt.Sprintf(format, args...))
}

func (j *journal) add(b *consumer.Batch) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range b.Records {
		p, err := checkpoint.At(r.SequenceNumber, r.SubSequenceNumber)
		if err != nil {
			j.errs = append(j.errs, fmt.Sprintf("record with a bad position %q/%d: %v", r.SequenceNumber, r.SubSequenceNumber, err))
		}
		j.recs = append(j.recs, delivered{shard: b.ShardID, pos: p, key: r.PartitionKey, data: string(r.Data)})
	}
}

func (j *journal) records() []delivered {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.recs)
}

func (j *journal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.recs)
}

func (j *journal) eventsOf(kind string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, e := range j.events {
		if k, shard, _ := cut(e); k == kind {
			out = append(out, shard)
		}
	}
	return out
}

func cut(e string) (kind, shard string, ok bool) {
	for i := range len(e) {
		if e[i] == ' ' {
			return e[:i], e[i+1:], true
		}
	}
	return e, "", false
}

// checkNoViolations fails the test if a processor or factory saw something
// it must never see.
func (j *journal) checkNoViolations(t *testing.T) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.errs {
		t.Error(e)
	}
}

// proc is a Processor implementing every optional interface. Each field,
// when set, runs before the default behaviour; an error it returns is the
// call's result.
type proc struct {
	j    *journal
	info consumer.ShardInfo

	// batch runs at the start of ProcessRecords; records are journaled
	// only if the call returns nil.
	batch    func(ctx context.Context, b *consumer.Batch) error
	init     func(ctx context.Context, in consumer.InitInput) error
	ended    func(ctx context.Context, cp *consumer.Checkpointer) error
	shutdown func(ctx context.Context, cp *consumer.Checkpointer) error
	lost     func(ctx context.Context)
}

func (p *proc) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	if b.ShardID != p.info.ShardID {
		p.j.violation("processor of %s given a batch of %s", p.info.ShardID, b.ShardID)
	}
	if p.batch != nil {
		if err := p.batch(ctx, b); err != nil {
			return err
		}
	}
	p.j.add(b)
	return nil
}

func (p *proc) Initialize(ctx context.Context, in consumer.InitInput) error {
	p.j.event("init", p.info.ShardID)
	if p.init != nil {
		return p.init(ctx, in)
	}
	return nil
}

func (p *proc) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	p.j.event("ended", p.info.ShardID)
	if p.ended != nil {
		return p.ended(ctx, cp)
	}
	return nil
}

func (p *proc) ShutdownRequested(ctx context.Context, cp *consumer.Checkpointer) error {
	p.j.event("shutdown", p.info.ShardID)
	if p.shutdown != nil {
		return p.shutdown(ctx, cp)
	}
	return nil
}

func (p *proc) LeaseLost(ctx context.Context) {
	p.j.event("lost", p.info.ShardID)
	if p.lost != nil {
		p.lost(ctx)
	}
}

// leaseLister is a store whose table can be read without faults.
type leaseLister interface{ Leases() []lease.Lease }

// factory returns a Factory of procs configured by setup (which may be nil).
// It checks, when each processor is created, that every parent of the shard
// is finished (SHARD_END) or has no lease any more.
func factory(j *journal, store leaseLister, setup func(p *proc)) consumer.Factory {
	return consumer.FactoryFunc(func(info consumer.ShardInfo) (consumer.Processor, error) {
		j.event("new", info.ShardID)
		leases := map[string]lease.Lease{}
		for _, l := range store.Leases() {
			leases[l.Key] = l
		}
		for _, parent := range info.ParentShardIDs {
			if l, ok := leases[parent]; ok && !l.Finished() {
				j.violation("processor for %s created while its parent %s is at %v", info.ShardID, parent, l.Checkpoint)
			}
		}
		p := &proc{j: j, info: info}
		if setup != nil {
			setup(p)
		}
		return p, nil
	})
}

// testLogger logs at Info and above to the test's log.
func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// baseOptions are the options every test Worker starts with: records from
// the start of the stream, fast polling, a fixed worker id.
func baseOptions(t *testing.T, id string) []consumer.Option {
	return []consumer.Option{
		consumer.WithWorkerID(id),
		consumer.WithLogger(testLogger(t).Named(id)),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
	}
}

// newWorker creates a Worker over api and store with baseOptions and opts.
func newWorker(t *testing.T, api consumer.KinesisAPI, store lease.Store, f consumer.Factory, id string, opts ...consumer.Option) *consumer.Worker {
	t.Helper()
	base := append(baseOptions(t, id), consumer.WithIdleTime(200*time.Millisecond))
	w, err := consumer.New(api, store, streamName, f, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// newEFOWorker is newWorker reading through enhanced fan-out as the stream
// consumer "app" (registered on the fake by the first Worker to run).
func newEFOWorker(t *testing.T, api consumer.KinesisAPI, store lease.Store, f consumer.Factory, id string, opts ...consumer.Option) *consumer.Worker {
	t.Helper()
	base := append(baseOptions(t, id), consumer.WithEnhancedFanOut("app"))
	w, err := consumer.New(api, store, streamName, f, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// running is a Worker whose Run is in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	ended  time.Time
}

// start runs w.Run in a goroutine. The Worker is stopped, and its Run
// waited for, when the test ends if the test did not stop it.
func start(t *testing.T, w *consumer.Worker) *running {
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = w.Run(ctx)
		r.ended = time.Now()
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop cancels Run's context and returns what Run returned.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// returned reports whether Run has returned.
func (r *running) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond every 100ms of (fake) time until it holds, failing the
// test after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// putRange puts records with data "from" … "to-1" on the stream, the i-th
// with partition key "k<i mod keys>".
func putRange(f *fakekinesis.Fake, from, to, keys int) {
	for i := from; i < to; i++ {
		f.Put(streamName, "k"+strconv.Itoa(i%keys), []byte(strconv.Itoa(i)))
	}
}

// checkExactlyOnce checks that recs hold each of data "from" … "to-1"
// exactly once.
func checkExactlyOnce(t *testing.T, recs []delivered, from, to int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.data]++
	}
	missing, dup := 0, 0
	for i := from; i < to; i++ {
		switch n := seen[strconv.Itoa(i)]; {
		case n == 0:
			if missing++; missing <= 5 {
				t.Errorf("record %d was never delivered", i)
			}
		case n > 1:
			if dup++; dup <= 5 {
				t.Errorf("record %d was delivered %d times", i, n)
			}
		}
		delete(seen, strconv.Itoa(i))
	}
	if missing+dup > 0 {
		t.Errorf("%d records missing, %d duplicated, of %d", missing, dup, to-from)
	}
	for d, n := range seen {
		t.Errorf("unexpected record %q delivered %d times", d, n)
	}
}

// checkOrder checks that within each shard records came in increasing
// position, and within each partition key in the order they were put
// (data increasing), across shards.
func checkOrder(t *testing.T, recs []delivered) {
	t.Helper()
	lastPos := map[string]checkpoint.Position{}
	lastData := map[string]int{}
	for _, r := range recs {
		if p, ok := lastPos[r.shard]; ok && r.pos.Compare(p) <= 0 {
			t.Errorf("shard %s: record at %v delivered after %v", r.shard, r.pos, p)
		}
		lastPos[r.shard] = r.pos
		n, err := strconv.Atoi(r.data)
		if err != nil {
			continue
		}
		if d, ok := lastData[r.key]; ok && n <= d {
			t.Errorf("key %s: record %d delivered after %d", r.key, n, d)
		}
		lastData[r.key] = n
	}
}

// leaseMap returns the store's leases by key.
func leaseMap(s *memlease.Store) map[string]lease.Lease {
	m := map[string]lease.Lease{}
	for _, l := range s.Leases() {
		m[l.Key] = l
	}
	return m
}

// eventRecorder is a hook implementing every hook interface.
type eventRecorder struct {
	mu          sync.Mutex
	batches     []consumer.BatchInfo
	fetches     []consumer.FetchInfo
	leases      []consumer.LeaseEvent
	checkpoints []consumer.CheckpointInfo
	procErrs    []consumer.ProcessorErrorInfo
	syncs       []consumer.ShardSyncInfo
	aggregates  []consumer.AggregateInfo
}

func (h *eventRecorder) ProcessorFailed(i consumer.ProcessorErrorInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.procErrs = append(h.procErrs, i)
}

func (h *eventRecorder) ShardSynced(i consumer.ShardSyncInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.syncs = append(h.syncs, i)
}

func (h *eventRecorder) AggregateFailed(i consumer.AggregateInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aggregates = append(h.aggregates, i)
}

func (h *eventRecorder) BatchProcessed(i consumer.BatchInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batches = append(h.batches, i)
}

func (h *eventRecorder) Fetched(i consumer.FetchInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetches = append(h.fetches, i)
}

func (h *eventRecorder) LeaseChanged(e consumer.LeaseEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leases = append(h.leases, e)
}

func (h *eventRecorder) Checkpointed(i consumer.CheckpointInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkpoints = append(h.checkpoints, i)
}

func (h *eventRecorder) leaseEvents() []consumer.LeaseEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.leases)
}

// callCounter counts calls; safe for concurrent use.
type callCounter struct{ n atomic.Int64 }

// next returns 1 for the first call, 2 for the second, and so on.
func (c *callCounter) next() int64 { return c.n.Add(1) }

func (c *callCounter) get() int64 { return c.n.Load() }

type atomicBool struct{ b atomic.Bool }

func (a *atomicBool) get() bool  { return a.b.Load() }
func (a *atomicBool) set(v bool) { a.b.Store(v) }

// recordingStore is a memlease.Store that records the lease writes the
// resharding tests check: leases created, SHARD_END checkpoints and
// deletions.
type recordingStore struct {
	*memlease.Store

	mu       sync.Mutex
	created  map[string]lease.Lease
	shardEnd map[string][]string // shard → childShardIds written with SHARD_END
	deleted  []string
	errs     []string

	// parentsOf, if set, returns the parents of a shard; it enables the
	// check that SHARD_END follows the creation of the child leases.
	parentsOf func(shard string) []string
}

func newRecordingStore(opts ...memlease.Option) *recordingStore {
	return &recordingStore{Store: memlease.New(opts...), created: map[string]lease.Lease{}, shardEnd: map[string][]string{}}
}

func (s *recordingStore) Create(ctx context.Context, l lease.Lease) error {
	err := s.Store.Create(ctx, l)
	if err == nil {
		s.mu.Lock()
		s.created[l.Key] = l.Clone()
		s.mu.Unlock()
	}
	return err
}

func (s *recordingStore) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	if u.Checkpoint.Kind() == checkpoint.KindShardEnd && s.parentsOf != nil {
		// W3: SHARD_END is written only once the children have leases,
		// except merge children, which are deferred while their other
		// parent has no lease (when the children were leased, before the
		// last batch: it may have one by now).
		for _, c := range u.ChildShardIDs {
			if _, err := s.Store.Get(ctx, c); err != nil && len(s.parentsOf(c)) == 1 {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Sprintf("SHARD_END of %s written before its child %s has a lease", l.Key, c))
				s.mu.Unlock()
			}
		}
	}
	nl, err := s.Store.Checkpoint(ctx, l, u)
	if err == nil && u.Checkpoint.Kind() == checkpoint.KindShardEnd {
		s.mu.Lock()
		// Empty ChildShardIDs leave the stored ones.
		if _, ok := s.shardEnd[l.Key]; !ok || len(u.ChildShardIDs) > 0 {
			s.shardEnd[l.Key] = slices.Sorted(slices.Values(u.ChildShardIDs))
		}
		s.mu.Unlock()
	}
	return nl, err
}

func (s *recordingStore) Delete(ctx context.Context, l lease.Lease) error {
	stored, gerr := s.Store.Get(ctx, l.Key)
	err := s.Store.Delete(ctx, l)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, l.Key)
	if gerr != nil || !stored.Finished() {
		s.errs = append(s.errs, fmt.Sprintf("deleted lease %s at %v (%v), want a finished one", l.Key, stored.Checkpoint, gerr))
		return nil
	}
	for _, c := range stored.ChildShardIDs {
		cl, err := s.Store.Get(ctx, c)
		if err != nil || !(cl.Checkpoint.IsSequence() || cl.Finished()) {
			s.errs = append(s.errs, fmt.Sprintf("deleted lease %s while its child %s is at %v (%v)", l.Key, c, cl.Checkpoint, err))
		}
	}
	return nil
}

// hasAll reports whether records "from" … "to-1" have all been delivered.
func (j *journal) hasAll(from, to int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	seen := make(map[string]bool, len(j.recs))
	for _, r := range j.recs {
		seen[r.data] = true
	}
	for i := from; i < to; i++ {
		if !seen[strconv.Itoa(i)] {
			return false
		}
	}
	return true
}

// checkNoWorkerGoroutines fails the test if a goroutine of the Worker, the
// lease coordinator or the fetcher is still running: Run must return only
// after every goroutine it started has exited.
func checkNoWorkerGoroutines(t *testing.T) {
	t.Helper()
	synctest.Wait()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "kcl/consumer.(*") || strings.Contains(g, "kcl/internal/leasing.") || strings.Contains(g, "kcl/internal/retrieval.") {
			t.Errorf("goroutine left after Run returned:\n%s", g)
		}
	}
}
