package history

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// scenario says how the system behind a synthetic run behaves; the zero
// value is a correct system.
type scenario struct {
	stop       bool // w1 is SIGSTOPped mid-batch (else it merely stalls: a GC pause, a partition)
	unfenced   bool // bug: checkpoints are not conditioned on the lease counter
	childFirst bool // bug: the child shard is processed without waiting for its parent
	skip       bool // bug: the new owner of the parent skips a batch
}

// chaosRun is a run with a parent shard P (k/0..7) split into a child C
// (k/8..11), two workers and a lease duration of 1s:
//
//	  10  w1 acquires P, processes k/0..2, checkpoints k/2
//	  60  w1 processes k/3 of its next batch, then stalls (or is SIGSTOPped)
//	1200  w2 takes P over, replays k/3 and processes k/4, k/5 (a duplicate,
//	      explained by the takeover), checkpoints k/5, processes k/6, k/7
//	      and checkpoints SHARD_END
//	1500  w1 resumes and finishes its batch: k/4 (a duplicate, explained:
//	      w1 is a zombie), then tries to checkpoint k/4 — the lease
//	      counter condition must make that fail
//	1700  w1 acquires C and processes k/8..11
//	2000  both are stopped with SIGTERM
func chaosRun(s scenario) History {
	b := newRun().produceKey("P", "k", 0, 8)
	for n := 8; n < 12; n++ {
		b.produce(n, "C", "k", n, n-8)
	}
	b.life(0, "w1", Start).life(0, "w2", Start)
	b.lease(10, "w1", "P", Acquired).batch(20, "w1", "P", "k", 0, 3).checkpoint(45, 50, "w1", "P", pos(2), "")
	b.process(60, "w1", "P", "k", 3, 3)
	if s.stop {
		b.life(65, "w1", SIGSTOP)
	}
	b.lease(1200, "w2", "P", Acquired)
	b.batch(1210, "w2", "P", "k", 3, 6).checkpoint(1235, 1238, "w2", "P", pos(5), "")
	if s.skip {
		b.process(1260, "w2", "P", "k", 7, 7)
	} else {
		b.batch(1250, "w2", "P", "k", 6, 8)
	}
	b.checkpoint(1265, 1270, "w2", "P", "SHARD_END", "").lease(1275, "w2", "P", ShardEnded)
	if s.stop {
		b.life(1500, "w1", SIGCONT)
	}
	b.process(1510, "w1", "P", "k", 4, 4)
	if s.unfenced {
		b.checkpoint(1515, 1520, "w1", "P", pos(4), "")
	} else {
		b.checkpoint(1515, 1520, "w1", "P", pos(4), "lease: lost")
	}
	b.lease(1600, "w1", "P", Lost)
	child := 1700
	if s.childFirst {
		child = 12 // right after acquiring P, without waiting for it to end
	}
	b.lease(child, "w1", "C", Acquired)
	for n := 8; n < 12; n++ {
		b.process(child+1+n-8, "w1", "C", "k", n, n-8)
	}
	b.checkpoint(child+5, child+6, "w1", "C", pos(3), "")
	b.life(2000, "w1", SIGTERM).lease(2005, "w1", "C", Released).life(2010, "w1", Exit)
	b.life(2000, "w2", SIGTERM).life(2010, "w2", Exit)
	return b.h
}

// TestDeliberateBugs checks that the bugs the chaos harness exists to catch
// make Check fail, each through its own rule, and that the same run without
// the bug passes.
func TestDeliberateBugs(t *testing.T) {
	explained := counts{Duplicates: 2, Explained: 2} // k/3 replayed by w2, k/4 finished by zombie w1
	tests := []struct {
		name string
		s    scenario
		want counts
	}{
		{name: "a correct system with a stalled worker passes", s: scenario{}, want: explained},
		{name: "a correct system with a SIGSTOPped zombie passes", s: scenario{stop: true}, want: explained},
		{name: "unfenced checkpoints by a stalled worker are fencing violations",
			s: scenario{unfenced: true}, want: counts{Duplicates: 2, Explained: 2, Fencing: 1}},
		{name: "an unfenced checkpoint by a zombie resumed after SIGCONT is a fencing violation",
			s: scenario{stop: true, unfenced: true}, want: counts{Duplicates: 2, Explained: 2, Fencing: 1}},
		{name: "a child processed before its parent ended shows as order violations",
			s: scenario{childFirst: true}, want: counts{Duplicates: 2, Explained: 2, Order: 8}},
		{name: "a skipped batch shows as lost records",
			s: scenario{skip: true}, want: counts{Duplicates: 2, Explained: 2, Lost: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(chaosRun(tt.s), testOpts)
			if got := countsOf(r); got != tt.want {
				t.Fatalf("counts %+v, want %+v\n%s", got, tt.want, table(t, r))
			}
			if want := map[DuplicateReason]int{Takeover: 1, Zombie: 1}; !maps.Equal(r.DuplicateReasons, want) {
				t.Errorf("duplicate reasons %v, want %v", r.DuplicateReasons, want)
			}
			bug := tt.s.unfenced || tt.s.childFirst || tt.s.skip
			if r.OK() == bug {
				t.Errorf("OK() = %v with bugs %+v", r.OK(), tt.s)
			}
		})
	}
}

func TestDeliberateBugsTable(t *testing.T) {
	r := Check(chaosRun(scenario{stop: true, unfenced: true}), Options{FailoverTime: time.Second, Epsilon: 5 * time.Millisecond,
		Faults: map[string]int{"sigstop": 1, "sigterm": 2}})
	if want := (Failover{Count: 1, Min: 1135 * time.Millisecond, Median: 1135 * time.Millisecond, Max: 1135 * time.Millisecond}); r.Failover[SIGSTOP] != want {
		t.Errorf("SIGSTOP failover %+v, want %+v", r.Failover[SIGSTOP], want)
	}
	got := table(t, r)
	t.Log("\n" + got)
	for _, want := range []string{
		"records             produced 12, processed 14, unique 12\n",
		"faults              sigstop 1, sigterm 2\n",
		"duplicates          2 (explained 2, unexplained 0), max window 1.15s\n",
		"fencing violations  1\n",
		"failover sigstop    n 1, min 1.135s, median 1.135s, max 1.135s, unresolved 0\n",
		"verdict             FAIL\n",
		"fencing: w1 checkpointed P at 1004/0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
