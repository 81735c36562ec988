package consumer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
)

// WorkerState is where a Worker is in its life.
type WorkerState uint8

const (
	// WorkerCreated: New returned; Run has not been called.
	WorkerCreated WorkerState = iota + 1
	// WorkerStarting: Run checks the stream and the lease table and runs
	// the first shard sync.
	WorkerStarting
	// WorkerRunning: the lease loops and the shard sync loop run; shards
	// are processed.
	WorkerRunning
	// WorkerStopping: a graceful stop is under way (Run's context was
	// cancelled, or a fatal error occurred).
	WorkerStopping
	// WorkerStopped: Run has returned.
	WorkerStopped
)

var workerStateNames = [...]string{
	WorkerCreated: "created", WorkerStarting: "starting", WorkerRunning: "running",
	WorkerStopping: "stopping", WorkerStopped: "stopped",
}

// String returns the state's lowercase name, such as "running".
func (s WorkerState) String() string {
	if int(s) < len(workerStateNames) && workerStateNames[s] != "" {
		return workerStateNames[s]
	}
	return fmt.Sprintf("WorkerState(%d)", uint8(s))
}

// ShardState is where the processing of one held shard stands.
type ShardState uint8

const (
	// ShardWaitingForParents: the lease is held, and the shard waits until
	// its parent shards are processed to their end.
	ShardWaitingForParents ShardState = iota + 1
	// ShardInitializing: the processor is being created and initialized.
	ShardInitializing
	// ShardProcessing: batches are fetched and delivered.
	ShardProcessing
	// ShardRetrying: the processor failed (ProcessRecords or Initialize)
	// and the Worker waits to call it again: the shard is in backoff, see
	// ShardHealth.Failures and LastError.
	ShardRetrying
	// ShardStopping: the lease is being given up (a stop, a handoff, a
	// loss or the shard's end): final checkpoint and release.
	ShardStopping
)

var shardStateNames = [...]string{
	ShardWaitingForParents: "waiting_for_parents", ShardInitializing: "initializing", ShardProcessing: "processing",
	ShardRetrying: "retrying", ShardStopping: "stopping",
}

// String returns the state's snake_case name, such as "retrying".
func (s ShardState) String() string {
	if int(s) < len(shardStateNames) && shardStateNames[s] != "" {
		return shardStateNames[s]
	}
	return fmt.Sprintf("ShardState(%d)", uint8(s))
}

// Health is a snapshot of a Worker's state, for health checks and
// dashboards: see Worker.Health, and the health package for HTTP probes.
type Health struct {
	// At is when the snapshot was taken.
	At         time.Time
	StreamName string
	WorkerID   string
	State      WorkerState
	// Fleet reports kcl-fleet coordination (heartbeats and a leader);
	// false is KCL-compatible per-lease renewal, or not chosen yet.
	Fleet bool
	// Leases is how many leases the worker holds.
	Leases int
	// InitialSync reports that the first shard sync of Run completed.
	InitialSync bool
	// LastLeaseContact is when the worker last proved itself to the lease
	// table — the send time of its last successful heartbeat (kcl fleet),
	// or the start of its last successful renewal or table scan
	// (KCL-compatible) — and LeaseContactLimit how old it may grow before
	// the worker's leases are lost (the fleet failover time, or the lease
	// duration). LastLeaseContact is zero until the first.
	LastLeaseContact  time.Time
	LeaseContactLimit time.Duration
	// LastShardSync is when the last successful shard sync pass ended.
	LastShardSync time.Time
	// Shards are the held shards, by shard id.
	Shards []ShardHealth
	// HookPanics counts the metric hook calls that panicked.
	HookPanics int64
	// Err is the non-retryable error that stopped, or is stopping, the
	// Worker; nil otherwise.
	Err error
}

// ShardHealth is the state of one held shard.
type ShardHealth struct {
	ShardID string
	State   ShardState
	// Since is when the shard entered State.
	Since time.Time
	// Failures counts the processor's failed calls in a row (of the
	// current batch, or of Initialize), and LastError is the last one's
	// error; both are reset when a call succeeds.
	Failures  int
	LastError error
	// FetchFailures counts the reader's failed Kinesis calls in a row
	// (throttling, network errors, expired iterators; each is retried
	// after a backoff), and LastFetchError is the last one's error; both
	// are reset by a successful call.
	FetchFailures  int
	LastFetchError error
	// MillisBehindLatest is what the shard's last GetRecords result or
	// subscription event reported.
	MillisBehindLatest time.Duration
	// LastBatch is when the processor last finished a batch of the shard;
	// zero before the first.
	LastBatch time.Time
}

// Problem returns why h is not ready, nil when it is ready: the Worker
// runs, its first shard sync completed, and it proved itself to the lease
// table less than LeaseContactLimit before At.
func (h Health) Problem() error {
	switch {
	case h.State != WorkerRunning:
		return fmt.Errorf("consumer: worker %s", h.State)
	case !h.InitialSync:
		return errors.New("consumer: first shard sync not done")
	case h.LastLeaseContact.IsZero():
		return errors.New("consumer: no lease table contact yet")
	case h.At.Sub(h.LastLeaseContact) > h.LeaseContactLimit:
		return fmt.Errorf("consumer: last lease table contact %v ago, beyond %v", h.At.Sub(h.LastLeaseContact).Round(time.Millisecond), h.LeaseContactLimit)
	}
	return nil
}

// Live reports whether the Worker's loops are running or about to: false
// only once Run has returned.
func (h Health) Live() bool { return h.State != WorkerStopped }

// Health returns a snapshot of the Worker's state. It is safe to call at
// any time from any goroutine, and cheap: it reads memory only (no I/O),
// taking one short lock.
func (w *Worker) Health() Health {
	h := Health{
		At:          time.Now(),
		StreamName:  w.streamName,
		WorkerID:    w.cfg.workerID,
		State:       WorkerState(w.state.Load()),
		InitialSync: w.synced.Load(),
		HookPanics:  w.cfg.hooks.guard.panics.Load(),
	}
	if n := w.lastSync.Load(); n != 0 {
		h.LastShardSync = time.Unix(0, n)
	}
	if err := w.fatal.Load(); err != nil {
		h.Err = *err
	}
	if c := w.coordinator(); c != nil {
		h.Fleet = c.Fleet()
		h.LastLeaseContact = c.LastContact()
		h.Leases = len(c.Holding())
	}
	h.LeaseContactLimit = w.cfg.leaseDuration
	if h.Fleet {
		h.LeaseContactLimit = cmp.Or(w.cfg.fleetFailover, leasing.DefaultFailoverTime)
	}
	h.Shards = w.status.snapshot()
	return h
}

// coordinator returns the coordinator once Run has created it.
func (w *Worker) coordinator() *leasing.Coordinator { return w.coordPtr.Load() }

// shardStatuses tracks the held shards for Health.
type shardStatuses struct {
	// mu guards m; the statuses themselves are atomics.
	mu sync.Mutex
	m  map[string]*shardStatus
}

// add registers the status of a shard goroutine and returns it.
func (ss *shardStatuses) add(shardID string) *shardStatus {
	st := &shardStatus{id: shardID}
	st.set(ShardWaitingForParents)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = make(map[string]*shardStatus)
	}
	ss.m[shardID] = st
	return st
}

// remove unregisters st (a later goroutine of the same shard may have
// replaced it).
func (ss *shardStatuses) remove(st *shardStatus) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m[st.id] == st {
		delete(ss.m, st.id)
	}
}

func (ss *shardStatuses) snapshot() []ShardHealth {
	ss.mu.Lock()
	out := make([]ShardHealth, 0, len(ss.m))
	for _, st := range ss.m {
		out = append(out, st.health())
	}
	ss.mu.Unlock()
	slices.SortFunc(out, func(a, b ShardHealth) int { return cmp.Compare(a.ShardID, b.ShardID) })
	return out
}

// shardStatus is one shard goroutine's state. The shard goroutine and its
// reader write it; Health reads it.
type shardStatus struct {
	id            string
	state         atomic.Uint32
	since         atomic.Int64 // Unix nanoseconds
	failures      atomic.Int32
	lastErr       atomic.Pointer[error]
	fetchFailures atomic.Int32
	lastFetchErr  atomic.Pointer[error]
	behind        atomic.Int64 // time.Duration
	lastBatch     atomic.Int64 // Unix nanoseconds
}

func (st *shardStatus) set(s ShardState) {
	if ShardState(st.state.Swap(uint32(s))) != s {
		st.since.Store(time.Now().UnixNano())
	}
}

// failed records a failed processor call.
func (st *shardStatus) failed(err error) {
	st.failures.Add(1)
	st.lastErr.Store(&err)
	st.set(ShardRetrying)
}

// processed records a batch the processor finished with at now.
func (st *shardStatus) processed(now time.Time) {
	if st.failures.Load() != 0 {
		st.failures.Store(0)
		st.lastErr.Store(nil)
	}
	st.set(ShardProcessing)
	st.lastBatch.Store(now.UnixNano())
}

// fetched records a Kinesis call of the shard's reader.
func (st *shardStatus) fetched(op string, err error, behind time.Duration) {
	if err != nil {
		st.fetchFailures.Add(1)
		st.lastFetchErr.Store(&err)
		return
	}
	if st.fetchFailures.Load() != 0 {
		st.fetchFailures.Store(0)
		st.lastFetchErr.Store(nil)
	}
	if op == OpGetRecords || op == OpSubscribeToShardEvent {
		st.behind.Store(int64(behind))
	}
}

func (st *shardStatus) health() ShardHealth {
	h := ShardHealth{
		ShardID:            st.id,
		State:              ShardState(st.state.Load()),
		Since:              time.Unix(0, st.since.Load()),
		Failures:           int(st.failures.Load()),
		FetchFailures:      int(st.fetchFailures.Load()),
		MillisBehindLatest: time.Duration(st.behind.Load()),
	}
	if p := st.lastErr.Load(); p != nil {
		h.LastError = *p
	}
	if p := st.lastFetchErr.Load(); p != nil {
		h.LastFetchError = *p
	}
	if n := st.lastBatch.Load(); n != 0 {
		h.LastBatch = time.Unix(0, n)
	}
	return h
}
