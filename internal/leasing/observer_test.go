package leasing

import (
	"testing"
	"time"

	"github.com/kclgo/kcl/lease"
)

func TestObserver(t *testing.T) {
	const d = 10 * time.Second
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	l := lease.Lease{Key: "k", Owner: "a", Counter: 5}

	t.Run("a lease seen for the first time is not expired, however old its counter", func(t *testing.T) {
		o := NewObserver(d)
		o.Observe(at(0), []lease.Lease{l})
		if o.Expired(at(9.9), l) {
			t.Fatal("expired before a full duration of observation")
		}
		if !o.Expired(at(10), l) {
			t.Fatal("not expired after a full duration without a counter change")
		}
	})
	t.Run("a counter change restarts the clock at the observation that saw it", func(t *testing.T) {
		o := NewObserver(d)
		o.Observe(at(0), []lease.Lease{l})
		renewed := l
		renewed.Counter++
		o.Observe(at(8), []lease.Lease{renewed})
		if o.Expired(at(17.9), renewed) {
			t.Fatal("expired less than a duration after the renewal was observed")
		}
		if !o.Expired(at(18), renewed) {
			t.Fatal("not expired a duration after the renewal was observed")
		}
	})
	t.Run("an owner change restarts the clock even with an equal counter", func(t *testing.T) {
		o := NewObserver(d)
		o.Observe(at(0), []lease.Lease{l})
		moved := l
		moved.Owner = "b"
		o.Observe(at(5), []lease.Lease{moved})
		if o.Expired(at(14), moved) {
			t.Fatal("expired before a duration under the new owner")
		}
	})
	t.Run("a lease that differs from the last observation is not judged expired", func(t *testing.T) {
		o := NewObserver(d)
		o.Observe(at(0), []lease.Lease{l})
		newer := l
		newer.Counter++
		if o.Expired(at(60), newer) {
			t.Fatal("a lease with an unobserved counter was judged expired")
		}
	})
	t.Run("unowned leases are never expired", func(t *testing.T) {
		o := NewObserver(d)
		free := lease.Lease{Key: "k"}
		o.Observe(at(0), []lease.Lease{free})
		if o.Expired(at(60), free) {
			t.Fatal("an unowned lease was judged expired")
		}
	})
	t.Run("leases missing from a snapshot are forgotten", func(t *testing.T) {
		o := NewObserver(d)
		o.Observe(at(0), []lease.Lease{l})
		o.Observe(at(1), nil)
		o.Observe(at(9), []lease.Lease{l})
		if o.Expired(at(12), l) {
			t.Fatal("the clock was not restarted for a lease that disappeared and came back")
		}
	})
	t.Run("next expiry is the earliest deadline among other workers' leases", func(t *testing.T) {
		o := NewObserver(d)
		mine := lease.Lease{Key: "m", Owner: "me", Counter: 1}
		a := lease.Lease{Key: "a", Owner: "a", Counter: 1}
		b := lease.Lease{Key: "b", Owner: "b", Counter: 1}
		o.Observe(at(0), []lease.Lease{mine, a})
		o.ObserveOne(at(3), b)
		next, ok := o.NextExpiry(at(1), "me")
		if !ok || !next.Equal(at(10)) {
			t.Fatalf("NextExpiry = %v, %v; want %v", next.Sub(t0), ok, 10*time.Second)
		}
		next, ok = o.NextExpiry(at(10), "me")
		if !ok || !next.Equal(at(13)) {
			t.Fatalf("after the first deadline, NextExpiry = %v, %v; want 13s", next.Sub(t0), ok)
		}
		if _, ok := o.NextExpiry(at(20), "me"); ok {
			t.Fatal("NextExpiry found a deadline after all have passed")
		}
	})
}
