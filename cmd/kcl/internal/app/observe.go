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
// An Observer is not safe for concurrent use; the describe loop owns one.
type Observer struct {
	first time.Time // the first Observe
	seen  map[string]sighting
}

// sighting is what the observer knows of one lease.
type sighting struct {
	counter int64
	owner   string
	since   time.Time // when this (counter, owner) was first seen
	moved   bool      // the counter changed while observed
}

// NewObserver returns an Observer that has seen nothing.
func NewObserver() *Observer { return &Observer{seen: make(map[string]sighting)} }

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

// Liveness returns what the observer can say of the holder of the lease
// with key at now, given the lease duration d.
func (o *Observer) Liveness(key string, now time.Time, d time.Duration) Liveness {
	s, ok := o.seen[key]
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
