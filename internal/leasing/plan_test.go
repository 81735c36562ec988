package leasing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// leases builds n leases with keys shard-000.., owned as owners says
// (owners[i] for lease i, "" = unowned; missing entries are unowned).
func leases(n int, owners ...string) []lease.Lease {
	ls := make([]lease.Lease, n)
	for i := range ls {
		ls[i] = lease.Lease{Key: fmt.Sprintf("shard-%03d", i), Counter: int64(i), Checkpoint: checkpoint.TrimHorizon}
		if i < len(owners) {
			ls[i].Owner = owners[i]
		}
	}
	return ls
}

func repeat(owner string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = owner
	}
	return s
}

func keys(ls []lease.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	slices.Sort(out)
	return out
}

func TestPlanTakes(t *testing.T) {
	finished := leases(4)
	finished[0].Checkpoint, finished[1].Checkpoint = checkpoint.ShardEnd, checkpoint.ShardEnd
	handoff := leases(4, "a", "a", "a", "me")
	handoff[3].CheckpointOwner = "a"

	tests := []struct {
		name         string
		in           PlanInput
		wantTarget   int
		wantTake     int
		wantHandoff  map[string]int // owner -> leases asked for
		wantTakeKeys []string
	}{
		{
			name:       "a lone worker takes every unowned lease",
			in:         PlanInput{Self: "me", Leases: leases(5)},
			wantTarget: 5, wantTake: 5,
		},
		{
			name:       "a worker already at its fair share takes nothing",
			in:         PlanInput{Self: "me", Leases: leases(4, "a", "a", "me", "me"), Held: heldAll("shard-002", "shard-003")},
			wantTarget: 2,
		},
		{
			name:        "a newcomer asks the most loaded worker for its excess in one pass",
			in:          PlanInput{Self: "me", Leases: leases(6, repeat("a", 6)...)},
			wantTarget:  3,
			wantHandoff: map[string]int{"a": 3},
		},
		{
			name:        "a newcomer spreads its requests over every over-loaded worker",
			in:          PlanInput{Self: "me", Leases: leases(9, "a", "a", "a", "a", "a", "b", "b", "b", "b")},
			wantTarget:  3,
			wantHandoff: map[string]int{"a": 2, "b": 1},
		},
		{
			name:       "a fleet off by one does not move leases",
			in:         PlanInput{Self: "me", Leases: leases(5, "a", "a", "b", "b", "me"), Held: heldAll("shard-004")},
			wantTarget: 2,
		},
		{
			name:         "expired leases are taken before unowned ones",
			in:           PlanInput{Self: "me", Leases: leases(4, "dead", "", "", ""), Expired: ownedBy("dead"), MaxLeases: 1},
			wantTarget:   1,
			wantTake:     1,
			wantTakeKeys: []string{"shard-000"},
		},
		{
			name:       "an expired owner does not count as a worker",
			in:         PlanInput{Self: "me", Leases: leases(4, "dead", "dead", "a", "a"), Expired: ownedBy("dead")},
			wantTarget: 2, wantTake: 2,
		},
		{
			name:       "the maximum leases per worker caps the target",
			in:         PlanInput{Self: "me", Leases: leases(10), MaxLeases: 3},
			wantTarget: 3, wantTake: 3,
		},
		{
			name:       "finished leases are neither counted nor taken",
			in:         PlanInput{Self: "me", Leases: finished},
			wantTarget: 2, wantTake: 2,
			wantTakeKeys: []string{"shard-002", "shard-003"},
		},
		{
			name:       "a lease being handed to us counts as ours",
			in:         PlanInput{Self: "me", Leases: handoff, Held: heldAll("shard-003")},
			wantTarget: 2,
			// a holds 3 but one of them... a's count is 3 > 2: ask for one more
			wantHandoff: map[string]int{"a": 1},
		},
		{
			name:         "a lease naming us that this process does not hold is available",
			in:           PlanInput{Self: "me", Leases: leases(2, "me", "a")},
			wantTarget:   1,
			wantTake:     1,
			wantTakeKeys: []string{"shard-000"},
		},
		{
			name:       "an empty table needs nothing",
			in:         PlanInput{Self: "me"},
			wantTarget: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanTakes(tt.in)
			if p.Target != tt.wantTarget {
				t.Errorf("Target = %d, want %d", p.Target, tt.wantTarget)
			}
			if len(p.Take) != tt.wantTake {
				t.Errorf("Take = %v, want %d leases", keys(p.Take), tt.wantTake)
			}
			if tt.wantTakeKeys != nil && !slices.Equal(keys(p.Take), tt.wantTakeKeys) {
				t.Errorf("Take = %v, want %v", keys(p.Take), tt.wantTakeKeys)
			}
			got := map[string]int{}
			for _, l := range p.Handoff {
				got[l.Owner]++
				if l.InHandoff() {
					t.Errorf("asked for %s, which is already in a handoff", l.Key)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(tt.wantHandoff)) {
				t.Errorf("Handoff per owner = %v, want %v", got, tt.wantHandoff)
			}
		})
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func heldAll(keys ...string) func(string) bool {
	return func(k string) bool { return slices.Contains(keys, k) }
}

func ownedBy(owner string) func(lease.Lease) bool {
	return func(l lease.Lease) bool { return l.Owner == owner }
}

// TestPlanTakesConverges simulates taker passes in which every handoff is
// granted at once, and checks that every worker of a fleet reaches its fair
// share (±1) within two passes each, whatever the starting distribution.
func TestPlanTakesConverges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		nLeases := 1 + r.IntN(300)
		nWorkers := 1 + r.IntN(20)
		workers := make([]string, nWorkers)
		for i := range workers {
			workers[i] = fmt.Sprintf("w%02d", i)
		}
		table := leases(nLeases)
		// Start from a skewed table: the first few workers own everything.
		for i := range table {
			table[i].Owner = workers[r.IntN(1+r.IntN(nWorkers))]
		}
		for pass := range 2 {
			for _, w := range workers {
				p := PlanTakes(PlanInput{Self: w, Leases: table, Held: ownedByWorker(table, w), Rand: r})
				for _, l := range append(p.Take, p.Handoff...) {
					i := slices.IndexFunc(table, func(x lease.Lease) bool { return x.Key == l.Key })
					table[i].Owner = w
				}
			}
			_ = pass
		}
		counts := map[string]int{}
		for _, l := range table {
			counts[l.Owner]++
		}
		lo, hi := nLeases/nWorkers, (nLeases+nWorkers-1)/nWorkers
		for _, w := range workers {
			if c := counts[w]; c < lo || c > hi {
				t.Fatalf("trial %d: %d leases, %d workers: %s holds %d after two passes, want %d..%d (all: %v)",
					trial, nLeases, nWorkers, w, c, lo, hi, counts)
			}
		}
	}
}

func ownedByWorker(table []lease.Lease, w string) func(string) bool {
	return func(k string) bool {
		for _, l := range table {
			if l.Key == k {
				return l.Owner == w
			}
		}
		return false
	}
}
