package shardsync

import (
	"cmp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// Ready reports whether the shard of lease l may be processed now: l is not
// finished and the lease of every parent in l.ParentShardIDs — both parents
// after a merge — is at SHARD_END. waitingFor lists, sorted, the parents whose
// leases exist and are not finished. byKey is the lease table by key.
//
// A parent without a lease counts as done. This is KCL's rule
// (BlockOnParentShardTask blocks only on an existing parent lease that is not
// at SHARD_END): a parent lease is deleted only after its children have
// started (see Cleanup), a parent that precedes the initial position never
// had one, and a parent that expired from the stream has no records left.
// What makes the rule safe is that a child lease is never created while a
// parent that still needs processing has no lease (see MissingParents and
// NewLeases).
//
// A finished lease is not ready: there is nothing left to process. Readers
// that look only at the first parent (as the vmware Go KCL does with
// ParentShardId) start a merge child while its other parent is still being
// processed; Ready gates on every parent.
func Ready(l lease.Lease, byKey map[string]lease.Lease) (ready bool, waitingFor []string) {
	if l.Finished() {
		return false, nil
	}
	for _, id := range parentSet(l.ParentShardIDs...) {
		if p, ok := byKey[id]; ok && !p.Finished() {
			waitingFor = append(waitingFor, id)
		}
	}
	return len(waitingFor) == 0, waitingFor
}

// MissingParents returns, sorted, the parents of l that have no lease in
// byKey. The Worker creates a child lease returned by ChildLeases only when
// MissingParents is empty (see ChildLeases).
func MissingParents(l lease.Lease, byKey map[string]lease.Lease) []string {
	var missing []string
	for _, id := range parentSet(l.ParentShardIDs...) {
		if _, ok := byKey[id]; !ok {
			missing = append(missing, id)
		}
	}
	return missing
}

// ChildLeases returns the leases for the children of parent, as the last
// GetRecords response (or enhanced fan-out event) of the parent's shard lists
// them in ChildShards: unowned, counter 0, checkpoint TRIM_HORIZON (every
// record of a child follows the parent's records), ParentShardIDs from the
// child's ParentShards, HashRange set; sorted by key. It fails with a
// *ShardError on a child without an id, parents or a valid hash key range.
//
// The Worker that reached the parent's end creates each returned lease that
// does not exist yet and whose MissingParents is empty, then writes the
// children's ids to the parent's ChildShardIDs together with the SHARD_END
// checkpoint (create first, so a crash in between leaves no finished parent
// without children).
//
// A merge child whose other parent has no lease is deferred: not created
// now. Were it created, Ready would treat the missing parent as done, and the
// child would start before that parent — whose lease is still to come from
// its own parent's end — is processed. The child is created later by the
// other parent's end (its ChildLeases, once both parent leases exist) or by
// NewLeases at the next shard sync (which also covers the other parent
// preceding the initial position or having expired). KCL defers the same way
// but keeps the parent unfinished and retries (ShutdownTask,
// BlockedOnParentShardException); here the parent is marked SHARD_END with
// its ChildShardIDs, so no worker waits, and Coverage counts a finished lease
// whose children lack leases as still covering its range.
func ChildLeases(parent lease.Lease, children []types.ChildShard) ([]lease.Lease, error) {
	out := make([]lease.Lease, 0, len(children))
	for _, c := range children {
		id := deref(c.ShardId)
		if id == "" {
			return nil, &ShardError{Reason: "child of " + parent.Key + " has no shard id"}
		}
		parents := parentSet(c.ParentShards...)
		if len(parents) == 0 {
			return nil, &ShardError{ShardID: id, Reason: "child shard without parent shards"}
		}
		r, err := parseRange(id, c.HashKeyRange)
		if err != nil {
			return nil, err
		}
		out = append(out, newLease(id, parents, r, checkpoint.TrimHorizon))
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return cmp.Compare(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b lease.Lease) bool { return a.Key == b.Key }), nil
}

// Cleanup returns, sorted by key, the finished leases that may be deleted
// now: at SHARD_END, with ChildShardIDs recorded, every child has a lease,
// every child has started — its checkpoint is a record or SHARD_END, not
// TRIM_HORIZON, LATEST or AT_TIMESTAMP — and no parent in ParentShardIDs
// still has a lease. Until then the parent lease is what tells Ready that the
// parent is done (a missing lease would say the same) and what keeps
// NewLeases from recreating a lease for the parent.
//
// The rules are KCL's (LeaseCleanupManager.cleanupLeaseForCompletedShard):
// children all leased and started, parents deleted first. Deleting top-down
// — a lineage loses one generation per pass — means a finished lease never
// outlives a deleted child, which would keep it from ever being cleaned up
// (its child would have no lease) and would make Coverage count it forever.
// KCL treats only TRIM_HORIZON and AT_TIMESTAMP as not started; a child at
// LATEST has not started either. A finished lease without ChildShardIDs is
// kept: its children are unknown (KCL then asks the service for them; the
// Worker may write them from ListShards).
func Cleanup(leases []lease.Lease) []lease.Lease {
	byKey := index(leases)
	var out []lease.Lease
	for _, l := range leases {
		if !l.Finished() || len(l.ChildShardIDs) == 0 {
			continue
		}
		ok := true
		for _, c := range l.ChildShardIDs {
			cl, found := byKey[c]
			if !found || !started(cl.Checkpoint) {
				ok = false
				break
			}
		}
		for _, p := range l.ParentShardIDs {
			if _, found := byKey[p]; found {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// started reports whether a lease at p has processed (or skipped past) some
// record: p is a record position or SHARD_END.
func started(p checkpoint.Position) bool {
	return p.IsSequence() || p.Kind() == checkpoint.KindShardEnd
}

func newLease(id string, parents []string, r hashkey.Range, at checkpoint.Position) lease.Lease {
	return lease.Lease{
		Key:            id,
		Checkpoint:     at,
		ParentShardIDs: parents,
		HashRange:      &r,
	}
}

// index maps leases by key; the first of duplicate keys wins.
func index(leases []lease.Lease) map[string]lease.Lease {
	m := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		if _, dup := m[l.Key]; !dup {
			m[l.Key] = l
		}
	}
	return m
}

// parentSet returns ids sorted, without "" and duplicates; nil when empty.
func parentSet(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
