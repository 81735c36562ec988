package memlease_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestFleetStatsCountLikeDynamoDB(t *testing.T) {
	s := memlease.New()
	ctx := t.Context()
	if err := s.Create(ctx, unowned("a")); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Beat(ctx, "w1", lease.WorkerRunning, 0) // ok
	_, _ = s.Beat(ctx, "w1", lease.WorkerRunning, 1) // ok
	_, _ = s.Beat(ctx, "", lease.WorkerRunning, 0)   // invalid: not counted
	_ = s.MarkAssigned(ctx, "w1")                    // ok
	_ = s.MarkAssigned(ctx, "w9")                    // failed: no heartbeat
	_ = s.SetStandby(ctx, "w1", true)                // ok
	_ = s.SetStandby(ctx, "w1", true)                // ok: the same value is written again
	_ = s.SetStandby(ctx, "w9", true)                // failed: no heartbeat
	_ = s.SetStandby(ctx, "", true)                  // invalid: not counted
	_ = s.Fence(ctx, "w1", 1)                        // failed: w1 beat since
	_ = s.Fence(ctx, "w1", 2)                        // ok
	_ = s.Fence(ctx, "w9", 1)                        // failed: no heartbeat
	_ = s.Fence(ctx, "w1", 0)                        // invalid: not counted
	_ = s.Fence(ctx, "", 2)                          // invalid: not counted
	_ = s.Join(ctx, "w1")                            // ok
	_ = s.Leave(ctx, "w2")                           // ok: idempotent
	_, _ = s.Roster(ctx)                             // one read
	l, _ := s.AcquireLeader(ctx, "w1", nil)          // ok
	_, _ = s.AcquireLeader(ctx, "w2", nil)           // failed: exists
	_, _ = s.RenewLeader(ctx, l)                     // ok
	_, _ = s.RenewLeader(ctx, l)                     // failed: stale
	_ = s.ReleaseLeader(ctx, l)                      // failed: stale
	_, _ = s.Leader(ctx)                             // one read
	a, _ := s.Assign(ctx, unowned("a"), "w1")        // ok
	_, _ = s.Assign(ctx, unowned("a"), "w2")         // failed: stale
	_, _ = s.Renew(ctx, a)                           // ok, a lease write
	ids := make([]string, 0, 250)
	for i := range 250 {
		ids = append(ids, fmt.Sprintf("w%d", i%201)) // 201 distinct ids
	}
	_, _ = s.Heartbeats(ctx, ids) // 3 batches of 201 keys
	_, _ = s.Heartbeats(ctx, nil) // no request

	want := memlease.Stats{
		Create:           memlease.WriteCount{Succeeded: 1},
		Renew:            memlease.WriteCount{Succeeded: 1},
		HeartbeatReads:   1,
		HeartbeatBatches: 3,
		HeartbeatKeys:    201,
		HeartbeatItems:   1, // only w1 beat
		RosterReads:      1,
		LeaderReads:      1,
		Beat:             memlease.WriteCount{Succeeded: 2},
		MarkAssigned:     memlease.WriteCount{Succeeded: 1, Failed: 1},
		SetStandby:       memlease.WriteCount{Succeeded: 2, Failed: 1},
		Fence:            memlease.WriteCount{Succeeded: 1, Failed: 2},
		Join:             memlease.WriteCount{Succeeded: 1},
		Leave:            memlease.WriteCount{Succeeded: 1},
		AcquireLeader:    memlease.WriteCount{Succeeded: 1, Failed: 1},
		RenewLeader:      memlease.WriteCount{Succeeded: 1, Failed: 1},
		ReleaseLeader:    memlease.WriteCount{Failed: 1},
		Assign:           memlease.WriteCount{Succeeded: 1, Failed: 1},
	}
	got := s.Stats()
	if got != want {
		t.Errorf("Stats() =\n\t%+v\nwant\n\t%+v", got, want)
	}
	if n := got.FleetWrites(); n != 19 {
		t.Errorf("FleetWrites() = %d; want 19", n)
	}
	if n := got.Writes(); n != 21 {
		t.Errorf("Writes() = %d; want 21", n)
	}
	if d := got.Sub(want); d != (memlease.Stats{}) {
		t.Errorf("Sub of itself = %+v; want zero", d)
	}
}

// TestFleetFaultCutsOneWorkerOff shows the fault key of the fleet operations:
// the worker id, so a test can partition one worker from the table.
func TestFleetFaultCutsOneWorkerOff(t *testing.T) {
	errPartitioned := errors.New("partitioned")
	type call struct {
		op  memlease.Op
		key string
	}
	var calls []call
	s := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
		calls = append(calls, call{op, key})
		if key == "w2" {
			return errPartitioned
		}
		return nil
	}))
	ctx := t.Context()
	_ = s.Create(ctx, unowned("k"))
	_, _ = s.Beat(ctx, "w1", lease.WorkerRunning, 0)
	if _, err := s.Beat(ctx, "w2", lease.WorkerRunning, 0); !errors.Is(err, errPartitioned) {
		t.Errorf("Beat of the partitioned worker = %v; want the injected error", err)
	}
	_, _ = s.Heartbeats(ctx, []string{"w1", "w2"})
	_ = s.MarkAssigned(ctx, "w1")
	_ = s.SetStandby(ctx, "w1", true)
	if err := s.SetStandby(ctx, "w2", true); !errors.Is(err, errPartitioned) {
		t.Errorf("SetStandby of the partitioned worker = %v; want the injected error", err)
	}
	_ = s.Fence(ctx, "w1", 1)
	if err := s.Fence(ctx, "w2", 1); !errors.Is(err, errPartitioned) {
		t.Errorf("Fence of the partitioned worker = %v; want the injected error", err)
	}
	_ = s.Join(ctx, "w1")
	_ = s.Leave(ctx, "w1")
	_, _ = s.Roster(ctx)
	lock, _ := s.AcquireLeader(ctx, "w1", nil)
	_, _ = s.Leader(ctx)
	lock, _ = s.RenewLeader(ctx, lock)
	_ = s.ReleaseLeader(ctx, lock)
	_, _ = s.Assign(ctx, unowned("k"), "w2")
	want := []call{
		{memlease.OpCreate, "k"}, {memlease.OpBeat, "w1"}, {memlease.OpBeat, "w2"}, {memlease.OpHeartbeats, ""},
		{memlease.OpMarkAssigned, "w1"}, {memlease.OpSetStandby, "w1"}, {memlease.OpSetStandby, "w2"},
		{memlease.OpFence, "w1"}, {memlease.OpFence, "w2"},
		{memlease.OpJoin, "w1"}, {memlease.OpLeave, "w1"}, {memlease.OpRoster, ""},
		{memlease.OpAcquireLeader, "w1"}, {memlease.OpLeader, ""}, {memlease.OpRenewLeader, "w1"},
		{memlease.OpReleaseLeader, "w1"}, {memlease.OpAssign, "k"},
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("fault saw\n\t%v\nwant\n\t%v", calls, want)
	}
	hbs, _ := s.Heartbeats(ctx, []string{"w1", "w2"})
	if len(hbs) != 1 || hbs[0].WorkerID != "w1" {
		t.Errorf("Heartbeats = %+v; want only w1's (w2's beat never reached the table)", hbs)
	}
	if got, _ := s.Get(ctx, "k"); got.Owner != "w2" {
		t.Errorf("lease owner = %q; want w2 (Assign's fault key is the lease key)", got.Owner)
	}
	for _, op := range []memlease.Op{memlease.OpBeat, memlease.OpSetStandby, memlease.OpFence, memlease.OpAssign, memlease.OpReleaseLeader} {
		if !op.IsWrite() {
			t.Errorf("%v.IsWrite() = false", op)
		}
	}
	for _, op := range []memlease.Op{memlease.OpHeartbeats, memlease.OpRoster, memlease.OpLeader} {
		if op.IsWrite() {
			t.Errorf("%v.IsWrite() = true", op)
		}
	}
}
