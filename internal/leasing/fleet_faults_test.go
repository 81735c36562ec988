package leasing_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease/memlease"
)

// Directed tests of kcl-fleet coordination under network faults: each is the
// smallest replay of a sequence TestFleetRandomFaults found.

// fleetRTT is the latency of each store call, each way, where a test gives
// its calls one: without it, a lease acquired and lost within one exchange of
// calls would be held for no fake time at all.
const fleetRTT = 2 * time.Millisecond

// A worker cut off for less than its deadline survives, and the leader must
// not count it dead. Here the leader reads the heartbeats while the worker is
// cut off, and that read's response arrives late: after the worker's
// heartbeat resumed, and F after the leader first read its last value. What
// the read shows held when the read was made, not when its response arrived.
func TestFleetLeaderDoesNotCountALiveWorkerDeadFromALateRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		// A third worker, x, takes w's leases if the leader counts w dead. Its
		// heartbeats land between the leader's reads, so that every read,
		// even a late one, shows x's counter changed.
		ins := c.startLeader(2)
		l, w := ins[0], ins[1]
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		// Past the owner-index reads that follow a worker's first
		// assignment (the last 4 s after it): w learns of a reassignment
		// only at its periodic read, 30 s on.
		time.Sleep(5 * time.Second)

		// Cut w off right after one of its heartbeats, sent at s, until just
		// before its heartbeat of s + 3H, which lands before its deadline
		// (s + F − m): w never stops.
		prev := w.link.lastBeatSent()
		waitFor(t, time.Second, func() bool { return w.link.lastBeatSent() != prev })
		s := w.link.lastBeatSent()
		healAt := s.Add(3*fleetH - 50*time.Millisecond)
		w.link.cut(healAt)
		// The leader's heartbeat reads made from s + 0.9 s until the heal,
		// which miss w's next heartbeat, are answered 1.8 s late: past the
		// leader's first read of the heartbeat of s (at most H after s) + F.
		var late atomic.Int32
		l.link.setPlan(func(op memlease.Op) route {
			now := time.Now()
			if op == memlease.OpHeartbeats && !now.Before(s.Add(900*time.Millisecond)) && now.Before(healAt) {
				late.Add(1)
				return route{after: 1800 * time.Millisecond}
			}
			return route{}
		})
		time.Sleep(8 * time.Second)
		if late.Load() == 0 {
			t.Fatal("no heartbeat read of the leader was slowed: the test missed its window")
		}
		for _, sp := range c.spansOf(w) {
			if errors.Is(sp.cause, leasing.ErrHeartbeatExpired) {
				t.Fatalf("%s stopped %s %v after s with %v: the cut was meant to be survived", w.label, sp.key, sp.end.Sub(s), sp.cause)
			}
		}
		c.check()
	})
}

// A worker that restarts after a crash (same id), or whose heartbeat resumes
// after its deadline, takes its leases back with a write that bumps their
// counters, so that a reassignment by a leader that judged it dead, being
// conditioned on the counters the leader read, fails. That holds only if the
// leader read the counters before the heartbeat resumed. Here the leader
// judges the crashed worker dead from a heartbeat read made before the
// restart, and its read of the table, slow, lands after the restarted worker
// took its leases back.
func TestFleetLeaderDoesNotReassignLeasesARestartedWorkerTookBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		ins := c.startLeader(1)
		l, w := ins[0], ins[1]

		// The leader judges w dead at its first heartbeat read F or more
		// after its first read of w's last heartbeat (sent at s); the read
		// of the table that follows is slow.
		var (
			mu      sync.Mutex
			reads   []time.Time // the leader's heartbeat reads
			s       time.Time
			listing = make(chan struct{})
			armed   bool
		)
		l.link.setPlan(func(op memlease.Op) route {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			switch op {
			case memlease.OpHeartbeats:
				reads = append(reads, now)
			case memlease.OpList:
				if !armed {
					break
				}
				i := slices.IndexFunc(reads, func(r time.Time) bool { return r.After(s) })
				if i >= 0 && reads[len(reads)-1].Sub(reads[i]) >= fleetF {
					armed = false
					close(listing)
					return route{before: 1500 * time.Millisecond}
				}
			}
			return route{}
		})
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		time.Sleep(time.Second)
		c.mu.Lock()
		w.state = incCrashed
		c.mu.Unlock()
		w.crash()
		synctest.Wait()
		mu.Lock()
		s, armed = w.link.lastBeatSent(), true
		mu.Unlock()
		select {
		case <-listing:
		case <-time.After(10 * time.Second):
			t.Fatal("the leader did not read the table after judging the crashed worker dead")
		}
		if open := c.open(w); len(open) > 0 {
			t.Fatalf("%s still processes %d leases when the leader judges it dead", w.label, len(open))
		}
		go w.end()
		w2 := c.start(w.id)
		time.Sleep(10 * time.Second)
		if len(c.spansOf(w2)) == 0 {
			t.Fatalf("%s never took a lease back", w2.label)
		}
		c.check()
	})
}

// A worker acquires a lease assigned to it with a write sent while its
// heartbeat is alive; the write lands, but its response is late. Meanwhile
// the worker's heartbeat cannot be written: its deadline passes, the leader
// reassigns its leases, this one too, and the worker's heartbeat resumes
// under a new heartbeater. When the response arrives the lease belongs to
// another worker: it must not be processed.
func TestFleetAcquisitionSentBeforeTheDeadlineIsNotProcessedAfterIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		ins := c.startLeader(2)
		l, a, b := ins[0], ins[1], ins[2]
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		time.Sleep(time.Second)

		var (
			mu        sync.Mutex
			renewSent time.Time
			gate      = make(chan struct{})
		)
		const cutFor = 3500 * time.Millisecond
		a.link.setPlan(func(op memlease.Op) route {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			switch {
			case op == memlease.OpRenew && renewSent.IsZero():
				// a's first acquisition after b stops: its response is held.
				renewSent = now
				return route{before: fleetRTT, after: fleetRTT, hold: gate}
			case op == memlease.OpBeat && !renewSent.IsZero() && now.Before(renewSent.Add(cutFor)):
				return route{before: fleetRTT, cut: true}
			}
			return route{before: fleetRTT, after: fleetRTT}
		})
		c.mu.Lock()
		b.state = incStopping
		c.mu.Unlock()
		go b.stop() // b hands its leases to a and the leader
		var sent time.Time
		waitFor(t, 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			sent = renewSent
			return !sent.IsZero()
		})
		// a's deadline passes, the leader takes its leases, and a's
		// heartbeat resumes: then the response arrives.
		waitFor(t, 10*time.Second, func() bool { return a.link.lastBeatSent().After(sent.Add(cutFor)) })
		for _, ls := range c.raw.Leases() {
			if ls.Owner != l.id {
				t.Fatalf("%s is owned by %q when a's heartbeat resumes, want every lease reassigned to the leader %s", ls.Key, ls.Owner, l.id)
			}
		}
		close(gate)
		time.Sleep(5 * time.Second)
		c.check()
	})
}

// A handoff completes when its holder writes the final checkpoint. If that
// write fails (the table is out of reach for a moment), the lease stays in
// the handoff: owned by the target, which waits for the final checkpoint,
// and processed by no one. Once the table is in reach again, the handoff
// must complete and every lease be processed.
func TestFleetHandoffWhoseFinalCheckpointFailedCompletesLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 4)
		defer c.report("")
		defer c.shutdown()
		a := c.startLeader(0)[0]
		waitFor(t, 5*time.Second, func() bool { return c.settled(4, a) })
		time.Sleep(time.Second)

		// a's checkpoints fail for 4 s, while the leader (a) hands two of
		// its leases to b, which joins.
		heal := time.Now().Add(4 * time.Second)
		a.link.setPlan(func(op memlease.Op) route {
			return route{cut: op == memlease.OpCheckpoint && time.Now().Before(heal)}
		})
		b := c.start("")
		waitFor(t, 5*time.Second, func() bool {
			for _, l := range c.raw.Leases() {
				if l.InHandoff() {
					return true
				}
			}
			return false
		})
		time.Sleep(time.Until(heal))
		took := c.waitSettled(fleetConverge, 4, a, b)
		t.Logf("every lease processed %v after the table was in reach again", took)
		c.check()
	})
}

// Leading may be called while Run starts (the Worker asks it from its shard
// sync loop). Under -race, this finds a write of the coordinator's state that
// Leading reads unsynchronized.
func TestFleetLeadingIsSafeWhileRunStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		c, err := leasing.NewCoordinator(store, "w", fleetMode)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = c.Run(ctx, context.WithoutCancel(ctx), func(h *leasing.Held) {
				go func() { <-h.Context().Done(); _ = h.Done(context.Background()) }()
			})
		}()
		// Ask until Run has started its loops (the worker joined the
		// roster), so that the calls surround Run's start.
		for {
			c.Leading()
			if ids, _ := store.Roster(t.Context()); len(ids) > 0 {
				break
			}
			runtime.Gosched()
		}
		cancel()
		<-done
	})
}

// A worker killed while a handoff is asked of it, and restarted at once
// under the same id, never writes that final checkpoint: its new process does
// not hold the lease and does not know of the handoff, and the leader, which
// sees the worker's heartbeat go on, counts the holder alive and waits for
// it. The handoff must complete anyway, and every lease be processed.
func TestFleetHandoffOfAWorkerThatRestartedCompletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		ins := c.startLeader(1)
		a := ins[1]
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		time.Sleep(time.Second)

		// a's final checkpoints take long to reach the table: a is killed
		// before one lands.
		a.link.setPlan(func(op memlease.Op) route {
			if op == memlease.OpCheckpoint {
				return route{before: 5 * time.Second}
			}
			return route{}
		})
		b := c.start("")
		waitFor(t, 5*time.Second, func() bool {
			for _, l := range c.raw.Leases() {
				if l.InHandoff() && l.CheckpointOwner == a.id {
					return true
				}
			}
			return false
		})
		c.kill(a)
		go a.end()
		a2 := c.start(a.id)
		took := c.waitSettled(fleetConverge, 6, ins[0], a2, b)
		t.Logf("every lease processed %v after the restart", took)
		c.check()
	})
}

// The leader removes from the roster a worker dead for 2F that owns nothing.
// If that worker's heartbeat resumes just then, its Join (which a worker
// writes before its first heartbeat after its deadline) can land before the
// leader's removal: the worker then beats outside the roster, where the
// leader never reads its heartbeat. It must still get its share of the
// leases (and no lease a peer hands it may be reassigned under it).
func TestFleetWorkerThatJoinedAsTheLeaderRemovedItGetsItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		ins := c.startLeader(2)
		l, x, w := ins[0], ins[1], ins[2]
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		time.Sleep(time.Second)

		// w is cut off until the leader removes it from the roster; its
		// Join is let through while that removal is on its way, so that
		// it lands first.
		var joinOK atomic.Bool
		w.link.setPlan(func(op memlease.Op) route {
			return route{cut: op == memlease.OpJoin && !joinOK.Load()}
		})
		removing := make(chan struct{})
		var once sync.Once
		l.link.setPlan(func(op memlease.Op) route {
			if op == memlease.OpLeave {
				once.Do(func() { close(removing) })
				return route{before: time.Second}
			}
			return route{}
		})
		w.link.cut(time.Now().Add(time.Hour))
		select {
		case <-removing:
		case <-time.After(30 * time.Second):
			t.Fatal("the leader did not remove the dead worker from the roster")
		}
		w.link.cut(time.Time{}) // everything but Join goes through
		joinOK.Store(true)
		y := c.start("")
		took := c.waitSettled(fleetConverge, 6, l, x, w, y)
		t.Logf("%s has its share %v after the removal", w.label, took)
		c.check()
	})
}

// The leader reads the table when a worker joins, leaves, dies or changes
// the state or lease count its heartbeat announces. A worker counted dead
// whose heartbeat resumes with the same announcement as its last one before
// (running, no lease) is none of these: it must still get its share soon, as
// a joining worker does, not only at the leader's next periodic scan (30 s).
func TestFleetWorkerCountedDeadGetsItsShareWhenItComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newChaos(t, 1, 6)
		defer c.report("")
		defer c.shutdown()
		ins := c.startLeader(1)
		waitFor(t, 10*time.Second, func() bool { return c.settled(6, ins...) })
		time.Sleep(time.Second)

		// w joins; after its first two heartbeats (starting, then running,
		// with no lease) it is cut off until it is counted dead.
		var (
			mu     sync.Mutex
			beats  int
			healAt time.Time
		)
		w := c.start("")
		w.link.setPlan(func(op memlease.Op) route {
			mu.Lock()
			defer mu.Unlock()
			if op == memlease.OpBeat && beats < 2 {
				beats++
				if beats == 2 {
					healAt = time.Now().Add(3 * fleetF)
				}
				return route{}
			}
			return route{cut: beats == 2 && time.Now().Before(healAt)}
		})
		time.Sleep(3*fleetF + fleetH)
		took := c.waitSettled(fleetConverge, 6, ins[0], ins[1], w)
		t.Logf("%s has its share %v after its heartbeat resumed", w.label, took)
		c.check()
	})
}

// The leader judges a silent worker at the instant its failover time ends.
// With any read latency, the round F/R ticks after the leader first saw the
// worker's last heartbeat is sent just before that instant, so waiting for
// a tick would declare the death a whole round late. Four phases of the
// crash against the leader's rounds.
func TestFleetLeaderJudgesASilentWorkerWhenItsFailoverTimeEnds(t *testing.T) {
	for run := range 4 {
		t.Run(strconv.Itoa(run), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newChaos(t, uint64(run+1), 4)
				defer c.report("")
				defer c.shutdown()
				ins := c.startLeader(1)
				l, w := ins[0], ins[1]
				waitFor(t, 10*time.Second, func() bool { return c.settled(4, ins...) })
				time.Sleep(time.Duration(run) * fleetH / 4)
				const lat = 10 * time.Millisecond
				l.link.setPlan(func(op memlease.Op) route {
					if op == memlease.OpHeartbeats {
						return route{before: lat, after: lat}
					}
					return route{}
				})
				var keys []string
				for _, sp := range c.spansOf(w) {
					if sp.end.IsZero() {
						keys = append(keys, sp.key)
					}
				}
				prev := w.link.lastBeatSent()
				waitFor(t, time.Second, func() bool { return w.link.lastBeatSent() != prev })
				s := w.link.lastBeatSent()
				c.kill(w)
				taken := func() (time.Time, bool) {
					var last time.Time
					for _, k := range keys {
						var at time.Time
						for _, sp := range c.spansOf(l) {
							if sp.key == k && sp.start.After(s) {
								at = sp.start
							}
						}
						if at.IsZero() {
							return time.Time{}, false
						}
						if at.After(last) {
							last = at
						}
					}
					return last, true
				}
				waitFor(t, 10*time.Second, func() bool { _, ok := taken(); return ok })
				at, _ := taken()
				// The leader first reads the last heartbeat at most a round
				// (plus the read's latency) after it was sent; the failover
				// time counts from that read's return.
				if limit := fleetF + fleetH + 3*lat; at.Sub(s) > limit {
					t.Errorf("the leader took %s's leases %v after its last heartbeat; want at most %v", w.label, at.Sub(s), limit)
				}
				c.check()
			})
		})
	}
}
