package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/checker"
)

// TestMultiProcessResharding runs three worker processes on a stream that is
// split, merged and rescaled while a producer writes to it. After the split
// one worker is killed with SIGKILL and restarted under the same id (it
// finds its leases in the table at once); after the merge another is killed
// and replaced by a worker with a new id (its leases must expire first). It
// proves that nothing is lost and each key stays in order; duplicates are
// allowed, but only for records a killed worker had not checkpointed.
func TestMultiProcessResharding(t *testing.T) {
	start := time.Now()
	f := newFixture(t, 2)
	chk := checker.New()
	rec := newRecorder(chk)
	keys := spreadKeys(16)
	prod := startProducer(t, f, chk, keys, 100*time.Millisecond)

	procs := map[string]*workerProc{}
	ids := workerIDs("p", 3)
	for _, id := range ids {
		procs[id] = f.startProc(t, rec, id)
	}
	initial := shardIDs(f.openShards(t))
	waitFor(t, 30*time.Second, func() bool { return rec.processing(initial, start) },
		"worker processes did not start processing every shard: %v", prod)
	t.Logf("start: %d shards processing after %v", len(initial), time.Since(start).Round(100*time.Millisecond))

	// crash kills the worker holding the most leases, in the middle of the
	// resharding (some of its shards are parents whose children wait), and
	// starts a worker with id next in its place.
	crash := func(next func(victim string) string) {
		victim := ids[0]
		for _, id := range ids {
			if len(rec.held(id)) > len(rec.held(victim)) {
				victim = id
			}
		}
		held := rec.held(victim)
		killedAt := procs[victim].kill(t)
		delete(procs, victim)
		successor := next(victim)
		ids[slices.Index(ids, victim)] = successor
		procs[successor] = f.startProc(t, rec, successor)
		waitFor(t, 30*time.Second, func() bool { return rec.processing(held, killedAt) },
			"after SIGKILL of %s and start of %s, the shards %v were not all processed again", victim, successor, held)
		t.Logf("crash: %s killed holding %v, %s started; those shards processed again after %v",
			victim, held, successor, time.Since(killedAt).Round(100*time.Millisecond))
	}
	settle := func(step string) {
		since := time.Now()
		open := shardIDs(f.openShards(t))
		waitFor(t, 30*time.Second, func() bool { return rec.processing(open, since) },
			"after %s, open shards %v were not all processed: %v", step, open, prod)
		t.Logf("%s: %d open shards processing after %v", step, len(open), time.Since(since).Round(100*time.Millisecond))
		switch step {
		case "split":
			crash(func(victim string) string { return victim }) // restarted under the same id
		case "merge":
			crash(func(victim string) string { return victim + "-new" })
		}
	}
	n := f.reshard(t, settle)
	waitShared(t, rec, shardIDs(f.openShards(t)), ids)

	produced := prod.stop()
	rep := rec.check(t, 60*time.Second, false)
	for _, id := range ids {
		procs[id].term(t)
	}
	t.Logf("multi-process: %d records over %d keys, %d open shards at the end, %d duplicates (%d redeliveries after the crashes), %v",
		produced, len(keys), n, rep.Duplicates, rec.redelivered(), time.Since(start).Round(100*time.Millisecond))
}

// workerIDs returns n worker ids with prefix.
func workerIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return ids
}
