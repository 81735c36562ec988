package leasing

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/lease"
)

// A per-lease Coordinator whose store is a lease.KCL3Leadership is a full
// member of a Java KCL 3.x fleet: it contends for the fleet's leader lock as
// a Java worker does, and while it holds the lock it assigns leases to every
// worker, Java or kcl, as KCL 3.x's leader does (LeaseAssignmentManager).
// Java 3.x workers take no lease by themselves, so a lock held by a worker
// that does not assign would starve them: kcl takes the lock only when the
// fleet is one it may lead (lease.KCL3Lock.Eligible) and assigns every round
// it holds it.
//
// Timing. KCL 3.x's lock states a 120 s lease renewed every 30 s, and its
// workers look at the lock at most every 30 s, so a Java leader's crash
// leaves the fleet leaderless for two to three minutes. kcl does not wait on
// the leader for its own shards: in this mode every kcl worker keeps taking
// expired and unowned leases by the per-lease rules, so a dead worker's
// shards are picked up by kcl workers a lease duration after its last
// renewal, leader or not. What only a leader does — giving Java workers
// leases, balancing — waits for the lock. A kcl leader states a shorter
// lease on the lock (KCL3LockDuration, renewed every KCL3LockHeartbeat):
// a contender judges a lock by the lease its item states, so a crashed kcl
// leader is replaced by a kcl worker within KCL3LockDuration + KCL3LockPoll
// and by a Java worker within KCL3LockDuration + 30 s. The lock client
// requires a lease at least twice its heartbeat; this one is four.
//
// Balancing. The leader balances by lease count (PlanAssign, with graceful
// handoffs), not by KCL's CPU variance. While any worker holds the lock, kcl
// workers request no handoffs of their own, so a Java leader's balancing
// and kcl's never fight; they still take expired and unowned leases.
const (
	KCL3LockDuration  = 20 * time.Second
	KCL3LockHeartbeat = 5 * time.Second
	KCL3LockPoll      = 5 * time.Second
	// kcl3Rest is how often a worker re-reads a table where kcl may not
	// lead (no KCL 3.x fleet, or a migration under way).
	kcl3Rest = time.Minute
	// kcl3StaleRow is the age at which the leader deletes a worker's row,
	// as KCL's (staleWorkerMetricsEntryCleanupDuration).
	kcl3StaleRow = 24 * time.Hour
	// kcl3ActiveRow is the age under which a row counts its worker active:
	// two report intervals, as KCL's leader judges.
	kcl3ActiveRow = 2 * MetricsReportInterval
)

// kcl3Member is a Coordinator's part in a KCL 3.x fleet's leadership. Its
// loop (run) owns the lock; takePass asks it whether this worker leads.
type kcl3Member struct {
	st                   lease.KCL3Leadership
	self                 string
	log                  *zap.Logger
	duration, beat, poll time.Duration

	mu      sync.Mutex
	held    lease.KCL3Lock // the lock while leading
	until   time.Time      // leading until then, on the monotonic clock
	present bool           // the last read found a lock someone holds
	read    bool           // the lock was read at least once
	why     string         // why kcl may not lead, as last read ("" if it may)

	lastCleanup time.Time // the leader's last deletion of stale rows
	// suspects holds the workers seen owning an expired lease, with their
	// row's update time then: the leader gives them nothing until they
	// report again. KCL's leader keeps assigning to a crashed worker until
	// its row is a minute old, each assignment expiring in turn.
	suspects map[string]time.Time
}

func newKCL3Member(st lease.KCL3Leadership, self string, o *options, log *zap.Logger) *kcl3Member {
	return &kcl3Member{st: st, self: self, log: log, duration: o.kcl3Duration, beat: o.kcl3Beat, poll: o.kcl3Poll}
}

// leading reports whether this worker holds the lock at now.
func (m *kcl3Member) leading(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.until.IsZero() && now.Before(m.until)
}

// leaderPresent reports whether some worker holds, or last held and did not
// release, the lock: followers then leave balancing to it. Until the first
// read of the lock it reports true, so that a worker's first passes do not
// ask for leases a leader is balancing.
func (m *kcl3Member) leaderPresent() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.read || m.present || !m.until.IsZero()
}

// run contends for and holds the lock until ctx is done, then releases it
// under drain if held.
func (m *kcl3Member) run(ctx, drain context.Context) {
	var seenVersion string
	var seenAt time.Time
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			m.release(drain)
			return
		case <-time.After(wait):
		}
		if m.holds() {
			wait = m.renew(ctx)
			continue
		}
		l, err := m.st.KCL3Lock(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("read the KCL 3.x leader lock", zapErr(err))
			}
			wait = m.poll
			continue
		}
		m.mu.Lock()
		if l.Place != "" && l.Why != "" && l.Why != m.why {
			m.log.Info("KCL 3.x fleet: kcl does not take its leader lock", zap.String("why", l.Why), zap.String("lock", l.Place))
		}
		m.present, m.read = l.Found && !l.Released, true
		m.why = l.Why
		m.mu.Unlock()
		if !l.Eligible {
			wait = kcl3Rest
			continue
		}
		wait = m.poll
		if l.Found && !l.Released {
			if l.Version != seenVersion {
				seenVersion, seenAt = l.Version, now
				continue
			}
			if now.Sub(seenAt) <= l.Duration {
				continue
			}
			m.log.Info("the KCL 3.x leader lock stood still longer than its lease: taking it",
				zap.String("owner", l.Owner), zap.Duration("lease", l.Duration), zap.Duration("unchanged_for", now.Sub(seenAt)))
		}
		sent := time.Now()
		got, err := m.st.AcquireKCL3Lock(ctx, m.self, m.duration, l)
		if err != nil {
			if !errors.Is(err, lease.ErrConflict) && ctx.Err() == nil {
				m.log.Warn("acquire the KCL 3.x leader lock", zapErr(err))
			}
			seenVersion = ""
			continue
		}
		m.mu.Lock()
		m.held, m.until, m.present = got, m.deadline(sent), true
		m.mu.Unlock()
		m.log.Info("leading the KCL 3.x fleet", zap.String("lock", got.Place), zap.Duration("lease", got.Duration))
		wait = m.beat
	}
}

// deadline is how long a lock written at sent is held: its lease less a
// tenth for the rate difference of the holder's and contenders' clocks (a
// contender's wait starts after it first reads the write, so later than
// sent).
func (m *kcl3Member) deadline(sent time.Time) time.Time {
	return sent.Add(m.duration - m.duration/10)
}

// holds reports whether this worker holds the lock, its deadline passed or
// not: renew then renews it, or drops it on a failure past the deadline.
func (m *kcl3Member) holds() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held.Found
}

// renew renews the held lock and returns when to renew next. A failed
// condition, a fleet kcl may no longer lead, or a deadline passed without a
// successful renewal ends the leadership.
func (m *kcl3Member) renew(ctx context.Context) time.Duration {
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	sent := time.Now()
	got, err := m.st.RenewKCL3Lock(ctx, held)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		m.held, m.until = got, m.deadline(sent)
		return m.beat
	case errors.Is(err, lease.ErrConflict):
		m.log.Warn("lost the KCL 3.x leader lock", zapErr(err))
		m.held, m.until = lease.KCL3Lock{}, time.Time{}
		return m.poll
	case !time.Now().Before(m.until):
		m.log.Warn("could not renew the KCL 3.x leader lock within its lease: no longer leading", zapErr(err))
		m.held, m.until = lease.KCL3Lock{}, time.Time{}
		return m.poll
	default:
		if ctx.Err() == nil {
			m.log.Warn("renew the KCL 3.x leader lock; retrying", zapErr(err))
		}
		return min(m.beat, max(time.Until(m.until)/2, 100*time.Millisecond))
	}
}

// release gives up the lock if held, so that another worker leads at once.
func (m *kcl3Member) release(ctx context.Context) {
	m.mu.Lock()
	held := m.held
	m.held, m.until = lease.KCL3Lock{}, time.Time{}
	m.mu.Unlock()
	if !held.Found {
		return
	}
	if err := m.st.ReleaseKCL3Lock(ctx, held); err != nil {
		m.log.Warn("release the KCL 3.x leader lock", zapErr(err))
		return
	}
	m.log.Info("released the KCL 3.x leader lock")
}

// leadPass is the leader's taker pass: it assigns the table's leases over
// the fleet — the workers whose WorkerMetricStats rows are fresh, this one
// included — with PlanAssign, writing direct assignments for unowned and
// expired leases and graceful handoffs to balance, as KCL 3.x's leader does.
// Leases it gives itself are acquired at once.
func (c *Coordinator) leadPass(ctx, base context.Context, leases []lease.Lease, expired func(lease.Lease) bool, onAcquire func(*Held)) {
	m := c.k3
	rows, err := m.st.KCL3Workers(ctx)
	if err != nil && !errors.Is(err, lease.ErrMalformed) {
		c.log.Warn("read the fleet's WorkerMetricStats; no assignment this round", zapErr(err))
		return
	}
	if err != nil {
		c.log.Error("malformed WorkerMetricStats rows ignored", zapErr(err))
	}
	now := time.Now()
	if m.suspects == nil {
		m.suspects = make(map[string]time.Time)
	}
	updated := make(map[string]time.Time, len(rows))
	for _, w := range rows {
		updated[w.WorkerID] = w.Updated
	}
	for id := range m.suspects {
		if _, ok := updated[id]; !ok {
			delete(m.suspects, id) // its row is gone
		}
	}
	for _, l := range leases {
		if l.Owner != "" && l.Owner != c.self && !l.Finished() && expired(l) {
			m.suspects[l.Owner] = updated[l.Owner]
		}
	}
	fleet := map[string]lease.WorkerState{c.self: lease.WorkerRunning}
	var stale []lease.KCL3Worker
	for _, w := range rows {
		since, suspect := m.suspects[w.WorkerID]
		if suspect && w.Updated.After(since) {
			delete(m.suspects, w.WorkerID) // it reported again: alive
			suspect = false
		}
		switch age := now.Sub(w.Updated); {
		case age > kcl3StaleRow:
			stale = append(stale, w)
		case age < kcl3ActiveRow && w.Valid && !suspect:
			fleet[w.WorkerID] = lease.WorkerRunning
		}
	}
	// A lease needs an owner when it has none, when its counter stood still
	// for the lease duration, or when it names this worker but this process
	// does not hold it. Other owners keep their leases; those not in the
	// fleet (no fresh row: a worker still starting, or one that does not
	// report) are given nothing, as KCL's leader does.
	snapshot := make([]lease.Lease, 0, len(leases))
	seen := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		seen[l.Key] = l
		orphan := l.Owner != "" && (l.Owner == c.self && !c.holdsOrReceives(l.Key) || l.Owner != c.self && expired(l))
		if orphan {
			l.Owner, l.CheckpointOwner = "", ""
		}
		for _, id := range []string{l.Owner, l.CheckpointOwner} {
			if _, ok := fleet[id]; id != "" && !ok {
				fleet[id] = lease.WorkerStopping
			}
		}
		snapshot = append(snapshot, l)
	}
	workers := make([]FleetWorker, 0, len(fleet))
	for id, st := range fleet {
		workers = append(workers, FleetWorker{ID: id, Alive: true, State: st, MaxLeases: c.opts.maxLeases})
	}
	plan := PlanAssign(AssignInput{
		Leases:      snapshot,
		Workers:     workers,
		MaxHandoffs: max(1, len(leases)/10),
		Seed:        c.opts.rand.Uint64(),
	})
	for _, mv := range plan.Assign {
		l := seen[mv.Lease.Key]
		start := time.Now()
		nl, err := m.st.Assign(ctx, l, mv.To)
		if err != nil {
			c.log.Debug("assign failed", zapKey(l.Key), zap.String("to", mv.To), zapErr(err))
			continue
		}
		c.stats.leaderAssigned.Add(1)
		c.log.Info("lease assigned", zapKey(l.Key), zap.String("from", l.Owner), zap.String("to", mv.To))
		if mv.To == c.self {
			c.acquire(base, nl, start, nil, onAcquire)
		}
	}
	for _, mv := range plan.Handoff {
		l := seen[mv.Lease.Key]
		nl, err := c.store.Handoff(ctx, l, mv.To)
		if err != nil {
			c.log.Debug("handoff failed", zapKey(l.Key), zap.String("to", mv.To), zapErr(err))
			continue
		}
		c.stats.handoffsRequested.Add(1)
		c.log.Info("handoff requested", zapKey(l.Key), zap.String("from", l.Owner), zap.String("to", mv.To))
		if mv.To == c.self {
			c.mu.Lock()
			c.incoming[nl.Key] = &incoming{since: time.Now(), counter: nl.Counter}
			c.mu.Unlock()
		}
	}
	if len(stale) > 0 && now.Sub(m.lastCleanup) > time.Hour {
		m.lastCleanup = now
		for _, w := range stale {
			if err := m.st.DeleteKCL3Worker(ctx, w); err != nil {
				c.log.Debug("delete a stale WorkerMetricStats row", zap.String("worker", w.WorkerID), zapErr(err))
			}
		}
	}
}
