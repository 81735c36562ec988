package leasing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/kclgo/kcl/lease"
)

// ErrAlreadyRunning is returned by a second call to Coordinator.Run.
var ErrAlreadyRunning = errors.New("lease: coordinator already running")

// Coordinator runs one worker's side of the lease protocol: it renews the
// leases it holds, takes unowned and expired leases up to a fair share, asks
// over-loaded workers to hand leases over, and releases its leases when it
// stops. See DESIGN.md for the protocol and its invariants.
//
// A Coordinator is created with NewCoordinator, which starts nothing, and
// driven by Run.
type Coordinator struct {
	store lease.Store
	self  string
	opts  options
	log   *zap.Logger
	stats stats

	started atomic.Bool
	fl      *fleet      // kcl-fleet mode; nil for per-lease renewal
	k3      *kcl3Member // a Java KCL 3.x fleet's leadership (per-lease mode on a KCL3Leadership store); nil otherwise
	// contact is the start (Unix nanoseconds) of the last table scan or
	// renewal that succeeded, in per-lease mode (see LastContact).
	contact atomic.Int64

	// mu guards the fields below; no I/O is done while holding it.
	mu       sync.Mutex
	held     map[string]*Held
	incoming map[string]*incoming // handoffs to us in progress
	peers    map[string]int       // live peers and their lease counts, from the last scan
	stopping bool
	// unfinished holds the handoffs whose final checkpoint failed after the
	// lease's user was done (kcl-fleet mode retries them; a live holder's
	// handoff is never taken by force).
	unfinished map[string]bool
}

// incoming is a lease handed to us whose outgoing owner has not yet written
// its final checkpoint.
type incoming struct {
	// since is when we asked for it, first saw it handed to us, or last saw
	// its counter move; counter is the counter seen then. The request
	// leaves the counter alone (as KCL 3.x's does) and a kcl holder stops
	// renewing once it sees the request, but a Java holder keeps renewing
	// until it hands over (up to its gracefulLeaseHandoffTimeoutMillis,
	// 30 s): the handoff timeout runs only while the counter stands still,
	// so a holder that still renews is never taken from.
	since   time.Time
	counter int64
}

// NewCoordinator returns a Coordinator for the worker with the given id over
// store. The id must be unique in the fleet and stable for the life of the
// process. It validates the options and starts nothing.
func NewCoordinator(store lease.Store, workerID string, opts ...Option) (*Coordinator, error) {
	if store == nil {
		return nil, errors.New("lease: nil lease.Store")
	}
	if workerID == "" {
		return nil, errors.New("lease: empty worker id")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	var fl *fleet
	if o.fleet {
		var err error
		if fl, err = newFleet(store, &o); err != nil {
			return nil, err
		}
	}
	c := &Coordinator{
		fl:       fl,
		store:    store,
		self:     workerID,
		opts:     o,
		log:      o.logger.With(zap.String("worker_id", workerID)),
		held:     make(map[string]*Held),
		incoming: make(map[string]*incoming),
		peers:    make(map[string]int),
	}
	if k3, ok := store.(lease.KCL3Leadership); ok && fl == nil {
		c.k3 = newKCL3Member(k3, workerID, &o, c.log)
	}
	return c, nil
}

// WorkerID returns the id this coordinator writes as lease owner.
func (c *Coordinator) WorkerID() string { return c.self }

// Run runs the coordinator until ctx is cancelled, then stops gracefully and
// returns nil. onAcquire is called, on the coordinator's goroutine, for every
// lease this worker acquires; it must not block (start the lease's consumer
// on a goroutine of its own). Processing of a Held lease must stop when its
// Context is done; its user then calls Done.
//
// drain is the life of the held leases: their contexts derive from it, and
// renewals and the graceful stop run under it. It must outlive ctx (the
// caller derives it with context.WithoutCancel) and is the caller's
// shutdown deadline: the coordinator has no timer of its own.
//
// Graceful stop (ctx done): the coordinator stops taking leases, cancels
// every held lease's context with cause ErrStopping, keeps renewing them
// while their users finish and checkpoint, and releases each lease when its
// user calls Done — assigning it straight to the least-loaded live peer when
// the store can tell that peer quickly (an OwnerLister), so the peer resumes
// within the assignment poll interval rather than after an expiry. Run
// returns when every user has called Done and a short linger has passed, or
// as soon as drain is done: renewals then stop, and the leases whose users
// have not called Done are left to expire.
//
// Run returns after every goroutine it started has returned. It may be
// called once.
func (c *Coordinator) Run(ctx, drain context.Context, onAcquire func(*Held)) error {
	if onAcquire == nil {
		return errors.New("lease: Run: nil onAcquire")
	}
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	if c.fl != nil {
		return c.runFleet(ctx, drain, onAcquire)
	}
	renewCtx, stopRenew := context.WithCancel(drain)
	var g errgroup.Group
	g.Go(func() error {
		c.renewLoop(renewCtx)
		return nil
	})
	if r, ok := c.store.(lease.MetricsReporter); ok {
		// Java KCL 3.x leaders assign only to workers that report (compat.go).
		g.Go(func() error { c.reportMetrics(ctx, r); return nil })
	}
	if c.k3 != nil {
		// A Java KCL 3.x fleet's leadership (kcl3.go).
		g.Go(func() error { c.k3.run(ctx, drain); return nil })
	}

	c.takeLoop(ctx, drain, onAcquire)

	c.stop(drain)
	stopRenew()
	return g.Wait()
}

// takeLoop runs taker passes every take interval, and earlier when an
// observed lease is due to expire, plus assignment polls, until ctx is done.
func (c *Coordinator) takeLoop(ctx, base context.Context, onAcquire func(*Held)) {
	var obs Liveness = NewObserver(c.opts.leaseDuration)
	quick := 0 // consecutive quick re-passes after contended takes
	pass := time.NewTimer(0)
	defer pass.Stop()
	poll := time.NewTicker(c.opts.pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pass.C:
			contended := c.takePass(ctx, base, obs, onAcquire)
			now := time.Now()
			next := c.opts.takeInterval
			if contended && quick < maxQuickPasses {
				// Other workers raced us for the same leases and we may be
				// short: look again soon, with jitter so that the racers
				// do not collide again, instead of a take interval later.
				quick++
				next = min(next, quickPassDelay+time.Duration(c.opts.rand.Int64N(int64(quickPassDelay))))
			} else {
				quick = 0
			}
			if at, ok := obs.NextExpiry(now, c.self); ok && at.Sub(now) < next {
				// Wake up just after the earliest expiry: failover then
				// costs one extra scan instead of up to a take interval.
				next = at.Sub(now) + time.Millisecond
			}
			pass.Reset(next)
		case <-poll.C:
			c.pollPass(ctx, base, onAcquire)
		}
	}
}

// Quick re-passes after a contended pass: at most maxQuickPasses in a row,
// each after quickPassDelay plus up to as much jitter.
const (
	maxQuickPasses = 3
	quickPassDelay = 100 * time.Millisecond
)

// takePass reads the table, updates expiry observations and peer loads,
// then takes and requests leases as PlanTakes decides. It reports whether a
// take was fenced off by another worker and no spare lease was left to try
// instead.
func (c *Coordinator) takePass(ctx, base context.Context, obs Liveness, onAcquire func(*Held)) (contended bool) {
	c.stats.passes.Add(1)
	listed := time.Now()
	leases, err := c.store.List(ctx)
	if me := (*lease.MalformedError)(nil); err == nil || errors.As(err, &me) {
		c.noteContact(listed)
	}
	if err != nil {
		var me *lease.MalformedError
		if !errors.As(err, &me) {
			c.log.Warn("list leases failed", zapErr(err))
			return false
		}
		// Malformed items are never taken or overwritten; a human must fix
		// them.
		c.log.Error("malformed lease items ignored", zapErr(err))
	}
	now := time.Now()
	obs.Observe(now, leases)
	expired := func(l lease.Lease) bool { return obs.Expired(now, l) }

	c.completeStrandedHandoffs(ctx, leases)

	peers := make(map[string]int)
	c.mu.Lock()
	for _, l := range leases {
		switch {
		case l.Finished() || l.Owner == "":
		case l.Owner == c.self:
			if _, ok := c.held[l.Key]; !ok && l.InHandoff() && c.incoming[l.Key] == nil {
				c.incoming[l.Key] = &incoming{since: now, counter: l.Counter}
			}
		case !expired(l):
			peers[l.Owner]++
		}
	}
	c.peers = peers
	c.mu.Unlock()

	if c.k3 != nil && c.k3.leading(now) {
		c.leadPass(ctx, base, leases, expired, onAcquire)
		return false
	}
	plan := PlanTakes(PlanInput{
		Self:      c.self,
		Leases:    leases,
		Expired:   expired,
		Held:      c.holdsOrReceives,
		MaxLeases: c.opts.maxLeases,
		Rand:      c.opts.rand,
	})
	spare := plan.Spare
	for _, l := range plan.Take {
		for {
			start := time.Now()
			nl, err := c.store.Take(ctx, l, c.self)
			if err == nil {
				c.stats.taken.Add(1)
				c.acquire(base, nl, start, nil, onAcquire)
				break
			}
			c.log.Debug("take failed", zapKey(l.Key), zapErr(err))
			if !errors.Is(err, lease.ErrConflict) {
				break
			}
			if len(spare) == 0 {
				contended = true
				break
			}
			// Another worker was faster: try the next available lease
			// now rather than a take interval later.
			l, spare = spare[0], spare[1:]
		}
	}
	if c.k3 != nil && c.k3.leaderPresent() {
		// A KCL 3.x leader balances the fleet: asking for leases too
		// would fight it.
		plan.Handoff = nil
	}
	for _, l := range plan.Handoff {
		nl, err := c.store.Handoff(ctx, l, c.self)
		if err != nil {
			c.log.Debug("handoff request failed", zapKey(l.Key), zapErr(err))
			continue
		}
		c.stats.handoffsRequested.Add(1)
		c.log.Info("handoff requested", zapKey(nl.Key), zap.String("from", l.Owner))
		c.mu.Lock()
		c.incoming[nl.Key] = &incoming{since: time.Now(), counter: nl.Counter}
		c.mu.Unlock()
	}
	return contended
}

// pollPass checks the handoffs we wait for and, when the store has an owner
// index, the leases assigned to us by peers.
func (c *Coordinator) pollPass(ctx, base context.Context, onAcquire func(*Held)) {
	c.mu.Lock()
	waiting := make(map[string]incoming, len(c.incoming))
	for k, in := range c.incoming {
		waiting[k] = *in
	}
	c.mu.Unlock()

	if ol, ok := c.store.(lease.OwnerLister); ok {
		keys, err := ol.ListOwned(ctx, c.self)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			c.log.Debug("list owned leases failed", zapErr(err))
		}
		for _, k := range keys {
			if _, ok := waiting[k]; !ok && !c.holdsOrReceives(k) {
				waiting[k] = incoming{} // first seen now
			}
		}
	}

	for key, in := range waiting {
		start := time.Now()
		cur, err := c.store.Get(ctx, key)
		switch {
		case errors.Is(err, lease.ErrNotFound):
			c.dropIncoming(key)
			continue
		case err != nil:
			c.log.Debug("get lease failed", zapKey(key), zapErr(err))
			continue
		}
		if cur.Owner != c.self {
			c.dropIncoming(key) // someone else took it
			c.completeStrandedHandoffs(ctx, []lease.Lease{cur})
			continue
		}
		if !cur.InHandoff() {
			// Assigned to us, or the outgoing owner wrote its final
			// checkpoint: ours once a write of ours proves it.
			if c.acquireRead(ctx, base, cur, onAcquire) && !in.since.IsZero() {
				c.stats.handoffsReceived.Add(1)
			}
			continue
		}
		if in.since.IsZero() || cur.Counter != in.counter {
			// First seen, or the outgoing owner is still writing (a Java
			// holder renews until it hands over): restart the clock, from
			// after the read, so that it starts after the holder's last
			// write began.
			seen := time.Now()
			c.mu.Lock()
			if c.incoming[key] != nil || in.since.IsZero() {
				c.incoming[key] = &incoming{since: seen, counter: cur.Counter}
			}
			c.mu.Unlock()
			continue
		}
		if time.Since(in.since) >= c.opts.handoffTimeout {
			// The outgoing owner did not hand over in time, and wrote
			// nothing since in.since. Its last write (renewal) started
			// before in.since, so by its own clock it stopped processing a
			// lease duration after that at the latest; the handoff timeout
			// is at least that long. The take is conditioned on the
			// counter it has kept since: a final checkpoint or any other
			// write that lands first fences it off.
			nl, err := c.store.Take(ctx, cur, c.self)
			if err != nil {
				c.log.Debug("forced take failed", zapKey(key), zapErr(err))
				continue
			}
			c.stats.forcedTakes.Add(1)
			c.log.Warn("handoff timed out; lease taken", zapKey(key), zap.String("from", cur.CheckpointOwner))
			c.acquire(base, nl, start, nil, onAcquire)
		}
	}
}

// completeStrandedHandoffs completes the handoffs asked of us for leases we
// do not hold: a lease assigned to us that we had not picked up yet when
// another worker asked for it. We are not processing it, so its checkpoint
// stands and the handoff can complete at once instead of timing out.
func (c *Coordinator) completeStrandedHandoffs(ctx context.Context, leases []lease.Lease) {
	for _, l := range leases {
		if l.CheckpointOwner != c.self || l.Owner == c.self {
			continue
		}
		if c.fl != nil && c.processing(l.Key) || c.fl == nil && c.holds(l.Key) {
			// The Held completes it after its final checkpoint. (In kcl
			// fleet mode a lease lost with its heartbeat incarnation counts
			// as not held: the new incarnation completes the handoff.)
			continue
		}
		_, err := c.store.Checkpoint(ctx, l, keepCheckpoint(l))
		if err != nil {
			c.log.Debug("completing a handoff of a lease not held failed", zapKey(l.Key), zapErr(err))
			continue
		}
		c.log.Info("handoff of a lease not held completed", zapKey(l.Key), zap.String("to", l.Owner))
	}
}

// holds reports whether a Held of key is registered.
func (c *Coordinator) holds(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[key]
	return ok
}

// processing reports whether this worker holds key and has not lost it.
func (c *Coordinator) processing(key string) bool {
	c.mu.Lock()
	h := c.held[key]
	c.mu.Unlock()
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state != stateGone
}

func (c *Coordinator) dropIncoming(key string) {
	c.mu.Lock()
	delete(c.incoming, key)
	c.mu.Unlock()
}

// holdsOrReceives reports whether we hold key or are receiving it.
func (c *Coordinator) holdsOrReceives(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, h := c.held[key]
	_, in := c.incoming[key]
	return h || in
}

// acquire registers a lease we now own (proven at provenAt) and hands it to
// onAcquire.
// In kcl-fleet mode hb is the heartbeat incarnation under which the
// acquisition was made, and the lease lives no longer than it.
func (c *Coordinator) acquire(base context.Context, l lease.Lease, provenAt time.Time, hb *Heartbeater, onAcquire func(*Held)) {
	h := newHeld(c, base, l, provenAt, hb)
	c.mu.Lock()
	delete(c.incoming, l.Key)
	if _, dup := c.held[l.Key]; dup {
		c.mu.Unlock()
		return
	}
	c.held[l.Key] = h
	c.mu.Unlock()
	c.stats.acquired.Add(1)
	c.log.Info("lease acquired", zapKey(l.Key), zap.Int64("counter", l.Counter))
	onAcquire(h)
}

func (c *Coordinator) forget(h *Held) {
	c.mu.Lock()
	if c.held[h.key] == h {
		delete(c.held, h.key)
	}
	c.mu.Unlock()
}

// giveUp releases l after its user is done: to the least-loaded live peer
// during a graceful stop when the store has an owner index, else to nobody.
func (c *Coordinator) giveUp(ctx context.Context, l lease.Lease) error {
	var peer string
	c.mu.Lock()
	if _, ok := c.store.(lease.OwnerLister); ok && c.stopping && !l.Finished() {
		peer = c.leastLoadedPeerLocked()
		if peer != "" {
			c.peers[peer]++
		}
	}
	c.mu.Unlock()
	if peer != "" && c.fl != nil {
		if err := c.giveToPeer(ctx, l, peer); err != nil {
			return fmt.Errorf("lease: assign %s to %s: %w", l.Key, peer, err)
		}
		c.stats.assigned.Add(1)
		c.log.Info("lease assigned to peer", zapKey(l.Key), zap.String("peer", peer))
		return nil
	}
	if peer != "" {
		if _, err := c.store.Take(ctx, l, peer); err != nil {
			return fmt.Errorf("lease: assign %s to %s: %w", l.Key, peer, err)
		}
		c.stats.assigned.Add(1)
		c.log.Info("lease assigned to peer", zapKey(l.Key), zap.String("peer", peer))
		return nil
	}
	if _, err := c.store.Release(ctx, l); err != nil {
		return fmt.Errorf("lease: release %s: %w", l.Key, err)
	}
	c.stats.released.Add(1)
	c.log.Info("lease released", zapKey(l.Key))
	if !l.Finished() {
		c.TableChanged(ctx) // kcl fleet: the leader assigns it again
	}
	return nil
}

func (c *Coordinator) leastLoadedPeerLocked() string {
	peers := make([]string, 0, len(c.peers))
	for p := range c.peers {
		peers = append(peers, p)
	}
	if len(peers) == 0 {
		return ""
	}
	return slices.MinFunc(peers, func(a, b string) int {
		if d := cmp.Compare(c.peers[a], c.peers[b]); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
}

// stop runs the graceful stop: ask every holder to finish, then wait for
// their Done calls, until drain is done (the caller's shutdown deadline).
// Meanwhile it keeps watching for leases peers assign to us (a peer stopping
// at the same time may pick us) and releases them, so they are not stranded
// until they expire.
func (c *Coordinator) stop(drain context.Context) {
	var fleetPeers map[string]int
	if c.fl != nil {
		c.setState(lease.WorkerStopping)
		fleetPeers = c.fleetPeers(drain)
	} else {
		c.refreshPeers(drain)
	}
	c.mu.Lock()
	if c.fl != nil {
		c.peers = fleetPeers
	}
	c.stopping = true
	hs := make([]*Held, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		if h.state == stateActive {
			h.state = stateStopping
			h.cancel(ErrStopping)
		}
		h.mu.Unlock()
	}

	pollCtx, stopPolling := context.WithCancel(drain)
	var g errgroup.Group
	g.Go(func() error {
		c.releaseAssigned(pollCtx)
		return nil
	})
	defer func() {
		stopPolling()
		_ = g.Wait() // releaseAssigned returns no error
	}()

	for _, h := range hs {
		select {
		case <-h.done:
		case <-drain.Done():
			c.log.Warn("shutdown deadline: leases left to expire", zap.Int("leases", len(c.Holding())), zap.NamedError("cause", context.Cause(drain)))
			return
		}
	}
	// Linger for two assignment polls: a peer stopping at the same instant
	// may have handed us leases it believed we would keep.
	linger := time.NewTimer(2 * c.opts.pollInterval)
	defer linger.Stop()
	select {
	case <-linger.C:
	case <-drain.Done():
	}
}

// refreshPeers re-reads the table before a graceful stop hands leases to
// peers: the peers of the last take pass may be up to a take interval old,
// and a peer that stopped gracefully since then owns nothing and is gone.
// A peer stays a candidate only if the last pass saw it live and it still
// owns a lease now; its count is the current one. If the read fails, the
// last pass's peers stand.
func (c *Coordinator) refreshPeers(drain context.Context) {
	ctx, cancel := context.WithTimeout(drain, c.opts.leaseDuration/2)
	defer cancel()
	leases, err := c.store.List(ctx)
	var me *lease.MalformedError
	if err != nil && !errors.As(err, &me) {
		c.log.Warn("list leases before stop failed; using the last pass's peers", zapErr(err))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	peers := make(map[string]int, len(c.peers))
	for _, l := range leases {
		if _, live := c.peers[l.Owner]; live && !l.Finished() && l.Owner != c.self {
			peers[l.Owner]++
		}
	}
	c.peers = peers
}

// releaseAssigned releases, every assignment poll interval until ctx is done,
// the leases that name us as owner but that we do not hold.
func (c *Coordinator) releaseAssigned(ctx context.Context) {
	ol, ok := c.store.(lease.OwnerLister)
	if !ok {
		return
	}
	t := time.NewTicker(c.opts.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := ol.ListOwned(ctx, c.self)
		if err != nil {
			continue
		}
		for _, k := range keys {
			c.mu.Lock()
			_, held := c.held[k]
			c.mu.Unlock()
			if held {
				continue
			}
			cur, err := c.store.Get(ctx, k)
			if err != nil || cur.Owner != c.self || cur.InHandoff() {
				continue // a handoff to us completes first; we release it next time
			}
			if c.fl != nil {
				c.passOn(ctx, cur)
				continue
			}
			if _, err := c.store.Release(ctx, cur); err == nil {
				c.stats.released.Add(1)
				c.log.Info("lease assigned while stopping released", zapKey(k))
			}
		}
	}
}

// renewLoop renews held leases every renew interval until ctx is done.
func (c *Coordinator) renewLoop(ctx context.Context) {
	t := time.NewTicker(c.opts.renewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		hs := make([]*Held, 0, len(c.held))
		for _, h := range c.held {
			hs = append(hs, h)
		}
		c.mu.Unlock()
		var g errgroup.Group
		g.SetLimit(c.opts.renewConcurrency)
		for _, h := range hs {
			g.Go(func() error {
				// A renewal that takes longer than the interval is
				// abandoned; the next tick tries again.
				rctx, cancel := context.WithTimeout(ctx, c.opts.renewInterval)
				defer cancel()
				h.renew(rctx)
				return nil
			})
		}
		_ = g.Wait() // renew reports through the Held; it returns no error
	}
}

// LastContact returns when the worker last proved itself to the lease
// table: the send time of its last successful heartbeat in kcl-fleet mode,
// else the start of its last successful table scan or renewal. Zero before
// the first.
func (c *Coordinator) LastContact() time.Time {
	if hb := c.liveness(); hb != nil {
		return hb.LastBeat()
	}
	if n := c.contact.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// noteContact records a successful table call started at t.
func (c *Coordinator) noteContact(t time.Time) {
	n := t.UnixNano()
	for {
		old := c.contact.Load()
		if old >= n || c.contact.CompareAndSwap(old, n) {
			return
		}
	}
}

// Holding returns the keys of the leases this worker holds, sorted.
func (c *Coordinator) Holding() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.held))
	for k, h := range c.held {
		if h.Valid() {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Stats counts what the coordinator has done since it was created.
type Stats struct {
	Passes            int64 // taker passes (table scans)
	Acquired          int64 // leases acquired, by any path
	Taken             int64 // unowned or expired leases taken
	HandoffsRequested int64 // handoffs this worker asked for
	HandoffsReceived  int64 // handoffs completed by the outgoing owner
	ForcedTakes       int64 // handoffs that timed out and were taken
	Renewals          int64 // successful renewals
	RenewFailures     int64 // renewals that failed for other reasons than a conflict
	Checkpoints       int64 // checkpoints written
	Lost              int64 // leases lost or expired
	Released          int64 // leases released to nobody
	Assigned          int64 // leases handed straight to a peer on stop
	// kcl-fleet mode.
	Leaderships    int64 // leaderships gained
	LeaderRounds   int64 // leader rounds (roster and heartbeat reads)
	LeaderAssigned int64 // leases the leader assigned (handoff requests are in HandoffsRequested)
}

type stats struct {
	passes, acquired, taken, handoffsRequested, handoffsReceived, forcedTakes atomic.Int64
	renewals, renewFailures, checkpoints, lost, released, assigned            atomic.Int64
	leaderships, leaderRounds, leaderAssigned                                 atomic.Int64
}

// Stats returns the coordinator's counters.
func (c *Coordinator) Stats() Stats {
	s := &c.stats
	return Stats{
		Passes: s.passes.Load(), Acquired: s.acquired.Load(), Taken: s.taken.Load(),
		HandoffsRequested: s.handoffsRequested.Load(), HandoffsReceived: s.handoffsReceived.Load(),
		ForcedTakes: s.forcedTakes.Load(), Renewals: s.renewals.Load(), RenewFailures: s.renewFailures.Load(),
		Checkpoints: s.checkpoints.Load(), Lost: s.lost.Load(), Released: s.released.Load(), Assigned: s.assigned.Load(),
		Leaderships: s.leaderships.Load(), LeaderRounds: s.leaderRounds.Load(), LeaderAssigned: s.leaderAssigned.Load(),
	}
}

func zapKey(k string) zap.Field  { return zap.String("lease_key", k) }
func zapErr(err error) zap.Field { return zap.Error(err) }
