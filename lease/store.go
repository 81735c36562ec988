package lease

import (
	"context"

	"github.com/kclgo/kcl/checkpoint"
)

// Store is a lease table. Implementations must make every write conditional
// exactly as documented on each method, atomically, and must never return a
// Lease that shares memory with their own state. kcl ships a DynamoDB store
// (package dynamolease) and an in-memory store (package memlease); package
// leasetest holds the conformance suite every implementation must pass.
//
// Condition failures are reported with errors matching ErrConflict; for the
// holder's own writes (Renew, Checkpoint, Release) they also match
// ErrLeaseLost. Usage errors — Create with an empty key, Take with an empty
// owner, Handoff to "", to the owner itself or of an unowned lease,
// Checkpoint with a zero position — write nothing and return errors that do not match ErrConflict. Methods are
// safe for concurrent use and honour ctx.
type Store interface {
	// Create writes l as a new lease if no lease with l.Key exists, and
	// returns ErrAlreadyExists (which matches ErrConflict) otherwise. l is
	// written as given (KCL creates leases unowned with counter 0).
	Create(ctx context.Context, l Lease) error

	// Get returns the lease with the given key (strongly consistent), or
	// ErrNotFound.
	Get(ctx context.Context, key string) (Lease, error)

	// List returns every lease in the table, reading all pages, strongly
	// consistent (it reflects every write that returned before it), in no
	// particular order. Items that
	// cannot be read as leases are left out of the result and reported in a
	// *MalformedError, which List returns together with the well-formed
	// leases.
	List(ctx context.Context) ([]Lease, error)

	// Renew increments the counter if the stored counter equals l.Counter and
	// the stored owner equals l.Owner, and returns the lease as stored after
	// the write. Otherwise it returns ErrLeaseLost.
	Renew(ctx context.Context, l Lease) (Lease, error)

	// Take makes owner the owner of the lease if the stored counter equals
	// l.Counter: it sets leaseOwner, increments the counter, increments
	// ownerSwitchesSinceCheckpoint when another worker held it (taking an
	// unowned lease, or one owner already holds, is not an owner switch, as
	// in KCL) and removes checkpointOwner (ending any handoff). It returns
	// ErrConflict otherwise.
	Take(ctx context.Context, l Lease, owner string) (Lease, error)

	// Handoff asks the holder to hand the lease to another worker (KCL 3.x
	// graceful handoff): if the stored counter equals l.Counter, the stored
	// owner equals l.Owner and no handoff is in progress, it sets leaseOwner
	// to to and checkpointOwner to l.Owner, and leaves the counter as it is.
	// It returns ErrConflict otherwise. Handing off to l.Owner itself is a
	// usage error.
	//
	// The write is the one KCL 3.x's leader makes
	// (DynamoDBLeaseRefresher.initiateGracefulLeaseHandoff), so that a Java
	// holder keeps renewing (its renewals are conditioned on the counter
	// only) and writes its final checkpoint instead of losing the lease.
	// Fencing does not need the counter here: the holder's renewals and
	// checkpoints are conditioned on leaseOwner too, so they fail once the
	// owner changed; its final checkpoint, made with the lease as re-read,
	// increments the counter; and every other write of the lease is
	// conditioned on the counter.
	Handoff(ctx context.Context, l Lease, to string) (Lease, error)

	// Checkpoint records progress if the stored counter equals l.Counter and
	// the stored owner equals l.Owner: it writes the update's fields, resets
	// ownerSwitchesSinceCheckpoint to 0, increments the counter and, when
	// l.CheckpointOwner is set, removes checkpointOwner (completing a
	// handoff: the final checkpoint of the outgoing owner). It returns
	// ErrLeaseLost otherwise.
	Checkpoint(ctx context.Context, l Lease, u CheckpointUpdate) (Lease, error)

	// Release gives the lease up if the stored counter equals l.Counter and
	// the stored owner equals l.Owner: it removes leaseOwner and
	// checkpointOwner and increments the counter. It returns ErrLeaseLost
	// otherwise.
	Release(ctx context.Context, l Lease) (Lease, error)

	// Delete removes the lease if the stored counter equals l.Counter, and
	// returns ErrConflict otherwise (ErrNotFound if it does not exist).
	Delete(ctx context.Context, l Lease) error
}

// CheckpointUpdate is what Store.Checkpoint writes.
type CheckpointUpdate struct {
	// Checkpoint is the new checkpoint; it must not be the zero Position.
	Checkpoint checkpoint.Position
	// PendingCheckpoint is the prepared checkpoint to keep; the zero Position
	// removes pendingCheckpoint and its sub-sequence number and state.
	PendingCheckpoint checkpoint.Position
	// PendingCheckpointState is saved with a non-zero PendingCheckpoint.
	PendingCheckpointState []byte
	// ChildShardIDs, when not empty, are written as childShardIds (at
	// SHARD_END); nil or empty leaves the stored value.
	ChildShardIDs []string
}

// OwnerLister is implemented by stores that can list the keys of the leases
// one worker owns without reading the whole table (the DynamoDB store does so
// through KCL 3.x's LeaseOwnerToLeaseKeyIndex). The coordinator uses it to
// notice leases handed to it quickly and cheaply. Results may lag writes by
// the index's propagation delay.
type OwnerLister interface {
	ListOwned(ctx context.Context, owner string) ([]string, error)
}
