package leasing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/lease"
)

// This file is the worker's side of kcl-fleet liveness (DESIGN.md,
// "Fleet-scale coordination", Timing): one heartbeat write every interval,
// and the worker's own deadline, by which it stops processing every shard if
// no heartbeat succeeded. It is not wired into the Coordinator yet.

// DefaultFailoverTime is F, the failover time of a kcl fleet: the leader
// declares a worker dead once its heartbeat counter has not changed for F on
// the leader's clock, and the leader lock lasts F.
const DefaultFailoverTime = 2 * time.Second

var (
	// ErrHeartbeatExpired is the cause with which a Heartbeater's context is
	// cancelled when no heartbeat sent in the last failover time minus the
	// margin succeeded: the leader may declare the worker dead and assign
	// its leases, so the worker must stop processing every shard. It
	// matches lease.ErrLeaseLost, so code that handles a lost lease handles
	// it too.
	ErrHeartbeatExpired error = &wrapSentinel{msg: "lease: heartbeat not written before the worker's deadline", parent: lease.ErrLeaseLost}
	// ErrHeartbeatFenced is the cause with which a Heartbeater's context is
	// cancelled when a heartbeat returned the leader's fence of this
	// incarnation (lease.FleetStore.Fence): the leader judged the worker
	// dead and is reassigning its leases. It matches lease.ErrLeaseLost.
	ErrHeartbeatFenced error = &wrapSentinel{msg: "lease: heartbeat fenced by the leader", parent: lease.ErrLeaseLost}
	// ErrHeartbeatStopped is the cause with which a Heartbeater's context is
	// cancelled when its Run returns because its context ended: nothing
	// proves the worker alive any more.
	ErrHeartbeatStopped = errors.New("lease: heartbeater stopped")
)

// HeartbeatOption configures a Heartbeater.
type HeartbeatOption func(*heartbeatOptions)

type heartbeatOptions struct {
	failover    time.Duration
	interval    time.Duration // 0: failover / 5
	margin      time.Duration
	marginSet   bool
	leaseCount  func() int
	epochChange func(epoch int64)
	standby     func(standby bool)
	logger      *zap.Logger
}

// WithFailoverTime sets F: a worker whose heartbeat has not changed for F is
// dead to the leader. Default DefaultFailoverTime (2 s).
func WithFailoverTime(d time.Duration) HeartbeatOption {
	return func(o *heartbeatOptions) { o.failover = d }
}

// WithHeartbeatInterval sets H, how often the heartbeat is written. It must
// be less than half of F minus the margin, so that one failed heartbeat is
// retried before the worker's deadline. Default F / 5.
func WithHeartbeatInterval(d time.Duration) HeartbeatOption {
	return func(o *heartbeatOptions) { o.interval = d }
}

// WithHeartbeatMargin sets m: the worker's deadline is the send time of its
// last successful heartbeat + F − m. For tests; default as for leases,
// max(F / 100, 200 ms), a tenth of F under 2 s (DESIGN.md, "Expiry").
func WithHeartbeatMargin(d time.Duration) HeartbeatOption {
	return func(o *heartbeatOptions) { o.margin, o.marginSet = d, true }
}

// WithLeaseCount sets the function whose result each heartbeat writes as the
// number of leases the worker holds. It is called on Run's goroutine before
// every heartbeat and must be fast. Default: always 0.
func WithLeaseCount(f func() int) HeartbeatOption {
	return func(o *heartbeatOptions) { o.leaseCount = f }
}

// WithAssignEpochChange sets the function called with the heartbeat's
// AssignEpoch after the first successful heartbeat and after each later one
// that returned a different AssignEpoch: the leader changed this worker's
// assignments, and the worker should read its leases from the owner index.
// Several changes between two heartbeats are reported once, with the latest
// epoch. It is called synchronously on Run's goroutine and must be fast (hand
// the work to another goroutine); no heartbeat is written while it runs.
// Default: none.
func WithAssignEpochChange(f func(epoch int64)) HeartbeatOption {
	return func(o *heartbeatOptions) { o.epochChange = f }
}

// WithStandbyChange sets the function called with the heartbeat's Standby
// flag after the first successful heartbeat and after each later one that
// returned a different flag. It is called like WithAssignEpochChange's
// function and must be as fast. Default: none.
func WithStandbyChange(f func(standby bool)) HeartbeatOption {
	return func(o *heartbeatOptions) { o.standby = f }
}

// WithHeartbeatLogger sets the logger. Default: no logging.
func WithHeartbeatLogger(l *zap.Logger) HeartbeatOption {
	return func(o *heartbeatOptions) { o.logger = l }
}

func (o *heartbeatOptions) validate() error {
	if err := validateDeadline("WithFailoverTime", o.failover, "WithHeartbeatMargin", &o.margin, o.marginSet, "failover time"); err != nil {
		return err
	}
	if o.interval == 0 {
		o.interval = o.failover / 5
	}
	if o.interval <= 0 || o.interval >= (o.failover-o.margin)/2 {
		return optErr("WithHeartbeatInterval", o.interval, "must be positive and less than half of the failover time (%v) minus the margin (%v), so that a failed heartbeat is retried before the worker's deadline",
			o.failover, o.margin)
	}
	if o.leaseCount == nil {
		o.leaseCount = func() int { return 0 }
	}
	if o.epochChange == nil {
		o.epochChange = func(int64) {}
	}
	if o.standby == nil {
		o.standby = func(bool) {}
	}
	if o.logger == nil {
		return &OptionError{Option: "WithHeartbeatLogger(nil)", Reason: "use zap.NewNop() for no logging"}
	}
	return nil
}

// Heartbeater writes one worker's heartbeat (lease.FleetStore.Beat) every
// interval and keeps the worker's own deadline: the send time, on this
// process's monotonic clock, of the last heartbeat that succeeded + F − m.
// At that deadline, unless a heartbeat sent later has succeeded, the context
// returned by Context is cancelled with ErrHeartbeatExpired: the worker's
// self-fencing, which comes before the leader, measuring F from its first
// read of that heartbeat (after it landed, so after it was sent), may
// declare the worker dead. A heartbeat in flight at the deadline does not
// extend it; one that succeeds counts from its send time, never from when it
// returned.
//
// Create one with NewHeartbeater, then call Run once. State and lease count
// are read when each heartbeat is sent; SetState is safe for concurrent use.
type Heartbeater struct {
	store    lease.FleetStore
	workerID string
	o        heartbeatOptions

	ctx    context.Context
	cancel context.CancelCauseFunc
	ready  chan struct{} // closed after the first successful heartbeat

	state atomic.Uint32 // a lease.WorkerState
	gen   atomic.Uint64 // grows at every SetState; a beat that read gen g wrote a state set at or after g
	nudge chan struct{} // SetState asks Run to beat at once

	// mu guards the fields below; it is never held across I/O.
	mu       sync.Mutex
	deadline time.Time // the worker's deadline; zero before Run
	expiry   *time.Timer
	expired  bool
	lastGen  uint64        // the gen the last successful heartbeat read when it was sent
	lastBeat time.Time     // send time of the last successful heartbeat
	proof    chan struct{} // closed (and replaced) at every successful heartbeat
}

// NewHeartbeater returns a Heartbeater for workerID, in state
// lease.WorkerStarting. Its context (Context) is a child of parent: the
// contexts of the worker's shards should derive from it. It starts nothing;
// Run does.
func NewHeartbeater(parent context.Context, store lease.FleetStore, workerID string, opts ...HeartbeatOption) (*Heartbeater, error) {
	o := heartbeatOptions{failover: DefaultFailoverTime, logger: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if workerID == "" {
		return nil, &OptionError{Option: "workerID(\"\")", Reason: "must not be empty"}
	}
	ctx, cancel := context.WithCancelCause(parent)
	h := &Heartbeater{
		store:    store,
		workerID: workerID,
		o:        o,
		ctx:      ctx,
		cancel:   cancel,
		ready:    make(chan struct{}),
		nudge:    make(chan struct{}, 1),
		proof:    make(chan struct{}),
	}
	h.o.logger = o.logger.With(zap.String("worker_id", workerID))
	h.state.Store(uint32(lease.WorkerStarting))
	return h, nil
}

// Context returns the worker's liveness context. It is cancelled with a
// cause matching ErrHeartbeatExpired at the worker's deadline, with
// ErrHeartbeatStopped when Run returns because its context ended, or with
// parent's cause. Process nothing under it before Ready is closed: until the
// first heartbeat succeeds nothing proves the worker alive (if none does,
// the context is cancelled F − m after Run started).
func (h *Heartbeater) Context() context.Context { return h.ctx }

// Ready returns a channel closed once the first heartbeat has succeeded.
func (h *Heartbeater) Ready() <-chan struct{} { return h.ready }

// Deadline returns the worker's current deadline: F − m after the send time
// of the last successful heartbeat (after Run's start before the first one).
// It is the zero time before Run.
func (h *Heartbeater) Deadline() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deadline
}

// LastBeat returns the send time of the last heartbeat that succeeded,
// zero before the first.
func (h *Heartbeater) LastBeat() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastBeat
}

// SetState sets the state the next heartbeats write. A change is written at
// once (by Run's goroutine, without waiting for the next interval), so that
// the leader stops assigning to a stopping worker without delay. It never
// blocks.
func (h *Heartbeater) SetState(s lease.WorkerState) {
	if lease.WorkerState(h.state.Swap(uint32(s))) == s {
		return
	}
	h.gen.Add(1)
	select {
	case h.nudge <- struct{}{}:
	default:
	}
}

// State returns the state the heartbeats write.
func (h *Heartbeater) State() lease.WorkerState { return lease.WorkerState(h.state.Load()) }

// Run writes the heartbeat at once and then every interval until ctx ends or
// the worker's deadline passes. Each heartbeat is sent an interval after the
// previous one was sent (at once if that one took longer) and may take one
// interval before it is abandoned for the next. Run returns nil after ctx
// ended (the context of Context is then cancelled with ErrHeartbeatStopped),
// or an error matching ErrHeartbeatExpired once the deadline passed: a worker
// that outlived its deadline must not beat again under this Heartbeater, or
// the leader would count alive a worker that has stopped its shards. Call
// Run once.
func (h *Heartbeater) Run(ctx context.Context) error {
	h.mu.Lock()
	h.deadline = time.Now().Add(h.o.failover - h.o.margin)
	h.expiry = time.AfterFunc(time.Until(h.deadline), h.checkExpiry)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.expiry.Stop()
		h.mu.Unlock()
	}()

	var (
		epoch     int64
		standby   bool
		haveEpoch bool
		c0        int64 // the counter of this incarnation's first successful heartbeat
		timer     = time.NewTimer(0)
	)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			h.cancel(ErrHeartbeatStopped)
			return nil
		case <-h.ctx.Done():
			return fmt.Errorf("leasing: heartbeat of %q: %w", h.workerID, context.Cause(h.ctx))
		case <-h.nudge:
			timer.Stop()
		case <-timer.C:
		}
		sent, gen := time.Now(), h.gen.Load()
		hb, err := h.beat(ctx)
		if err != nil {
			if ctx.Err() == nil {
				h.o.logger.Warn("heartbeat failed", zapErr(err))
			}
		} else if c0 != 0 && hb.Fenced >= c0 {
			// The leader fenced this incarnation (the fence names a counter
			// of it): the beat proves nothing, the worker stops.
			h.fenced()
		} else if h.proved(sent, gen) {
			if c0 == 0 {
				c0 = hb.Counter
			}
			first := !haveEpoch
			if first || hb.AssignEpoch != epoch {
				epoch, haveEpoch = hb.AssignEpoch, true
				h.o.epochChange(epoch)
			}
			if first || hb.Standby != standby {
				standby = hb.Standby
				h.o.standby(standby)
			}
		}
		timer.Reset(time.Until(sent.Add(h.o.interval)))
	}
}

// beat sends one heartbeat, abandoned after one interval.
func (h *Heartbeater) beat(ctx context.Context) (lease.Heartbeat, error) {
	ctx, cancel := context.WithTimeout(ctx, h.o.interval)
	defer cancel()
	return h.store.Beat(ctx, h.workerID, h.State(), h.o.leaseCount())
}

// proved moves the deadline to sent + F − m after a heartbeat sent at sent
// succeeded, unless the deadline passed first. It reports whether it did.
func (h *Heartbeater) proved(sent time.Time, gen uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.expired {
		return false
	}
	if d := sent.Add(h.o.failover - h.o.margin); d.After(h.deadline) {
		h.deadline = d
		h.expiry.Reset(time.Until(d))
	}
	h.lastGen = max(h.lastGen, gen)
	if sent.After(h.lastBeat) {
		h.lastBeat = sent
	}
	close(h.proof)
	h.proof = make(chan struct{})
	select {
	case <-h.ready:
	default:
		close(h.ready)
	}
	return true
}

// Flush writes a heartbeat now and returns once a heartbeat that carries the
// state of the last SetState before the call has succeeded, so that the
// state is stored: a stopping worker calls it before it reads its peers'
// states. It returns
// ctx's cause if ctx ends first, or ErrHeartbeatExpired (wrapped) if the
// worker's deadline passes first.
func (h *Heartbeater) Flush(ctx context.Context) error {
	want := h.gen.Load()
	select {
	case h.nudge <- struct{}{}:
	default:
	}
	for {
		h.mu.Lock()
		done, wait := h.lastGen >= want, h.proof
		h.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wait:
		case <-h.ctx.Done():
			return fmt.Errorf("leasing: heartbeat of %q: %w", h.workerID, context.Cause(h.ctx))
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// fenced ends the incarnation at once: the leader fenced it.
func (h *Heartbeater) fenced() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.expired {
		return
	}
	h.expired = true
	h.expiry.Stop()
	h.cancel(ErrHeartbeatFenced)
	h.o.logger.Error("heartbeat fenced by the leader, which judged this worker dead: stopping every shard")
}

// checkExpiry runs on the expiry timer's goroutine: it cancels the context
// if the deadline has passed (a heartbeat may have moved it after the timer
// fired).
func (h *Heartbeater) checkExpiry() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.expired || time.Now().Before(h.deadline) {
		return
	}
	h.expired = true
	h.cancel(ErrHeartbeatExpired)
	h.o.logger.Error("heartbeat deadline passed: stopping every shard", zap.Time("deadline", h.deadline))
}
