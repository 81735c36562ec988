package leasing

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// Defaults for a Coordinator. With them a crashed worker's leases are taken
// about LeaseDuration after its last renewal (at most LeaseDuration +
// TakeInterval, 12 s; the taker wakes at the earliest observed expiry), a
// gracefully stopped worker's leases within AssignmentPollInterval, and a
// joining worker reaches its fair share in one taker pass plus the holders'
// handoff time.
//
// DefaultLeaseDuration is KCL's failoverTimeMillis (10 s), not less: a Java
// KCL worker counts its lease valid for its own failover time after its last
// renewal, so a kcl worker sharing its table with a shorter duration would
// take leases their Java holders still process. Failover stays fast by other
// means: a short take interval and the expiry wake-up (KCL 2.x scans every
// 2 × (failover + 25 ms) ≈ 20 s, hence its 20–40 s failovers).
const (
	DefaultLeaseDuration          = 10 * time.Second
	DefaultTakeInterval           = 2 * time.Second
	DefaultAssignmentPollInterval = 500 * time.Millisecond
	DefaultRenewConcurrency       = 32
)

// The expiry margin: a holder stops (its lease's context is cancelled,
// Valid reports false, WriteCheckpoint refuses) this long before the earliest
// instant at which any observer may take its lease. See DESIGN.md, "Expiry".
// The default is max(leaseDuration / marginDriftBound, minExpiryMargin), the
// floor cut to a tenth of the lease duration under 2 s:
//   - minExpiryMargin absorbs the holder's own lateness in stopping: its
//     expiry timer's goroutine runs late under CPU starvation, GC pauses or
//     a loaded scheduler, by milliseconds and rarely by tens of them. 200 ms
//     is an order of magnitude above that, and 2 % of the default 10 s lease
//     (renewals every lease duration / 3 never come near it).
//   - marginDriftBound absorbs the clock-rate difference between holder and
//     observer. Both measure on their monotonic clocks, so no offset matters,
//     only rates: NTP slews a clock by at most 500 ppm, so two disciplined
//     clocks differ by at most 1,000 ppm (an undisciplined quartz drifts by
//     about 100 ppm). 1 % is ten times the worst disciplined case; it exceeds
//     the floor only for leases over 20 s (600 ms at 60 s).
//   - The floor is cut under 2 s so that short test leases keep the default
//     renew interval valid.
const (
	minExpiryMargin  = 200 * time.Millisecond
	marginDriftBound = 100 // 1 %: the margin is at least leaseDuration / 100
)

// defaultExpiryMargin returns the expiry margin for a lease duration when
// none is set.
func defaultExpiryMargin(leaseDuration time.Duration) time.Duration {
	return max(leaseDuration/marginDriftBound, min(minExpiryMargin, leaseDuration/10))
}

type options struct {
	leaseDuration    time.Duration
	expiryMargin     time.Duration // set by validate unless expiryMarginSet
	expiryMarginSet  bool
	renewInterval    time.Duration // 0: leaseDuration / 3
	takeInterval     time.Duration
	pollInterval     time.Duration
	handoffTimeout   time.Duration // 0: leaseDuration
	maxLeases        int
	renewConcurrency int
	logger           *zap.Logger
	rand             *rand.Rand

	// kcl-fleet mode (fleet.go): zero fleet means per-lease renewal.
	fleet        bool
	failover     time.Duration // F; 0: DefaultFailoverTime
	heartbeat    time.Duration // H; 0: F / 5
	round        time.Duration // the leader's round interval: F / 4
	leaderScan   time.Duration // the leader's periodic table scan; 0: DefaultLeaderScanInterval
	slowLockPoll time.Duration // how often a non-standby follower reads the leader lock; 0: DefaultSlowLockPoll

	// A KCL 3.x fleet's leader lock (kcl3.go), in per-lease mode.
	kcl3Duration, kcl3Beat, kcl3Poll time.Duration
}

func defaultOptions() options {
	return options{
		leaseDuration:    DefaultLeaseDuration,
		takeInterval:     DefaultTakeInterval,
		pollInterval:     DefaultAssignmentPollInterval,
		renewConcurrency: DefaultRenewConcurrency,
		logger:           zap.NewNop(),
		kcl3Duration:     KCL3LockDuration,
		kcl3Beat:         KCL3LockHeartbeat,
		kcl3Poll:         KCL3LockPoll,
	}
}

// Option configures a Coordinator. The consumer package maps its own
// options onto these; they are not part of kcl's API.
type Option func(*options)

// WithLeaseDuration sets how long a lease stays valid without renewal
// (KCL's failoverTimeMillis). Default 10 s, KCL's: see DefaultLeaseDuration.
func WithLeaseDuration(d time.Duration) Option { return func(o *options) { o.leaseDuration = d } }

// WithExpiryMargin sets how long before an observer may take a lease its
// holder stops: the holder's deadline is the start of its last proof of
// ownership + lease duration − margin. It is for tests and simulations (0
// shows what the margin prevents); the consumer package does not expose it.
// Default: max(1 % of the lease duration, 200 ms), or a tenth of the lease
// duration under 2 s.
func WithExpiryMargin(d time.Duration) Option {
	return func(o *options) { o.expiryMargin, o.expiryMarginSet = d, true }
}

// WithRenewInterval sets how often held leases are renewed. It must be less
// than half of the lease duration minus the expiry margin, so that one failed
// renewal can be retried before the holder's deadline. Default: a third of
// the lease duration.
func WithRenewInterval(d time.Duration) Option { return func(o *options) { o.renewInterval = d } }

// WithTakeInterval sets how often the taker reads the whole table to find
// unowned and expired leases and to rebalance. A crashed worker's leases are
// taken within LeaseDuration + TakeInterval; each pass costs one table scan.
// Default 2 s.
func WithTakeInterval(d time.Duration) Option { return func(o *options) { o.takeInterval = d } }

// WithAssignmentPollInterval sets how often the coordinator checks for leases
// handed to it (a graceful stop assigns leases to peers; a handoff completes)
// through the store's owner index, when the store has one. Default 500 ms.
func WithAssignmentPollInterval(d time.Duration) Option {
	return func(o *options) { o.pollInterval = d }
}

// WithHandoffTimeout sets how long a worker waits for an owner to hand over a
// lease it asked for before taking it anyway. It must be at least the lease
// duration: only then has the unresponsive owner stopped processing by its own
// clock. Default: the lease duration.
func WithHandoffTimeout(d time.Duration) Option { return func(o *options) { o.handoffTimeout = d } }

// WithMaxLeases caps the leases this worker holds; 0 (the default) means no
// cap.
func WithMaxLeases(n int) Option { return func(o *options) { o.maxLeases = n } }

// WithRenewConcurrency bounds the renewals in flight at once. Default 32.
func WithRenewConcurrency(n int) Option { return func(o *options) { o.renewConcurrency = n } }

// WithLogger sets the logger. Default: no logging.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

// WithRand sets the source used to shuffle candidate leases (for
// reproducible simulations). Default: a randomly seeded source.
func WithRand(r *rand.Rand) Option { return func(o *options) { o.rand = r } }

// WithFleet switches the coordinator to kcl-fleet coordination (DESIGN.md,
// "Fleet-scale coordination"): the store must implement lease.FleetStore;
// the worker proves it is alive with one heartbeat write every heartbeat
// interval instead of renewing each lease, an elected leader assigns the
// leases, and followers read only their own leases. failover is F, the
// time after which the leader declares a worker whose heartbeat stood still
// dead (0: DefaultFailoverTime, 2 s); heartbeat is H (0: F / 5). The leader
// reads the heartbeats every F / 4. In this mode
// the lease duration, renew and take intervals do not apply.
func WithFleet(failover, heartbeat time.Duration) Option {
	return func(o *options) { o.fleet, o.failover, o.heartbeat = true, failover, heartbeat }
}

// WithLeaderScanInterval sets how often a kcl-fleet leader reads the whole
// lease table when nothing it watches changed (it reads it at once when a
// worker joins, leaves, dies or changes state). Default 30 s.
func WithLeaderScanInterval(d time.Duration) Option { return func(o *options) { o.leaderScan = d } }

// WithKCL3Lock sets, in per-lease mode on a Java KCL 3.x fleet's table, the
// lease a kcl leader states on the fleet's leader lock, how often it renews
// it, and how often a worker that does not lead reads it. Defaults
// KCL3LockDuration, KCL3LockHeartbeat, KCL3LockPoll; the lease must be at
// least twice the heartbeat, as the lock client requires.
func WithKCL3Lock(duration, heartbeat, poll time.Duration) Option {
	return func(o *options) { o.kcl3Duration, o.kcl3Beat, o.kcl3Poll = duration, heartbeat, poll }
}

// WithSlowLockPoll sets how often a kcl-fleet worker that is not one of the
// leader's standbys reads the leader lock. Default 20 s.
func WithSlowLockPoll(d time.Duration) Option { return func(o *options) { o.slowLockPoll = d } }

// OptionError reports an invalid option: Option names it with its value,
// Reason says what is wrong.
type OptionError struct {
	Option string
	Reason string
}

func (e *OptionError) Error() string { return "leasing: " + e.Option + ": " + e.Reason }

func optErr(option string, value any, reason string, args ...any) error {
	return &OptionError{Option: fmt.Sprintf("%s(%v)", option, value), Reason: fmt.Sprintf(reason, args...)}
}

// validateDeadline checks a duration d, set by option dOpt, by which a
// holder's deadline is counted, and its expiry margin m, set by mOpt: d
// must be positive; m, defaulted from d unless set, between 0 and a quarter
// of d (what names d in the message).
func validateDeadline(dOpt string, d time.Duration, mOpt string, m *time.Duration, set bool, what string) error {
	if d <= 0 {
		return optErr(dOpt, d, "must be positive")
	}
	if !set {
		*m = defaultExpiryMargin(d)
	}
	if *m < 0 || *m > d/4 {
		return optErr(mOpt, *m, "must be between 0 and a quarter of the %s (%v)", what, d)
	}
	return nil
}

func (o *options) validate() error {
	if err := validateDeadline("WithLeaseDuration", o.leaseDuration, "WithExpiryMargin", &o.expiryMargin, o.expiryMarginSet, "lease duration"); err != nil {
		return err
	}
	if o.renewInterval == 0 {
		o.renewInterval = o.leaseDuration / 3
	}
	if o.renewInterval <= 0 || o.renewInterval >= o.leaseDuration/2 {
		return optErr("WithRenewInterval", o.renewInterval, "must be positive and less than half the lease duration (%v)", o.leaseDuration)
	}
	if o.renewInterval >= (o.leaseDuration-o.expiryMargin)/2 {
		return optErr("WithRenewInterval", o.renewInterval, "must be less than half of the lease duration (%v) minus the expiry margin (%v), so that a failed renewal is retried before the holder's deadline",
			o.leaseDuration, o.expiryMargin)
	}
	if o.takeInterval <= 0 {
		return optErr("WithTakeInterval", o.takeInterval, "must be positive")
	}
	if o.pollInterval <= 0 {
		return optErr("WithAssignmentPollInterval", o.pollInterval, "must be positive")
	}
	if o.handoffTimeout == 0 {
		o.handoffTimeout = o.leaseDuration
	}
	if o.handoffTimeout < o.leaseDuration {
		return optErr("WithHandoffTimeout", o.handoffTimeout, "must be at least the lease duration (%v)", o.leaseDuration)
	}
	if o.maxLeases < 0 {
		return optErr("WithMaxLeases", o.maxLeases, "must not be negative")
	}
	if o.renewConcurrency <= 0 {
		return optErr("WithRenewConcurrency", o.renewConcurrency, "must be positive")
	}
	if o.logger == nil {
		return &OptionError{Option: "WithLogger(nil)", Reason: "use zap.NewNop() for no logging"}
	}
	if o.kcl3Beat <= 0 || o.kcl3Poll <= 0 || o.kcl3Duration < 2*o.kcl3Beat {
		return &OptionError{Option: fmt.Sprintf("WithKCL3Lock(%v, %v, %v)", o.kcl3Duration, o.kcl3Beat, o.kcl3Poll),
			Reason: "the heartbeat and poll must be positive and the lease at least twice the heartbeat"}
	}
	if o.rand == nil {
		o.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.fleet {
		return o.validateFleet()
	}
	return nil
}

func (o *options) validateFleet() error {
	if o.failover == 0 {
		o.failover = DefaultFailoverTime
	}
	if o.failover < 0 {
		return optErr("WithFleet", o.failover, "the failover time must be positive")
	}
	if o.failover < 100*time.Millisecond {
		return optErr("WithFleet", o.failover, "the failover time must be at least 100 ms")
	}
	if o.heartbeat == 0 {
		o.heartbeat = o.failover / 5
	}
	o.round = o.failover / 4
	m := defaultExpiryMargin(o.failover)
	if o.heartbeat <= 0 || o.heartbeat >= (o.failover-m)/2 {
		return optErr("WithFleet", o.heartbeat, "the heartbeat interval must be positive and less than half of the failover time (%v) minus the margin (%v)", o.failover, m)
	}
	if o.leaderScan == 0 {
		o.leaderScan = DefaultLeaderScanInterval
	}
	if o.leaderScan <= 0 {
		return optErr("WithLeaderScanInterval", o.leaderScan, "must be positive")
	}
	if o.slowLockPoll == 0 {
		o.slowLockPoll = DefaultSlowLockPoll
	}
	if o.slowLockPoll < o.failover/3 {
		return optErr("WithSlowLockPoll", o.slowLockPoll, "must be at least a third of the failover time (%v)", o.failover)
	}
	return nil
}
