package history

import (
	"maps"
	"strings"
	"testing"
	"time"
)

var testOpts = Options{FailoverTime: time.Second, Epsilon: 5 * time.Millisecond}

// killedAfterFirstCheckpoint: w1 processes k/0..3 on A at 10..40 and
// checkpoints k/0 only.
func killedAfterFirstCheckpoint() *run {
	return newRun().produceKey("A", "k", 0, 4).
		lease(0, "w1", "A", Acquired).
		batch(10, "w1", "A", "k", 0, 4).
		checkpoint(15, 18, "w1", "A", pos(0), "")
}

func TestCheckRules(t *testing.T) {
	tests := []struct {
		name    string
		build   func() *run
		want    counts
		reasons []DuplicateReason // of the unexplained duplicates, in order
	}{
		// Rule 1.
		{name: "every produced record processed once, in order, is OK",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 3).lease(0, "w1", "A", Acquired).batch(10, "w1", "A", "k", 0, 3).
					checkpoint(40, 45, "w1", "A", pos(2), "")
			}},
		{name: "a produced record nobody processed is lost",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 3).lease(0, "w1", "A", Acquired).batch(10, "w1", "A", "k", 0, 2)
			},
			want: counts{Lost: 1}},
		{name: "a processed record nobody produced is unexpected",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 2).lease(0, "w1", "A", Acquired).batch(10, "w1", "A", "k", 0, 3)
			},
			want: counts{Unexpected: 1}},
		{name: "a put retried by the producer is processed at both positions without a duplicate",
			build: func() *run {
				return newRun().produce(0, "A", "k", 0, 0).produce(5, "A", "k", 0, 1).produce(6, "A", "k", 1, 2).
					lease(0, "w1", "A", Acquired).process(10, "w1", "A", "k", 0, 0).process(20, "w1", "A", "k", 0, 1).
					process(30, "w1", "A", "k", 1, 2)
			}},
		{name: "a stray huge ordinal is unexpected and costs no memory",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 1).lease(0, "w1", "A", Acquired).batch(10, "w1", "A", "k", 0, 1).
					process(20, "w1", "A", "k", 1<<40, 1)
			},
			want: counts{Unexpected: 1}},
		{name: "a stray huge produced ordinal nobody processed is lost",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 1).produce(1, "A", "k", 1<<40, 1).
					lease(0, "w1", "A", Acquired).batch(10, "w1", "A", "k", 0, 1)
			},
			want: counts{Lost: 1}},
		{name: "a stray huge ordinal processed before smaller ones is an order violation for them",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 2).produce(1, "A", "k", 1<<40, 2).lease(0, "w1", "A", Acquired).
					process(5, "w1", "A", "k", 1<<40, 2).batch(10, "w1", "A", "k", 0, 2)
			},
			want: counts{Order: 2}},

		// Rule 2.
		{name: "a key's records first processed in producer order across parent and child are in order",
			build: func() *run {
				return newRun().produceKey("P", "k", 0, 2).produce(2, "C", "k", 2, 0).produce(3, "C", "k", 3, 1).
					lease(0, "w1", "P", Acquired).batch(10, "w1", "P", "k", 0, 2).
					checkpoint(25, 28, "w1", "P", "SHARD_END", "").lease(30, "w1", "P", ShardEnded).
					lease(40, "w2", "C", Acquired).process(50, "w2", "C", "k", 2, 0).process(60, "w2", "C", "k", 3, 1)
			}},
		{name: "a child's records processed before the parent's earlier records are order violations",
			build: func() *run {
				return newRun().produceKey("P", "k", 0, 2).produce(2, "C", "k", 2, 0).produce(3, "C", "k", 3, 1).
					lease(0, "w2", "C", Acquired).process(10, "w2", "C", "k", 2, 0).process(20, "w2", "C", "k", 3, 1).
					lease(0, "w1", "P", Acquired).batch(30, "w1", "P", "k", 0, 2)
			},
			want: counts{Order: 2}},
		{name: "records of different keys interleave freely",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 2).produceKey("B", "j", 0, 2).
					lease(0, "w1", "A", Acquired).lease(0, "w2", "B", Acquired).
					batch(10, "w2", "B", "j", 0, 2).batch(5, "w1", "A", "k", 0, 2)
			}},
		{name: "a replay of earlier records after later ones is not an order violation",
			build: func() *run {
				return killedAfterFirstCheckpoint().life(50, "w1", SIGKILL).
					lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 1, 4)
			},
			want: counts{Duplicates: 3, Explained: 3}},

		// Rule 3.
		{name: "a replay after a lease loss before the checkpoint is explained",
			build: func() *run {
				return killedAfterFirstCheckpoint().lease(1100, "w2", "A", Acquired).lease(1200, "w1", "A", Lost).
					batch(1110, "w2", "A", "k", 1, 4)
			},
			want: counts{Duplicates: 3, Explained: 3}},
		{name: "a replay past a checkpoint durable before the takeover is unexplained",
			build: func() *run {
				return killedAfterFirstCheckpoint().checkpoint(45, 48, "w1", "A", pos(3), "").life(50, "w1", SIGKILL).
					lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 3, 4)
			},
			want: counts{Duplicates: 1, Unexplained: 1}, reasons: []DuplicateReason{PastCheckpoint}},
		{name: "a record processed twice in one lease tenure is unexplained",
			build: func() *run { return killedAfterFirstCheckpoint().process(60, "w1", "A", "k", 2, 2) },
			want:  counts{Duplicates: 1, Unexplained: 1}, reasons: []DuplicateReason{SameTenure}},
		{name: "a record processed again by a worker that never acquired the shard is unexplained",
			build: func() *run { return killedAfterFirstCheckpoint().process(60, "w2", "A", "k", 1, 1) },
			want:  counts{Duplicates: 1, Unexplained: 1}, reasons: []DuplicateReason{NoLease}},
		{name: "a replay after a graceful release that did not checkpoint is unexplained",
			build: func() *run {
				return killedAfterFirstCheckpoint().life(50, "w1", SIGTERM).lease(60, "w1", "A", Released).life(70, "w1", Exit).
					lease(100, "w2", "A", Acquired).batch(110, "w2", "A", "k", 3, 4)
			},
			want: counts{Duplicates: 1, Unexplained: 1}, reasons: []DuplicateReason{AfterRelease}},
		{name: "a replay after a graceful release whose final checkpoint failed is explained",
			build: func() *run {
				return killedAfterFirstCheckpoint().life(50, "w1", SIGTERM).checkpoint(52, 55, "w1", "A", pos(3), "throttled").
					lease(60, "w1", "A", Released).life(70, "w1", Exit).
					lease(100, "w2", "A", Acquired).batch(110, "w2", "A", "k", 3, 4)
			},
			want: counts{Duplicates: 1, Explained: 1}},
		{name: "a replay after a restart under the same worker id following SIGKILL is explained",
			build: func() *run {
				return killedAfterFirstCheckpoint().life(50, "w1", SIGKILL).life(60, "w1", Start).
					lease(1100, "w1", "A", Acquired).batch(1110, "w1", "A", "k", 1, 4)
			},
			want: counts{Duplicates: 3, Explained: 3}},
		{name: "a zombie finishing its batch after the new owner checkpointed and released is explained",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 4).lease(0, "w1", "A", Acquired).
					batch(10, "w1", "A", "k", 0, 3).checkpoint(22, 25, "w1", "A", pos(1), "").life(35, "w1", SIGSTOP).
					lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 2, 4).
					checkpoint(1125, 1130, "w2", "A", pos(3), "").lease(1200, "w2", "A", Released).
					life(1500, "w1", SIGCONT).process(1510, "w1", "A", "k", 3, 3)
			},
			want: counts{Duplicates: 2, Explained: 2}},
		{name: "a replay after the holder was killed is explained even if a zombie processed the record since and released",
			// The zombie's processing and release say nothing: the previous
			// holder's processing is what the replay repeats.
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 2).lease(0, "w1", "A", Acquired).
					process(10, "w1", "A", "k", 0, 0).life(20, "w1", SIGSTOP).
					lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 0, 2).
					life(1200, "w1", SIGCONT).process(1210, "w1", "A", "k", 1, 1).
					life(1300, "w1", SIGTERM).lease(1310, "w1", "A", Released).
					life(1400, "w2", SIGKILL).lease(2500, "w3", "A", Acquired).process(2510, "w3", "A", "k", 1, 1)
			},
			want: counts{Duplicates: 3, Explained: 3}},
		{name: "a replay after a stopped worker released the lease on resuming is explained",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 1).lease(0, "w1", "A", Acquired).
					process(10, "w1", "A", "k", 0, 0).life(20, "w1", SIGSTOP).lease(1100, "w2", "A", Acquired).
					life(1150, "w1", SIGCONT).lease(1160, "w1", "A", Released).process(1170, "w2", "A", "k", 0, 0)
			},
			want: counts{Duplicates: 1, Explained: 1}},
		{name: "a record processed within epsilon before another worker's acquisition is a zombie's",
			build: func() *run {
				return newRun().produceKey("A", "k", 0, 1).lease(0, "w1", "A", Acquired).
					process(1098, "w1", "A", "k", 0, 0).lease(1100, "w2", "A", Acquired).
					lease(1105, "w1", "A", Released).process(1110, "w2", "A", "k", 0, 0)
			},
			want: counts{Duplicates: 1, Explained: 1}},

		// Rule 4.
		{name: "checkpoints by the lease holder of the moment are fenced correctly",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).checkpoint(500, 505, "w1", "A", pos(1), "").
					lease(1000, "w2", "A", Acquired).lease(1010, "w1", "A", Lost).checkpoint(1500, 1505, "w2", "A", pos(2), "")
			}},
		{name: "a durable checkpoint begun after another worker acquired the shard is a fencing violation",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					checkpoint(1020, 1025, "w1", "A", pos(1), "")
			},
			want: counts{Fencing: 1}},
		{name: "a failed checkpoint begun after another worker acquired the shard is fenced correctly",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					checkpoint(1020, 1025, "w1", "A", pos(1), "lease: lost")
			}},
		{name: "a checkpoint begun within epsilon of the other acquisition gets the benefit of the doubt",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					checkpoint(1004, 1010, "w1", "A", pos(1), "")
			}},
		{name: "a checkpoint after acquiring the shard again is fenced correctly",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					lease(2000, "w1", "A", Acquired).checkpoint(2010, 2015, "w1", "A", pos(1), "")
			}},
		{name: "a take sent before the holder's acquisition and logged after it does not fence the holder",
			// A worker paused (SIGSTOP) while its take was in flight: the
			// take happened before w2's, and w2's writes stay durable.
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					acquired(900, 1500, "w1", "A").lease(1501, "w1", "A", Lost).
					checkpoint(1600, 1605, "w2", "A", pos(1), "")
			}},
		{name: "a take sent after the holder's acquisition fences the holder",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					acquired(1100, 1500, "w1", "A").checkpoint(1600, 1605, "w2", "A", pos(1), "")
			},
			want: counts{Fencing: 1}},
		{name: "a take sent within epsilon of the holder's acquisition gets the benefit of the doubt",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(1000, "w2", "A", Acquired).
					acquired(1004, 1500, "w1", "A").checkpoint(1600, 1605, "w2", "A", pos(1), "")
			}},
		{name: "a checkpoint by a worker that never acquired the shard is a fencing violation",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).checkpoint(10, 15, "w3", "A", pos(1), "")
			},
			want: counts{Fencing: 1}},

		// Rule 5.
		{name: "an old owner finishing its batch shortly after the handover is no overlap violation",
			build: func() *run {
				return newRun().stream("w1", "A", "k1", 0, 2400, 100).stream("w2", "A", "k2", 2000, 4000, 100)
			}},
		{name: "two workers processing a shard together for longer than the lease is an overlap violation",
			build: func() *run {
				return newRun().stream("w1", "A", "k1", 0, 4000, 100).stream("w2", "A", "k2", 1000, 4000, 100)
			},
			want: counts{Overlap: 1}},
		{name: "a zombie's one late record after a long pause is no overlap violation",
			build: func() *run {
				return newRun().stream("w1", "A", "k1", 0, 500, 100).stream("w2", "A", "k2", 1500, 4000, 100).
					stream("w1", "A", "k1", 3000, 3001, 100)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(tt.build().h, testOpts)
			if got := countsOf(r); got != tt.want {
				t.Fatalf("counts %+v, want %+v\n%s", got, tt.want, table(t, r))
			}
			if r.OK() != (tt.want == counts{Duplicates: tt.want.Duplicates, Explained: tt.want.Explained}) {
				t.Errorf("OK() = %v for counts %+v", r.OK(), tt.want)
			}
			var reasons []DuplicateReason
			for _, d := range r.UnexplainedSamples {
				reasons = append(reasons, d.Reason)
			}
			if !equal(reasons, tt.reasons) {
				t.Errorf("unexplained duplicate reasons %v, want %v", reasons, tt.reasons)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func table(t *testing.T, r Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.Table(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCheckWindowAndByWorker(t *testing.T) {
	b := killedAfterFirstCheckpoint().life(50, "w1", SIGKILL).lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 1, 4)
	r := Check(b.h, testOpts)
	// k/1 first processed at 20, again at 1110.
	if want := 1090 * time.Millisecond; r.MaxWindow != want {
		t.Errorf("MaxWindow %s, want %s", r.MaxWindow, want)
	}
	if want := map[string]int{"w1": 4, "w2": 3}; !maps.Equal(r.ByWorker, want) {
		t.Errorf("ByWorker %v, want %v", r.ByWorker, want)
	}
	if r.Produced != 4 || r.Processed != 7 || r.Unique != 4 {
		t.Errorf("produced %d processed %d unique %d, want 4, 7, 4", r.Produced, r.Processed, r.Unique)
	}
}

func TestCheckProducerDuplicates(t *testing.T) {
	// k/0 put twice (its first acknowledgement lost), each copy processed
	// once, and the second copy replayed after a takeover.
	b := newRun().produce(0, "A", "k", 0, 0).produce(5, "A", "k", 0, 1).lease(0, "w1", "A", Acquired).
		process(10, "w1", "A", "k", 0, 0).process(20, "w1", "A", "k", 0, 1).life(30, "w1", SIGKILL).
		lease(1100, "w2", "A", Acquired).process(1110, "w2", "A", "k", 0, 1)
	r := Check(b.h, testOpts)
	if r.ProducerDuplicates != 1 || r.Duplicates != 1 || r.Unique != 1 || r.Produced != 1 || !r.OK() {
		t.Fatalf("producer duplicates %d, duplicates %d, unique %d, produced %d, OK %v; want 1, 1, 1, 1, true",
			r.ProducerDuplicates, r.Duplicates, r.Unique, r.Produced, r.OK())
	}
}

func TestCheckOrderIgnoresLineOrder(t *testing.T) {
	// The replaying worker's log read first: first processings are by
	// time, not by position in the logs.
	b := killedAfterFirstCheckpoint().life(50, "w1", SIGKILL).lease(1100, "w2", "A", Acquired).batch(1110, "w2", "A", "k", 1, 3)
	for i, j := 0, len(b.h.Processed)-1; i < j; i, j = i+1, j-1 {
		b.h.Processed[i], b.h.Processed[j] = b.h.Processed[j], b.h.Processed[i]
	}
	r := Check(b.h, testOpts)
	if got, want := countsOf(r), (counts{Duplicates: 2, Explained: 2}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if want := 1090 * time.Millisecond; r.MaxWindow != want {
		t.Errorf("MaxWindow %s, want %s", r.MaxWindow, want)
	}
}

func TestCheckFailover(t *testing.T) {
	tests := []struct {
		name   string
		build  func() *run
		want   map[LifecycleKind]Failover
		leader map[LifecycleKind]Failover // LeaderFailover; nil for none
	}{
		{name: "failover after SIGKILL runs to each held shard's next acquisition",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(0, "w1", "B", Acquired).lease(0, "w1", "C", Acquired).
					life(1000, "w1", SIGKILL).
					lease(2000, "w2", "A", Acquired).lease(4000, "w2", "B", Acquired).lease(3000, "w3", "C", Acquired)
			},
			want: map[LifecycleKind]Failover{SIGKILL: {Count: 3, Min: time.Second, Median: 2 * time.Second, Max: 3 * time.Second}}},
		{name: "a SIGSTOP shorter than the lease fails over when the worker resumes processing",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).stream("w1", "A", "k", 10, 1000, 100).
					life(1000, "w1", SIGSTOP).life(1300, "w1", SIGCONT).stream("w1", "A", "k", 1310, 1311, 100)
			},
			want: map[LifecycleKind]Failover{SIGSTOP: {Count: 1, Min: 310 * time.Millisecond, Median: 310 * time.Millisecond, Max: 310 * time.Millisecond}}},
		{name: "a SIGSTOP longer than the lease fails over at the takeover",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGSTOP).lease(2500, "w2", "A", Acquired).
					life(3000, "w1", SIGCONT).stream("w1", "A", "k", 3010, 3011, 100)
			},
			want: map[LifecycleKind]Failover{SIGSTOP: {Count: 1, Min: 1500 * time.Millisecond, Median: 1500 * time.Millisecond, Max: 1500 * time.Millisecond}}},
		{name: "a SIGTERM's drain is not a failover",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGTERM).stream("w1", "A", "k", 1010, 1011, 100).
					lease(1020, "w1", "A", Released).lease(1500, "w2", "A", Acquired)
			},
			want: map[LifecycleKind]Failover{SIGTERM: {Count: 1, Min: 500 * time.Millisecond, Median: 500 * time.Millisecond, Max: 500 * time.Millisecond}}},
		{name: "a shard nobody takes over is unresolved",
			build: func() *run { return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGKILL) },
			want:  map[LifecycleKind]Failover{SIGKILL: {Unresolved: 1}}},
		{name: "a shard the worker finishes while it drains after SIGTERM needs no new owner",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGTERM).lease(1100, "w1", "A", ShardEnded)
			},
			want: map[LifecycleKind]Failover{SIGTERM: {Ended: 1}}},
		{name: "a shard the worker finishes after SIGCONT needs no new owner",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGSTOP).life(1500, "w1", SIGCONT).
					lease(1600, "w1", "A", ShardEnded)
			},
			want: map[LifecycleKind]Failover{SIGSTOP: {Ended: 1}}},
		{name: "a SIGTERM drain that releases the shard without finishing it is unresolved until someone acquires it",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", SIGTERM).lease(1100, "w1", "A", Released)
			},
			want: map[LifecycleKind]Failover{SIGTERM: {Unresolved: 1}}},
		{name: "shards the worker no longer held do not fail over",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(500, "w1", "A", Released).
					lease(0, "w1", "B", Acquired).lease(600, "w2", "B", Acquired).
					life(1000, "w1", SIGKILL).lease(2000, "w2", "A", Acquired)
			},
			want: map[LifecycleKind]Failover{}},
		{name: "a partitioned worker's processing up to its deadline resumes nothing: the failover is the takeover",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).stream("w1", "A", "k", 10, 1000, 100).
					life(1000, "w1", Partition).stream("w1", "A", "k", 1000, 1800, 100).
					lease(3200, "w2", "A", Acquired).life(4000, "w1", Heal)
			},
			want: map[LifecycleKind]Failover{Partition: {Count: 1, Min: 2200 * time.Millisecond, Median: 2200 * time.Millisecond, Max: 2200 * time.Millisecond}}},
		{name: "a partitioned worker that processes again once healed has resumed",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", Partition).stream("w1", "A", "k", 1000, 1800, 100).
					life(2500, "w1", Heal).stream("w1", "A", "k", 2600, 2700, 100)
			},
			want: map[LifecycleKind]Failover{Partition: {Count: 1, Min: 1600 * time.Millisecond, Median: 1600 * time.Millisecond, Max: 1600 * time.Millisecond}}},
		{name: "a partition never healed whose shard no one takes is unresolved",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).life(1000, "w1", Partition).stream("w1", "A", "k", 1000, 1800, 100)
			},
			want: map[LifecycleKind]Failover{Partition: {Unresolved: 1}}},
		{name: "faults on the leader are summed apart",
			build: func() *run {
				return newRun().lease(0, "w1", "A", Acquired).lease(0, "w2", "B", Acquired).
					life(1000, "w1", SIGKILL).lease(2000, "w3", "A", Acquired).
					leader(5000, "w2", SIGKILL).lease(8500, "w3", "B", Acquired)
			},
			want:   map[LifecycleKind]Failover{SIGKILL: {Count: 1, Min: time.Second, Median: time.Second, Max: time.Second}},
			leader: map[LifecycleKind]Failover{SIGKILL: {Count: 1, Min: 3500 * time.Millisecond, Median: 3500 * time.Millisecond, Max: 3500 * time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(tt.build().h, testOpts)
			if !maps.Equal(r.Failover, tt.want) {
				t.Fatalf("Failover %+v, want %+v", r.Failover, tt.want)
			}
			if tt.leader == nil {
				tt.leader = map[LifecycleKind]Failover{}
			}
			if !maps.Equal(r.LeaderFailover, tt.leader) {
				t.Fatalf("LeaderFailover %+v, want %+v", r.LeaderFailover, tt.leader)
			}
			unresolved := 0
			for _, f := range tt.want {
				unresolved += f.Unresolved
			}
			if len(r.UnresolvedSamples) != unresolved {
				t.Errorf("UnresolvedSamples %v, want %d", r.UnresolvedSamples, unresolved)
			}
		})
	}
}
