package e2e

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/checker"
)

// perLease are the worker flags of KCL-compatible coordination
// (consumer.CoordinationKCL: every worker renews each of its leases). Without
// them a worker runs the default, consumer.CoordinationAuto, which chooses
// kcl fleet coordination on the tests' fresh tables.
var perLease = []string{"-coordination", "kcl"}

// Failover limits of per-lease coordination, from the issue that introduced
// it: a crashed worker's shards resume within the lease duration plus 2 s; a
// gracefully stopped worker's within 1 s; a joining worker has its fair share
// within 10 s.
const (
	crashLimit    = leaseDuration + 2*time.Second
	gracefulLimit = time.Second
	joinLimit     = 10 * time.Second
)

// Failover targets of kcl fleet coordination at its default failover time
// (2 s, heartbeats every 500 ms), from issue 12.
const (
	fleetCrashMedian = 3 * time.Second
	fleetCrashMax    = 4 * time.Second
	fleetLeaderMax   = 4 * time.Second
	fleetGracefulMax = 500 * time.Millisecond
	fleetJoinMax     = 5 * time.Second
	// fleetHeartbeat is H, the interval of every worker's heartbeat and of
	// the leader's rounds at the default failover time.
	fleetHeartbeat = leasing.DefaultFailoverTime / 5
	// fleetGracefulBound bounds a single graceful stop, above its target:
	// the peer learns of the leases handed to it at its next heartbeat,
	// up to H after the handover, then acquires them and fetches (DESIGN.md,
	// "Fleet-scale coordination"). A stop that falls just after the peer's
	// heartbeat misses the 500 ms target by design; the target is held by
	// the repeated runs, which report how often.
	fleetGracefulBound = fleetHeartbeat + 250*time.Millisecond
	// fleetTargetSample is the number of runs (-e2e.repeat) from which the
	// targets themselves, median and max, are checked.
	fleetTargetSample = 3
)

var repeat = flag.Int("e2e.repeat", 1,
	"TestFailoverFleet: run each scenario `N` times and log the median and max of each (for the README's figures; CI: 1)")

// fleet is a failover scenario: a 4-shard stream, a producer putting records
// on every shard all the time, and worker processes.
type fleet struct {
	f     *fixture
	rec   *recorder
	prod  *producer
	procs map[string]*workerProc
	start time.Time
	// args are extra flags for every worker process, such as perLease or
	// -efo NAME.
	args []string
}

const fleetShards = 4

func newFleet(t *testing.T, args ...string) *fleet {
	fl := &fleet{start: time.Now(), procs: map[string]*workerProc{}, args: args}
	fl.f = newFixture(t, fleetShards)
	chk := checker.New()
	fl.rec = newRecorder(chk)
	fl.prod = startProducer(t, fl.f, chk, spreadKeys(16), 100*time.Millisecond)
	return fl
}

func (fl *fleet) startProc(t *testing.T, id string) *workerProc {
	p := fl.f.startProc(t, fl.rec, id, fl.args...)
	fl.procs[id] = p
	return p
}

// waitFair waits until the workers ids hold every open shard once between
// them, each its fair share (the shard count divided by the worker count,
// rounded down or up), and every shard has been processed since the last
// lease event; it returns the shards.
func (fl *fleet) waitFair(t *testing.T, ids ...string) []string {
	t.Helper()
	shards := shardIDs(fl.f.openShards(t))
	waitFor(t, 30*time.Second, func() bool {
		return fl.fair(shards, ids) && fl.rec.processing(shards, fl.rec.lastEvent(fl.start))
	}, "workers %v did not settle on a fair share of %v each with every shard processing: %v", ids, shards,
		lazy(func() string { return fl.holdings(ids) }))
	return shards
}

// fair reports whether the workers ids hold each of shards once between
// them, each len(shards)/len(ids) of them, rounded down or up.
func (fl *fleet) fair(shards, ids []string) bool {
	lo := len(shards) / len(ids)
	hi := lo
	if len(shards)%len(ids) != 0 {
		hi++
	}
	var all []string
	for _, id := range ids {
		h := fl.rec.held(id)
		if len(h) < lo || len(h) > hi {
			return false
		}
		all = append(all, h...)
	}
	return sameSet(all, shards)
}

func (fl *fleet) holdings(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s holds %v; ", id, fl.rec.held(id))
	}
	b.WriteString(fl.prod.String())
	return b.String()
}

// leader waits until one of the workers ids holds the kcl fleet's leader
// lock and returns it. The lock names its holder even after the holder died,
// until another worker takes it over.
func (fl *fleet) leader(t *testing.T, ids ...string) string {
	t.Helper()
	var fs lease.FleetStore = fl.f.newStore(t)
	var owner string
	var lastErr error
	waitFor(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		l, err := fs.Leader(ctx)
		if err != nil {
			lastErr = err
			return false
		}
		owner = l.Owner
		return slices.Contains(ids, owner)
	}, "none of the workers %v holds the leader lock: is the fleet in kcl fleet mode? (last read: owner %q, error %v)",
		ids, lazy(func() string { return owner }), lazy(func() string { return fmt.Sprint(lastErr) }))
	return owner
}

// resumed waits until a worker other than gone processed a record of each
// of shards after since, logs per shard when another worker acquired it and
// processed its first record, and returns the longest wait.
func (fl *fleet) resumed(t *testing.T, gone string, shards []string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	waitFor(t, timeout, func() bool {
		for _, s := range shards {
			if _, _, ok := fl.rec.firstRecord(s, gone, since); !ok {
				return false
			}
		}
		return true
	}, "the shards %v of %s were not processed by another worker", shards, gone)
	var worst time.Duration
	for _, s := range shards {
		at, by, _ := fl.rec.firstRecord(s, gone, since)
		acquired := "without a new acquisition"
		if acq, ok := fl.rec.firstEvent(by, s, kindAcquired, since); ok {
			acquired = fmt.Sprintf("after %v", acq.Sub(since).Round(10*time.Millisecond))
		}
		t.Logf("  %s: acquired by %s %s, first record after %v", s, by, acquired, at.Sub(since).Round(10*time.Millisecond))
		worst = max(worst, at.Sub(since))
	}
	return worst
}

// logged describes when worker first logged msg after since.
func (fl *fleet) logged(worker, msg string, since time.Time) string {
	at, ok := fl.procs[worker].logged(msg, since)
	if !ok {
		return "(not logged)"
	}
	return at.Sub(since).Round(10 * time.Millisecond).String()
}

// dephase waits a random time shorter than a heartbeat interval before a
// scenario's event. Without it the event would fall at the same point of the
// workers' heartbeat cycles in every run: waitFair returns a few
// GetRecords calls after the last lease acquisition, which a heartbeat
// triggered, and how long a peer or the leader takes to notice depends on
// where in its cycle the event falls. In production that point is random.
func dephase() {
	time.Sleep(rand.N(fleetHeartbeat))
}

// stopAll stops the workers ids gracefully, all at once (a worker handing
// its leases to a peer that stops too is part of what is tested), and checks
// that each exited 0.
func (fl *fleet) stopAll(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := fl.procs[id].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM worker %s: %v", id, err)
		}
	}
	for _, id := range ids {
		p := fl.procs[id]
		p.wait(t, stopTimeout+5*time.Second)
		if p.waitErr != nil {
			t.Errorf("worker %s after SIGTERM: %v, want exit status 0", id, p.waitErr)
		}
	}
}

// TestFailoverPerLease measures how fast processing resumes when a worker
// crashes, stops gracefully, or joins, with worker processes in
// KCL-compatible coordination (per-lease renewal) and a 3 s lease. The cases
// run one after another: run in parallel they load kinesis-mock (one Node
// thread) enough to add hundreds of milliseconds to each measurement.
func TestFailoverPerLease(t *testing.T) {
	t.Run("sigkill", func(t *testing.T) {
		fl := newFleet(t, perLease...)
		fl.startProc(t, "a1")
		fl.startProc(t, "a2")
		fl.waitFair(t, "a1", "a2")

		held := fl.rec.held("a2")
		killed := fl.procs["a2"].kill(t)
		worst := fl.resumed(t, "a2", held, killed, 4*crashLimit)
		t.Logf("failover: per-lease sigkill resume %.1fs (limit %.0fs)", worst.Seconds(), crashLimit.Seconds())
		if worst > crashLimit {
			t.Errorf("after SIGKILL, the survivor resumed the killed worker's shards after %v, want at most lease duration + 2s = %v", worst, crashLimit)
		}
		if got := fl.rec.held("a1"); len(got) != fleetShards {
			t.Errorf("survivor holds %v, want all %d shards", got, fleetShards)
		}

		fl.prod.stop()
		fl.rec.check(t, 30*time.Second, false) // the crash may redeliver
		fl.procs["a1"].term(t)
	})

	t.Run("sigterm", func(t *testing.T) {
		fl := newFleet(t, perLease...)
		fl.startProc(t, "b1")
		fl.startProc(t, "b2")
		fl.waitFair(t, "b1", "b2")

		held := fl.rec.held("b2")
		stopped := fl.procs["b2"].term(t)
		released := fl.released(t, "b2", held, stopped)
		worst := fl.resumed(t, "b2", held, stopped, 10*gracefulLimit)
		t.Logf("failover: per-lease sigterm resume %.1fs (limit %.0fs; leases released %v after SIGTERM)",
			worst.Seconds(), gracefulLimit.Seconds(), released.Round(time.Millisecond))
		if worst > gracefulLimit {
			t.Errorf("after SIGTERM, the peer resumed the stopped worker's shards after %v, want at most %v", worst, gracefulLimit)
		}
		if got := fl.rec.held("b1"); len(got) != fleetShards {
			t.Errorf("peer holds %v, want all %d shards", got, fleetShards)
		}

		fl.prod.stop()
		fl.rec.check(t, 30*time.Second, true)
		fl.procs["b1"].term(t)
	})

	t.Run("join", func(t *testing.T) {
		fl := newFleet(t, perLease...)
		fl.startProc(t, "c1")
		fl.waitFair(t, "c1")

		joined := fl.startProc(t, "c2").started
		fl.waitFair(t, "c1", "c2")
		share, first := fl.joinedShare(t, "c2", "c1", joined)
		t.Logf("failover: per-lease join fair share %.1fs (limit %.0fs; first record on each of its shards %.1fs)",
			share.Seconds(), joinLimit.Seconds(), first.Seconds())
		if share > joinLimit {
			t.Errorf("the joining worker held its fair share %v after it started, want at most %v", share, joinLimit)
		}

		fl.prod.stop()
		fl.rec.check(t, 30*time.Second, true)
		fl.procs["c1"].term(t)
		fl.procs["c2"].term(t)
	})
}

// released returns how long after since the worker reported the last of
// shards released, and fails the test for each it did not report.
func (fl *fleet) released(t *testing.T, worker string, shards []string, since time.Time) time.Duration {
	t.Helper()
	var last time.Duration
	for _, s := range shards {
		at, ok := fl.rec.firstEvent(worker, s, kindReleased, since)
		if !ok {
			t.Errorf("%s stopped without reporting %s released", worker, s)
			continue
		}
		last = max(last, at.Sub(since))
	}
	return last
}

// joinedShare returns, for the worker that started at joined beside other,
// how long after that it acquired the last of the shards it holds, and how
// long until it processed a record of each of them.
func (fl *fleet) joinedShare(t *testing.T, worker, other string, joined time.Time) (share, first time.Duration) {
	t.Helper()
	for _, s := range fl.rec.held(worker) {
		at, _ := fl.rec.firstEvent(worker, s, kindAcquired, joined)
		share = max(share, at.Sub(joined))
		rec, _, _ := fl.rec.firstRecord(s, other, joined)
		first = max(first, rec.Sub(joined))
	}
	return share, first
}

// fleetScenario is one failover case of kcl fleet coordination: run sets it
// up, measures it once and returns the measurement. Every run must stay
// within bound (max when zero); the targets, max and median (when set),
// are checked over fleetTargetSample runs or more.
type fleetScenario struct {
	name               string
	what               string // what run measures, for the log
	max, median, bound time.Duration
	run                func(t *testing.T) time.Duration
}

// TestFailoverFleet measures failover with worker processes in kcl fleet
// coordination (the default: consumer.CoordinationAuto on a fresh table)
// at the default failover time, against issue 12's targets:
//
//   - crash: three workers; a worker that does not lead is killed with
//     SIGKILL. Measured from the signal to the first record the survivors
//     process on each of its shards (the slowest shard): median ≤ 3 s, each
//     run ≤ 4 s.
//   - leader-crash: the same, killing the leader (the owner of the leader
//     lock): ≤ 4 s. The survivors must elect a new leader, which then finds
//     the old one's heartbeat stale and reassigns its leases.
//   - sigterm: two workers; the one that does not lead gets SIGTERM.
//     Measured from the signal to the first record its peer processes on
//     each of its shards (the slowest): ≤ 500 ms. This includes the stopped
//     worker's drain (in-flight batch, final checkpoint, assigning each
//     lease to the peer), the peer learning of its new leases at its next
//     heartbeat (every 500 ms), and the peer's first GetRecords; a single
//     run is held to fleetGracefulBound (750 ms), which says why.
//   - leader-sigterm: the same, stopping the leader; the peer then leads.
//   - join: one worker holds every shard, a second starts. Measured from the
//     second process's start to its acquisition of the last lease of its
//     fair share: ≤ 5 s, with no record processed twice.
//
// Each scenario runs -e2e.repeat times (default 1) on a new stream and
// table, and each run waits a random fraction of a heartbeat interval before
// its event (dephase). The log line "failover: fleet <scenario> median <m>
// max <x> over <n> runs" gives the figures. A single run (CI) is held to
// the max target (to fleetGracefulBound for graceful stops); from
// fleetTargetSample runs on, the median and max targets are checked too.
func TestFailoverFleet(t *testing.T) {
	if *repeat < 1 {
		t.Fatalf("-e2e.repeat=%d: want at least 1", *repeat)
	}
	scenarios := []fleetScenario{
		{name: "crash", what: "SIGKILL of a follower → survivors process its shards", max: fleetCrashMax, median: fleetCrashMedian,
			run: func(t *testing.T) time.Duration { return fleetKill(t, false) }},
		{name: "leader-crash", what: "SIGKILL of the leader → survivors process its shards", max: fleetLeaderMax,
			run: func(t *testing.T) time.Duration { return fleetKill(t, true) }},
		{name: "sigterm", what: "SIGTERM of a follower → its peer processes its shards", max: fleetGracefulMax, bound: fleetGracefulBound,
			run: func(t *testing.T) time.Duration { return fleetGraceful(t, false) }},
		{name: "leader-sigterm", what: "SIGTERM of the leader → its peer processes its shards", max: fleetGracefulMax, bound: fleetGracefulBound,
			run: func(t *testing.T) time.Duration { return fleetGraceful(t, true) }},
		{name: "join", what: "start of a second worker → it holds its fair share", max: fleetJoinMax, run: fleetJoin},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			bound := cmp.Or(sc.bound, sc.max)
			var got []time.Duration
			for i := range *repeat {
				t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
					d := sc.run(t)
					got = append(got, d)
					if d > bound {
						t.Errorf("%s: %v, want at most %v", sc.what, d.Round(10*time.Millisecond), bound)
					}
				})
			}
			if len(got) == 0 {
				return
			}
			med, worst := median(got), slices.Max(got)
			targets := fmt.Sprintf("max ≤ %v", sc.max)
			if sc.median > 0 {
				targets = fmt.Sprintf("median ≤ %v, %s", sc.median, targets)
			}
			var missed []string
			if sc.median > 0 && med > sc.median {
				missed = append(missed, "median")
			}
			if worst > sc.max {
				missed = append(missed, fmt.Sprintf("max (%d of %d runs over)", countOver(got, sc.max), len(got)))
			}
			verdict := "met"
			if len(missed) > 0 {
				verdict = "missed: " + strings.Join(missed, ", ")
			}
			runs := "runs"
			if len(got) == 1 {
				runs = "run"
			}
			t.Logf("failover: fleet %s median %.2fs max %.2fs over %d %s (%s; targets %s %s) %v",
				sc.name, med.Seconds(), worst.Seconds(), len(got), runs, sc.what, targets, verdict, roundAll(got))
			if len(got) >= fleetTargetSample && len(missed) > 0 {
				t.Errorf("%s: median %v, max %v over %d runs: target %s %s", sc.what,
					med.Round(10*time.Millisecond), worst.Round(10*time.Millisecond), len(got), targets, verdict)
			}
		})
	}
}

// fleetKill starts three workers, kills the leader or the follower holding
// the most leases, and returns how long after the SIGKILL the survivors
// processed a record of each of its shards.
func fleetKill(t *testing.T, leader bool) time.Duration {
	fl := newFleet(t)
	ids := workerIDs("f", 3)
	for _, id := range ids {
		fl.startProc(t, id)
	}
	fl.waitFair(t, ids...)
	lead := fl.leader(t, ids...)
	victim := lead
	if !leader {
		victim = ""
		for _, id := range ids {
			if id != lead && (victim == "" || len(fl.rec.held(id)) > len(fl.rec.held(victim))) {
				victim = id
			}
		}
	}
	survivors := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == victim })

	held := fl.rec.held(victim)
	dephase()
	killed := fl.procs[victim].kill(t)
	t.Logf("killed %s (leader %s) holding %v", victim, lead, held)
	worst := fl.resumed(t, victim, held, killed, 30*time.Second)
	if leader {
		lead = fl.leader(t, survivors...)
		t.Logf("  new leader %s leading after %v", lead, fl.logged(lead, "leading", killed))
	}
	t.Logf("  leader %s: %s dead after %v, first lease reassigned after %v", lead, victim,
		fl.logged(lead, "leader: worker dead (heartbeat unchanged for the failover time)", killed),
		fl.logged(lead, "leader: lease reassigned", killed))
	fl.waitFair(t, survivors...) // the leader spreads the dead worker's leases evenly

	fl.prod.stop()
	fl.rec.check(t, 30*time.Second, false) // the crash may redeliver
	fl.stopAll(t, survivors...)
	return worst
}

// fleetGraceful stops a worker of a two-worker fleet, the leader or the
// follower, with SIGTERM and returns how long after the signal its peer
// processed a record of each of its shards.
func fleetGraceful(t *testing.T, leader bool) time.Duration {
	fl := newFleet(t)
	ids := workerIDs("s", 2)
	for _, id := range ids {
		fl.startProc(t, id)
	}
	fl.waitFair(t, ids...)
	lead := fl.leader(t, ids...)
	victim, peer := ids[0], ids[1]
	if (victim == lead) != leader {
		victim, peer = peer, victim
	}

	held := fl.rec.held(victim)
	dephase()
	stopped := fl.procs[victim].term(t)
	released := fl.released(t, victim, held, stopped)
	worst := fl.resumed(t, victim, held, stopped, 10*time.Second)
	t.Logf("stopped %s (leader %s) holding %v: leases released %v after SIGTERM, all processed by %s %v after",
		victim, lead, held, released.Round(time.Millisecond), peer, worst.Round(time.Millisecond))
	if got := fl.rec.held(peer); len(got) != fleetShards {
		t.Errorf("peer holds %v, want all %d shards", got, fleetShards)
	}
	if leader {
		fl.leader(t, peer) // the stopped leader released the lock, or it expired: the peer leads
	}

	fl.prod.stop()
	fl.rec.check(t, 30*time.Second, true)
	fl.stopAll(t, peer)
	return worst
}

// fleetJoin starts a second worker beside one holding every shard and
// returns how long after its start it held its fair share.
func fleetJoin(t *testing.T) time.Duration {
	fl := newFleet(t)
	ids := workerIDs("j", 2)
	fl.startProc(t, ids[0])
	fl.waitFair(t, ids[0])

	dephase()
	joined := fl.startProc(t, ids[1]).started
	fl.waitFair(t, ids...)
	share, first := fl.joinedShare(t, ids[1], ids[0], joined)
	t.Logf("%s joined: fair share %v after its start, first record on each of its shards %v after",
		ids[1], share.Round(time.Millisecond), first.Round(time.Millisecond))

	fl.prod.stop()
	fl.rec.check(t, 30*time.Second, true) // no duplicate: the handoffs lose and repeat nothing
	fl.stopAll(t, ids...)
	return share
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func countOver(ds []time.Duration, limit time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > limit {
			n++
		}
	}
	return n
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
