package leasing

import (
	"time"

	"github.com/kclgo/kcl/lease"
)

// Liveness judges whether other workers' leases have expired. It is the seam
// for liveness models: the Coordinator uses an Observer (KCL's model: every
// lease's counter is its heartbeat); a heartbeat model with one write per
// worker per interval can implement the same three methods. Implementations
// are used by one goroutine, the taker.
type Liveness interface {
	// Observe records a snapshot of the whole table read at now.
	Observe(now time.Time, leases []lease.Lease)
	// Expired reports whether l, owned by another worker, has expired at now.
	Expired(now time.Time, l lease.Lease) bool
	// NextExpiry returns the earliest future time at which an observed lease
	// of another worker than self would expire, if any.
	NextExpiry(now time.Time, self string) (time.Time, bool)
}

var _ Liveness = (*Observer)(nil)

// Observer judges lease expiry the way KCL does, by local observation only:
// a lease owned by another worker is expired once this process has seen its
// counter stay unchanged for the lease duration on its own monotonic clock.
// Wall clocks of other machines are never consulted, so clock skew cannot
// make two workers believe they both own a shard.
//
// An Observer is a plain value owned by one goroutine (the taker); it is not
// safe for concurrent use.
type Observer struct {
	duration time.Duration
	seen     map[string]observation
}

type observation struct {
	counter int64
	owner   string
	since   time.Time // when this process first saw counter (monotonic reading)
}

// NewObserver returns an Observer for the given lease duration.
func NewObserver(leaseDuration time.Duration) *Observer {
	return &Observer{duration: leaseDuration, seen: make(map[string]observation)}
}

// Observe records a snapshot of the table taken at now (a time.Now reading,
// taken when the snapshot was read). A lease whose counter or owner differs
// from the last observation restarts its clock at now: the change happened at
// or before now, so measuring from now can only make expiry later, never
// earlier. Leases absent from the snapshot are forgotten.
func (o *Observer) Observe(now time.Time, leases []lease.Lease) {
	keep := make(map[string]observation, len(leases))
	for _, l := range leases {
		obs, ok := o.seen[l.Key]
		if !ok || obs.counter != l.Counter || obs.owner != l.Owner {
			obs = observation{counter: l.Counter, owner: l.Owner, since: now}
		}
		keep[l.Key] = obs
	}
	o.seen = keep
}

// ObserveOne records a single lease read at now (for example by a Get).
func (o *Observer) ObserveOne(now time.Time, l lease.Lease) {
	obs, ok := o.seen[l.Key]
	if !ok || obs.counter != l.Counter || obs.owner != l.Owner {
		o.seen[l.Key] = observation{counter: l.Counter, owner: l.Owner, since: now}
	}
}

// Expired reports whether l, as last observed, has an owner whose lease has
// not been renewed for the lease duration by now. Unowned leases are never
// "expired" (they are simply available). A lease never observed is not
// expired: a new process must watch a lease for a full duration first.
func (o *Observer) Expired(now time.Time, l lease.Lease) bool {
	if l.Owner == "" {
		return false
	}
	obs, ok := o.seen[l.Key]
	if !ok || obs.counter != l.Counter || obs.owner != l.Owner {
		return false
	}
	return now.Sub(obs.since) >= o.duration
}

// NextExpiry returns the earliest time after now at which an observed, owned
// lease not owned by self would expire if its counter stays unchanged, and
// false if there is none. The taker wakes up then instead of waiting for its
// next periodic pass, which keeps failover close to the lease duration.
func (o *Observer) NextExpiry(now time.Time, self string) (time.Time, bool) {
	var next time.Time
	found := false
	for _, obs := range o.seen {
		if obs.owner == "" || obs.owner == self {
			continue
		}
		at := obs.since.Add(o.duration)
		if !at.After(now) {
			continue // already expired: the current pass handles it
		}
		if !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}
