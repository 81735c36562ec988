package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/checker"
)

// Failover limits, from the issue: a crashed worker's shards resume within
// the lease duration plus 2 s; a gracefully stopped worker's within 1 s; a
// joining worker has its fair share within 10 s.
const (
	crashLimit    = leaseDuration + 2*time.Second
	gracefulLimit = time.Second
	joinLimit     = 10 * time.Second
)

// fleet is a failover scenario: a 4-shard stream, a producer putting records
// on every shard all the time, and worker processes.
type fleet struct {
	f     *fixture
	rec   *recorder
	prod  *producer
	procs map[string]*workerProc
	start time.Time
	// args are extra flags for every worker process, such as -efo NAME.
	args []string
}

const fleetShards = 4

func newFleet(t *testing.T) *fleet {
	fl := &fleet{start: time.Now(), procs: map[string]*workerProc{}}
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

// waitBalanced waits until each worker in ids holds want leases and every
// shard has been processed since the last change, and returns the shards.
func (fl *fleet) waitBalanced(t *testing.T, want int, ids ...string) []string {
	t.Helper()
	shards := shardIDs(fl.f.openShards(t))
	waitFor(t, 30*time.Second, func() bool {
		for _, id := range ids {
			if len(fl.rec.held(id)) != want {
				return false
			}
		}
		return fl.rec.processing(shards, fl.rec.lastEvent(fl.start))
	}, "workers %v did not settle on %d leases each with every shard processing: %v", ids, want,
		lazy(func() string { return fl.holdings(ids) }))
	return shards
}

func (fl *fleet) holdings(ids []string) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s holds %v; ", id, fl.rec.held(id))
	}
	b.WriteString(fl.prod.String())
	return b.String()
}

// resumed waits until a worker other than gone processed a record of each
// of shards after since, and returns the longest wait and, per shard, when
// the first record was processed.
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

// TestFailover measures how fast processing resumes when a worker crashes,
// stops gracefully, or joins, with worker processes and a 3 s lease. The
// cases run one after another: run in parallel they load kinesis-mock (one
// Node thread) enough to add hundreds of milliseconds to each measurement.
func TestFailover(t *testing.T) {
	t.Run("sigkill", func(t *testing.T) {
		fl := newFleet(t)
		fl.startProc(t, "a1")
		fl.startProc(t, "a2")
		fl.waitBalanced(t, fleetShards/2, "a1", "a2")

		held := fl.rec.held("a2")
		killed := fl.procs["a2"].kill(t)
		worst := fl.resumed(t, "a2", held, killed, 4*crashLimit)
		t.Logf("failover: sigkill resume %.1fs (limit %.0fs)", worst.Seconds(), crashLimit.Seconds())
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
		fl := newFleet(t)
		fl.startProc(t, "b1")
		fl.startProc(t, "b2")
		fl.waitBalanced(t, fleetShards/2, "b1", "b2")

		held := fl.rec.held("b2")
		stopped := fl.procs["b2"].term(t)
		var released time.Duration
		for _, s := range held {
			at, ok := fl.rec.firstEvent("b2", s, kindReleased, stopped)
			if !ok {
				t.Errorf("b2 stopped without reporting %s released", s)
			}
			released = max(released, at.Sub(stopped))
		}
		worst := fl.resumed(t, "b2", held, stopped, 10*gracefulLimit)
		t.Logf("failover: sigterm resume %.1fs (limit %.0fs; leases released %v after SIGTERM)",
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
		fl := newFleet(t)
		fl.startProc(t, "c1")
		shards := fl.waitBalanced(t, fleetShards, "c1")

		joined := fl.startProc(t, "c2").started
		fl.waitBalanced(t, fleetShards/2, "c1", "c2")
		var share, first time.Duration
		for _, s := range fl.rec.held("c2") {
			at, _ := fl.rec.firstEvent("c2", s, kindAcquired, joined)
			share = max(share, at.Sub(joined))
			rec, _, _ := fl.rec.firstRecord(s, "c1", joined)
			first = max(first, rec.Sub(joined))
		}
		t.Logf("failover: join fair share %.1fs (limit %.0fs; first record on each of its shards %.1fs)",
			share.Seconds(), joinLimit.Seconds(), first.Seconds())
		if share > joinLimit {
			t.Errorf("the joining worker held its fair share %v after it started, want at most %v", share, joinLimit)
		}
		if held := append(fl.rec.held("c1"), fl.rec.held("c2")...); !sameSet(held, shards) {
			t.Errorf("the workers hold %v between them, want each of %v once", held, shards)
		}

		fl.prod.stop()
		fl.rec.check(t, 30*time.Second, true)
		fl.procs["c1"].term(t)
		fl.procs["c2"].term(t)
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
