package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/testenv"
)

// observation is one record processed by a worker.
type observation struct {
	at            time.Time
	worker, shard string
}

// leaseEvent is one lease event reported by a worker.
type leaseEvent struct {
	at                  time.Time
	worker, shard, kind string
}

// Lease event kinds, as consumer.LeaseEventKind.String spells them and the
// worker binary prints them.
const (
	kindAcquired = "acquired"
	kindLost     = "lost"
	kindReleased = "released"
	kindShardEnd = "shard ended"
	// kindKilled is the test's own: the worker process was killed, so it
	// holds nothing any more, although it reported no lease given up.
	kindKilled = "killed"
)

// recorder collects what the workers report: every processed record (fed to
// a checker), every lease event, and when each happened.
type recorder struct {
	chk *checker.Checker

	// mu guards the fields below.
	mu           sync.Mutex
	records      []observation
	events       []leaseEvent
	bySeq        map[string]int // "shard seq sub" → times processed
	redeliveries int            // processings of a (shard, seq, sub) already processed
	malformed    []string
}

func newRecorder(chk *checker.Checker) *recorder {
	return &recorder{chk: chk, bySeq: make(map[string]int)}
}

// record notes that worker processed the record (seq, sub) of shard holding data.
func (r *recorder) record(worker, shard string, data []byte, seq string, sub uint64) {
	now := time.Now()
	key, n, err := checker.ParsePayload(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if len(r.malformed) < 10 {
			r.malformed = append(r.malformed, fmt.Sprintf("%s on %s: %v", worker, shard, err))
		}
		return
	}
	id := fmt.Sprintf("%s %s %d", shard, seq, sub)
	r.bySeq[id]++
	if r.bySeq[id] > 1 {
		r.redeliveries++
	}
	r.records = append(r.records, observation{at: now, worker: worker, shard: shard})
	r.chk.Processed(key, n)
}

// lease notes a lease event of worker.
func (r *recorder) lease(worker, shard, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch kind {
	case kindAcquired, kindLost, kindReleased, kindShardEnd, kindKilled:
	default:
		if len(r.malformed) < 10 {
			r.malformed = append(r.malformed, fmt.Sprintf("%s reported lease event %q for %s", worker, kind, shard))
		}
	}
	r.events = append(r.events, leaseEvent{at: time.Now(), worker: worker, shard: shard, kind: kind})
}

// held returns the shards worker holds according to its lease events, sorted.
func (r *recorder) held(worker string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := map[string]bool{}
	for _, e := range r.events {
		if e.worker != worker {
			continue
		}
		switch e.kind {
		case kindAcquired:
			set[e.shard] = true
		case kindLost, kindReleased, kindShardEnd:
			delete(set, e.shard)
		case kindKilled:
			clear(set)
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// firstRecord returns when a worker other than except first processed a
// record of shard after since, and which worker.
func (r *recorder) firstRecord(shard, except string, since time.Time) (time.Time, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.records {
		if o.shard == shard && o.worker != except && o.at.After(since) {
			return o.at, o.worker, true
		}
	}
	return time.Time{}, "", false
}

// firstEvent returns when worker first reported kind for shard after since.
func (r *recorder) firstEvent(worker, shard, kind string, since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.worker == worker && e.shard == shard && e.kind == kind && e.at.After(since) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// lastEvent returns when the last lease event was reported, or otherwise.
func (r *recorder) lastEvent(otherwise time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return otherwise
	}
	return r.events[len(r.events)-1].at
}

// processing reports whether every shard in shards had a record processed
// by some worker after since.
func (r *recorder) processing(shards []string, since time.Time) bool {
	for _, s := range shards {
		if _, _, ok := r.firstRecord(s, "", since); !ok {
			return false
		}
	}
	return true
}

// malformedLine notes output of a worker that the test cannot read.
func (r *recorder) malformedLine(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.malformed) < 10 {
		r.malformed = append(r.malformed, s)
	}
}

func (r *recorder) redelivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.redeliveries
}

// check asserts the checker's verdict once every produced record has been
// processed: nothing lost or unexpected, per-key order kept and, when
// exactlyOnce is set, no duplicate. It waits up to timeout for the workers to
// catch up with the producer, which must be stopped.
func (r *recorder) check(t *testing.T, timeout time.Duration, exactlyOnce bool) checker.Report {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, func() bool { rep := r.chk.Report(); return rep.Lost == 0 },
		"workers did not process every record: %v", lazy(func() string { return r.describe(r.chk.Report()) }))
	rep := r.chk.Report()
	t.Logf("checker: %v (caught up %v after the producer stopped)", rep, time.Since(start).Round(100*time.Millisecond))
	if !rep.OK() {
		t.Errorf("delivery broken: %s", r.describe(rep))
	}
	if exactlyOnce && rep.Duplicates > 0 {
		t.Errorf("%d duplicates without a crash, want 0 (%d of them redeliveries of the same sequence number; the rest are records the producer put twice)",
			rep.Duplicates, r.redelivered())
	}
	if rep.Produced == 0 {
		t.Errorf("nothing was produced, so nothing was proved")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.malformed) > 0 {
		t.Errorf("workers reported records that are not checker payloads: %q", r.malformed)
	}
	return rep
}

func (r *recorder) describe(rep checker.Report) string {
	var b strings.Builder
	b.WriteString(rep.String())
	if len(rep.LostSamples) > 0 {
		fmt.Fprintf(&b, "; lost e.g. %q", rep.LostSamples)
	}
	if len(rep.ViolationSamples) > 0 {
		fmt.Fprintf(&b, "; order violations e.g. %q", rep.ViolationSamples)
	}
	return b.String()
}

// waitFor waits up to timeout for cond, polling every 50 ms, and fails the
// test with msg when it does not become true.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	testenv.Eventually(t, timeout, 50*time.Millisecond, cond, msg, args...)
}

// waitShared waits until the workers hold the open shards between them, each
// at least one, as the fair share of more shards than workers demands.
func waitShared(t *testing.T, rec *recorder, open, ids []string) {
	t.Helper()
	start := time.Now()
	waitFor(t, 30*time.Second, func() bool {
		var all []string
		for _, id := range ids {
			h := rec.held(id)
			if len(h) == 0 {
				return false
			}
			all = append(all, h...)
		}
		return sameSet(all, open)
	}, "workers %v do not share the open shards %v: %v", ids, open, lazy(func() string {
		s := ""
		for _, id := range ids {
			s += fmt.Sprintf("%s holds %v; ", id, rec.held(id))
		}
		return s
	}))
	t.Logf("fair share: the workers share the %d open shards after %v", len(open), time.Since(start).Round(100*time.Millisecond))
}
