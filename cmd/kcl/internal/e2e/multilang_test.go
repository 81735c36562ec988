package e2e

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/testkit/testenv"
)

// Every case puts records of recordKeys keys, recordRounds each, into a
// stream of two shards before kcl starts: with maxRecords = 10 each shard
// takes several batches.
const (
	recordKeys   = 8
	recordRounds = 20
)

// eachLang runs f as a parallel subtest per client library.
func eachLang(t *testing.T, f func(t *testing.T, l lang)) {
	t.Parallel()
	for _, l := range langs {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			f(t, l)
		})
	}
}

// exercise runs one application over a two-shard stream holding records
// put beforehand: it starts kcl with props and env, waits until every record
// was processed, SIGTERMs kcl (which must exit 0), and returns the verdict,
// which must be that nothing was lost, out of order or unexpected.
func exercise(t *testing.T, l lang, props map[string]string, env ...string) (*run, report) {
	t.Helper()
	r := newRun(t, l, 2)
	r.prod.put(t, keys(recordKeys), recordRounds)
	h := r.start(props, env...)
	r.waitProcessed(h)
	h.stop()
	rep := r.report()
	if !rep.OK() {
		t.Fatalf("%v; lost %v; order %v", &rep, rep.LostSamples, rep.ViolationSamples)
	}
	t.Logf("%v", &rep)
	r.checkReleased()
	return r, rep
}

// checkReleased checks that a stopped kcl left no lease owned.
func (r *run) checkReleased() {
	r.t.Helper()
	ls := r.leases()
	if len(ls) == 0 {
		r.t.Fatalf("lease table %s is empty", r.app)
	}
	for _, l := range ls {
		if l.Owner != "" {
			r.t.Errorf("lease %s still owned by %q after kcl stopped", l.Key, l.Owner)
		}
	}
}

// checkNoRestart checks that each shard had one child, which processed its
// records once each, in order.
func checkNoRestart(t *testing.T, rep report) {
	t.Helper()
	if rep.Duplicates != 0 {
		t.Errorf("%d records processed twice, want none", rep.Duplicates)
	}
	for shard, n := range rep.initializations() {
		if n != 1 {
			t.Errorf("shard %s initialized %d times, want once", shard, n)
		}
	}
	if errs := rep.orderErrors(); len(errs) > 0 {
		t.Errorf("records out of shard order: %v", errs[:min(len(errs), 5)])
	}
}

// (a) No faults: every record exactly once, in order per shard.
func TestEveryRecordOnceInShardOrder(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		_, rep := exercise(t, l, nil)
		checkNoRestart(t, rep)
		if got := len(rep.initializations()); got != 2 {
			t.Errorf("%d shards initialized, want 2", got)
		}
	})
}

// KPL aggregates reach the child de-aggregated: one record per user record,
// each with its sub-sequence number, exactly once and in order.
func TestKPLAggregatesArriveDeaggregated(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		const per = 4
		r := newRun(t, l, 2)
		r.prod.perAggregate = per
		r.prod.put(t, keys(recordKeys), recordRounds/per)
		h := r.start(nil)
		r.waitProcessed(h)
		h.stop()
		rep := r.report()
		if !rep.OK() {
			t.Fatalf("%v; lost %v; order %v", &rep, rep.LostSamples, rep.ViolationSamples)
		}
		checkNoRestart(t, rep)
		subs := make(map[uint64]int)
		for _, ln := range rep.lines {
			if ln.Event == "" {
				subs[ln.Sub]++
			}
		}
		want := recordKeys * recordRounds / per
		for s := range uint64(per) {
			if subs[s] != want {
				t.Errorf("%d records with sub-sequence number %d, want %d (one per aggregate): %v", subs[s], s, want, subs)
			}
		}
		r.checkReleased()
	})
}

// (b) A split and a merge while records flow: every record at least once,
// per-key order kept across parents and children.
func TestSplitAndMergeWhileRecordsFlow(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		r := newRun(t, l, 1)
		stop := r.prod.flow(t, keys(4), 200*time.Millisecond)
		h := r.start(nil)
		r.waitUnique(h, 40)
		split(t, r.kc, r.stream)
		r.waitUnique(h, r.report().Unique+40)
		merge(t, r.kc, r.stream)
		r.waitUnique(h, r.report().Unique+40)
		stop()
		r.waitProcessed(h)
		h.stop()
		rep := r.report()
		if !rep.OK() {
			t.Fatalf("%v; lost %v; order %v", &rep, rep.LostSamples, rep.ViolationSamples)
		}
		t.Logf("%v", &rep)
		// The first shard, its two children, and their merged child.
		if got := len(rep.initializations()); got != 4 {
			t.Errorf("%d shards initialized, want 4: %v", got, rep.initializations())
		}
		ended := rep.events("shardEnded")
		if len(ended) != 3 {
			t.Errorf("%d shardEnded events, want 3 (the parents): %v", len(ended), ended)
		}
	})
}

// waitUnique waits until at least n distinct records were processed.
func (r *run) waitUnique(h *host, n int) {
	r.t.Helper()
	var rep report
	testenv.Eventually(r.t, processTimeout, 200*time.Millisecond, func() bool {
		h.running()
		rep = r.report()
		return rep.Unique >= n
	}, "fewer than %d records processed: %v", n, &rep)
}

// (c) A child SIGKILLed in the middle of a batch: a new child starts at the
// last checkpoint and the batch is delivered again; nothing is lost.
func TestChildKilledMidBatchIsReplaced(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		once := filepath.Join(t.TempDir(), "killed")
		_, rep := exercise(t, l, nil, "KCL_ML_FAULT=kill", "KCL_ML_FAULT_AT=2", "KCL_ML_FAULT_ONCE="+once)
		kills := rep.events("kill")
		if len(kills) != 1 {
			t.Fatalf("%d kill events, want 1", len(kills))
		}
		k := kills[0]
		if n := rep.initializations()[k.Shard]; n < 2 {
			t.Errorf("shard %s initialized %d times after its child was killed, want at least 2", k.Shard, n)
		}
		// The last record the killed child processed was not checkpointed: it
		// must have been processed again.
		var times int
		for _, x := range rep.lines {
			if x.Event == "" && x.Shard == k.Shard && x.Seq == k.Seq {
				times++
			}
		}
		if times < 2 {
			t.Errorf("record %s of %s processed %d times, want it redelivered after the kill", k.Seq, k.Shard, times)
		}
	})
}

// (d) SIGTERM: kcl asks every child to shut down, stores the final
// checkpoints they make, releases the leases and exits 0. The processors
// checkpoint only then (KCL_ML_CHECKPOINT_EVERY is larger than the stream).
func TestSIGTERMStoresFinalCheckpointsAndReleasesLeases(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		r := newRun(t, l, 2)
		r.prod.put(t, keys(recordKeys), recordRounds)
		h := r.start(nil, "KCL_ML_CHECKPOINT_EVERY=1000000")
		r.waitProcessed(h)
		for _, ls := range r.leases() {
			if ls.Checkpoint != checkpoint.TrimHorizon {
				t.Errorf("lease %s checkpointed at %v before the stop, want %v (no processor checkpointed yet)", ls.Key, ls.Checkpoint, checkpoint.TrimHorizon)
			}
		}
		h.stop()
		rep := r.report()
		if !rep.OK() {
			t.Fatalf("%v; lost %v", &rep, rep.LostSamples)
		}
		checkNoRestart(t, rep)
		last, err := rep.lastRecord()
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rep.events("shutdownRequested")); got != 2 {
			t.Errorf("%d shutdownRequested events, want 2", got)
		}
		ls := r.leases()
		if len(ls) != 2 {
			t.Fatalf("%d leases, want 2", len(ls))
		}
		for _, x := range ls {
			want, ok := last[x.Key]
			if !ok {
				want = checkpoint.TrimHorizon // no record hashed to this shard
			}
			if x.Checkpoint != want {
				t.Errorf("lease %s: checkpoint %v, want the last record processed, %v", x.Key, x.Checkpoint, want)
			}
			if x.Owner != "" {
				t.Errorf("lease %s still owned by %q", x.Key, x.Owner)
			}
		}
	})
}

// (e) A child that stops answering (timeoutInSeconds = 2) is killed and
// replaced; processing goes on from the last checkpoint.
func TestHungChildIsKilledAndReplaced(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		once := filepath.Join(t.TempDir(), "hung")
		_, rep := exercise(t, l, map[string]string{"timeoutInSeconds": "2"},
			"KCL_ML_FAULT=hang", "KCL_ML_FAULT_AT=2", "KCL_ML_FAULT_ONCE="+once)
		hangs := rep.events("hang")
		if len(hangs) != 1 {
			t.Fatalf("%d hang events, want 1", len(hangs))
		}
		hung := hangs[0]
		if n := rep.initializations()[hung.Shard]; n < 2 {
			t.Errorf("shard %s initialized %d times after its child hung, want at least 2", hung.Shard, n)
		}
		// Killed and reaped: kill(pid, 0) succeeds on a zombie too.
		if err := syscall.Kill(hung.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("hung child %d still exists after kcl stopped (kill 0: %v)", hung.PID, err)
		}
	})
}

// (f) Lines on a child's stdout that are not messages (not JSON, blank,
// unknown or missing action, an extra field) are skipped: the child is not
// restarted and nothing is delivered twice.
func TestGarbageOnStdoutIsSkipped(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		_, rep := exercise(t, l, nil, "KCL_ML_FAULT=garbage")
		checkNoRestart(t, rep)
	})
}

// (g) A checkpoint beyond the last record delivered is refused with
// IllegalArgumentException; the processor goes on and so does kcl.
func TestCheckpointBeyondDeliveredRangeIsIllegalArgument(t *testing.T) {
	eachLang(t, func(t *testing.T, l lang) {
		_, rep := exercise(t, l, nil, "KCL_ML_FAULT=badcheckpoint", "KCL_ML_FAULT_AT=2")
		errs := rep.events("checkpointError")
		if len(errs) == 0 {
			t.Fatal("no processor asked for a checkpoint beyond its records")
		}
		for _, e := range errs {
			if e.Error == nil || *e.Error != "IllegalArgumentException" {
				got := "no error"
				if e.Error != nil {
					got = *e.Error
				}
				t.Errorf("checkpoint at %s on %s: %s, want IllegalArgumentException", e.Seq, e.Shard, got)
			}
		}
		checkNoRestart(t, rep)
	})
}
