package leasetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// FleetStore is a lease table that also holds kcl-fleet coordination items:
// what RunFleet checks.
type FleetStore interface {
	lease.Store
	lease.FleetStore
}

// fleetTest is one subtest of RunFleet.
type fleetTest struct {
	name string
	run  func(t *testing.T, s FleetStore)
}

// RunFleet runs the conformance suite of lease.FleetStore against stores made
// by newStore; each call must return a new, empty store (a fresh table).
// Subtests are grouped (Beat, Standby, Fence, Heartbeats, Roster, Leader, Assign,
// Coexistence, FleetContext, Survey) and named as the sentence they check.
// The Survey group checks lease.Surveyor's Fleet answer, and is skipped for
// stores that do not implement it.
//
// Heartbeats and Survey may lag writes (Heartbeats as lease.FleetStore
// documents; a Survey may read eventually consistently): the suite polls them
// for up to 20 seconds. Every other read must reflect the writes that
// returned before it.
//
// Cost: about 55 subtests, each on a new store; the heartbeat paging test
// writes 250 heartbeats.
func RunFleet(t *testing.T, newStore func(t *testing.T) FleetStore) {
	t.Helper()
	groups := []struct {
		name  string
		tests []fleetTest
	}{
		{"Beat", beatTests},
		{"Standby", standbyTests},
		{"Fence", fenceTests},
		{"Heartbeats", heartbeatsTests},
		{"Roster", rosterTests},
		{"Leader", leaderTests},
		{"Assign", assignTests},
		{"Coexistence", coexistenceTests},
		{"FleetContext", fleetContextTests},
		{"Survey", surveyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					tc.run(t, s)
				})
			}
		})
	}
}

// notConflict checks that a usage error is an error and no conflict.
func notConflict(t testing.TB, call string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want a usage error", call)
		return
	}
	if errors.Is(err, lease.ErrConflict) || errors.Is(err, lease.ErrNotFound) {
		t.Errorf("%s = %v; want a usage error matching neither lease.ErrConflict nor lease.ErrNotFound", call, err)
	}
}

func beat(t testing.TB, s FleetStore, id string, state lease.WorkerState, leases int) lease.Heartbeat {
	t.Helper()
	hb, err := s.Beat(t.Context(), id, state, leases)
	wantOK(t, fmt.Sprintf("Beat(%q)", id), err)
	return hb
}

func wantHeartbeat(t testing.TB, what string, got, want lease.Heartbeat) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %+v; want %+v", what, got, want)
	}
}

var beatTests = []fleetTest{
	{"the first beat creates the heartbeat and later beats increment its counter", func(t *testing.T, s FleetStore) {
		hb := beat(t, s, workerA, lease.WorkerStarting, 0)
		wantHeartbeat(t, "first Beat", hb, lease.Heartbeat{WorkerID: workerA, Counter: 1, State: lease.WorkerStarting})
		hb = beat(t, s, workerA, lease.WorkerRunning, 5)
		wantHeartbeat(t, "second Beat", hb, lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, Leases: 5})
		hb = beat(t, s, workerA, lease.WorkerStopping, 0)
		wantHeartbeat(t, "third Beat", hb, lease.Heartbeat{WorkerID: workerA, Counter: 3, State: lease.WorkerStopping})
		hb = beat(t, s, workerB, lease.WorkerRunning, 1)
		wantHeartbeat(t, "another worker's Beat", hb, lease.Heartbeat{WorkerID: workerB, Counter: 1, State: lease.WorkerRunning, Leases: 1})
	}},
	{"a beat returns the assign epoch MarkAssigned set, without a read", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		hb := beat(t, s, workerA, lease.WorkerRunning, 2)
		wantHeartbeat(t, "Beat after two MarkAssigned", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, Leases: 2, AssignEpoch: 2})
		hb = beat(t, s, workerA, lease.WorkerRunning, 2)
		if hb.AssignEpoch != 2 {
			t.Errorf("Beat kept AssignEpoch %d; want 2 (a beat never changes it)", hb.AssignEpoch)
		}
	}},
	{"marking a worker without a heartbeat fails with ErrNotFound and creates none", func(t *testing.T, s FleetStore) {
		wantErr(t, "MarkAssigned of a worker that never beat", s.MarkAssigned(t.Context(), workerC), lease.ErrNotFound)
		hb := beat(t, s, workerC, lease.WorkerStarting, 0)
		wantHeartbeat(t, "first Beat after the failed MarkAssigned", hb,
			lease.Heartbeat{WorkerID: workerC, Counter: 1, State: lease.WorkerStarting})
	}},
	{"beats with an empty id, an invalid state or a negative lease count are refused", func(t *testing.T, s FleetStore) {
		_, err := s.Beat(t.Context(), "", lease.WorkerRunning, 0)
		notConflict(t, "Beat with an empty id", err)
		_, err = s.Beat(t.Context(), workerA, 0, 0)
		notConflict(t, "Beat with state 0", err)
		_, err = s.Beat(t.Context(), workerA, lease.WorkerStopping+1, 0)
		notConflict(t, "Beat with an unknown state", err)
		_, err = s.Beat(t.Context(), workerA, lease.WorkerRunning, -1)
		notConflict(t, "Beat with -1 leases", err)
		notConflict(t, "MarkAssigned with an empty id", s.MarkAssigned(t.Context(), ""))
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		if hb.Counter != 1 {
			t.Errorf("Counter after the refused beats = %d; want 1 (they wrote nothing)", hb.Counter)
		}
	}},
	{"concurrent beats of one worker are all counted", func(t *testing.T, s FleetStore) {
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Beat(t.Context(), workerA, lease.WorkerRunning, i) })
		}
		wg.Wait()
		for _, err := range errs {
			wantOK(t, "concurrent Beat", err)
		}
		if hb := beat(t, s, workerA, lease.WorkerRunning, 0); hb.Counter != n+1 {
			t.Errorf("Counter after %d concurrent beats and one more = %d; want %d", n, hb.Counter, n+1)
		}
	}},
}

func setStandby(t testing.TB, s FleetStore, id string, standby bool) {
	t.Helper()
	wantOK(t, fmt.Sprintf("SetStandby(%q, %t)", id, standby), s.SetStandby(t.Context(), id, standby))
}

var standbyTests = []fleetTest{
	{"a beat returns the standby flag SetStandby set, and later beats keep it", func(t *testing.T, s FleetStore) {
		hb := beat(t, s, workerA, lease.WorkerStarting, 0)
		if hb.Standby {
			t.Errorf("first Beat returned Standby true; want false until the first SetStandby")
		}
		setStandby(t, s, workerA, true)
		hb = beat(t, s, workerA, lease.WorkerRunning, 2)
		wantHeartbeat(t, "Beat after SetStandby(true)", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, Leases: 2, Standby: true})
		hb = beat(t, s, workerA, lease.WorkerStopping, 0)
		wantHeartbeat(t, "a second Beat after SetStandby(true)", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 3, State: lease.WorkerStopping, Standby: true})
		hb = beat(t, s, workerB, lease.WorkerRunning, 0)
		if hb.Standby {
			t.Errorf("Beat of another worker returned Standby true; want false (the flag is per worker)")
		}
	}},
	{"SetStandby false clears the flag, and setting a value twice is allowed", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		setStandby(t, s, workerA, true)
		setStandby(t, s, workerA, true)
		if hb := beat(t, s, workerA, lease.WorkerRunning, 0); !hb.Standby {
			t.Errorf("Beat after SetStandby(true) twice returned Standby false; want true")
		}
		setStandby(t, s, workerA, false)
		if hb := beat(t, s, workerA, lease.WorkerRunning, 0); hb.Standby {
			t.Errorf("Beat after SetStandby(false) returned Standby true; want false")
		}
		setStandby(t, s, workerA, false)
		hb := beat(t, s, workerA, lease.WorkerRunning, 1)
		wantHeartbeat(t, "Beat after SetStandby(false) twice", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 4, State: lease.WorkerRunning, Leases: 1})
	}},
	{"the standby flag and the assign epoch leave each other alone", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		setStandby(t, s, workerA, true)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after MarkAssigned, SetStandby, MarkAssigned", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, AssignEpoch: 2, Standby: true})
	}},
	{"setting standby of a worker without a heartbeat fails with ErrNotFound and creates none", func(t *testing.T, s FleetStore) {
		wantErr(t, "SetStandby(true) of a worker that never beat", s.SetStandby(t.Context(), workerC, true), lease.ErrNotFound)
		wantErr(t, "SetStandby(false) of a worker that never beat", s.SetStandby(t.Context(), workerC, false), lease.ErrNotFound)
		hb := beat(t, s, workerC, lease.WorkerStarting, 0)
		wantHeartbeat(t, "first Beat after the failed SetStandby", hb,
			lease.Heartbeat{WorkerID: workerC, Counter: 1, State: lease.WorkerStarting})
	}},
	{"setting standby with an empty id is refused", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		notConflict(t, "SetStandby with an empty id", s.SetStandby(t.Context(), "", true))
		if hb := beat(t, s, workerA, lease.WorkerRunning, 0); hb.Standby {
			t.Errorf("Beat after the refused SetStandby returned Standby true; want false")
		}
	}},
	{"the flag set while beats race with it survives them", func(t *testing.T, s FleetStore) {
		// A store that wrote a beat as a whole item, from a read made before
		// the flag was set, would lose it here.
		beat(t, s, workerA, lease.WorkerRunning, 0)
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n+1)
		for i := range n {
			wg.Go(func() { _, errs[i] = s.Beat(t.Context(), workerA, lease.WorkerRunning, i) })
		}
		wg.Go(func() { errs[n] = s.SetStandby(t.Context(), workerA, true) })
		wg.Wait()
		for _, err := range errs {
			wantOK(t, "concurrent Beat or SetStandby", err)
		}
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after the race", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: n + 2, State: lease.WorkerRunning, Standby: true})
	}},
}

func fence(t testing.TB, s FleetStore, id string, counter int64) {
	t.Helper()
	wantOK(t, fmt.Sprintf("Fence(%q, %d)", id, counter), s.Fence(t.Context(), id, counter))
}

// wantFenceConflict checks that err matches lease.ErrConflict and not
// lease.ErrNotFound: the heartbeat exists, its counter moved on.
func wantFenceConflict(t testing.TB, call string, err error) {
	t.Helper()
	wantErr(t, call, err, lease.ErrConflict)
	if errors.Is(err, lease.ErrNotFound) {
		t.Errorf("%s = %v; want no lease.ErrNotFound (the heartbeat exists)", call, err)
	}
}

var fenceTests = []fleetTest{
	{"a fence at the stored counter is returned by every later beat, which still counts", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerStarting, 0)
		hb := beat(t, s, workerA, lease.WorkerRunning, 2)
		if hb.Fenced != 0 {
			t.Errorf("Beat before any Fence returned Fenced %d; want 0", hb.Fenced)
		}
		fence(t, s, workerA, 2)
		hb = beat(t, s, workerA, lease.WorkerRunning, 2)
		wantHeartbeat(t, "Beat after Fence at counter 2", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 3, State: lease.WorkerRunning, Leases: 2, Fenced: 2})
		hb = beat(t, s, workerA, lease.WorkerStarting, 0)
		wantHeartbeat(t, "a second Beat after the Fence", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 4, State: lease.WorkerStarting, Fenced: 2})
		if hb := beat(t, s, workerB, lease.WorkerRunning, 0); hb.Fenced != 0 {
			t.Errorf("Beat of another worker returned Fenced %d; want 0 (a fence is per worker)", hb.Fenced)
		}
	}},
	{"a fence at a counter the worker has beaten past fails with ErrConflict and changes nothing", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		beat(t, s, workerA, lease.WorkerRunning, 1)
		wantFenceConflict(t, "Fence at counter 1 of a heartbeat at 2", s.Fence(t.Context(), workerA, 1))
		wantFenceConflict(t, "Fence at counter 3 of a heartbeat at 2", s.Fence(t.Context(), workerA, 3))
		hb := beat(t, s, workerA, lease.WorkerRunning, 1)
		wantHeartbeat(t, "Beat after the failed fences", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 3, State: lease.WorkerRunning, Leases: 1})
	}},
	{"a later incarnation can be fenced again, and a fence may be repeated", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		fence(t, s, workerA, 1)
		fence(t, s, workerA, 1) // the same fence again: the counter still matches
		hb := beat(t, s, workerA, lease.WorkerStarting, 0)
		wantHeartbeat(t, "first Beat of the next incarnation", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerStarting, Fenced: 1})
		// The new incarnation began at counter 2 > Fenced: it is not fenced.
		wantFenceConflict(t, "Fence of the new incarnation at the old counter", s.Fence(t.Context(), workerA, 1))
		fence(t, s, workerA, 2)
		hb = beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after the second Fence", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 3, State: lease.WorkerRunning, Fenced: 2})
	}},
	{"fencing a worker without a heartbeat fails with ErrNotFound and creates none", func(t *testing.T, s FleetStore) {
		wantErr(t, "Fence of a worker that never beat", s.Fence(t.Context(), workerC, 1), lease.ErrNotFound)
		if hbs, err := s.Heartbeats(t.Context(), []string{workerC}); err != nil || len(hbs) != 0 {
			t.Errorf("Heartbeats after the failed Fence = %+v, %v; want none", hbs, err)
		}
		hb := beat(t, s, workerC, lease.WorkerStarting, 0)
		wantHeartbeat(t, "first Beat after the failed Fence", hb,
			lease.Heartbeat{WorkerID: workerC, Counter: 1, State: lease.WorkerStarting})
	}},
	{"fences with an empty id or a counter below 1 are refused", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		notConflict(t, "Fence with an empty id", s.Fence(t.Context(), "", 1))
		notConflict(t, "Fence at counter 0", s.Fence(t.Context(), workerA, 0))
		notConflict(t, "Fence at counter -1", s.Fence(t.Context(), workerA, -1))
		notConflict(t, "Fence at counter 0 of a worker that never beat", s.Fence(t.Context(), workerC, 0))
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after the refused fences", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning})
		if hbs, err := s.Heartbeats(t.Context(), []string{workerC}); err != nil || len(hbs) != 0 {
			t.Errorf("Heartbeats of the worker refused a fence = %+v, %v; want none", hbs, err)
		}
	}},
	{"a fence, the standby flag and the assign epoch leave each other alone", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 0)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		setStandby(t, s, workerA, true)
		fence(t, s, workerA, 1)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerA))
		setStandby(t, s, workerA, false)
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after MarkAssigned, SetStandby, Fence, MarkAssigned, SetStandby", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, AssignEpoch: 2, Fenced: 1})
	}},
	{"a beat racing with a fence lands either before it, failing it, or after it, returning it", func(t *testing.T, s FleetStore) {
		// The leader's judgment: it read counter c and fences at c while the
		// worker's beats are in flight. If the fence held, no beat landed
		// between, so every beat with a higher counter must return the
		// fence; if a beat landed first, the fence must fail and no beat
		// may return one. A store that wrote a beat from a read made before
		// the fence, or checked the counter apart from the write, fails.
		for round := range 10 {
			id := fmt.Sprintf("worker-race-%d", round)
			c := beat(t, s, id, lease.WorkerRunning, 0).Counter
			const n = 8
			var wg sync.WaitGroup
			hbs := make([]lease.Heartbeat, n)
			errs := make([]error, n)
			var fenceErr error
			for i := range n {
				wg.Go(func() { hbs[i], errs[i] = s.Beat(t.Context(), id, lease.WorkerRunning, 0) })
			}
			wg.Go(func() { fenceErr = s.Fence(t.Context(), id, c) })
			wg.Wait()
			for _, err := range errs {
				wantOK(t, "Beat racing with Fence", err)
			}
			fenced := fenceErr == nil
			if !fenced {
				wantFenceConflict(t, "Fence that lost the race", fenceErr)
			}
			for _, hb := range hbs {
				switch {
				case fenced && hb.Fenced != c:
					t.Errorf("round %d: Fence at %d held, but a Beat returned %+v; want Fenced %d (every beat landed after the fence)", round, c, hb, c)
				case !fenced && hb.Fenced != 0:
					t.Errorf("round %d: Fence at %d failed, but a Beat returned %+v; want Fenced 0", round, c, hb)
				}
			}
			if hb := beat(t, s, id, lease.WorkerRunning, 0); hb.Counter != c+n+1 || (hb.Fenced == c) != fenced {
				t.Errorf("round %d: Beat after the race = %+v; want Counter %d and Fenced %d only if the Fence held (it returned %v)",
					round, hb, c+n+1, c, fenceErr)
			}
		}
	}},
}

// heartbeatMany is more workers than one DynamoDB BatchGetItem reads.
const heartbeatMany = 250

// wantHeartbeats waits up to ownedWait for Heartbeats(ids) to return exactly
// want, in any order: Heartbeats may lag writes.
func wantHeartbeats(t *testing.T, s FleetStore, ids []string, want []lease.Heartbeat) {
	t.Helper()
	byID := func(hbs []lease.Heartbeat) []lease.Heartbeat {
		hbs = slices.Clone(hbs)
		slices.SortFunc(hbs, func(a, b lease.Heartbeat) int {
			if a.WorkerID < b.WorkerID {
				return -1
			}
			if a.WorkerID > b.WorkerID {
				return 1
			}
			return 0
		})
		return hbs
	}
	want = byID(want)
	var got []lease.Heartbeat
	var err error
	ok := eventually(t, ownedWait, func() bool {
		got, err = s.Heartbeats(t.Context(), ids)
		got = byID(got)
		return err == nil && slices.Equal(got, want)
	})
	if !ok {
		if err != nil {
			t.Errorf("Heartbeats of %d ids: %v", len(ids), err)
			return
		}
		t.Errorf("Heartbeats of %d ids returned %d heartbeats after %v; want %d", len(ids), len(got), ownedWait, len(want))
		for i := 0; i < min(len(got), len(want)); i++ {
			if got[i] != want[i] {
				t.Errorf("first difference: %+v; want %+v", got[i], want[i])
				break
			}
		}
	}
}

var heartbeatsTests = []fleetTest{
	{"reading no ids returns no heartbeats", func(t *testing.T, s FleetStore) {
		hbs, err := s.Heartbeats(t.Context(), nil)
		if err != nil || len(hbs) != 0 {
			t.Errorf("Heartbeats(nil) = %+v, %v; want none", hbs, err)
		}
	}},
	{"reading more heartbeats than one page holds returns each once and leaves out missing ids", func(t *testing.T, s FleetStore) {
		var (
			mu   sync.Mutex
			want []lease.Heartbeat
			ids  []string
			wg   sync.WaitGroup
			errs = make(chan error, heartbeatMany)
		)
		sem := make(chan struct{}, 16)
		for i := range heartbeatMany {
			id := fmt.Sprintf("worker-%04d", i)
			ids = append(ids, id)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				state := lease.WorkerState(i%3) + lease.WorkerStarting
				hb, err := s.Beat(t.Context(), id, state, i)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want = append(want, hb)
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Beat: %v", err)
		}
		// Ids that never beat, and duplicates, among the real ones.
		for i := range 30 {
			ids = append(ids, fmt.Sprintf("missing-%02d", i))
		}
		ids = append(ids, ids[:20]...)
		rng := slices.Clone(ids)
		slices.Reverse(rng)
		wantHeartbeats(t, s, rng, want)
		// A read of only missing ids returns nothing.
		wantHeartbeats(t, s, []string{"missing-a", "missing-b"}, nil)
	}},
	{"heartbeats reflect the latest beat and mark", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerStarting, 0)
		a := beat(t, s, workerA, lease.WorkerRunning, 3)
		b := beat(t, s, workerB, lease.WorkerStopping, 0)
		wantOK(t, "MarkAssigned", s.MarkAssigned(t.Context(), workerB))
		b.AssignEpoch++
		wantHeartbeats(t, s, []string{workerA, workerB, workerC}, []lease.Heartbeat{a, b})
	}},
	{"heartbeats return the standby flag as last set", func(t *testing.T, s FleetStore) {
		a := beat(t, s, workerA, lease.WorkerRunning, 1)
		b := beat(t, s, workerB, lease.WorkerRunning, 2)
		c := beat(t, s, workerC, lease.WorkerRunning, 3)
		setStandby(t, s, workerA, true)
		setStandby(t, s, workerB, true)
		setStandby(t, s, workerB, false)
		a.Standby = true
		wantHeartbeats(t, s, []string{workerA, workerB, workerC}, []lease.Heartbeat{a, b, c})
	}},
	{"heartbeats return the counter a worker was fenced at", func(t *testing.T, s FleetStore) {
		beat(t, s, workerA, lease.WorkerRunning, 1)
		a := beat(t, s, workerA, lease.WorkerRunning, 1)
		b := beat(t, s, workerB, lease.WorkerRunning, 2)
		fence(t, s, workerA, a.Counter)
		a.Fenced = a.Counter
		wantHeartbeats(t, s, []string{workerA, workerB}, []lease.Heartbeat{a, b})
	}},
	{"reading an empty id is refused", func(t *testing.T, s FleetStore) {
		_, err := s.Heartbeats(t.Context(), []string{workerA, ""})
		notConflict(t, "Heartbeats with an empty id", err)
	}},
}

func wantRoster(t testing.TB, s FleetStore, what string, want ...string) {
	t.Helper()
	got, err := s.Roster(t.Context())
	if err != nil {
		t.Fatalf("Roster %s: %v", what, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Roster %s = %q; want %q", what, got, want)
	}
}

var rosterTests = []fleetTest{
	{"an absent roster reads as empty", func(t *testing.T, s FleetStore) {
		wantRoster(t, s, "of a new table")
	}},
	{"joining and leaving are idempotent", func(t *testing.T, s FleetStore) {
		ctx := t.Context()
		wantOK(t, "Join A", s.Join(ctx, workerA))
		wantOK(t, "Join A again", s.Join(ctx, workerA))
		wantOK(t, "Join B", s.Join(ctx, workerB))
		wantRoster(t, s, "after A, A, B joined", workerA, workerB)
		wantOK(t, "Leave A", s.Leave(ctx, workerA))
		wantOK(t, "Leave A again", s.Leave(ctx, workerA))
		wantOK(t, "Leave C, never joined", s.Leave(ctx, workerC))
		wantRoster(t, s, "after A left twice and C left", workerB)
		wantOK(t, "Leave B", s.Leave(ctx, workerB))
		wantRoster(t, s, "after everyone left")
		wantOK(t, "Join A after the roster emptied", s.Join(ctx, workerA))
		wantRoster(t, s, "after A rejoined", workerA)
	}},
	{"leaving a table without a roster succeeds", func(t *testing.T, s FleetStore) {
		wantOK(t, "Leave", s.Leave(t.Context(), workerA))
		wantRoster(t, s, "after the leave")
	}},
	{"concurrent joins are all kept", func(t *testing.T, s FleetStore) {
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		want := make([]string, n)
		for i := range n {
			want[i] = fmt.Sprintf("worker-%02d", i)
			wg.Go(func() { errs[i] = s.Join(t.Context(), want[i]) })
		}
		wg.Wait()
		for _, err := range errs {
			wantOK(t, "concurrent Join", err)
		}
		wantRoster(t, s, "after concurrent joins", want...)
	}},
	{"joining or leaving with an empty id is refused", func(t *testing.T, s FleetStore) {
		notConflict(t, "Join with an empty id", s.Join(t.Context(), ""))
		notConflict(t, "Leave with an empty id", s.Leave(t.Context(), ""))
		wantRoster(t, s, "after the refused calls")
	}},
}

func acquire(t testing.TB, s FleetStore, id string, seen *lease.LeaderLock, want lease.LeaderLock) lease.LeaderLock {
	t.Helper()
	got, err := s.AcquireLeader(t.Context(), id, seen)
	wantOK(t, fmt.Sprintf("AcquireLeader(%q)", id), err)
	wantLock(t, s, "AcquireLeader", got, want)
	return got
}

// wantLock checks a lock returned by a write, and the stored lock.
func wantLock(t testing.TB, s FleetStore, call string, got, want lease.LeaderLock) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %+v; want %+v", call, got, want)
	}
	wantLeader(t, s, "after "+call, want)
}

func wantLeader(t testing.TB, s FleetStore, what string, want lease.LeaderLock) {
	t.Helper()
	got, err := s.Leader(t.Context())
	if err != nil {
		t.Fatalf("Leader %s: %v", what, err)
	}
	if got != want {
		t.Errorf("Leader %s = %+v; want %+v", what, got, want)
	}
}

var leaderTests = []fleetTest{
	{"the lock is absent until acquired", func(t *testing.T, s FleetStore) {
		l, err := s.Leader(t.Context())
		wantErr(t, "Leader of a new table", err, lease.ErrNotFound)
		if l != (lease.LeaderLock{}) {
			t.Errorf("Leader of a new table = %+v; want the zero lock", l)
		}
	}},
	{"acquiring an absent lock creates it at epoch 1, version 1", func(t *testing.T, s FleetStore) {
		acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
	}},
	{"a second acquirer of an absent lock conflicts", func(t *testing.T, s FleetStore) {
		a := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		_, err := s.AcquireLeader(t.Context(), workerB, nil)
		wantErr(t, "AcquireLeader of an existing lock with seen nil", err, lease.ErrConflict)
		wantLeader(t, s, "after the refused acquisition", a)
	}},
	{"exactly one of concurrent acquirers of an absent lock wins", func(t *testing.T, s FleetStore) {
		testAcquireRace(t, s, nil)
	}},
	{"exactly one of concurrent takeovers from one observation wins", func(t *testing.T, s FleetStore) {
		a := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		testAcquireRace(t, s, &a)
	}},
	{"renewing bumps the version and keeps the epoch", func(t *testing.T, s FleetStore) {
		l := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		for v := int64(2); v <= 3; v++ {
			got, err := s.RenewLeader(t.Context(), l)
			wantOK(t, "RenewLeader", err)
			l = lease.LeaderLock{Owner: workerA, Epoch: 1, Version: v}
			wantLock(t, s, "RenewLeader", got, l)
		}
	}},
	{"renewing with a stale version fails with ErrLeaseLost and writes nothing", func(t *testing.T, s FleetStore) {
		l1 := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		l2, err := s.RenewLeader(t.Context(), l1)
		wantOK(t, "RenewLeader", err)
		_, err = s.RenewLeader(t.Context(), l1)
		wantErr(t, "RenewLeader with a stale version", err, lease.ErrLeaseLost, lease.ErrConflict)
		wantErr(t, "ReleaseLeader with a stale version", s.ReleaseLeader(t.Context(), l1), lease.ErrLeaseLost, lease.ErrConflict)
		wantLeader(t, s, "after the refused writes", l2)
	}},
	{"renewing a lock that was never written fails with ErrLeaseLost", func(t *testing.T, s FleetStore) {
		_, err := s.RenewLeader(t.Context(), lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		wantErr(t, "RenewLeader of no lock", err, lease.ErrLeaseLost)
		_, err = s.Leader(t.Context())
		wantErr(t, "Leader after the refused renewal", err, lease.ErrNotFound)
	}},
	{"a takeover with the observed owner and version bumps the epoch and fences the old holder", func(t *testing.T, s FleetStore) {
		old := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		old, err := s.RenewLeader(t.Context(), old)
		wantOK(t, "RenewLeader", err)
		seen, err := s.Leader(t.Context())
		wantOK(t, "Leader", err)
		b := acquire(t, s, workerB, &seen, lease.LeaderLock{Owner: workerB, Epoch: 2, Version: 3})
		_, err = s.RenewLeader(t.Context(), old)
		wantErr(t, "the deposed leader's RenewLeader", err, lease.ErrLeaseLost, lease.ErrConflict)
		wantErr(t, "the deposed leader's ReleaseLeader", s.ReleaseLeader(t.Context(), old), lease.ErrLeaseLost, lease.ErrConflict)
		// The deposed leader's takeover from its own stale view fails too.
		_, err = s.AcquireLeader(t.Context(), workerA, &old)
		wantErr(t, "AcquireLeader from a stale observation", err, lease.ErrConflict)
		wantLeader(t, s, "after the deposed leader's writes", b)
		b2, err := s.RenewLeader(t.Context(), b)
		wantOK(t, "the new leader's RenewLeader", err)
		wantLock(t, s, "the new leader's RenewLeader", b2, lease.LeaderLock{Owner: workerB, Epoch: 2, Version: 4})
	}},
	{"a takeover from a stale observation conflicts", func(t *testing.T, s FleetStore) {
		seen := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		renewed, err := s.RenewLeader(t.Context(), seen)
		wantOK(t, "RenewLeader", err)
		_, err = s.AcquireLeader(t.Context(), workerB, &seen)
		wantErr(t, "AcquireLeader with a stale version", err, lease.ErrConflict)
		wrongOwner := renewed
		wrongOwner.Owner = workerC
		_, err = s.AcquireLeader(t.Context(), workerB, &wrongOwner)
		wantErr(t, "AcquireLeader with the wrong owner", err, lease.ErrConflict)
		wantLeader(t, s, "after the refused takeovers", renewed)
	}},
	{"a holder may reacquire its own lock, starting a new epoch", func(t *testing.T, s FleetStore) {
		a := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		acquire(t, s, workerA, &a, lease.LeaderLock{Owner: workerA, Epoch: 2, Version: 2})
	}},
	{"releasing keeps the epoch, and the next acquirer continues it", func(t *testing.T, s FleetStore) {
		a := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		wantOK(t, "ReleaseLeader", s.ReleaseLeader(t.Context(), a))
		released := lease.LeaderLock{Epoch: 1, Version: 2}
		wantLeader(t, s, "after ReleaseLeader", released)
		_, err := s.RenewLeader(t.Context(), a)
		wantErr(t, "RenewLeader after ReleaseLeader", err, lease.ErrLeaseLost)
		_, err = s.AcquireLeader(t.Context(), workerB, nil)
		wantErr(t, "AcquireLeader of a released lock with seen nil", err, lease.ErrConflict)
		acquire(t, s, workerB, &released, lease.LeaderLock{Owner: workerB, Epoch: 2, Version: 3})
	}},
	{"acquiring, renewing or releasing without an owner is refused", func(t *testing.T, s FleetStore) {
		_, err := s.AcquireLeader(t.Context(), "", nil)
		notConflict(t, "AcquireLeader with an empty id", err)
		_, err = s.Leader(t.Context())
		wantErr(t, "Leader after the refused acquisition", err, lease.ErrNotFound)
		a := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		unowned := a
		unowned.Owner = ""
		_, err = s.RenewLeader(t.Context(), unowned)
		notConflict(t, "RenewLeader of a lock without owner", err)
		notConflict(t, "ReleaseLeader of a lock without owner", s.ReleaseLeader(t.Context(), unowned))
		wantLeader(t, s, "after the refused calls", a)
	}},
}

// testAcquireRace races workers to acquire the lock from seen and checks
// that exactly one won and the stored lock is the winner's.
func testAcquireRace(t *testing.T, s FleetStore, seen *lease.LeaderLock) {
	const n = 8
	var (
		wg   sync.WaitGroup
		got  = make([]lease.LeaderLock, n)
		errs = make([]error, n)
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.AcquireLeader(t.Context(), fmt.Sprintf("worker-%d", i), seen)
		})
	}
	close(start)
	wg.Wait()
	var won []lease.LeaderLock
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, got[i])
		case !errors.Is(err, lease.ErrConflict):
			t.Errorf("AcquireLeader by worker-%d = %v; want success or lease.ErrConflict", i, err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent acquisitions won: %+v; want exactly 1", len(won), n, won)
	}
	wantLeader(t, s, "after the race", won[0])
}

var assignTests = []fleetTest{
	{"assigning an unowned lease sets the owner and counts no owner switch", func(t *testing.T, s FleetStore) {
		l := create(t, s, plainLease(key0))
		got, err := s.Assign(t.Context(), l, workerA)
		applied(t, s, "Assign", got, err, afterTake(l, workerA))
	}},
	{"assigning a held lease counts an owner switch and fences the previous owner", func(t *testing.T, s FleetStore) {
		old := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Assign(t.Context(), old, workerB)
		assigned := applied(t, s, "Assign", got, err, afterTake(old, workerB))
		_, err = s.Renew(t.Context(), old)
		refused(t, s, "the previous owner's Renew", err, assigned, lease.ErrLeaseLost, lease.ErrConflict)
		_, err = s.Checkpoint(t.Context(), old, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
		refused(t, s, "the previous owner's Checkpoint", err, assigned, lease.ErrLeaseLost, lease.ErrConflict)
		_, err = s.Release(t.Context(), old)
		refused(t, s, "the previous owner's Release", err, assigned, lease.ErrLeaseLost, lease.ErrConflict)
		// The new owner works the lease.
		got, err = s.Checkpoint(t.Context(), assigned, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
		applied(t, s, "the new owner's Checkpoint", got, err,
			afterCheckpoint(assigned, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd}))
	}},
	{"assigning a lease to its owner increments the counter and counts no switch", func(t *testing.T, s FleetStore) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Assign(t.Context(), l, workerA)
		applied(t, s, "Assign to the owner", got, err, afterTake(l, workerA))
	}},
	{"assigning during a handoff ends it", func(t *testing.T, s FleetStore) {
		l := handedOff(t, s)
		got, err := s.Assign(t.Context(), l, workerC)
		applied(t, s, "Assign during a handoff", got, err, afterTake(l, workerC))
	}},
	{"assigning with a stale counter fails with ErrConflict and writes nothing", func(t *testing.T, s FleetStore) {
		l := create(t, s, heldLease(t, key0, workerA))
		renewed, err := s.Renew(t.Context(), l)
		wantOK(t, "Renew", err)
		_, err = s.Assign(t.Context(), l, workerB)
		refused(t, s, "Assign with a stale counter", err, renewed, lease.ErrConflict)
		_, err = s.Assign(t.Context(), ahead(renewed), workerB)
		refused(t, s, "Assign with a counter ahead", err, renewed, lease.ErrConflict)
	}},
	{"assigning with a stale owner fails with ErrConflict even at the stored counter", func(t *testing.T, s FleetStore) {
		// A handoff changes the owner but not the counter: only the owner
		// condition refuses this assignment.
		l := handedOff(t, s)
		_, err := s.Assign(t.Context(), ownedBy(l, workerA), workerC)
		refused(t, s, "Assign with the previous owner", err, l, lease.ErrConflict)
		_, err = s.Assign(t.Context(), ownedBy(l, ""), workerC)
		refused(t, s, "Assign of a held lease seen as unowned", err, l, lease.ErrConflict)
		u := create(t, s, plainLease("shardId-000000000001"))
		_, err = s.Assign(t.Context(), ownedBy(u, workerA), workerC)
		refused(t, s, "Assign of an unowned lease seen as held", err, u, lease.ErrConflict)
	}},
	{"assigning a missing lease fails with ErrConflict and ErrNotFound and creates nothing", func(t *testing.T, s FleetStore) {
		_, err := s.Assign(t.Context(), plainLease(key0), workerA)
		wantErr(t, "Assign of a missing lease", err, lease.ErrConflict, lease.ErrNotFound)
		wantMissing(t, s, "after the refused Assign", key0)
	}},
	{"assigning to no one is refused", func(t *testing.T, s FleetStore) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Assign(t.Context(), l, "")
		notConflict(t, "Assign to \"\"", err)
		wantStored(t, s, "after the refused Assign", l)
	}},
	{"exactly one of concurrent assignments from one observation wins", func(t *testing.T, s FleetStore) {
		l := create(t, s, heldLease(t, key0, workerA))
		const n = 8
		var wg sync.WaitGroup
		got := make([]lease.Lease, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { got[i], errs[i] = s.Assign(t.Context(), l, fmt.Sprintf("worker-%d", i)) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Errorf("both worker-%d and worker-%d were assigned the lease", won, i)
			case err == nil:
				won = i
			case !errors.Is(err, lease.ErrConflict):
				t.Errorf("Assign to worker-%d = %v; want success or lease.ErrConflict", i, err)
			}
		}
		if won < 0 {
			t.Fatal("no concurrent Assign won")
		}
		wantStored(t, s, "after the race", afterTake(l, fmt.Sprintf("worker-%d", won)))
	}},
}

// fleetItems writes one of every fleet item: heartbeats, a mark, a standby
// flag, the roster and the leader lock.
func fleetItems(t *testing.T, s FleetStore) {
	t.Helper()
	ctx := t.Context()
	beat(t, s, workerA, lease.WorkerRunning, 1)
	beat(t, s, workerB, lease.WorkerStopping, 0)
	wantOK(t, "MarkAssigned", s.MarkAssigned(ctx, workerA))
	setStandby(t, s, workerA, true)
	wantOK(t, "Join", s.Join(ctx, workerA))
	wantOK(t, "Join", s.Join(ctx, workerB))
	acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
}

var coexistenceTests = []fleetTest{
	{"listing and getting never return the fleet items", func(t *testing.T, s FleetStore) {
		a := create(t, s, heldLease(t, key0, workerA))
		b := create(t, s, plainLease("shardId-000000000001"))
		fleetItems(t, s)
		wantListed(t, s, "of a table with fleet items", []lease.Lease{a, b})
		// Whatever keys a store gives the fleet items, Get finds no lease
		// under the worker ids or the names a store might use.
		for _, key := range []string{workerA, workerB, "leader", "roster",
			"kcl#leader", "kcl#roster", "kcl#worker#" + workerA, "kcl#worker#" + workerB} {
			wantMissing(t, s, "of "+key, key)
		}
		if ol, ok := s.(lease.OwnerLister); ok {
			wantOwned(t, ol, workerA, a.Key)
			wantOwned(t, ol, workerB)
		}
	}},
	{"lease writes and fleet writes on one table leave each other alone", func(t *testing.T, s FleetStore) {
		fleetItems(t, s)
		l := create(t, s, plainLease(key0))
		l, err := s.Assign(t.Context(), l, workerA)
		wantOK(t, "Assign", err)
		l, err = s.Renew(t.Context(), l)
		wantOK(t, "Renew", err)
		wantListed(t, s, "after lease writes", []lease.Lease{l})
		wantOK(t, "Delete", s.Delete(t.Context(), l))
		wantListed(t, s, "after the lease was deleted", nil)
		wantRoster(t, s, "after the lease writes", workerA, workerB)
		wantLeader(t, s, "after the lease writes", lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		hb := beat(t, s, workerA, lease.WorkerRunning, 0)
		wantHeartbeat(t, "Beat after the lease writes", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, AssignEpoch: 1, Standby: true})
	}},
}

var fleetContextTests = []fleetTest{
	{"every fleet operation fails with a cancelled context and writes nothing", func(t *testing.T, s FleetStore) {
		fleetItems(t, s)
		held := create(t, s, heldLease(t, key0, workerA))
		lock := lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := []struct {
			name string
			call func() error
		}{
			{"Beat", func() error { _, err := s.Beat(ctx, workerA, lease.WorkerRunning, 0); return err }},
			{"Heartbeats", func() error { _, err := s.Heartbeats(ctx, []string{workerA}); return err }},
			{"MarkAssigned", func() error { return s.MarkAssigned(ctx, workerA) }},
			{"SetStandby", func() error { return s.SetStandby(ctx, workerA, false) }},
			{"Fence", func() error { return s.Fence(ctx, workerA, 1) }},
			{"Join", func() error { return s.Join(ctx, workerC) }},
			{"Leave", func() error { return s.Leave(ctx, workerA) }},
			{"Roster", func() error { _, err := s.Roster(ctx); return err }},
			{"Leader", func() error { _, err := s.Leader(ctx); return err }},
			{"AcquireLeader", func() error { _, err := s.AcquireLeader(ctx, workerB, &lock); return err }},
			{"RenewLeader", func() error { _, err := s.RenewLeader(ctx, lock); return err }},
			{"ReleaseLeader", func() error { return s.ReleaseLeader(ctx, lock) }},
			{"Assign", func() error { _, err := s.Assign(ctx, held, workerB); return err }},
		}
		for _, c := range calls {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context = %v; want an error matching context.Canceled", c.name, err)
			}
		}
		wantStored(t, s, "after the cancelled calls", held)
		wantRoster(t, s, "after the cancelled calls", workerA, workerB)
		wantLeader(t, s, "after the cancelled calls", lock)
		hb := beat(t, s, workerA, lease.WorkerRunning, 1)
		wantHeartbeat(t, "Beat after the cancelled calls", hb,
			lease.Heartbeat{WorkerID: workerA, Counter: 2, State: lease.WorkerRunning, Leases: 1, AssignEpoch: 1, Standby: true})
	}},
}
