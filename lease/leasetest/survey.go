package leasetest

import (
	"context"
	"errors"
	"testing"

	"github.com/kclgo/kcl/lease"
)

// surveyTests check lease.Surveyor's Fleet answer, on stores that implement
// it (the others skip them). Java items cannot be made through the
// interfaces: each store tests them with its own means.
var surveyTests = []fleetTest{
	{"a table of leases only is neither a kcl-fleet nor a Java table", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		wantSurvey(t, sv, "of an empty table", false)
		create(t, s, heldLease(t, key0, workerA))
		create(t, s, plainLease("shardId-000000000001"))
		wantSurvey(t, sv, "of a table of leases", false)
	}},
	{"a heartbeat makes a kcl-fleet table", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		beat(t, s, workerA, lease.WorkerStarting, 0)
		wantSurvey(t, sv, "after a Beat", true)
	}},
	{"the roster makes a kcl-fleet table, even emptied by Leave", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		wantOK(t, "Join", s.Join(t.Context(), workerA))
		wantOK(t, "Leave", s.Leave(t.Context(), workerA))
		wantRoster(t, s, "after Join and Leave")
		wantSurvey(t, sv, "after Join and Leave", true)
	}},
	{"the leader lock makes a kcl-fleet table, even released", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		l := acquire(t, s, workerA, nil, lease.LeaderLock{Owner: workerA, Epoch: 1, Version: 1})
		wantOK(t, "ReleaseLeader", s.ReleaseLeader(t.Context(), l))
		wantSurvey(t, sv, "after AcquireLeader and ReleaseLeader", true)
	}},
	{"no fleet item is taken for a Java item", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		create(t, s, heldLease(t, key0, workerA))
		fleetItems(t, s)
		wantSurvey(t, sv, "of a table with every fleet item", true)
	}},
	{"surveying with a cancelled context fails with context.Canceled", func(t *testing.T, s FleetStore) {
		sv := surveyor(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := sv.Survey(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Survey with a cancelled context = %v; want an error matching context.Canceled", err)
		}
	}},
}

func surveyor(t *testing.T, s FleetStore) lease.Surveyor {
	t.Helper()
	sv, ok := s.(lease.Surveyor)
	if !ok {
		t.Skipf("%T is not a lease.Surveyor", s)
	}
	return sv
}

// wantSurvey checks that Survey reports fleet and no Java item, waiting up
// to ownedWait for a kcl-fleet item to show: Survey may lag writes.
func wantSurvey(t *testing.T, sv lease.Surveyor, what string, fleet bool) {
	t.Helper()
	var (
		got lease.Survey
		err error
	)
	ok := eventually(t, ownedWait, func() bool {
		got, err = sv.Survey(t.Context())
		return err == nil && got.Fleet == fleet
	})
	switch {
	case err != nil:
		t.Errorf("Survey %s: %v", what, err)
	case !ok:
		t.Errorf("Survey %s: Fleet = %v after %v; want %v", what, got.Fleet, ownedWait, fleet)
	}
	if len(got.Java) != 0 {
		t.Errorf("Survey %s: Java = %q; want none", what, got.Java)
	}
}
