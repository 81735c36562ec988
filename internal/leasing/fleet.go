package leasing

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/lease"
)

// This file is the Coordinator's kcl-fleet mode (DESIGN.md, "Fleet-scale
// coordination"): a worker proves it is alive with its heartbeat (a
// Heartbeater) instead of renewing each lease, learns its assignments from
// the owner index when its heartbeat's assign epoch changes, and, while it
// holds the leader lock (a LeaderElector), assigns the leases of the whole
// fleet (lead).

// Defaults of kcl-fleet mode.
const (
	// DefaultLeaderScanInterval is how often the leader reads the whole
	// lease table when nothing it watches changed.
	DefaultLeaderScanInterval = 30 * time.Second
	// DefaultSlowLockPoll is how often a worker that is not one of the
	// leader's standbys reads the leader lock: it takes over a dead leader's
	// lock only if every standby is dead too.
	DefaultSlowLockPoll = 20 * time.Second
)

// fleetStandbys is how many workers the leader designates to poll the lock
// every third of the failover time.
const fleetStandbys = 2

// ownedRechecks are the delays, after the assign epoch changed, at which a
// worker reads the owner index: at once, and twice more because a global
// secondary index lags its table (usually by well under a second).
var ownedRechecks = [...]time.Duration{0, time.Second, 4 * time.Second}

// fleet is the state of kcl-fleet mode; nil in per-lease mode.
type fleet struct {
	fs      lease.FleetStore
	ol      lease.OwnerLister
	hb      atomic.Pointer[Heartbeater]   // the current heartbeater; replaced after it expires
	elector atomic.Pointer[LeaderElector] // set when Run starts
	// assigned is signalled when the assign epoch changed.
	assigned chan struct{}
	state    atomic.Uint32 // the lease.WorkerState every new heartbeater starts with
	standby  atomic.Bool   // the leader made this worker a standby
	leaders  sync.WaitGroup

	// mu guards the fields below.
	mu sync.Mutex
	// lockOwner is the leader lock's owner as this worker last read it, and
	// leaderBeat that owner's heartbeat as a standby read it: a standby that
	// takes over the lock starts leading with an observation of the old
	// leader's heartbeat that is already as old as its own reads.
	lockOwner   string
	leaderBeat  seenBeat
	leadCancel  context.CancelFunc
	leadEpoch   int64
	lastOwned   map[string]bool // keys the last owner-index read listed
	handoffWarn map[string]bool // incoming handoffs already warned about
}

// seenBeat is a worker's heartbeat as one process observed it: the counter,
// and when (on this process's monotonic clock) it first read that counter.
type seenBeat struct {
	id      string
	counter int64
	since   time.Time
	have    bool // a heartbeat was read (else since is when the roster first listed the worker)
	state   lease.WorkerState
	leases  int
	dead    bool // the leader logged this worker's death
	standby bool
	epoch   int64
	// first is when this process first saw the worker; advanced is true once
	// it has seen the worker's counter change: only then is the worker known
	// to be alive rather than not yet judged (a crashed worker's last
	// heartbeat still says running until the failover time passes).
	first    time.Time
	haveAt   time.Time // when its first heartbeat was read
	fencedAt int64     // the counter this leader fenced it at (FleetStore.Fence); 0 if none
	advanced bool
}

func (s *seenBeat) deadNoted() bool { return s.dead }
func (s *seenBeat) markDead(d bool) { s.dead = d }

func newFleet(store lease.Store, o *options) (*fleet, error) {
	fs, ok := store.(lease.FleetStore)
	if !ok {
		return nil, &OptionError{Option: "WithFleet", Reason: "the lease store does not implement lease.FleetStore"}
	}
	ol, ok := store.(lease.OwnerLister)
	if !ok {
		return nil, &OptionError{Option: "WithFleet", Reason: "the lease store does not implement lease.OwnerLister"}
	}
	f := &fleet{fs: fs, ol: ol, assigned: make(chan struct{}, 1), lastOwned: map[string]bool{}, handoffWarn: map[string]bool{}}
	f.state.Store(uint32(lease.WorkerStarting))
	return f, nil
}

// liveness returns the current heartbeater in kcl-fleet mode, nil otherwise.
func (c *Coordinator) liveness() *Heartbeater {
	if c.fl == nil {
		return nil
	}
	return c.fl.hb.Load()
}

// Leading reports whether this worker leads its kcl fleet now (always false
// in per-lease mode). The Worker runs periodic shard syncs only while it
// does.
func (c *Coordinator) Leading() bool {
	el := c.fleetElector()
	if el == nil {
		return false
	}
	_, ok := el.Leader()
	return ok
}

func (c *Coordinator) fleetElector() *LeaderElector {
	if c.fl == nil {
		return nil
	}
	return c.fl.elector.Load()
}

// Fleet reports whether the coordinator runs in kcl-fleet mode.
func (c *Coordinator) Fleet() bool { return c.fl != nil }

func (c *Coordinator) heldCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// runFleet is Run in kcl-fleet mode.
func (c *Coordinator) runFleet(ctx, drain context.Context, onAcquire func(*Held)) error {
	f := c.fl
	el, err := NewLeaderElector(f.fs, c.self,
		WithLockDuration(c.opts.failover),
		WithLeaderPollInterval(c.opts.slowLockPoll),
		WithLeaderCallbacks(func(epoch int64) { c.gainLead(drain, epoch) }, func(epoch int64, _ error) { c.loseLead(epoch) }),
		WithLeaderObserver(c.observeLock),
		WithLeaderLogger(c.log))
	if err != nil {
		return err
	}
	f.elector.Store(el)

	hbCtx, stopHB := context.WithCancel(drain)
	defer stopHB()
	var g sync.WaitGroup
	g.Go(func() { c.livenessLoop(hbCtx, drain) })
	g.Go(func() { _ = el.Run(ctx, drain) }) // Run returns no error
	g.Go(func() { c.standbyLoop(ctx) })

	c.followLoop(ctx, drain, onAcquire)

	c.stop(drain)
	lctx, cancel := context.WithTimeout(drain, c.opts.failover)
	if err := f.fs.Leave(lctx, c.self); err != nil {
		c.log.Warn("leaving the roster failed; the leader removes this worker once its heartbeat stops", zapErr(err))
	}
	cancel()
	stopHB()
	g.Wait()
	f.leaders.Wait()
	return nil
}

// livenessLoop joins the roster and runs the heartbeat until ctx ends. When
// the worker's deadline passes (no heartbeat succeeded for F − m), every
// lease it held is gone (their contexts end with the heartbeater's); it then
// joins again (the leader may have removed it) with a new heartbeater.
func (c *Coordinator) livenessLoop(ctx, drain context.Context) {
	f := c.fl
	for ctx.Err() == nil {
		if err := f.fs.Join(ctx, c.self); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("joining the roster failed", zapErr(err))
				sleepCtx(ctx, c.opts.heartbeat)
			}
			continue
		}
		hb, err := NewHeartbeater(drain, f.fs, c.self,
			WithFailoverTime(c.opts.failover),
			WithHeartbeatInterval(c.opts.heartbeat),
			WithLeaseCount(c.heldCount),
			WithAssignEpochChange(func(int64) {
				select {
				case f.assigned <- struct{}{}:
				default:
				}
			}),
			WithStandbyChange(c.setStandby),
			WithHeartbeatLogger(c.log))
		if err != nil {
			c.log.Error("heartbeater", zapErr(err)) // options were validated by NewCoordinator
			return
		}
		hb.SetState(lease.WorkerState(f.state.Load()))
		f.hb.Store(hb)
		err = hb.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Error("heartbeat deadline passed: every lease dropped; joining again", zapErr(err))
	}
}

// TableChanged tells the leader of a kcl fleet that this worker created or
// released leases that need an owner, so that it reads the table in its next
// round rather than at its next periodic scan: the worker adds 1 to its own
// assign epoch, which the leader sees in the heartbeats it reads every round.
// In per-lease mode it does nothing (the taker passes find such leases).
func (c *Coordinator) TableChanged(ctx context.Context) {
	if c.fl == nil || c.alive() == nil {
		return
	}
	if err := c.fl.fs.MarkAssigned(ctx, c.self); err != nil && ctx.Err() == nil {
		c.log.Debug("telling the leader of a table change failed; it sees it at its next periodic scan", zapErr(err))
	}
}

// setState records the worker's state for the current and later
// heartbeaters.
func (c *Coordinator) setState(s lease.WorkerState) {
	c.fl.state.Store(uint32(s))
	if hb := c.liveness(); hb != nil {
		hb.SetState(s)
	}
}

// alive returns the current heartbeater if it has had a successful
// heartbeat and its deadline has not passed.
func (c *Coordinator) alive() *Heartbeater {
	hb := c.liveness()
	if hb == nil || hb.Context().Err() != nil {
		return nil
	}
	select {
	case <-hb.Ready():
		return hb
	default:
		return nil
	}
}

// followLoop reads the owner index when the assign epoch changes (and again
// twice shortly after, for the index's lag) and every leader-scan interval,
// and watches incoming handoffs every assignment poll interval, until ctx is
// done.
func (c *Coordinator) followLoop(ctx, base context.Context, onAcquire func(*Held)) {
	f := c.fl
	var due []time.Time
	schedule := func(now time.Time, delays ...time.Duration) {
		for _, d := range delays {
			due = append(due, now.Add(d))
		}
		slices.SortFunc(due, func(a, b time.Time) int { return a.Compare(b) })
	}
	periodic := time.NewTicker(c.opts.leaderScan)
	defer periodic.Stop()
	timer := time.NewTimer(c.opts.pollInterval)
	defer timer.Stop()
	running := false
	var swept *Heartbeater // the incarnation whose own handoffs were completed
	var joinChecks []time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.assigned:
			schedule(time.Now(), ownedRechecks[:]...)
		case <-periodic.C:
			c.ensureJoined(ctx)
			schedule(time.Now(), 0)
		case <-timer.C:
		}
		if !running && c.alive() != nil {
			running = true
			c.setState(lease.WorkerRunning)
		}
		if hb := c.alive(); hb != nil && hb != swept && c.completeOwnHandoffs(ctx) {
			swept = hb
			// A leader that fenced the last incarnation may remove this
			// worker from the roster just after it joined again: look
			// twice in the next seconds (and every leader-scan interval).
			now := time.Now()
			joinChecks = append(joinChecks, now.Add(c.opts.failover), now.Add(3*c.opts.failover))
		}
		if len(joinChecks) > 0 && !joinChecks[0].After(time.Now()) {
			joinChecks = joinChecks[1:]
			c.ensureJoined(ctx)
		}
		now := time.Now()
		if len(due) > 0 && !due[0].After(now) {
			for len(due) > 0 && !due[0].After(now) {
				due = due[1:]
			}
			c.readOwned(ctx, base, onAcquire)
		} else {
			c.pollIncoming(ctx, base, onAcquire)
		}
		next := c.opts.pollInterval
		if len(due) > 0 {
			next = min(next, time.Until(due[0]))
		}
		if len(joinChecks) > 0 {
			next = min(next, time.Until(joinChecks[0]))
		}
		timer.Reset(max(next, time.Millisecond))
	}
}

// readOwned reads the keys this worker owns from the owner index and
// reconciles them with what it holds: new assignments are acquired (or
// waited for, during a handoff to us), held leases no longer listed are
// re-read (a handoff was asked of us, or the lease is lost), and a handoff
// asked of a lease assigned to us that we never picked up is completed.
func (c *Coordinator) readOwned(ctx, base context.Context, onAcquire func(*Held)) {
	f := c.fl
	if c.alive() == nil {
		return
	}
	keys, err := f.ol.ListOwned(ctx, c.self)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("reading the owner index failed", zapErr(err))
		}
		return
	}
	owned := make(map[string]bool, len(keys))
	for _, k := range keys {
		owned[k] = true
	}

	c.mu.Lock()
	var gone []*Held
	for k, h := range c.held {
		if !owned[k] {
			gone = append(gone, h)
		}
	}
	c.mu.Unlock()
	for _, h := range gone {
		cur, err := c.store.Get(ctx, h.key)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			h.observe(lease.Lease{Key: h.key})
		case err == nil:
			h.observe(cur)
		}
	}

	for _, k := range keys {
		if c.holdsOrReceives(k) {
			continue
		}
		cur, err := c.store.Get(ctx, k)
		if err != nil {
			continue
		}
		c.offered(ctx, base, cur, onAcquire)
	}

	f.mu.Lock()
	last := f.lastOwned
	f.lastOwned = owned
	f.mu.Unlock()
	for k := range last {
		if owned[k] || c.processing(k) {
			continue
		}
		if cur, err := c.store.Get(ctx, k); err == nil {
			c.completeStrandedHandoffs(ctx, []lease.Lease{cur})
		}
	}
}

// offered acts on a lease a read found owned by this worker: acquires it, or
// waits for its outgoing owner's final checkpoint. In kcl-fleet mode a read
// is proof enough: the lease lives as long as the worker's heartbeat, and
// only the leader moves leases between live workers, by handoffs that the
// holder completes.
func (c *Coordinator) offered(ctx, base context.Context, cur lease.Lease, onAcquire func(*Held)) {
	switch {
	case cur.Owner != c.self || cur.Finished():
		c.dropIncoming(cur.Key)
	case cur.InHandoff():
		c.mu.Lock()
		if c.incoming[cur.Key] == nil {
			c.incoming[cur.Key] = &incoming{since: time.Now(), counter: cur.Counter}
		}
		c.mu.Unlock()
	default:
		if c.alive() == nil || c.isStopping() {
			return
		}
		// The lease lives as long as the worker's heartbeat, but it is
		// acquired with a write that bumps its counter: a leader that judged
		// this worker dead from reads made before the worker's heartbeat
		// resumed may have an assignment of the lease in flight, conditioned
		// on the counter it read. One of the two writes fails.
		c.acquireRead(ctx, base, cur, onAcquire)
	}
}

func (c *Coordinator) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// pollIncoming re-reads the leases handed to us whose outgoing owner has not
// written its final checkpoint yet. There are no forced takes in kcl-fleet
// mode: the holder is alive (else the leader would have reassigned the
// lease), so it is warned about once the handoff timeout passed.
func (c *Coordinator) pollIncoming(ctx, base context.Context, onAcquire func(*Held)) {
	c.retryUnfinished(ctx)
	c.mu.Lock()
	waiting := make(map[string]incoming, len(c.incoming))
	for k, in := range c.incoming {
		waiting[k] = *in
	}
	c.mu.Unlock()
	for key, in := range waiting {
		cur, err := c.store.Get(ctx, key)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			c.dropIncoming(key)
			continue
		case err != nil:
			continue
		}
		c.offered(ctx, base, cur, onAcquire)
		if cur.Owner == c.self && cur.InHandoff() && time.Since(in.since) >= c.opts.handoffTimeout {
			c.fl.mu.Lock()
			warned := c.fl.handoffWarn[key]
			c.fl.handoffWarn[key] = true
			c.fl.mu.Unlock()
			if !warned {
				c.log.Warn("handoff not completed within the handoff timeout; its holder is alive and still processing",
					zapKey(key), zap.String("from", cur.CheckpointOwner))
			}
		}
	}
}

// retryUnfinished writes again the final checkpoints of handoffs that
// failed after the lease's user was done.
func (c *Coordinator) retryUnfinished(ctx context.Context) {
	c.mu.Lock()
	keys := slices.Collect(maps.Keys(c.unfinished))
	c.mu.Unlock()
	for _, k := range keys {
		cur, err := c.store.Get(ctx, k)
		if err != nil && !errors.Is(err, lease.ErrNotFound) {
			continue
		}
		if err == nil && cur.CheckpointOwner == c.self && cur.Owner != c.self {
			if _, err := c.store.Checkpoint(ctx, cur, keepCheckpoint(cur)); err != nil && !errors.Is(err, lease.ErrConflict) {
				continue
			}
			c.log.Info("handoff completed after a failed final checkpoint", zapKey(k), zap.String("to", cur.Owner))
		}
		c.mu.Lock()
		delete(c.unfinished, k)
		c.mu.Unlock()
	}
}

// completeOwnHandoffs completes, once per heartbeat incarnation, the
// handoffs asked of this worker id for leases this incarnation does not
// hold: a worker restarted under the same id (or whose heartbeat resumed
// after its deadline) is alive to the leader, which waits for it to hand
// them over, but no longer knows them. It reads the table once.
func (c *Coordinator) completeOwnHandoffs(ctx context.Context) bool {
	leases, err := c.store.List(ctx)
	var me *lease.MalformedError
	if err != nil && !errors.As(err, &me) {
		return false
	}
	c.completeStrandedHandoffs(ctx, leases)
	return true
}

// ensureJoined joins the roster again if this worker is not in it: the
// leader may have removed it (fenced, after its deadline) just after the
// worker had joined again.
func (c *Coordinator) ensureJoined(ctx context.Context) {
	ids, err := c.fl.fs.Roster(ctx)
	if err != nil || slices.Contains(ids, c.self) {
		return
	}
	if err := c.fl.fs.Join(ctx, c.self); err == nil {
		c.log.Warn("this worker was missing from the roster; joined again")
	}
}

// observe adopts what a read of a held lease found (kcl-fleet mode, where
// leases are not renewed): a handoff asked of us, or a loss.
func (h *Held) observe(cur lease.Lease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.state == stateGone:
	case cur.Owner == h.c.self:
		// Still ours; the owner index lagged.
	case cur.CheckpointOwner == h.c.self && cur.Owner != "":
		h.lease = cur
		if h.state != stateHandingOff {
			h.state = stateHandingOff
			h.cancel(ErrHandoffRequested)
			h.c.log.Info("handoff requested", zapKey(h.key), zap.String("to", cur.Owner))
		}
	default:
		h.loseLocked(lease.ErrLeaseLost)
		h.c.stats.lost.Add(1)
		h.c.log.Warn("lease lost", zapKey(h.key), zap.String("owner", cur.Owner))
	}
}

// fleetPeers reads the fleet before a graceful stop hands leases over: the
// live peers that are starting or running, with the lease counts their
// heartbeats announce. A worker that stops at the same time wrote its
// stopping state before it read ours (Flush), so of two workers stopping
// together at least one sees the other stopping and gives it nothing.
func (c *Coordinator) fleetPeers(drain context.Context) map[string]int {
	ctx, cancel := context.WithTimeout(drain, c.opts.failover)
	defer cancel()
	if hb := c.liveness(); hb != nil {
		if err := hb.Flush(ctx); err != nil {
			c.log.Warn("writing the stopping state failed; handing leases to no peer", zapErr(err))
			return nil
		}
	}
	peers, err := c.runningPeers(ctx)
	if err != nil {
		c.log.Warn("reading the fleet before stop failed; handing leases to no peer", zapErr(err))
		return nil
	}
	return peers
}

// runningPeers reads the roster and the heartbeats and returns the other
// workers whose heartbeat says starting or running, with the lease counts
// they announce.
func (c *Coordinator) runningPeers(ctx context.Context) (map[string]int, error) {
	ids, err := c.fl.fs.Roster(ctx)
	if err != nil {
		return nil, err
	}
	hbs, err := c.fl.fs.Heartbeats(ctx, ids)
	if err != nil {
		return nil, err
	}
	peers := make(map[string]int, len(hbs))
	for _, hb := range hbs {
		if hb.WorkerID != c.self && (hb.State == lease.WorkerRunning || hb.State == lease.WorkerStarting) {
			peers[hb.WorkerID] = hb.Leases
		}
	}
	return peers, nil
}

// passOn gives a lease assigned to this stopping worker to the least-loaded
// peer that a fresh read shows running (a peer that began stopping at the
// same time as this worker has written its state by now), or releases it
// for the leader when there is none.
func (c *Coordinator) passOn(ctx context.Context, l lease.Lease) {
	if peers, err := c.runningPeers(ctx); err == nil && len(peers) > 0 {
		c.mu.Lock()
		c.peers = peers
		peer := c.leastLoadedPeerLocked()
		c.mu.Unlock()
		if err := c.giveToPeer(ctx, l, peer); err == nil {
			c.stats.assigned.Add(1)
			c.log.Info("lease assigned while stopping passed on", zapKey(l.Key), zap.String("peer", peer))
			return
		}
	}
	if _, err := c.store.Release(ctx, l); err == nil {
		c.stats.released.Add(1)
		c.log.Info("lease assigned while stopping released", zapKey(l.Key))
		c.TableChanged(ctx) // the leader assigns it in its next round
	}
}

// giveToPeer assigns l to peer during a graceful stop (kcl-fleet mode) and
// tells the peer through its assign epoch.
func (c *Coordinator) giveToPeer(ctx context.Context, l lease.Lease, peer string) error {
	if _, err := c.fl.fs.Assign(ctx, l, peer); err != nil {
		return err
	}
	if err := c.fl.fs.MarkAssigned(ctx, peer); err != nil {
		c.log.Warn("telling the peer of its new lease failed; it finds it at its next owner-index read", zapKey(l.Key), zap.String("peer", peer), zapErr(err))
	}
	return nil
}

// observeLock is the elector's observer: it records the lock's owner, which
// a standby reads the heartbeat of.
func (c *Coordinator) observeLock(l lease.LeaderLock) {
	f := c.fl
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Owner != f.lockOwner {
		f.lockOwner = l.Owner
		f.leaderBeat = seenBeat{}
	}
}

// standbyLoop, while this worker is one of the leader's standbys and does
// not lead, reads the leader's heartbeat every third of the failover time,
// so that if it takes the lock over it already knows for how long the old
// leader's heartbeat stood still.
func (c *Coordinator) standbyLoop(ctx context.Context) {
	f := c.fl
	t := time.NewTicker(c.opts.failover / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.Leading() {
			continue
		}
		f.mu.Lock()
		owner := f.lockOwner
		f.mu.Unlock()
		if owner == "" || owner == c.self || !c.isStandby() {
			continue
		}
		hbs, err := f.fs.Heartbeats(ctx, []string{owner})
		if err != nil || len(hbs) == 0 {
			continue
		}
		now := time.Now()
		f.mu.Lock()
		if f.lockOwner == owner {
			f.leaderBeat.note(now, hbs[0])
			f.leaderBeat.id = owner
		}
		f.mu.Unlock()
	}
}

// isStandby reports whether the leader made this worker a standby.
func (c *Coordinator) isStandby() bool { return c.fl.standby.Load() }

// setStandby follows the Standby flag of this worker's heartbeat: a standby
// reads the leader lock every third of the failover time, any other worker
// every slow lock poll.
func (c *Coordinator) setStandby(on bool) {
	f := c.fl
	el := f.elector.Load()
	if f.standby.Swap(on) == on || el == nil {
		return
	}
	poll := c.opts.slowLockPoll
	if on {
		poll = c.opts.failover / 3
		c.log.Info("standby for the leader")
	}
	el.SetPollInterval(poll)
}

// note records a heartbeat read at now: the counter's first read starts
// its clock.
func (s *seenBeat) note(now time.Time, hb lease.Heartbeat) (changed bool) {
	// A new state or lease count, or an assign epoch the worker moved
	// itself (TableChanged) or the leader moved: the table may hold leases
	// that need an owner.
	changed = !s.have || hb.State != s.state || hb.Leases != s.leases || hb.AssignEpoch != s.epoch
	if !s.have || hb.Counter != s.counter {
		if s.have {
			s.advanced = true
		} else {
			s.haveAt = now
		}
		s.counter, s.since, s.have = hb.Counter, now, true
	}
	s.state, s.leases, s.standby, s.epoch = hb.State, hb.Leases, hb.Standby, hb.AssignEpoch
	return changed
}

// gainLead starts the leader's loop for a leadership of epoch (the
// elector's gained callback: it must not block).
func (c *Coordinator) gainLead(base context.Context, epoch int64) {
	f := c.fl
	ctx, cancel := context.WithCancel(base)
	f.mu.Lock()
	f.leadCancel, f.leadEpoch = cancel, epoch
	prior := f.leaderBeat
	f.mu.Unlock()
	c.stats.leaderships.Add(1)
	f.leaders.Go(func() { c.lead(ctx, epoch, prior) })
}

// loseLead stops the leader's loop of epoch (the elector's lost callback).
func (c *Coordinator) loseLead(epoch int64) {
	f := c.fl
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leadEpoch == epoch && f.leadCancel != nil {
		f.leadCancel()
		f.leadCancel = nil
	}
}

// leaderView is what the leader knows of the fleet between rounds.
type leaderView struct {
	// nextDeath is the earliest instant after the last round at which a
	// worker counted alive would be declared dead if it never beats again:
	// the leader runs a round then rather than at its next tick, which
	// would add up to a round to a crashed worker's failover.
	nextDeath time.Time
	seen      map[string]*seenBeat // roster members
	joinedAt  time.Time            // when the roster last grew (the first round counts)
	waiting   time.Time            // since when a plan waits for joins to settle
	lastScan  time.Time
	dirty     bool // a write of the last round failed or was held back: scan again
	// foreign tracks the leases owned by workers outside the roster (a
	// per-lease worker: Java KCL, or kcl in KCL-compatible mode; or a kcl
	// fleet worker pruned after its death): such an owner is alive while
	// one of its leases' counters moved within the lease duration.
	foreign       map[string]foreignLease
	foreignWarned map[string]bool
}

type foreignLease struct {
	owner   string
	counter int64
	since   time.Time
}

// lead runs the leader's rounds every heartbeat interval until ctx ends:
// read the roster and the heartbeats; when a worker joined, left, died or
// changed state (and every leader-scan interval) read the table and assign.
func (c *Coordinator) lead(ctx context.Context, epoch int64, prior seenBeat) {
	v := &leaderView{seen: map[string]*seenBeat{}, dirty: true, foreign: map[string]foreignLease{}, foreignWarned: map[string]bool{}}
	if prior.have && prior.id != "" {
		// The standby's reads of the old leader's heartbeat count: they were
		// made on this process's clock.
		p := prior
		v.seen[p.id] = &p
	}
	t := time.NewTicker(c.opts.round)
	defer t.Stop()
	for {
		v.nextDeath = time.Time{}
		c.leadRound(ctx, epoch, v)
		var early *time.Timer
		if d := time.Until(v.nextDeath); !v.nextDeath.IsZero() && d < c.opts.round {
			// A worker's failover time ends before the next tick: judge
			// it then (the round's read is sent at or after that instant).
			early = time.NewTimer(max(d, 0) + time.Millisecond)
		} else {
			early = time.NewTimer(time.Hour)
		}
		select {
		case <-ctx.Done():
			early.Stop()
			return
		case <-t.C:
		case <-early.C:
		}
		early.Stop()
	}
}

// stillLeads reports whether the leadership of epoch is still on.
func (c *Coordinator) stillLeads(ctx context.Context, epoch int64) bool {
	el := c.fleetElector()
	if el == nil {
		return false
	}
	e, ok := el.Leader()
	return ok && e == epoch && ctx.Err() == nil
}

// leadRound is one round of the leader.
func (c *Coordinator) leadRound(ctx context.Context, epoch int64, v *leaderView) {
	f := c.fl
	c.stats.leaderRounds.Add(1)
	roster, err := f.fs.Roster(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("leader: reading the roster failed", zapErr(err))
		}
		return
	}
	// Liveness is judged as of the read's send time: a read that returns
	// late shows the heartbeats as they were at some instant after it was
	// sent, not as they are when it returns.
	asOf := time.Now()
	hbs, err := f.fs.Heartbeats(ctx, roster)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("leader: reading heartbeats failed", zapErr(err))
		}
		return
	}
	now := time.Now()
	changed := false
	inRoster := make(map[string]bool, len(roster))
	for _, id := range roster {
		inRoster[id] = true
		if v.seen[id] == nil {
			v.seen[id] = &seenBeat{id: id, since: now, first: now}
			changed = true
			v.joinedAt = now
		}
	}
	for id := range v.seen {
		if !inRoster[id] {
			delete(v.seen, id)
			changed = true
		}
	}
	for _, hb := range hbs {
		if s := v.seen[hb.WorkerID]; s != nil && s.note(now, hb) {
			changed = true
		}
	}
	workers := make([]FleetWorker, 0, len(v.seen))
	unjudged := false // a worker seen too briefly to know whether it beats
	for _, s := range v.seen {
		alive := asOf.Sub(s.since) < c.opts.failover
		state := s.state
		if !s.have {
			state = lease.WorkerStarting
		}
		if !s.advanced && s.id != c.self {
			// Not seen beating yet: it keeps what it owns until it is
			// declared dead, but is given nothing — it may have crashed
			// with a last heartbeat saying running.
			state = lease.WorkerStopping
			// A live worker's next beat lands within a heartbeat interval
			// of the one read first; three rounds leave room for rounds
			// and beats that happen at the same instant.
			if alive && (!s.have || now.Sub(s.haveAt) < 3*c.opts.heartbeat) {
				unjudged = true
			}
		}
		if alive && s.deadNoted() {
			changed = true // back from the dead: give it its share again
		}
		if !alive && !s.deadNoted() {
			changed = true
			c.log.Warn("leader: worker dead (heartbeat unchanged for the failover time)", zap.String("worker", s.id))
		}
		s.markDead(!alive)
		if at := s.since.Add(c.opts.failover); alive && s.id != c.self && (v.nextDeath.IsZero() || at.Before(v.nextDeath)) {
			v.nextDeath = at
		}
		workers = append(workers, FleetWorker{ID: s.id, Alive: alive, State: state, MaxLeases: c.opts.maxLeases})
	}

	c.chooseStandbys(ctx, epoch, v, now)
	scanEvery := c.opts.leaderScan
	if len(v.foreign) > 0 {
		scanEvery = min(scanEvery, c.opts.leaseDuration/4)
	}
	if !changed && !v.dirty && now.Sub(v.lastScan) < scanEvery {
		return
	}
	// Workers are joining, or were seen too briefly to tell whether they
	// beat (a new leader's first round): the round's moves wait until a
	// round passes without a join and every worker had the time to show a
	// new counter (at most a failover time), so that workers starting
	// together get their fair split in one round instead of a split and then
	// handoffs, and a new leader does not give the dead leader's leases all
	// to itself, the one worker it knows to be alive.
	settling := false
	if v.joinedAt == now || unjudged {
		if v.waiting.IsZero() {
			v.waiting = now
		}
		settling = now.Sub(v.waiting) < c.opts.failover
	} else {
		v.waiting = time.Time{}
	}
	leases, err := c.store.List(ctx)
	if err != nil {
		var me *lease.MalformedError
		if !errors.As(err, &me) {
			if ctx.Err() == nil {
				c.log.Warn("leader: reading the lease table failed", zapErr(err))
			}
			v.dirty = true
			return
		}
		c.log.Error("malformed lease items ignored", zapErr(err))
	}
	c.stats.passes.Add(1)
	v.lastScan, v.dirty = now, false
	workers = append(workers, c.foreignOwners(v, leases, now)...)
	plan := PlanAssign(AssignInput{Leases: leases, Workers: workers, Seed: c.opts.rand.Uint64()})

	if held := settledHolders(leases, v); len(plan.Handoff) > 0 {
		// A handoff is asked only of a worker whose last heartbeat counted
		// as many held leases as the table gives it: a worker that has not
		// picked up a lease assigned to it yet would never see a handoff
		// asked of that lease (it is no longer listed under its name), and
		// the lease would wait for it forever.
		n := len(plan.Handoff)
		plan.Handoff = slices.DeleteFunc(plan.Handoff, func(m Move) bool { return !held[m.From] })
		if len(plan.Handoff) < n {
			v.dirty = true
		}
	}
	plan.Assign = append(plan.Assign, handoffsToTheDead(leases, workers)...)
	if settling {
		v.dirty = true
		plan.Assign, plan.Handoff = nil, nil
	}
	plan.Assign = c.fenceDead(ctx, epoch, v, plan.Assign)
	marks := map[string]bool{}
	for _, m := range plan.Assign {
		if !c.stillLeads(ctx, epoch) {
			return
		}
		if _, err := f.fs.Assign(ctx, m.Lease, m.To); err != nil {
			c.log.Debug("leader: assignment failed", zapKey(m.Lease.Key), zapErr(err))
			v.dirty = true
			continue
		}
		c.stats.leaderAssigned.Add(1)
		marks[m.To] = true
		if m.From != "" {
			c.log.Info("leader: lease reassigned", zapKey(m.Lease.Key), zap.String("from", m.From), zap.String("to", m.To))
		}
	}
	for _, m := range plan.Handoff {
		if !c.stillLeads(ctx, epoch) {
			return
		}
		if _, err := c.store.Handoff(ctx, m.Lease, m.To); err != nil {
			c.log.Debug("leader: handoff request failed", zapKey(m.Lease.Key), zapErr(err))
			v.dirty = true
			continue
		}
		c.stats.handoffsRequested.Add(1)
		marks[m.To], marks[m.From] = true, true
	}
	if plan.Deferred > 0 {
		v.dirty = true
	}
	for id := range marks {
		if err := f.fs.MarkAssigned(ctx, id); err != nil && ctx.Err() == nil {
			c.log.Debug("leader: marking an assignment failed", zap.String("worker", id), zapErr(err))
		}
	}
	if marks[c.self] {
		// The leader's own follow loop reads its new leases now, not at its
		// next heartbeat (up to H later).
		select {
		case f.assigned <- struct{}{}:
		default:
		}
	}
	c.pruneRoster(ctx, epoch, v, leases, now)
}

// chooseStandbys keeps fleetStandbys live, starting or running workers
// other than the leader flagged as standbys: the current ones first, then
// by id. Flags are read from the heartbeats, so a failed write is retried
// next round.
func (c *Coordinator) chooseStandbys(ctx context.Context, epoch int64, v *leaderView, now time.Time) {
	var cands []*seenBeat
	for _, s := range v.seen {
		ok := s.have && s.id != c.self && now.Sub(s.since) < c.opts.failover &&
			(s.state == lease.WorkerRunning || s.state == lease.WorkerStarting)
		if ok {
			cands = append(cands, s)
		} else if s.standby && s.have && s.id != c.self && now.Sub(s.since) < c.opts.failover {
			c.writeStandby(ctx, epoch, s, false) // stopping
		}
	}
	slices.SortFunc(cands, func(a, b *seenBeat) int {
		if a.standby != b.standby {
			return boolCmp(b.standby, a.standby)
		}
		return cmp.Compare(a.id, b.id)
	})
	for i, s := range cands {
		if want := i < fleetStandbys; s.standby != want {
			c.writeStandby(ctx, epoch, s, want)
		}
	}
}

func (c *Coordinator) writeStandby(ctx context.Context, epoch int64, s *seenBeat, on bool) {
	if !c.stillLeads(ctx, epoch) {
		return
	}
	if err := c.fl.fs.SetStandby(ctx, s.id, on); err != nil {
		c.log.Debug("leader: setting a standby failed", zap.String("worker", s.id), zapErr(err))
		return
	}
	s.standby = on
}

// foreignOwners updates the leader's observation of leases owned by workers
// outside the roster and returns those owners as PlanAssign should see
// them: alive while one of their leases' counters moved within the lease
// duration on the leader's clock (the per-lease rule, as an observer in
// KCL-compatible mode judges expiry), and then never given a lease
// (announced as stopping); dead after that, so their leases are reassigned.
func (c *Coordinator) foreignOwners(v *leaderView, leases []lease.Lease, now time.Time) []FleetWorker {
	owned := map[string]bool{}
	lastMove := map[string]time.Time{}
	for _, l := range leases {
		owner := l.Owner
		if l.Finished() || owner == "" || v.seen[owner] != nil {
			continue
		}
		owned[l.Key] = true
		f, ok := v.foreign[l.Key]
		if !ok || f.owner != owner || f.counter != l.Counter {
			f = foreignLease{owner: owner, counter: l.Counter, since: now}
			v.foreign[l.Key] = f
		}
		if t, ok := lastMove[owner]; !ok || f.since.After(t) {
			lastMove[owner] = f.since
		}
	}
	for k := range v.foreign {
		if !owned[k] {
			delete(v.foreign, k)
		}
	}
	out := make([]FleetWorker, 0, len(lastMove))
	for owner, t := range lastMove {
		alive := now.Sub(t) < c.opts.leaseDuration
		if alive && !v.foreignWarned[owner] {
			v.foreignWarned[owner] = true
			c.log.Error("leader: a worker outside the kcl fleet owns leases; its leases are left to it while it renews them, but it may take kcl fleet leases, which are not renewed one by one: run every worker of a table shared with Java KCL workers in KCL-compatible mode",
				zap.String("worker", owner))
		}
		out = append(out, FleetWorker{ID: owner, Alive: alive, State: lease.WorkerStopping})
	}
	return out
}

// handoffsToTheDead returns the moves that give back to their live holder
// the leases being handed to a dead worker. PlanAssign leaves them to the
// holder, whose final checkpoint completes the transfer; but a holder that
// is a new incarnation of its worker id no longer knows the lease, and the
// handoff would wait forever. Given back (owner = holder, counter + 1), the
// lease is adopted by a holder still processing it (its final checkpoint
// finds its own owner and the next counter) or acquired by the new
// incarnation, which the leader tells through its assign epoch.
func handoffsToTheDead(leases []lease.Lease, workers []FleetWorker) []Move {
	alive := make(map[string]bool, len(workers))
	for _, w := range workers {
		alive[w.ID] = w.Alive
	}
	var out []Move
	for _, l := range leases {
		if !l.Finished() && l.InHandoff() && !alive[l.Owner] && alive[l.CheckpointOwner] {
			out = append(out, Move{Lease: l, From: l.Owner, To: l.CheckpointOwner})
		}
	}
	return out
}

// fenceDead fences each dead worker whose leases the plan moves
// (FleetStore.Fence, conditioned on the counter the leader judged): a beat the
// worker had in flight lands either before the fence, which then fails and
// shows the worker alive, or after it, and then returns the fence and the
// worker stops instead of extending its deadline. It returns the moves that
// may go ahead: those of fenced workers, of workers that never beat, and of
// owners outside the roster (judged by the per-lease rule).
//
// The fence is written again in every round that moves a worker's leases,
// even if an earlier round fenced it at the same counter: a new incarnation
// of the worker (restarted, or back after its deadline) beats before it
// takes any lease back, so a fence conditioned on the counter this round
// read fails if the table this round read may show such a take.
func (c *Coordinator) fenceDead(ctx context.Context, epoch int64, v *leaderView, moves []Move) []Move {
	blocked, fencedNow := map[string]bool{}, map[string]bool{}
	for _, m := range moves {
		s := v.seen[m.From]
		if m.From == "" || s == nil || !s.have || fencedNow[m.From] || blocked[m.From] {
			continue
		}
		if !c.stillLeads(ctx, epoch) {
			return nil
		}
		err := c.fl.fs.Fence(ctx, s.id, s.counter)
		switch {
		case err == nil:
			fencedNow[m.From] = true
			if s.fencedAt != s.counter {
				c.log.Info("leader: dead worker fenced", zap.String("worker", s.id), zap.Int64("counter", s.counter))
			}
			s.fencedAt = s.counter
		case errors.Is(err, lease.ErrNotFound):
			// No heartbeat: the worker never beat, so never processed.
		case errors.Is(err, lease.ErrConflict):
			// It beat since the read: alive after all.
			blocked[m.From] = true
			s.since = time.Now()
			s.markDead(false)
			v.dirty = true
			c.log.Info("leader: a worker judged dead beat again", zap.String("worker", s.id))
		default:
			blocked[m.From] = true
			v.dirty = true
			c.log.Debug("leader: fencing a dead worker failed", zap.String("worker", s.id), zapErr(err))
		}
	}
	if len(blocked) == 0 {
		return moves
	}
	return slices.DeleteFunc(moves, func(m Move) bool { return blocked[m.From] })
}

// settledHolders returns the workers whose last heartbeat announced as many
// held leases as leases names them the holder of: the owner of a lease not in
// a handoff, or the outgoing owner of one in a handoff.
func settledHolders(leases []lease.Lease, v *leaderView) map[string]bool {
	charged := map[string]int{}
	for _, l := range leases {
		switch {
		case l.Finished():
		case l.InHandoff():
			charged[l.CheckpointOwner]++
		case l.Owner != "":
			charged[l.Owner]++
		}
	}
	out := make(map[string]bool, len(v.seen))
	for id, s := range v.seen {
		out[id] = s.have && s.leases == charged[id]
	}
	return out
}

// pruneRoster removes from the roster the dead workers that own no lease any
// more (the round after their leases were reassigned), so that the leader
// stops reading their heartbeats and a stopping worker, which reads the
// roster to pick the peers it hands its leases to, no longer sees them. A
// pruned worker that comes back finds its deadline passed and joins again.
func (c *Coordinator) pruneRoster(ctx context.Context, epoch int64, v *leaderView, leases []lease.Lease, now time.Time) {
	owners := map[string]bool{}
	for _, l := range leases {
		if !l.Finished() {
			owners[l.Owner] = true
			owners[l.CheckpointOwner] = true
		}
	}
	dead := make([]string, 0)
	for id, s := range v.seen {
		if now.Sub(s.since) >= c.opts.failover && !owners[id] && id != c.self {
			dead = append(dead, id)
		}
	}
	slices.SortFunc(dead, cmp.Compare)
	for _, id := range dead {
		if !c.stillLeads(ctx, epoch) {
			return
		}
		// Fenced first: its beats after the fence return it, and it joins
		// again with a new incarnation; the fence fails if it beat since
		// the leader's read, and then it stays.
		s := v.seen[id]
		if s.have {
			if err := c.fl.fs.Fence(ctx, id, s.counter); err != nil {
				if errors.Is(err, lease.ErrConflict) {
					s.since = time.Now()
					s.markDead(false)
				}
				continue
			}
			s.fencedAt = s.counter
		}
		if err := c.fl.fs.Leave(ctx, id); err == nil {
			c.log.Info("leader: dead worker removed from the roster", zap.String("worker", id))
			// A new incarnation of it may have joined again while the
			// removal was on its way: one that has beaten since is put
			// back (and a worker checks the roster every leader-scan
			// interval in any case).
			if hbs, err := c.fl.fs.Heartbeats(ctx, []string{id}); err == nil && len(hbs) == 1 && hbs[0].Counter != s.counter {
				if err := c.fl.fs.Join(ctx, id); err == nil {
					c.log.Info("leader: a removed worker had come back; put back in the roster", zap.String("worker", id))
				}
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
