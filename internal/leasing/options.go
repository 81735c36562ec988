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

type options struct {
	leaseDuration    time.Duration
	renewInterval    time.Duration // 0: leaseDuration / 3
	takeInterval     time.Duration
	pollInterval     time.Duration
	handoffTimeout   time.Duration // 0: leaseDuration
	maxLeases        int
	renewConcurrency int
	logger           *zap.Logger
	rand             *rand.Rand
}

func defaultOptions() options {
	return options{
		leaseDuration:    DefaultLeaseDuration,
		takeInterval:     DefaultTakeInterval,
		pollInterval:     DefaultAssignmentPollInterval,
		renewConcurrency: DefaultRenewConcurrency,
		logger:           zap.NewNop(),
	}
}

// Option configures a Coordinator. The consumer package maps its own
// options onto these; they are not part of kcl's API.
type Option func(*options)

// WithLeaseDuration sets how long a lease stays valid without renewal
// (KCL's failoverTimeMillis). Default 10 s, KCL's: see DefaultLeaseDuration.
func WithLeaseDuration(d time.Duration) Option { return func(o *options) { o.leaseDuration = d } }

// WithRenewInterval sets how often held leases are renewed. It must be less
// than half the lease duration, so that one failed renewal can be retried
// before the lease expires. Default: a third of the lease duration.
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

func (o *options) validate() error {
	if o.leaseDuration <= 0 {
		return optErr("WithLeaseDuration", o.leaseDuration, "must be positive")
	}
	if o.renewInterval == 0 {
		o.renewInterval = o.leaseDuration / 3
	}
	if o.renewInterval <= 0 || o.renewInterval >= o.leaseDuration/2 {
		return optErr("WithRenewInterval", o.renewInterval, "must be positive and less than half the lease duration (%v)", o.leaseDuration)
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
	if o.rand == nil {
		o.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return nil
}
