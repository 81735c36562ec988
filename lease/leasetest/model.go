package leasetest

import (
	"slices"

	"github.com/kclgo/kcl/lease"
)

// The functions below state, in one place, what each successful write must
// leave in the table, given the lease as it was read by the writer (for every
// write the condition pins the stored lease to that read, but for Take and
// Delete after a handoff request, which leaves the counter alone: the
// stored owner may then be the incoming one). Every subtest, and the race test, compares a store's result
// and its state afterwards with them.

// afterRenew: the counter goes up by one; nothing else changes.
func afterRenew(l lease.Lease) lease.Lease {
	l = l.Clone()
	l.Counter++
	return l
}

// afterTake: the taker becomes the owner, any handoff ends, and
// ownerSwitchesSinceCheckpoint counts the take when another worker held the
// lease. As in KCL (DynamoDBLeaseSerializer.getDynamoTakeLeaseUpdate), taking
// an unowned lease is not an owner switch, and neither is taking a lease the
// taker already holds.
func afterTake(l lease.Lease, owner string) lease.Lease {
	l = l.Clone()
	if l.Owner != "" && l.Owner != owner {
		l.OwnerSwitchesSinceCheckpoint++
	}
	l.Owner = owner
	l.CheckpointOwner = ""
	l.Counter++
	return l
}

// afterHandoff: the incoming worker becomes the owner and the outgoing one the
// checkpoint owner; the counter stays as it is, as in KCL 3.x
// (DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff), so that a Java
// holder's counter-conditioned renewals and final checkpoint still succeed.
func afterHandoff(l lease.Lease, to string) lease.Lease {
	l = l.Clone()
	l.CheckpointOwner = l.Owner
	l.Owner = to
	return l
}

// afterCheckpoint: the update's positions replace the stored ones (a zero
// pending checkpoint removes the pending checkpoint and its state), owner
// switches reset, children are written when given, and a handoff completes.
func afterCheckpoint(l lease.Lease, u lease.CheckpointUpdate) lease.Lease {
	l = l.Clone()
	l.Checkpoint = u.Checkpoint
	l.PendingCheckpoint = u.PendingCheckpoint
	l.PendingCheckpointState = nil
	if !u.PendingCheckpoint.IsZero() {
		l.PendingCheckpointState = slices.Clone(u.PendingCheckpointState)
	}
	l.OwnerSwitchesSinceCheckpoint = 0
	if u.ChildShardIDs != nil {
		l.ChildShardIDs = slices.Clone(u.ChildShardIDs)
	}
	l.CheckpointOwner = ""
	l.Counter++
	return l
}

// afterRelease: nobody owns the lease any more.
func afterRelease(l lease.Lease) lease.Lease {
	l = l.Clone()
	l.Owner = ""
	l.CheckpointOwner = ""
	l.Counter++
	return l
}
