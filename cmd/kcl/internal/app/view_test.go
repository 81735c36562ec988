package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
)

func decodeFixture(t *testing.T, name string) []lease.Lease {
	t.Helper()
	var out []lease.Lease
	for _, item := range fixtureItems(t, name) {
		l, err := dynamolease.UnmarshalItem(item)
		if errors.Is(err, dynamolease.ErrNotLease) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// observed returns an observer that saw leases at t0 and again at t0+after,
// with the counters of the leases in renewed moved by one in between.
func observed(leases []lease.Lease, t0 time.Time, after time.Duration, renewed ...string) (*Observer, []lease.Lease) {
	obs := NewObserver()
	obs.Observe(leases, t0)
	later := make([]lease.Lease, len(leases))
	for i, l := range leases {
		for _, k := range renewed {
			if l.Key == k {
				l.Counter++
			}
		}
		later[i] = l
	}
	obs.Observe(later, t0.Add(after))
	return obs, later
}

func TestDescribeJavaFixtures(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct{ file, golden string }{
		{"kcl-lease-items.json", "kcl-lease-items"},
		{"kcl3-items.json", "kcl3-items"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			leases := decodeFixture(t, tc.file)
			// One holder renews; the others stand still for a lease duration.
			obs, later := observed(leases, t0, 10*time.Second, "shardId-000000000001", "123456789012:orders:1700000000:shardId-000000000004")
			v := Build(Input{App: "orders-app", Leases: later, Observer: obs, Now: t0.Add(10 * time.Second), LeaseDuration: 10 * time.Second,
				Lags: map[string]Lag{"shardId-000000000001": {Known: true, Behind: 1500 * time.Millisecond, Age: 3 * time.Second, HasAge: true}}})
			var table bytes.Buffer
			if err := WriteTable(&table, v); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden+".table", table.Bytes())
			js, err := json.MarshalIndent(ToJSON(v), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden+".json", append(js, '\n'))
		})
	}
}

func rng(t *testing.T, start, end string) *hashkey.Range {
	t.Helper()
	r, err := hashkey.ParseRange(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestBuildStates(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seq, _ := checkpoint.At("100", 0)
	half, max := "170141183460469231731687303715884105727", "340282366920938463463374607431768211455"
	upper := "170141183460469231731687303715884105728"
	parent := lease.Lease{Key: "p", Owner: "w1", Counter: 5, Checkpoint: seq, HashRange: rng(t, "0", half), ChildShardIDs: []string{"c"}}
	child := lease.Lease{Key: "c", Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"p"}, HashRange: rng(t, "0", half)}
	other := lease.Lease{Key: "o", Owner: "w2", Counter: 9, Checkpoint: seq, HashRange: rng(t, upper, max)}
	done := lease.Lease{Key: "d", Owner: "w2", Counter: 1, Checkpoint: checkpoint.ShardEnd, HashRange: rng(t, upper, max)}

	tests := []struct {
		name    string
		after   time.Duration
		renewed []string
		want    map[string]State
		workers []Worker
	}{
		{"a holder seen renewing is active, a child of an unfinished parent waits", 4 * time.Second, []string{"p", "o"},
			map[string]State{"p": Active, "c": Waiting, "o": Active, "d": Finished},
			[]Worker{{ID: "w1", Leases: 1}, {ID: "w2", Leases: 1}}},
		{"finished leases are not counted as held", 4 * time.Second, []string{"p", "o", "d"},
			map[string]State{"p": Active, "c": Waiting, "o": Active, "d": Finished},
			[]Worker{{ID: "w1", Leases: 1}, {ID: "w2", Leases: 1}}},
		{"a holder not seen renewing for less than a lease duration is only owned", 4 * time.Second, []string{"o"},
			map[string]State{"p": Owned, "c": Waiting, "o": Active, "d": Finished}, nil},
		{"a counter still for a lease duration is expired", 10 * time.Second, []string{"o"},
			map[string]State{"p": Expired, "c": Waiting, "o": Active, "d": Finished}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs, later := observed([]lease.Lease{parent, child, other, done}, t0, tc.after, tc.renewed...)
			v := Build(Input{App: "a", Leases: later, Observer: obs, Now: t0.Add(tc.after), LeaseDuration: 10 * time.Second})
			for _, r := range v.Rows {
				if r.State != tc.want[r.Shard] {
					t.Errorf("%s: state %s, want %s", r.Shard, r.State, tc.want[r.Shard])
				}
			}
			if tc.workers != nil && !equalWorkers(v.Workers, tc.workers) {
				t.Errorf("workers %+v, want %+v", v.Workers, tc.workers)
			}
			if len(v.Problems) != 0 && tc.after < 10*time.Second {
				t.Errorf("problems %+v, want none", v.Problems)
			}
		})
	}
}

func equalWorkers(a, b []Worker) bool {
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

func TestBuildProblems(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seq, _ := checkpoint.At("100", 0)
	half, max := "170141183460469231731687303715884105727", "340282366920938463463374607431768211455"
	upper := "170141183460469231731687303715884105728"
	tests := []struct {
		name   string
		leases []lease.Lease
		closed map[string]bool
		lags   map[string]Lag
		want   []string // kind/shard
	}{
		{"a missing upper half is a hole", []lease.Lease{
			{Key: "a", Owner: "w", Counter: 1, Checkpoint: seq, HashRange: rng(t, "0", half)},
		}, nil, nil, []string{"hole/"}},
		{"a child waiting on an unowned unfinished parent is stuck", []lease.Lease{
			{Key: "p", Counter: 1, Checkpoint: seq, HashRange: rng(t, "0", max)},
			{Key: "c", Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"p"}, HashRange: rng(t, "0", max)},
		}, nil, nil, []string{"stuck-child/c"}},
		{"a ready child nobody holds is stuck", []lease.Lease{
			{Key: "p", Counter: 1, Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"c"}, HashRange: rng(t, "0", max)},
			{Key: "c", Checkpoint: checkpoint.TrimHorizon, ParentShardIDs: []string{"p"}, HashRange: rng(t, "0", max)},
		}, nil, nil, []string{"stuck-child/c"}},
		{"a closed shard read to its end but not finished", []lease.Lease{
			{Key: "a", Owner: "w", Counter: 1, Checkpoint: seq, HashRange: rng(t, "0", half)},
			{Key: "b", Owner: "w", Counter: 1, Checkpoint: seq, HashRange: rng(t, upper, max)},
		}, map[string]bool{"a": true}, map[string]Lag{"a": {Known: true}, "b": {Known: true}}, []string{"never-finished/a"}},
		{"leases without hash ranges are not audited for holes", []lease.Lease{
			{Key: "a", Owner: "w", Counter: 1, Checkpoint: seq},
		}, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs, later := observed(tc.leases, t0, 10*time.Second)
			in := Input{App: "a", Leases: later, Observer: obs, Now: t0.Add(10 * time.Second), LeaseDuration: 10 * time.Second, Lags: tc.lags}
			if tc.closed != nil {
				in.Closed = map[string]map[string]bool{"": tc.closed}
			}
			v := Build(in)
			var got []string
			for _, p := range v.Problems {
				got = append(got, p.Kind+"/"+p.Shard)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %v, want %v (%+v)", got, tc.want, v.Problems)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("problems %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestLivenessOfFleetWorkersFollowsTheirHeartbeats(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := 10 * time.Second
	l := []lease.Lease{{Key: "s", Owner: "w", Counter: 3}}
	tests := []struct {
		name        string
		after       time.Duration
		beatMoved   bool
		leaseMoved  bool
		want        Liveness
		noHeartbeat bool
	}{
		{"a heartbeat that moved makes the holder live though its lease stands still", 2 * time.Second, true, false, Live, false},
		{"a lease that moved makes the holder live though its heartbeat stands still", 2 * time.Second, false, true, Live, false},
		{"both still for a lease duration is dead", d, false, false, Dead, false},
		{"both still for less than a lease duration is unknown", 2 * time.Second, false, false, Unknown, false},
		{"without a heartbeat the lease alone decides", d, false, false, Dead, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := NewObserver()
			beats := map[string]int64{"w": 7}
			if tc.noHeartbeat {
				beats = nil
			}
			obs.Observe(l, t0)
			obs.ObserveWorkers(beats, t0)
			later := []lease.Lease{l[0]}
			if tc.leaseMoved {
				later[0].Counter++
			}
			if tc.beatMoved {
				beats = map[string]int64{"w": 8}
			}
			obs.Observe(later, t0.Add(tc.after))
			obs.ObserveWorkers(beats, t0.Add(tc.after))
			if got := obs.Liveness("s", "w", t0.Add(tc.after), d); got != tc.want {
				t.Errorf("liveness %d, want %d", got, tc.want)
			}
		})
	}
}
