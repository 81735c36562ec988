// Package lease is the contract between kcl and a lease table: the Lease
// value, the Store that keeps leases, and the errors a store returns. It is
// for implementers of a lease table, as database/sql/driver is for database
// drivers; applications pass a store (dynamolease.Store, or memlease.Store in
// tests) to consumer.New and never call it themselves. How workers share
// leases — taking, renewing, balancing, handing over — is the consumer
// package's business and is not part of this contract.
//
// A Lease is one row of the lease table, shaped exactly as the Java KCL 2.x/3.x
// writes it, so a KCL fleet can switch to kcl in place. Every write to a lease
// is conditional on its leaseCounter (the fencing token): a write made with a
// stale view of the lease fails with ErrConflict (or ErrLeaseLost for the
// holder's own writes) instead of overwriting a newer owner.
//
// Implementers of a lease table implement Store (and OwnerLister, if the
// table can list one owner's leases cheaply, and FleetStore, if it can hold
// the heartbeats, roster and leader lock of kcl-fleet coordination) and run
// the conformance suites in package leasetest against it.
package lease

import (
	"slices"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
)

// Lease is the value of one lease-table row. The comments name the KCL
// attribute each field maps to.
type Lease struct {
	// Key identifies the lease (leaseKey): a shard id, or for multi-stream
	// applications "account:stream:creationEpochSeconds:shardId".
	Key string
	// Owner is the worker that holds the lease (leaseOwner); "" when unowned.
	// During a graceful handoff it is the incoming owner.
	Owner string
	// Counter is the fencing token (leaseCounter): incremented by every write.
	Counter int64
	// Checkpoint is where processing stands (checkpoint and
	// checkpointSubSequenceNumber).
	Checkpoint checkpoint.Position
	// PendingCheckpoint is a prepared, uncommitted checkpoint
	// (pendingCheckpoint and pendingCheckpointSubSequenceNumber); zero when none.
	PendingCheckpoint checkpoint.Position
	// PendingCheckpointState is application state saved with the prepared
	// checkpoint (pendingCheckpointState); nil when none. An empty slice reads
	// back as nil.
	PendingCheckpointState []byte
	// OwnerSwitchesSinceCheckpoint counts owner changes since the last
	// checkpoint (ownerSwitchesSinceCheckpoint).
	OwnerSwitchesSinceCheckpoint int64
	// ParentShardIDs lists the parent and, after a merge, the adjacent
	// parent shard (parentShardId).
	//
	// ParentShardIDs and ChildShardIDs are sets (DynamoDB string sets):
	// stores may return them in any order, without duplicates, and an empty
	// slice reads back as nil.
	ParentShardIDs []string
	// ChildShardIDs lists the children, written at SHARD_END (childShardIds).
	ChildShardIDs []string
	// HashRange is the shard's hash key range (startingHashKey,
	// endingHashKey); nil when the item has none (KCL 1.x-era leases).
	HashRange *hashkey.Range
	// CheckpointOwner is the outgoing owner during a graceful handoff
	// (checkpointOwner, KCL 3.x); "" otherwise.
	CheckpointOwner string
	// ThroughputKBps is the shard's recent throughput (throughputKBps, KCL
	// 3.x); nil when absent.
	ThroughputKBps *float64
	// StreamName and ShardID are set on multi-stream leases (streamName,
	// shardId); "" for single-stream leases.
	StreamName string
	ShardID    string
}

// Clone returns a deep copy of l, so that stores and callers never share
// slices.
func (l Lease) Clone() Lease {
	l.PendingCheckpointState = slices.Clone(l.PendingCheckpointState)
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	if l.HashRange != nil {
		r := *l.HashRange
		l.HashRange = &r
	}
	if l.ThroughputKBps != nil {
		v := *l.ThroughputKBps
		l.ThroughputKBps = &v
	}
	return l
}

// InHandoff reports whether the lease is being handed over: Owner is the
// incoming owner and CheckpointOwner the outgoing one, which may still write
// its final checkpoint.
func (l Lease) InHandoff() bool { return l.CheckpointOwner != "" }

// Finished reports whether the shard has been processed to its end.
func (l Lease) Finished() bool { return l.Checkpoint.Kind() == checkpoint.KindShardEnd }
