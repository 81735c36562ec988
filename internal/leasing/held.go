package leasing

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// Causes with which a Held lease's context is cancelled. Branch on them with
// errors.Is(context.Cause(h.Context()), …).
var (
	// ErrExpired means the holder could not renew the lease before its
	// deadline (the lease duration minus the expiry margin after its last
	// proof of ownership), so it must assume another worker may take it. It
	// matches ErrLeaseLost.
	ErrExpired error = &wrapSentinel{msg: "lease: not renewed before the holder's deadline", parent: lease.ErrLeaseLost}
	// ErrHandoffRequested means another worker asked for the lease: finish
	// the in-flight batch, checkpoint, then call Done to hand it over.
	ErrHandoffRequested = errors.New("lease: handoff requested")
	// ErrStopping means the coordinator is stopping gracefully: finish the
	// in-flight batch, checkpoint, then call Done to release the lease.
	ErrStopping = errors.New("lease: coordinator stopping")
)

type heldState uint8

const (
	stateActive     heldState = iota + 1 // holding and renewing
	stateHandingOff                      // another worker asked for it; final checkpoint allowed, no renewals
	stateStopping                        // graceful stop: renewing until Done
	stateGone                            // lost, expired, handed over or released
)

// Held is a lease this worker holds. The coordinator creates it and renews it;
// the lease's user (the shard consumer) processes records while Context is
// live, writes checkpoints through WriteCheckpoint, and calls Done when it has
// finished with the lease.
//
// Held's methods are safe for concurrent use. Writes to the lease (renewals,
// checkpoints, release) are serialized, so they never fence each other off.
type Held struct {
	c      *Coordinator
	key    string
	ctx    context.Context
	cancel context.CancelCauseFunc
	// token serializes the conditional writes to this lease: each is made
	// with the counter the previous one returned. It is a channel rather than
	// a mutex so that waiting for it honours ctx, and so that no lock is held
	// across I/O.
	token chan struct{}
	done  chan struct{}
	// expiry cancels the context at the holder's deadline (deadlineLocked)
	// unless a write that proves ownership moved it. It is nil in kcl-fleet
	// mode, where hb keeps the deadline for every lease of the worker.
	expiry *time.Timer
	hb     *Heartbeater

	// mu guards the fields below; it is never held across I/O.
	mu        sync.Mutex
	lease     lease.Lease
	renewedAt time.Time // start of the last write that proved ownership
	// unsure is the earliest write sent with the current counter whose
	// outcome is unknown (it failed with another error than a conflict): if
	// a re-read shows it landed, its start proves ownership (unsureLocked).
	unsure struct {
		counter int64
		start   time.Time
	}
	// acquiredAt is the start of the write that acquired the lease (a take,
	// or the renewal after a read found it ours); it never changes.
	acquiredAt time.Time
	state      heldState
	doneOnce   bool
}

func newHeld(c *Coordinator, parent context.Context, l lease.Lease, provenAt time.Time, hb *Heartbeater) *Held {
	if hb != nil {
		// kcl-fleet mode: the lease lives as long as the worker's
		// heartbeat, whose context ends at the worker's deadline.
		parent = hb.Context()
	}
	ctx, cancel := context.WithCancelCause(parent)
	h := &Held{
		c: c, key: l.Key, ctx: ctx, cancel: cancel, hb: hb,
		token: make(chan struct{}, 1), done: make(chan struct{}),
		lease: l, renewedAt: provenAt, acquiredAt: provenAt, state: stateActive,
	}
	if hb == nil {
		h.expiry = time.AfterFunc(time.Until(h.deadlineLocked()), h.checkExpiry)
	} else {
		context.AfterFunc(hb.Context(), h.heartbeatEnded)
	}
	return h
}

// heartbeatEnded marks the lease gone when the worker's heartbeat context
// ends (kcl-fleet mode): past the worker's deadline the leader may give the
// lease to another worker.
func (h *Held) heartbeatEnded() {
	h.mu.Lock()
	handingOff := h.state == stateHandingOff
	h.mu.Unlock()
	if handingOff {
		// The handoff's final checkpoint was not written: the next
		// incarnation completes it (retryUnfinished), or the lease would
		// wait for it forever — the leader sees this worker alive again.
		// (Coordinator.mu is taken before Held.mu, never inside it.)
		h.c.mu.Lock()
		if h.c.unfinished == nil {
			h.c.unfinished = map[string]bool{}
		}
		h.c.unfinished[h.key] = true
		h.c.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateGone {
		h.loseLocked(context.Cause(h.hb.Context()))
		if errors.Is(context.Cause(h.hb.Context()), ErrHeartbeatExpired) {
			h.c.stats.lost.Add(1)
		}
	}
}

// acquireRead acquires l, which a read found owned by this worker (assigned by
// a stopping peer, or handed over by its outgoing owner's final checkpoint),
// and reports whether it did. A read is no proof of ownership for expiry: the
// write that made l ours landed at some unknown instant before it (up to an
// assignment poll, longer if the owner index lags or this process paused), and
// observers time l's expiry from when they saw that write. A holder that
// counted from the read could process past their deadline. So l is renewed
// first, and held from the start of that renewal: an observer that saw the
// renewal expires l at least a lease duration after its start; one that did
// not is fenced off by the counter it changed. If the renewal fails, nothing
// is acquired; the next poll or pass sees the lease again.
//
// In kcl-fleet mode the lease is bound to the heartbeat incarnation alive
// when the renewal was sent; if that incarnation ended before the renewal
// returned (its deadline passed, or the leader fenced it), nothing is
// acquired: the leader may already be giving the lease to another worker.
func (c *Coordinator) acquireRead(ctx, base context.Context, l lease.Lease, onAcquire func(*Held)) bool {
	var hb *Heartbeater
	if c.fl != nil {
		if hb = c.alive(); hb == nil {
			return false
		}
	}
	start := time.Now()
	nl, err := c.store.Renew(ctx, l)
	if err != nil {
		c.log.Debug("renewal of a lease assigned to us failed", zapKey(l.Key), zapErr(err))
		return false
	}
	if hb != nil && (c.liveness() != hb || hb.Context().Err() != nil) {
		return false
	}
	c.acquire(base, nl, start, hb, onAcquire)
	return true
}

// deadlineLocked returns the holder's deadline: the start of the last write
// that proved ownership + lease duration − expiry margin. Any observer's
// expiry instant is at least a margin later (DESIGN.md, "Expiry").
func (h *Held) deadlineLocked() time.Time {
	if h.hb != nil {
		return h.hb.Deadline()
	}
	return h.renewedAt.Add(h.c.opts.leaseDuration - h.c.opts.expiryMargin)
}

// checkExpiry runs when the holder's deadline may have passed; it drops the
// lease locally if it has.
func (h *Held) checkExpiry() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateGone && !h.validLocked(time.Now()) {
		h.loseLocked(ErrExpired)
		h.c.stats.lost.Add(1)
	}
}

// provedLocked records a write that proved ownership and started at start.
func (h *Held) provedLocked(start time.Time) {
	h.renewedAt = start
	h.unsure.start = time.Time{}
	if h.expiry != nil {
		h.expiry.Reset(time.Until(h.deadlineLocked()))
	}
}

// unsureLocked records that a write sent with l's counter at start failed
// without telling whether it landed. Of several such writes the earliest is
// kept: whichever landed, it started no earlier.
func (h *Held) unsureLocked(l lease.Lease, start time.Time) {
	if h.unsure.start.IsZero() || h.unsure.counter != l.Counter {
		h.unsure.counter, h.unsure.start = l.Counter, start
	}
}

// Key returns the lease key.
func (h *Held) Key() string { return h.key }

// AcquiredAt returns when the write that acquired the lease (a take, or the
// renewal that followed the read that found it assigned to this worker) was
// sent: the lease became this worker's at some moment before the acquisition
// returned (for an assignment, before AcquiredAt), which may be much later if
// the process was paused.
func (h *Held) AcquiredAt() time.Time { return h.acquiredAt }

// Lease returns the lease as last written or read by this worker.
func (h *Held) Lease() lease.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease.Clone()
}

// Context is cancelled when the lease user must stop processing: the lease
// was lost (cause matches ErrLeaseLost, possibly ErrExpired), a handoff was
// requested (ErrHandoffRequested) or the coordinator is stopping
// (ErrStopping). In the last two cases the user should still write its final
// checkpoint and then call Done.
func (h *Held) Context() context.Context { return h.ctx }

// Valid reports whether the lease is still held by this worker by its own
// clock: not lost, not handed over, and its deadline (the start of the last
// proof of ownership + lease duration − expiry margin) not yet reached.
func (h *Held) Valid() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.validLocked(time.Now())
}

func (h *Held) validLocked(now time.Time) bool {
	return h.state != stateGone && now.Before(h.deadlineLocked())
}

func (h *Held) acquireToken(ctx context.Context) error {
	select {
	case h.token <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (h *Held) releaseToken() { <-h.token }

// lose marks the lease gone and cancels its context with cause.
func (h *Held) loseLocked(cause error) {
	if h.state != stateGone {
		h.state = stateGone
		h.cancel(cause)
		if h.expiry != nil {
			h.expiry.Stop()
		}
	}
}

// WriteCheckpoint writes a checkpoint (and optionally a prepared pending
// checkpoint with state) fenced by the lease counter. The Worker's checkpoint
// tracker writes through it. It fails with an error matching ErrLeaseLost if
// the lease is no longer held, if its deadline has passed (it was not renewed
// within the lease duration minus the expiry margin), or if the write is
// fenced off. During a handoff it writes the outgoing owner's final
// checkpoint, which completes the handoff: later writes fail with
// ErrLeaseLost.
func (h *Held) WriteCheckpoint(ctx context.Context, cp, pending checkpoint.Position, pendingState []byte) error {
	if err := h.acquireToken(ctx); err != nil {
		return err
	}
	defer h.releaseToken()
	u := lease.CheckpointUpdate{Checkpoint: cp, PendingCheckpoint: pending, PendingCheckpointState: pendingState}
	return h.checkpointLocked(ctx, u, true)
}

// WriteShardEnd records that the shard was processed to its end: checkpoint
// SHARD_END and the child shard ids, in one fenced write.
func (h *Held) WriteShardEnd(ctx context.Context, childShardIDs []string) error {
	if err := h.acquireToken(ctx); err != nil {
		return err
	}
	defer h.releaseToken()
	u := lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd}
	if len(childShardIDs) > 0 {
		u.ChildShardIDs = childShardIDs
	}
	return h.checkpointLocked(ctx, u, true)
}

// checkpointLocked writes u; the caller holds the token. If the write is
// fenced off because a handoff was requested since the last renewal, it adopts
// the handoff state and retries once: the outgoing owner's final checkpoint is
// exactly what a handoff waits for.
func (h *Held) checkpointLocked(ctx context.Context, u lease.CheckpointUpdate, retry bool) error {
	h.mu.Lock()
	now := time.Now()
	if !h.validLocked(now) {
		h.loseLocked(ErrExpired)
		h.mu.Unlock()
		return ErrExpired
	}
	l := h.lease.Clone()
	h.mu.Unlock()

	// Never move the stored checkpoint backwards. The stored one can be
	// ahead of what the caller believes only if an earlier write of ours
	// landed although it reported an error (see reconcile); keep it.
	if l.Checkpoint.Compare(u.Checkpoint) > 0 {
		u.Checkpoint = l.Checkpoint
	}
	start := time.Now()
	nl, err := h.c.store.Checkpoint(ctx, l, u)
	if err == nil {
		h.mu.Lock()
		h.lease = nl
		h.provedLocked(start)
		if l.InHandoff() {
			// The final checkpoint handed the lease over.
			h.loseLocked(ErrHandoffRequested)
		}
		h.mu.Unlock()
		h.c.stats.checkpoints.Add(1)
		return nil
	}
	if !errors.Is(err, lease.ErrConflict) {
		h.mu.Lock()
		h.unsureLocked(l, start)
		h.mu.Unlock()
		return err
	}
	if retry {
		switch h.reconcile(ctx, l.Counter) {
		case reconcileHandoff, reconcileOurs:
			return h.checkpointLocked(ctx, u, false)
		case reconcileUnknown:
			return err
		}
	}
	h.mu.Lock()
	h.loseLocked(lease.ErrLeaseLost)
	h.mu.Unlock()
	return err
}

// reconcileResult says what a re-read after a fenced-off write found.
type reconcileResult uint8

const (
	reconcileLost    reconcileResult = iota + 1 // another worker owns the lease
	reconcileHandoff                            // another worker asked for it; we may write the final checkpoint
	reconcileOurs                               // an earlier write of ours landed although it reported an error
	reconcileUnknown                            // the re-read failed
)

// reconcile re-reads the lease after a write sent with counter c was fenced
// off, and adopts what it finds: a handoff request (leaseOwner = them,
// checkpointOwner = us), or our own earlier write that landed although its
// caller saw an error (owner = us, counter = c+1: KCL's "spurious failure").
func (h *Held) reconcile(ctx context.Context, c int64) reconcileResult {
	cur, err := h.c.store.Get(ctx, h.key)
	if err != nil {
		if errors.Is(err, lease.ErrNotFound) {
			return reconcileLost
		}
		return reconcileUnknown
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == stateGone {
		return reconcileLost
	}
	switch {
	case cur.CheckpointOwner == h.c.self && cur.Owner != h.c.self:
		h.lease = cur
		if h.state != stateHandingOff {
			h.state = stateHandingOff
			h.cancel(ErrHandoffRequested)
		}
		return reconcileHandoff
	case cur.Owner == h.c.self && !cur.InHandoff() && cur.Counter == c+1:
		// Adopt the counter. The write that landed is one we sent with
		// counter c after our last proof; it proves ownership from its
		// start, as a write that reported success does — the earliest
		// start of those whose outcome we did not learn, to be safe.
		h.lease = cur
		if h.unsure.counter == c && h.unsure.start.After(h.renewedAt) {
			h.provedLocked(h.unsure.start)
		}
		return reconcileOurs
	}
	return reconcileLost
}

// renew renews the lease once; called by the renewer.
func (h *Held) renew(ctx context.Context) {
	if err := h.acquireToken(ctx); err != nil {
		return
	}
	defer h.releaseToken()
	h.mu.Lock()
	now := time.Now()
	if h.state == stateGone {
		h.mu.Unlock()
		return
	}
	if h.state == stateHandingOff {
		// No renewals during a handoff: the outgoing owner may only write
		// its final checkpoint, before the deadline of its last
		// renewal.
		if !h.validLocked(now) {
			h.loseLocked(ErrExpired)
		}
		h.mu.Unlock()
		return
	}
	if !h.validLocked(now) {
		h.loseLocked(ErrExpired)
		h.mu.Unlock()
		h.c.stats.lost.Add(1)
		return
	}
	l := h.lease.Clone()
	h.mu.Unlock()

	start := time.Now()
	nl, err := h.c.store.Renew(ctx, l)
	switch {
	case err == nil:
		h.mu.Lock()
		h.lease = nl
		h.provedLocked(start)
		h.mu.Unlock()
		h.c.stats.renewals.Add(1)
		h.c.noteContact(start)
	case errors.Is(err, lease.ErrConflict):
		// A handoff request (ours or a KCL 3.x leader's) leaves the counter
		// as it is: this renewal then failed on its owner condition. The
		// re-read tells a request (checkpointOwner = us) from a loss.
		switch h.reconcile(ctx, l.Counter) {
		case reconcileHandoff:
			h.c.log.Info("handoff requested", zapKey(h.key))
			return
		case reconcileOurs, reconcileUnknown:
			return // the next renewal retries with what we know
		}
		h.mu.Lock()
		h.loseLocked(lease.ErrLeaseLost)
		h.mu.Unlock()
		h.c.stats.lost.Add(1)
		h.c.log.Info("lease lost", zapKey(h.key))
	default:
		h.mu.Lock()
		h.unsureLocked(l, start)
		h.mu.Unlock()
		h.c.stats.renewFailures.Add(1)
		// Throttling or a transport error: keep the lease; it expires
		// locally at its deadline if renewals keep failing.
		h.c.log.Warn("renew failed", zapKey(h.key), zapErr(err))
	}
}

// Done tells the coordinator that the lease user has finished with the lease
// (after its final checkpoint). Depending on why processing stopped, Done:
// completes a requested handoff (writing the outgoing owner's final checkpoint
// if WriteCheckpoint did not already), releases the lease during a graceful
// stop — handing it straight to the least-loaded peer when the store can tell
// that peer quickly — or, for a finished shard, releases it so it is no longer
// renewed. For a lost lease it does nothing. Done is idempotent and may block
// for one store write.
func (h *Held) Done(ctx context.Context) error {
	h.mu.Lock()
	if h.doneOnce {
		h.mu.Unlock()
		return nil
	}
	h.doneOnce = true
	h.mu.Unlock()
	defer close(h.done)
	defer h.c.forget(h)

	if err := h.acquireToken(ctx); err != nil {
		return err
	}
	defer h.releaseToken()

	h.mu.Lock()
	state := h.state
	l := h.lease.Clone()
	valid := h.validLocked(time.Now())
	h.mu.Unlock()

	switch {
	case state == stateGone:
		return nil
	case !valid:
		h.mu.Lock()
		h.loseLocked(ErrExpired)
		h.mu.Unlock()
		return nil
	case state == stateHandingOff:
		// Complete the handoff, keeping the checkpoint as it is.
		err := h.checkpointLocked(ctx, keepCheckpoint(l), false)
		if err != nil && !errors.Is(err, lease.ErrConflict) && h.c.fl != nil {
			// Nobody else completes it in kcl-fleet mode: retry later.
			h.c.mu.Lock()
			if h.c.unfinished == nil {
				h.c.unfinished = map[string]bool{}
			}
			h.c.unfinished[h.key] = true
			h.c.mu.Unlock()
		}
		return err
	default:
		err := h.c.giveUp(ctx, l)
		if errors.Is(err, lease.ErrConflict) && !l.Finished() && h.reconcile(ctx, l.Counter) == reconcileHandoff {
			// A peer asked for the lease after our last renewal: hand it
			// over now, with the checkpoint as it is, rather than leave the
			// peer waiting for the handoff timeout.
			h.mu.Lock()
			cur := h.lease.Clone()
			h.mu.Unlock()
			err = h.checkpointLocked(ctx, keepCheckpoint(cur), false)
		}
		h.mu.Lock()
		h.loseLocked(ErrStopping)
		h.mu.Unlock()
		return err
	}
}

// keepCheckpoint is the update that rewrites l's checkpoint and pending
// checkpoint unchanged: written to complete a handoff without moving them.
func keepCheckpoint(l lease.Lease) lease.CheckpointUpdate {
	return lease.CheckpointUpdate{
		Checkpoint:             l.Checkpoint,
		PendingCheckpoint:      l.PendingCheckpoint,
		PendingCheckpointState: l.PendingCheckpointState,
	}
}
