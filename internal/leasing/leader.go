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

// This file is leader election for kcl-fleet coordination (DESIGN.md,
// "Fleet-scale coordination", Timing): the lease rule applied to the leader
// lock. It is not wired into the Coordinator yet.

var (
	// ErrLeadershipExpired is the cause passed to the lost callback when the
	// leader could not renew the lock before its deadline (the lock
	// duration minus the margin after its last successful renewal's send):
	// another worker may acquire the lock from then on. It matches
	// lease.ErrLeaseLost.
	ErrLeadershipExpired error = &wrapSentinel{msg: "lease: leader lock not renewed before the leader's deadline", parent: lease.ErrLeaseLost}
	// ErrLeaderStopped is the cause passed to the lost callback when the
	// elector's Run ends while it leads: it steps down, then releases the
	// lock.
	ErrLeaderStopped = errors.New("lease: leader elector stopped")
)

// LeaderOption configures a LeaderElector.
type LeaderOption func(*leaderOptions)

type leaderOptions struct {
	duration  time.Duration
	margin    time.Duration
	marginSet bool
	poll      time.Duration // 0: duration / 3
	gained    func(epoch int64)
	lost      func(epoch int64, cause error)
	observed  func(lease.LeaderLock)
	logger    *zap.Logger
}

// WithLockDuration sets how long the leader lock stays valid without
// renewal: another worker acquires it once it has seen its version
// unchanged for this long on its own clock. The leader renews every third of
// it. Default DefaultFailoverTime (2 s).
func WithLockDuration(d time.Duration) LeaderOption {
	return func(o *leaderOptions) { o.duration = d }
}

// WithLeaderMargin sets m: the leader steps down at the send time of its
// last successful renewal + the lock duration − m. For tests; default as for
// leases, max(duration / 100, 200 ms), a tenth of the duration under 2 s.
func WithLeaderMargin(d time.Duration) LeaderOption {
	return func(o *leaderOptions) { o.margin, o.marginSet = d, true }
}

// WithLeaderPollInterval sets how often a worker that does not lead reads
// the lock. A released lock is acquired within one interval; a lock left by
// a dead leader within the lock duration after the first read that saw its
// last version (the elector also wakes at that instant). Default: a third of
// the lock duration.
func WithLeaderPollInterval(d time.Duration) LeaderOption {
	return func(o *leaderOptions) { o.poll = d }
}

// WithLeaderCallbacks sets the functions called when this worker becomes
// the leader (with the lock's epoch, the fencing token of this leadership)
// and when it stops leading (with the same epoch and the cause: an error
// matching ErrLeadershipExpired, lease.ErrLeaseLost for a renewal that lost
// the lock, or ErrLeaderStopped). Calls alternate, gained first, and each
// lost is called before the next gained; lost is called at the instant the
// leadership ends, before any other worker may acquire the lock. They run
// synchronously on the elector's goroutines and must be fast: hand the
// leader's work to another goroutine, and stop it from lost. They must not
// call the elector except Leader. Default: none.
func WithLeaderCallbacks(gained func(epoch int64), lost func(epoch int64, cause error)) LeaderOption {
	return func(o *leaderOptions) { o.gained, o.lost = gained, lost }
}

// WithLeaderObserver sets a function called with the lock after each read of
// it by this elector while it does not lead (lease.LeaderLock.Owner "" for a
// released lock). It runs synchronously on Run's goroutine and must be fast.
// Default: none.
func WithLeaderObserver(f func(lease.LeaderLock)) LeaderOption {
	return func(o *leaderOptions) { o.observed = f }
}

// WithLeaderLogger sets the logger. Default: no logging.
func WithLeaderLogger(l *zap.Logger) LeaderOption {
	return func(o *leaderOptions) { o.logger = l }
}

func (o *leaderOptions) validate() error {
	if err := validateDeadline("WithLockDuration", o.duration, "WithLeaderMargin", &o.margin, o.marginSet, "lock duration"); err != nil {
		return err
	}
	if o.poll == 0 {
		o.poll = o.duration / 3
	}
	if o.poll <= 0 {
		return optErr("WithLeaderPollInterval", o.poll, "must be positive")
	}
	if o.gained == nil {
		o.gained = func(int64) {}
	}
	if o.lost == nil {
		o.lost = func(int64, error) {}
	}
	if o.observed == nil {
		o.observed = func(lease.LeaderLock) {}
	}
	if o.logger == nil {
		return &OptionError{Option: "WithLeaderLogger(nil)", Reason: "use zap.NewNop() for no logging"}
	}
	return nil
}

// LeaderElector competes for the leader lock (lease.FleetStore's
// AcquireLeader, RenewLeader, ReleaseLeader) with the rule of leases
// (DESIGN.md, "Expiry"), so that two electors never lead at the same instant
// under bounded clock-rate drift:
//
//   - It acquires the lock when it is absent, released, or unchanged (same
//     owner and version) for the lock duration on this process's monotonic
//     clock since this elector first read that version; the acquisition is
//     conditioned on that version.
//   - It leads from a successful acquisition until the send time of its last
//     successful write of the lock (acquisition or renewal) + the lock
//     duration − the margin, on its own clock; a timer ends the leadership
//     at that instant, whatever write is in flight. It renews every third of
//     the lock duration, so one failed renewal is retried in time, and steps
//     down at once when a renewal fails its condition.
//   - When Run's context ends it steps down and then releases the lock, so
//     another elector acquires it within one poll interval.
//
// A renewal that failed with a transport error but landed makes the next
// renewal fail its condition, and the leader steps down; it does not re-read
// the lock to recover its leadership.
type LeaderElector struct {
	store lease.FleetStore
	id    string
	o     leaderOptions
	wake  chan struct{} // the expiry timer tells Run that the leadership ended
	poll  atomic.Int64  // the follower's poll interval (SetPollInterval)

	// cbMu serialises the transitions (gain, step down) with their callbacks,
	// so that callbacks are called in the order of the transitions. It is
	// taken before mu.
	cbMu sync.Mutex
	// mu guards the fields below; it is never held across I/O or callbacks.
	mu       sync.Mutex
	leading  bool
	lock     lease.LeaderLock // as last written by this elector, while leading
	deadline time.Time
	expiry   *time.Timer
}

// NewLeaderElector returns an elector for worker id. It starts nothing; Run
// does.
func NewLeaderElector(store lease.FleetStore, id string, opts ...LeaderOption) (*LeaderElector, error) {
	o := leaderOptions{duration: DefaultFailoverTime, logger: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, &OptionError{Option: "id(\"\")", Reason: "must not be empty"}
	}
	o.logger = o.logger.With(zap.String("worker_id", id))
	e := &LeaderElector{store: store, id: id, o: o, wake: make(chan struct{}, 1)}
	e.poll.Store(int64(o.poll))
	return e, nil
}

// SetPollInterval changes how often the elector reads the lock while it does
// not lead; a shorter interval than the current one takes effect at once
// (the elector reads the lock now). It is safe for concurrent use.
func (e *LeaderElector) SetPollInterval(d time.Duration) {
	if d <= 0 {
		return
	}
	if old := time.Duration(e.poll.Swap(int64(d))); d < old {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

func (e *LeaderElector) pollInterval() time.Duration { return time.Duration(e.poll.Load()) }

// Leader reports whether this elector leads now, and the epoch of its
// leadership. It is safe for concurrent use, and from the callbacks.
func (e *LeaderElector) Leader() (epoch int64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading || !time.Now().Before(e.deadline) {
		return 0, false
	}
	return e.lock.Epoch, true
}

// Run competes for the lock until ctx ends, then steps down and releases
// the lock if it leads, and returns nil once it has. The release is the
// elector's one write after ctx ended: it runs under drain (the Worker's
// drain context, as for Coordinator.Run), bounded by the lock duration; if
// drain has ended too, the lock is left to expire. Call Run once.
func (e *LeaderElector) Run(ctx, drain context.Context) error {
	var (
		obs   leaderObservation
		timer = time.NewTimer(0)
	)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			e.stop(drain)
			return nil
		case <-e.wake:
			timer.Stop()
		case <-timer.C:
		}
		var next time.Time
		if lock, ok := e.current(); ok {
			next = e.renew(ctx, lock)
		} else {
			next = e.follow(ctx, &obs)
		}
		timer.Reset(time.Until(next))
	}
}

// leaderObservation is the lock as a non-leading elector last read it, and
// when it first read that version.
type leaderObservation struct {
	lock  lease.LeaderLock
	since time.Time
	valid bool
}

// current returns the lock while this elector leads.
func (e *LeaderElector) current() (lease.LeaderLock, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lock, e.leading
}

// follow reads the lock, acquires it if the rule allows, and returns when to
// look again.
func (e *LeaderElector) follow(ctx context.Context, obs *leaderObservation) time.Time {
	l, err := e.store.Leader(ctx)
	now := time.Now() // after the read: no earlier than the write it saw landed
	switch {
	case errors.Is(err, lease.ErrNotFound):
		return e.acquire(ctx, nil)
	case err != nil:
		if ctx.Err() == nil {
			e.o.logger.Warn("reading the leader lock failed", zapErr(err))
		}
		return now.Add(e.pollInterval())
	case l.Owner == "":
		e.o.observed(l)
		return e.acquire(ctx, &l)
	}
	e.o.observed(l)
	if !obs.valid || obs.lock.Owner != l.Owner || obs.lock.Version != l.Version {
		*obs = leaderObservation{lock: l, since: now, valid: true}
	}
	if expires := obs.since.Add(e.o.duration); now.Before(expires) {
		if p := e.pollInterval(); p > e.o.duration {
			// A slow poller (not a standby of a kcl fleet) does not wake at
			// the expiry: it takes the lock over at its first read after it.
			return now.Add(p)
		}
		return minTime(now.Add(e.pollInterval()), expires)
	}
	e.o.logger.Info("leader lock unchanged for the lock duration: taking it over",
		zap.String("leader", l.Owner), zap.Int64("epoch", l.Epoch))
	return e.acquire(ctx, &l)
}

// acquire makes one conditional acquisition of the lock (seen nil: the lock
// must be absent) and returns when to act next.
func (e *LeaderElector) acquire(ctx context.Context, seen *lease.LeaderLock) time.Time {
	wctx, cancel := context.WithTimeout(ctx, e.o.duration-e.o.margin)
	defer cancel()
	sent := time.Now()
	l, err := e.store.AcquireLeader(wctx, e.id, seen)
	if err != nil {
		if !errors.Is(err, lease.ErrConflict) && ctx.Err() == nil {
			e.o.logger.Warn("acquiring the leader lock failed", zapErr(err))
		}
		return time.Now().Add(e.pollInterval())
	}
	if !e.gain(sent, l) {
		return time.Now() // too late to lead on it: observe it as anyone would
	}
	return sent.Add(e.o.duration / 3)
}

// renew makes one renewal of the lock and returns when to act next.
func (e *LeaderElector) renew(ctx context.Context, lock lease.LeaderLock) time.Time {
	e.mu.Lock()
	deadline := e.deadline
	e.mu.Unlock()
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	sent := time.Now()
	l, err := e.store.RenewLeader(wctx, lock)
	switch {
	case err == nil:
		e.renewed(sent, lock.Epoch, l)
	case errors.Is(err, lease.ErrConflict):
		e.stepDown(lock.Epoch, false, fmt.Errorf("leasing: renewing the leader lock: %w", err))
		return time.Now()
	case ctx.Err() == nil:
		e.o.logger.Warn("renewing the leader lock failed", zapErr(err), zap.Int64("epoch", lock.Epoch))
	}
	return sent.Add(e.o.duration / 3)
}

// gain starts a leadership on l, acquired by a write sent at sent, unless
// its deadline has already passed. It reports whether it did.
func (e *LeaderElector) gain(sent time.Time, l lease.LeaderLock) bool {
	e.cbMu.Lock()
	defer e.cbMu.Unlock()
	deadline := sent.Add(e.o.duration - e.o.margin)
	e.mu.Lock()
	if !time.Now().Before(deadline) {
		e.mu.Unlock()
		e.o.logger.Warn("leader lock acquired too late to lead on it", zap.Int64("epoch", l.Epoch))
		return false
	}
	select {
	case <-e.wake: // a previous leadership's end, already handled by Run
	default:
	}
	e.leading, e.lock, e.deadline = true, l, deadline
	epoch := l.Epoch
	e.expiry = time.AfterFunc(time.Until(deadline), func() { e.stepDown(epoch, true, ErrLeadershipExpired) })
	e.mu.Unlock()
	e.o.logger.Info("leading", zap.Int64("epoch", epoch))
	e.o.gained(epoch)
	return true
}

// renewed moves the deadline after a renewal sent at sent succeeded, unless
// the leadership of epoch ended first.
func (e *LeaderElector) renewed(sent time.Time, epoch int64, l lease.LeaderLock) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading || e.lock.Epoch != epoch || !time.Now().Before(e.deadline) {
		return // the expiry timer ends it, if it has not yet
	}
	e.lock = l
	if d := sent.Add(e.o.duration - e.o.margin); d.After(e.deadline) {
		e.deadline = d
		e.expiry.Reset(time.Until(d))
	}
}

// stepDown ends the leadership of epoch with cause. With onlyIfExpired (the
// expiry timer) it does so only once the deadline has passed: a renewal may
// have moved it after the timer fired.
func (e *LeaderElector) stepDown(epoch int64, onlyIfExpired bool, cause error) {
	e.cbMu.Lock()
	defer e.cbMu.Unlock()
	e.mu.Lock()
	if !e.leading || e.lock.Epoch != epoch || (onlyIfExpired && time.Now().Before(e.deadline)) {
		e.mu.Unlock()
		return
	}
	e.leading = false
	e.expiry.Stop()
	e.mu.Unlock()
	if errors.Is(cause, ErrLeaderStopped) {
		e.o.logger.Info("stepping down", zap.Int64("epoch", epoch), zap.NamedError("cause", cause))
	} else {
		e.o.logger.Warn("leadership lost", zap.Int64("epoch", epoch), zap.NamedError("cause", cause))
	}
	e.o.lost(epoch, cause)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// stop steps down and releases the lock if this elector leads: after the
// step down, so that no leader work overlaps the next leader's.
func (e *LeaderElector) stop(drain context.Context) {
	lock, ok := e.current()
	if !ok {
		return
	}
	e.stepDown(lock.Epoch, false, ErrLeaderStopped)
	rctx, cancel := context.WithTimeout(drain, e.o.duration)
	defer cancel()
	if err := e.store.ReleaseLeader(rctx, lock); err != nil {
		e.o.logger.Warn("releasing the leader lock failed", zapErr(err), zap.Int64("epoch", lock.Epoch))
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
