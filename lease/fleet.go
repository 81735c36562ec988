package lease

import (
	"context"
	"strconv"
)

// FleetStore is implemented by lease tables that can also hold the items of
// kcl-fleet coordination (DESIGN.md, "Fleet-scale coordination"): one
// heartbeat item per worker, a roster of live workers, and a leader lock with
// a fencing epoch. The items live in the lease table, told apart from leases
// so that Store.List and Store.Get never return them (the DynamoDB store marks
// them with entityType values of their own), and a worker that holds no lease
// costs one write per heartbeat and no read.
//
// Every write is one conditional request, atomic, as on Store. Errors follow
// Store's conventions: a failed condition matches ErrConflict (and, for the
// leader's own RenewLeader and ReleaseLeader, ErrLeaseLost); a missing item
// ErrNotFound where a method says so; a refusal for capacity ErrThrottled.
// Usage errors (an empty worker id, a nil or unowned lock where an owned one
// is needed) write nothing and match none of these. Methods are safe for
// concurrent use and honour ctx.
type FleetStore interface {
	// Beat writes workerID's heartbeat, creating the item on the worker's
	// first beat: it adds 1 to Counter and sets State and Leases, and
	// returns the heartbeat as stored after the write, so the worker reads
	// AssignEpoch, Standby and Fenced, which Beat never changes, without a
	// separate read. The write is conditioned only on the item, if it exists, being a
	// heartbeat, never on its contents, so beats of one worker never
	// conflict.
	Beat(ctx context.Context, workerID string, state WorkerState, leases int) (Heartbeat, error)

	// Heartbeats returns the heartbeats of the workers in ids, in no
	// particular order; ids without a heartbeat are left out, and duplicate
	// ids are read once. The read is strongly consistent: it reflects every
	// Beat that returned before it. The leader's liveness rule needs that —
	// a stale read could show a live worker's heartbeat standing still for
	// the failover time while its beats land. The DynamoDB store reads 100
	// items per request and retries the keys DynamoDB leaves unprocessed.
	Heartbeats(ctx context.Context, ids []string) ([]Heartbeat, error)

	// MarkAssigned adds 1 to the AssignEpoch of workerID's heartbeat, telling
	// the worker that its assignments changed; the worker sees it on its next
	// Beat. It returns an error matching ErrNotFound when the worker has no
	// heartbeat (the write is conditioned on the item's existence, so it
	// never creates one).
	MarkAssigned(ctx context.Context, workerID string) error

	// SetStandby sets the Standby flag of workerID's heartbeat: the leader
	// calls it to choose the few workers that watch the leader lock closely.
	// The worker sees the flag on its next Beat. Setting the value already
	// stored is allowed and still writes. It returns an error matching
	// ErrNotFound when the worker has no heartbeat (the write is conditioned
	// on the item existing and being a heartbeat, so it never creates one).
	SetStandby(ctx context.Context, workerID string, standby bool) error

	// Fence is the leader's last word to a worker it judged dead, written
	// before it reassigns the worker's leases: one write that sets Fenced to
	// counter, conditioned on the item being a heartbeat and its Counter
	// being exactly counter, the value the leader saw standing still. A beat
	// in flight when the leader judged the worker dead therefore either
	// landed first, and the fence fails, or lands after it and returns the
	// fence to the worker, which stops. Fence never creates an item. It
	// returns an error matching ErrConflict when the stored Counter differs
	// (the worker beat since the leader's read: it is alive, and must not
	// be fenced), and one matching ErrNotFound when the worker has no
	// heartbeat. An empty workerID or a counter below 1 is a usage error.
	Fence(ctx context.Context, workerID string, counter int64) error

	// Join adds workerID to the roster, creating the roster on the first
	// join. Joining twice is the same as joining once.
	Join(ctx context.Context, workerID string) error

	// Leave removes workerID from the roster. Leaving when absent, or when
	// there is no roster, succeeds and changes nothing observable.
	Leave(ctx context.Context, workerID string) error

	// Roster returns the ids of the workers that joined and have not left,
	// sorted, with one strongly consistent read: it reflects every Join and
	// Leave that returned before it. An absent roster reads as empty, not as
	// ErrNotFound.
	Roster(ctx context.Context) ([]string, error)

	// Leader reads the leader lock (strongly consistent). It returns an
	// error matching ErrNotFound if the lock was never written. A released
	// lock reads back with Owner "".
	Leader(ctx context.Context) (LeaderLock, error)

	// AcquireLeader makes id the leader. With seen nil the write is
	// conditioned on the lock not existing, and creates it with Epoch 1 and
	// Version 1. Otherwise seen is the lock as the caller read it — released
	// (Owner ""), or unchanged for the lock's duration on the caller's clock,
	// or held by id itself — and the write is conditioned on the stored
	// owner and version being seen's (no owner when seen.Owner is ""); it
	// sets the owner to id, Epoch to seen.Epoch+1 and Version to
	// seen.Version+1 (stores add 1 to the stored values, which a matching
	// Version makes seen's). Version thus grows on every write of the lock,
	// acquisitions included, and an observer judges a lock unchanged by its
	// Version alone; Epoch grows on every acquisition and is the fencing
	// token of a leadership. It returns the lock as stored, or an error
	// matching ErrConflict when the condition failed (another worker
	// acquired or renewed the lock first).
	AcquireLeader(ctx context.Context, id string, seen *LeaderLock) (LeaderLock, error)

	// RenewLeader proves the leader is alive: conditioned on the stored
	// owner and version being l's, it adds 1 to Version, keeps Epoch, and
	// returns the lock as stored. It returns an error matching ErrLeaseLost
	// (and so ErrConflict) otherwise; the leader must then step down.
	RenewLeader(ctx context.Context, l LeaderLock) (LeaderLock, error)

	// ReleaseLeader gives leadership up: conditioned on the stored owner and
	// version being l's, it removes the owner and adds 1 to Version, keeping
	// the item and its Epoch, so the next acquisition (with seen set to the
	// released lock, at once) continues the epoch sequence; deleting the
	// item would restart it at 1 and break fencing. It returns an error
	// matching ErrLeaseLost (and so ErrConflict) when the condition failed.
	ReleaseLeader(ctx context.Context, l LeaderLock) error

	// Assign is the leader's assignment of a lease to newOwner. Conditioned
	// on the stored leaseOwner being l.Owner (no owner when l.Owner is "")
	// and the stored counter being l.Counter, it sets the owner to newOwner,
	// increments the counter — so the previous owner's renewals, checkpoints
	// and releases, conditioned on its own counter, fail with ErrLeaseLost —
	// adds 1 to OwnerSwitchesSinceCheckpoint when l.Owner is neither "" nor
	// newOwner, and removes CheckpointOwner (ending any handoff). It returns
	// the lease as stored, or an error matching ErrConflict (and ErrNotFound
	// when the lease does not exist). An empty newOwner is a usage error.
	Assign(ctx context.Context, l Lease, newOwner string) (Lease, error)
}

// WorkerState is what a worker's heartbeat says it is doing.
type WorkerState uint8

// The worker states. The leader never assigns a lease to a worker that is
// stopping.
const (
	WorkerStarting WorkerState = iota + 1 // joined, not yet processing
	WorkerRunning                         // processing its leases
	WorkerStopping                        // shutting down, handing its leases back
)

// String returns "starting", "running" or "stopping": the value stored in the
// heartbeat item.
func (s WorkerState) String() string {
	switch s {
	case WorkerStarting:
		return "starting"
	case WorkerRunning:
		return "running"
	case WorkerStopping:
		return "stopping"
	default:
		return "WorkerState(" + strconv.Itoa(int(s)) + ")"
	}
}

// ParseWorkerState returns the state String names, and false for any other
// text.
func ParseWorkerState(s string) (WorkerState, bool) {
	for st := WorkerStarting; st <= WorkerStopping; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// Heartbeat is a worker's heartbeat item as stored.
type Heartbeat struct {
	WorkerID string
	// Counter grows by 1 on every Beat. The leader judges a worker alive by
	// Counter changing on its own clock, never by a timestamp.
	Counter int64
	// State is the state the worker's last Beat wrote.
	State WorkerState
	// Leases is the number of leases the worker said it held at its last Beat.
	Leases int
	// AssignEpoch grows by 1 on every MarkAssigned: the worker re-reads its
	// leases when it changes. 0 until the first MarkAssigned.
	AssignEpoch int64
	// Standby is set by the leader with SetStandby. A standby worker polls
	// the leader lock every third of the lock's duration and reads the
	// leader's heartbeat, so that it takes over within one failover time of
	// a leader crash; the other workers poll the lock slowly, to save reads.
	// False until the first SetStandby.
	Standby bool
	// Fenced is the Counter value at which the leader fenced this worker
	// with Fence; 0 if never. A worker whose heartbeat incarnation began at
	// counter c0 (the first successful Beat of its process, or of its
	// heartbeater, returned Counter c0) is fenced when Fenced >= c0: it must
	// stop every shard and start a new incarnation. A later incarnation
	// begins at a higher Counter than any fence of an earlier one, so a
	// fence never needs lifting.
	Fenced int64
}

// LeaderLock is the leader lock item as stored.
type LeaderLock struct {
	// Owner is the leader's worker id; "" when the lock was released.
	Owner string
	// Epoch grows by 1 on every acquisition: the fencing token of one
	// leadership.
	Epoch int64
	// Version grows by 1 on every write of the lock (acquisition, renewal,
	// release): the lock is unchanged while Version is.
	Version int64
}

// Survey is what a lease table holds besides leases, as Surveyor reports it:
// the signs of which coordination the fleet on it runs.
type Survey struct {
	// Fleet is true when the table holds kcl-fleet items (a roster or a
	// heartbeat): kcl workers in kcl-fleet mode have run on it.
	Fleet bool
	// Java lists the Java KCL 3.x coordination items found, one short
	// description each (such as "WorkerMetricStats row of worker-1" or
	// "leader lock in table app-CoordinatorState"): a Java KCL 3.x fleet
	// has run on the table, and kcl must share it in KCL-compatible mode.
	Java []string
}

// Surveyor is implemented by stores that can tell what a lease table holds
// besides leases. A Worker whose coordination mode is automatic surveys the
// table once at start to choose its mode.
type Surveyor interface {
	Survey(ctx context.Context) (Survey, error)
}

// WorkerMetrics is one interval's report of a worker's load: what a Java KCL
// 3.x worker writes every 30 s as its WorkerMetricStats row. A KCL 3.x leader
// assigns leases only to workers whose row is less than a minute old, and
// its 2.x -> 3.x migration waits until every lease owner has one.
type WorkerMetrics struct {
	// WorkerID is the id under which the worker owns leases.
	WorkerID string
	// CPU is the worker's CPU utilization, in percent (0 to 100), averaged
	// over the interval since its previous report; negative when the
	// interval has no sample (a reading failed). Ignored when MaxCPU is 0.
	CPU float64
	// MaxCPU is the utilization, in percent (1 to 100), above which the
	// worker should be given no more leases: KCL's operating range, 100 by
	// default. 0 means the worker does not measure its CPU at all: the
	// report then carries no metric, as KCL's does on a platform it does not
	// recognise, and a KCL leader balances the worker by throughput.
	MaxCPU int64
}

// MetricsReporter is implemented by lease stores that can publish worker
// metrics where Java KCL 3.x workers keep theirs. A Coordinator in per-lease
// mode (the mode that shares a table with Java workers) reports through it
// every 30 s.
//
// ReportWorkerMetrics records one report; the store keeps the history a
// reader expects (KCL's last ten averages, as the DynamoDB store does). A
// store that finds no Java KCL 3.x fleet on its table writes nothing and
// returns nil. Invalid reports (an empty worker id, a CPU above 100 or NaN, a
// MaxCPU outside 0 to 100) write nothing and return an error matching no
// sentinel.
type MetricsReporter interface {
	ReportWorkerMetrics(ctx context.Context, m WorkerMetrics) error
}
