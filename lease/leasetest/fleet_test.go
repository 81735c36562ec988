package leasetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/leasetest"
	"github.com/kclgo/kcl/lease/memlease"
)

// fleetMutants are FleetStores with one bug each, for
// TestFleetSuiteCatchesBrokenStores, as mutants are for Run.
var fleetMutants = map[string]struct {
	catches string
	wrap    func(s *memlease.Store) leasetest.FleetStore
}{
	"assign ignores the observed owner": {
		"Assign/assigning_with_a_stale_owner_fails_with_ErrConflict_even_at_the_stored_counter",
		func(s *memlease.Store) leasetest.FleetStore { return assignIgnoresOwner{s} },
	},
	"renew leader ignores the version": {
		"Leader/renewing_with_a_stale_version_fails_with_ErrLeaseLost_and_writes_nothing",
		func(s *memlease.Store) leasetest.FleetStore { return renewLeaderIgnoresVersion{s} },
	},
	"heartbeats read one page only": {
		"Heartbeats/reading_more_heartbeats_than_one_page_holds_returns_each_once_and_leaves_out_missing_ids",
		func(s *memlease.Store) leasetest.FleetStore { return heartbeatsOnePage{s} },
	},
	"leave of an absent worker fails": {
		"Roster/joining_and_leaving_are_idempotent",
		func(s *memlease.Store) leasetest.FleetStore { return leaveNotIdempotent{s} },
	},
	"survey overlooks an emptied roster": {
		"Survey/the_roster_makes_a_kcl-fleet_table,_even_emptied_by_Leave",
		func(s *memlease.Store) leasetest.FleetStore { return surveyNeedsMembers{s} },
	},
	"beat does not return the assign epoch": {
		"Beat/a_beat_returns_the_assign_epoch_MarkAssigned_set,_without_a_read",
		func(s *memlease.Store) leasetest.FleetStore { return beatDropsEpoch{s} },
	},
}

const fleetMutantEnv = "LEASETEST_FLEET_MUTANT"

func TestFleetMutant(t *testing.T) {
	name := os.Getenv(fleetMutantEnv)
	if name == "" {
		t.Skip("run by TestFleetSuiteCatchesBrokenStores")
	}
	m, ok := fleetMutants[name]
	if !ok {
		t.Fatalf("no fleet mutant %q", name)
	}
	leasetest.RunFleet(t, func(*testing.T) leasetest.FleetStore { return m.wrap(memlease.New()) })
}

func TestFleetSuiteCatchesBrokenStores(t *testing.T) {
	if os.Getenv(fleetMutantEnv) != "" || os.Getenv(mutantEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("runs the suite in a child process per mutant")
	}
	for name, m := range fleetMutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFleetMutant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), fleetMutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the fleet suite passed a store whose %s", name)
			}
			if want := "--- FAIL: TestFleetMutant/" + m.catches + " "; !strings.Contains(string(out), want) {
				t.Errorf("subtest %s did not fail; output:\n%s", m.catches, out)
			}
		})
	}
}

type assignIgnoresOwner struct{ *memlease.Store }

func (s assignIgnoresOwner) Assign(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	if cur, err := s.Get(ctx, l.Key); err == nil {
		l.Owner = cur.Owner
	}
	return s.Store.Assign(ctx, l, owner)
}

type renewLeaderIgnoresVersion struct{ *memlease.Store }

func (s renewLeaderIgnoresVersion) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	if cur, err := s.Leader(ctx); err == nil && cur.Owner == l.Owner {
		l.Version = cur.Version
	}
	return s.Store.RenewLeader(ctx, l)
}

type heartbeatsOnePage struct{ *memlease.Store }

func (s heartbeatsOnePage) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	return s.Store.Heartbeats(ctx, ids[:min(len(ids), 100)])
}

type leaveNotIdempotent struct{ *memlease.Store }

func (s leaveNotIdempotent) Leave(ctx context.Context, id string) error {
	roster, err := s.Roster(ctx)
	if err != nil {
		return err
	}
	for _, r := range roster {
		if r == id {
			return s.Store.Leave(ctx, id)
		}
	}
	return lease.ErrNotFound
}

type beatDropsEpoch struct{ *memlease.Store }

func (s beatDropsEpoch) Beat(ctx context.Context, id string, st lease.WorkerState, n int) (lease.Heartbeat, error) {
	hb, err := s.Store.Beat(ctx, id, st, n)
	hb.AssignEpoch = 0
	return hb, err
}

// surveyNeedsMembers takes a table for a kcl-fleet table only while its
// roster lists a worker.
type surveyNeedsMembers struct{ *memlease.Store }

func (s surveyNeedsMembers) Survey(ctx context.Context) (lease.Survey, error) {
	sv, err := s.Store.Survey(ctx)
	if err != nil {
		return sv, err
	}
	roster, err := s.Roster(ctx)
	sv.Fleet = sv.Fleet && len(roster) > 0
	return sv, err
}
