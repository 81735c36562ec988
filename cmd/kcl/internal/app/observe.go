package app

import (
	"time"

	"github.com/kclgo/kcl/lease"
)

// Observer judges whether lease holders are alive the way KCL does: by
// watching each lease's counter on this process's clock, never by wall
// clocks. A holder renews its lease every few seconds (KCL: every lease
// duration / 3), and every renewal, take and checkpoint increments the
// counter; a counter that stood still for a lease duration belongs to a
// holder that stopped.
//
// Workers of a kcl fleet (DESIGN.md, "Fleet-scale coordination") do not
// renew their leases: each beats a heartbeat item of its own instead, and the
// leader reassigns the leases of a worker whose heartbeat stands still. The
// Observer watches those heartbeat counters too (ObserveWorkers), and counts
// a lease's holder alive when either moves.
//
// An Observer is not safe for concurrent use; the describe loop owns one.
type Observer struct {
	first time.Time // the first Observe
	seen  map[string]sighting
	// workers holds the heartbeats of kcl-fleet workers, by worker id.
	workers map[string]sighting
}

// sighting is what the observer knows of one lease.
type sighting struct {
	counter int64
	owner   string
	since   time.Time // when this (counter, owner) was first seen
	moved   bool      // the counter changed while observed
}

// NewObserver returns an Observer that has seen nothing.
func NewObserver() *Observer {
	return &Observer{seen: make(map[string]sighting), workers: make(map[string]sighting)}
}

// Observe records the leases as read at now (a monotonic reading).
func (o *Observer) Observe(leases []lease.Lease, now time.Time) {
	if o.first.IsZero() {
		o.first = now
	}
	keep := make(map[string]sighting, len(leases))
	for _, l := range leases {
		s, ok := o.seen[l.Key]
		switch {
		case !ok:
			s = sighting{counter: l.Counter, owner: l.Owner, since: now}
		case s.counter != l.Counter || s.owner != l.Owner:
			s = sighting{counter: l.Counter, owner: l.Owner, since: now, moved: true}
		}
		keep[l.Key] = s
	}
	o.seen = keep
}

// ObserveWorkers records the heartbeat counters of kcl-fleet workers, by
// worker id, as read at now. Workers absent from beats are forgotten.
func (o *Observer) ObserveWorkers(beats map[string]int64, now time.Time) {
	if o.first.IsZero() {
		o.first = now
	}
	keep := make(map[string]sighting, len(beats))
	for id, c := range beats {
		s, ok := o.workers[id]
		switch {
		case !ok:
			s = sighting{counter: c, since: now}
		case s.counter != c:
			s = sighting{counter: c, since: now, moved: true}
		}
		keep[id] = s
	}
	o.workers = keep
}

// Liveness is what an observer can say about a lease's holder.
type Liveness int

const (
	// Unknown: the lease was not observed, or not for long enough to tell.
	Unknown Liveness = iota + 1
	// Live: the counter changed while observed, within the last lease
	// duration.
	Live
	// Dead: the counter stood still for at least a lease duration.
	Dead
)

// Liveness returns what the observer can say of owner, the holder of the
// lease with key, at now, given the lease duration d: Live if the lease's
// counter or the owner's heartbeat moved within d; Dead if the lease's
// counter stood still for d and the owner has no heartbeat or its heartbeat
// stood still for d too.
func (o *Observer) Liveness(key, owner string, now time.Time, d time.Duration) Liveness {
	l := judge(o.seen, key, now, d)
	if _, ok := o.workers[owner]; !ok || l == Live {
		return l
	}
	switch w := judge(o.workers, owner, now, d); {
	case w == Live:
		return Live
	case w == Dead && l == Dead:
		return Dead
	}
	return Unknown
}

func judge(seen map[string]sighting, key string, now time.Time, d time.Duration) Liveness {
	s, ok := seen[key]
	switch {
	case !ok:
		return Unknown
	case now.Sub(s.since) >= d:
		return Dead
	case s.moved:
		return Live
	}
	return Unknown
}

// Watched returns how long the observer has been watching.
func (o *Observer) Watched(now time.Time) time.Duration {
	if o.first.IsZero() {
		return 0
	}
	return now.Sub(o.first)
}
