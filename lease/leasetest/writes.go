package leasetest

import (
	"errors"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

const key0 = "shardId-000000000000"

// applied checks a write that must succeed: its result and the stored lease
// must both equal want.
func applied(t testing.TB, s lease.Store, call string, got lease.Lease, err error, want lease.Lease) lease.Lease {
	t.Helper()
	wantOK(t, call, err)
	checkLease(t, call+" result", got, want)
	wantStored(t, s, "after "+call, want)
	return want
}

// refused checks a write that must fail with an error matching every target
// and leave the lease as before.
func refused(t testing.TB, s lease.Store, call string, err error, before lease.Lease, targets ...error) {
	t.Helper()
	wantErr(t, call, err, targets...)
	wantStored(t, s, "after the refused "+call, before)
}

// handedOff creates a lease held by workerA and hands it to workerB.
func handedOff(t testing.TB, s lease.Store) lease.Lease {
	t.Helper()
	l := create(t, s, heldLease(t, key0, workerA))
	got, err := s.Handoff(t.Context(), l, workerB)
	return applied(t, s, "Handoff", got, err, afterHandoff(l, workerB))
}

// stale returns l with a counter one below the stored one, as a worker that
// missed the latest write would have it.
func stale(l lease.Lease) lease.Lease {
	l = l.Clone()
	l.Counter--
	return l
}

// ahead returns l with a counter one above the stored one.
func ahead(l lease.Lease) lease.Lease {
	l = l.Clone()
	l.Counter++
	return l
}

// ownedBy returns l as if read while owner held it.
func ownedBy(l lease.Lease, owner string) lease.Lease {
	l = l.Clone()
	l.Owner = owner
	return l
}

var renewTests = []test{
	{"renewing with the current counter and owner increments only the counter", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Renew(t.Context(), l)
		l = applied(t, s, "Renew", got, err, afterRenew(l))
		got, err = s.Renew(t.Context(), l)
		applied(t, s, "second Renew", got, err, afterRenew(l))
	}},
	{"renewing with a stale counter fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Renew(t.Context(), stale(l))
		refused(t, s, "Renew", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"renewing with a counter ahead of the stored one fails with ErrLeaseLost", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Renew(t.Context(), ahead(l))
		refused(t, s, "Renew", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"renewing as another owner fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Renew(t.Context(), ownedBy(l, workerB))
		refused(t, s, "Renew", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"renewing a missing lease fails with ErrLeaseLost and does not create it", func(t *testing.T, s lease.Store) {
		_, err := s.Renew(t.Context(), heldLease(t, key0, workerA))
		wantErr(t, "Renew", err, lease.ErrLeaseLost, lease.ErrConflict)
		wantMissing(t, s, "after Renew", key0)
	}},
	{"renewing as the incoming owner during a handoff keeps the handoff", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		got, err := s.Renew(t.Context(), l)
		applied(t, s, "Renew", got, err, afterRenew(l))
	}},
	{"renewing as the outgoing owner during a handoff fails with ErrLeaseLost", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		_, err := s.Renew(t.Context(), ownedBy(l, workerA))
		refused(t, s, "Renew", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
}

var takeTests = []test{
	{"taking an unowned lease sets the owner and counts no owner switch", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, ""))
		got, err := s.Take(t.Context(), l, workerA)
		applied(t, s, "Take", got, err, afterTake(l, workerA))
	}},
	{"taking a lease from another owner increments ownerSwitchesSinceCheckpoint", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Take(t.Context(), l, workerB)
		l = applied(t, s, "Take", got, err, afterTake(l, workerB))
		if l.OwnerSwitchesSinceCheckpoint != 3 {
			t.Fatalf("model error: OwnerSwitchesSinceCheckpoint = %d", l.OwnerSwitchesSinceCheckpoint)
		}
		got, err = s.Take(t.Context(), l, workerA)
		applied(t, s, "second Take", got, err, afterTake(l, workerA))
	}},
	{"taking a lease its owner already holds counts no owner switch", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Take(t.Context(), l, workerA)
		applied(t, s, "Take", got, err, afterTake(l, workerA))
	}},
	{"taking a lease during a handoff ends the handoff", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		got, err := s.Take(t.Context(), l, workerC)
		applied(t, s, "Take", got, err, afterTake(l, workerC))
	}},
	{"taking with a stale counter fails with ErrConflict and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Take(t.Context(), stale(l), workerB)
		refused(t, s, "Take", err, l, lease.ErrConflict)
	}},
	{"taking with a counter ahead of the stored one fails with ErrConflict", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, ""))
		_, err := s.Take(t.Context(), ahead(l), workerB)
		refused(t, s, "Take", err, l, lease.ErrConflict)
	}},
	{"taking a missing lease fails with ErrConflict and does not create it", func(t *testing.T, s lease.Store) {
		_, err := s.Take(t.Context(), plainLease(key0), workerA)
		wantErr(t, "Take", err, lease.ErrConflict)
		wantMissing(t, s, "after Take", key0)
	}},
}

var handoffTests = []test{
	{"handing off sets the new owner and records the old one as checkpoint owner", func(t *testing.T, s lease.Store) {
		handedOff(t, s)
	}},
	{"handing off leaves the counter unchanged, as KCL 3.x does", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Handoff(t.Context(), l, workerB)
		wantOK(t, "Handoff", err)
		if got.Counter != l.Counter {
			t.Errorf("Handoff returned counter %d; want %d, unchanged (a Java holder renews and checkpoints at the counter it holds)", got.Counter, l.Counter)
		}
		if stored := get(t, s, key0); stored.Counter != l.Counter {
			t.Errorf("stored counter %d after Handoff; want %d, unchanged", stored.Counter, l.Counter)
		}
	}},
	{"after a handoff the outgoing owner's writes fail on the owner, and its final checkpoint from the re-read lease succeeds", func(t *testing.T, s lease.Store) {
		h := handedOff(t, s)
		l := heldLease(t, key0, workerA) // as created by handedOff
		// workerA's view from before the request: same counter, its own
		// name as owner. Every write of it must fail on the owner.
		_, err := s.Renew(t.Context(), l)
		refused(t, s, "Renew with the pre-handoff lease", err, h, lease.ErrLeaseLost)
		_, err = s.Checkpoint(t.Context(), l, lease.CheckpointUpdate{Checkpoint: at(t, seq56, 8)})
		refused(t, s, "Checkpoint with the pre-handoff lease", err, h, lease.ErrLeaseLost)
		_, err = s.Release(t.Context(), l)
		refused(t, s, "Release with the pre-handoff lease", err, h, lease.ErrLeaseLost)
		// The lease as re-read: the final checkpoint completes the handoff
		// and moves the counter, fencing off any later write made at it.
		u := lease.CheckpointUpdate{Checkpoint: at(t, seq56, 8)}
		got, err := s.Checkpoint(t.Context(), h, u)
		done := applied(t, s, "final Checkpoint", got, err, afterCheckpoint(h, u))
		_, err = s.Take(t.Context(), h, workerC)
		refused(t, s, "Take at the handoff's counter", err, done, lease.ErrConflict)
	}},
	{"a take at the handoff's counter ends the handoff and fences off the outgoing owner's final checkpoint", func(t *testing.T, s lease.Store) {
		h := handedOff(t, s)
		// The requester, tired of waiting, takes the lease at the counter
		// the request left; the outgoing owner's final checkpoint, made
		// from the same re-read lease, must then fail.
		got, err := s.Take(t.Context(), h, workerB)
		taken := applied(t, s, "Take", got, err, afterTake(h, workerB))
		_, err = s.Checkpoint(t.Context(), h, lease.CheckpointUpdate{Checkpoint: at(t, seq56, 8)})
		refused(t, s, "final Checkpoint after the Take", err, taken, lease.ErrLeaseLost)
	}},
	{"handing off to the lease's own owner is refused without a conflict and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Handoff(t.Context(), l, workerA)
		if err == nil || errors.Is(err, lease.ErrConflict) {
			t.Errorf("Handoff to its own owner = %v; want a usage error that does not match lease.ErrConflict", err)
		}
		wantStored(t, s, "after the refused Handoff", l)
	}},
	{"handing off during a handoff fails with ErrConflict and writes nothing", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		_, err := s.Handoff(t.Context(), l, workerC)
		refused(t, s, "second Handoff", err, l, lease.ErrConflict)
	}},
	{"handing off with a stale counter fails with ErrConflict and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Handoff(t.Context(), stale(l), workerB)
		refused(t, s, "Handoff", err, l, lease.ErrConflict)
	}},
	{"handing off a lease another worker owns fails with ErrConflict and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Handoff(t.Context(), ownedBy(l, workerC), workerB)
		refused(t, s, "Handoff", err, l, lease.ErrConflict)
	}},
	{"handing off a missing lease fails with ErrConflict and does not create it", func(t *testing.T, s lease.Store) {
		_, err := s.Handoff(t.Context(), heldLease(t, key0, workerA), workerB)
		wantErr(t, "Handoff", err, lease.ErrConflict)
		wantMissing(t, s, "after Handoff", key0)
	}},
}

var checkpointTests = []test{
	{"checkpointing writes the position, resets owner switches and increments the counter", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		u := lease.CheckpointUpdate{Checkpoint: at(t, seq56, 9)}
		got, err := s.Checkpoint(t.Context(), l, u)
		applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
	}},
	{"checkpointing with a pending checkpoint stores it with its state", func(t *testing.T, s lease.Store) {
		l := create(t, s, plainLease(key0))
		l, err := s.Take(t.Context(), l, workerA)
		wantOK(t, "Take", err)
		u := lease.CheckpointUpdate{
			Checkpoint:             at(t, "100", 0),
			PendingCheckpoint:      at(t, seq56, 7),
			PendingCheckpointState: []byte{0, 'a', 0xff},
		}
		got, err := s.Checkpoint(t.Context(), l, u)
		applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
	}},
	{"checkpointing without a pending checkpoint removes the stored one and its state", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		u := lease.CheckpointUpdate{Checkpoint: l.PendingCheckpoint, PendingCheckpointState: []byte("ignored")}
		got, err := s.Checkpoint(t.Context(), l, u)
		l = applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
		if !l.PendingCheckpoint.IsZero() || l.PendingCheckpointState != nil {
			t.Fatalf("model error: %+v", l)
		}
	}},
	{"checkpointing with a pending checkpoint but no state removes the stored state", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		u := lease.CheckpointUpdate{Checkpoint: l.Checkpoint, PendingCheckpoint: at(t, seq56, 8)}
		got, err := s.Checkpoint(t.Context(), l, u)
		applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
	}},
	{"checkpointing at SHARD_END with child shard IDs writes them", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		u := lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"shardId-000000000005", "shardId-000000000006"}}
		got, err := s.Checkpoint(t.Context(), l, u)
		applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
	}},
	{"checkpointing without child shard IDs keeps the stored ones", func(t *testing.T, s lease.Store) {
		l := fullLease(t)
		l.CheckpointOwner = ""
		l = create(t, s, l)
		u := lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd}
		got, err := s.Checkpoint(t.Context(), l, u)
		l = applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
		if len(l.ChildShardIDs) != 2 {
			t.Fatalf("model error: %+v", l)
		}
	}},
	{"checkpointing during a handoff completes it and keeps the incoming owner", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		u := lease.CheckpointUpdate{Checkpoint: at(t, seq56, 11)}
		got, err := s.Checkpoint(t.Context(), l, u)
		l = applied(t, s, "Checkpoint", got, err, afterCheckpoint(l, u))
		if l.Owner != workerB || l.CheckpointOwner != "" {
			t.Fatalf("model error: %+v", l)
		}
	}},
	{"checkpointing with a stale counter fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Checkpoint(t.Context(), stale(l), lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
		refused(t, s, "Checkpoint", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"checkpointing as another owner fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Checkpoint(t.Context(), ownedBy(l, workerB), lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
		refused(t, s, "Checkpoint", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"checkpointing a missing lease fails with ErrLeaseLost and does not create it", func(t *testing.T, s lease.Store) {
		_, err := s.Checkpoint(t.Context(), heldLease(t, key0, workerA), lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
		wantErr(t, "Checkpoint", err, lease.ErrLeaseLost, lease.ErrConflict)
		wantMissing(t, s, "after Checkpoint", key0)
	}},
	{"checkpointing to the zero position fails without writing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Checkpoint(t.Context(), l, lease.CheckpointUpdate{PendingCheckpoint: at(t, "1", 0)})
		if err == nil {
			t.Error("Checkpoint to the zero position succeeded")
		} else if errors.Is(err, lease.ErrConflict) {
			t.Errorf("Checkpoint to the zero position = %v; want a usage error, not one matching lease.ErrConflict", err)
		}
		wantStored(t, s, "after the refused Checkpoint", l)
	}},
}

var releaseTests = []test{
	{"releasing removes the owner and increments the counter", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		got, err := s.Release(t.Context(), l)
		applied(t, s, "Release", got, err, afterRelease(l))
	}},
	{"releasing during a handoff removes both owners", func(t *testing.T, s lease.Store) {
		l := handedOff(t, s)
		got, err := s.Release(t.Context(), l)
		applied(t, s, "Release", got, err, afterRelease(l))
	}},
	{"releasing with a stale counter fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Release(t.Context(), stale(l))
		refused(t, s, "Release", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"releasing as another owner fails with ErrLeaseLost and writes nothing", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		_, err := s.Release(t.Context(), ownedBy(l, workerB))
		refused(t, s, "Release", err, l, lease.ErrLeaseLost, lease.ErrConflict)
	}},
	{"releasing a missing lease fails with ErrLeaseLost and does not create it", func(t *testing.T, s lease.Store) {
		_, err := s.Release(t.Context(), heldLease(t, key0, workerA))
		wantErr(t, "Release", err, lease.ErrLeaseLost, lease.ErrConflict)
		wantMissing(t, s, "after Release", key0)
	}},
}

var deleteTests = []test{
	{"deleting with the current counter removes the lease", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		wantOK(t, "Delete", s.Delete(t.Context(), l))
		wantMissing(t, s, "after Delete", key0)
		wantListed(t, s, "after Delete", nil)
	}},
	{"a deleted key can be created again", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		wantOK(t, "Delete", s.Delete(t.Context(), l))
		create(t, s, plainLease(key0))
	}},
	{"deleting with a stale counter fails with ErrConflict and keeps the lease", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, key0, workerA))
		err := s.Delete(t.Context(), stale(l))
		refused(t, s, "Delete", err, l, lease.ErrConflict)
	}},
	{"deleting a missing lease fails with ErrNotFound", func(t *testing.T, s lease.Store) {
		err := s.Delete(t.Context(), plainLease(key0))
		wantErr(t, "Delete", err, lease.ErrNotFound)
		wantMissing(t, s, "after Delete", key0)
	}},
}
