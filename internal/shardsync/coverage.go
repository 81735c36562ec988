package shardsync

import (
	"slices"

	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// Coverage audits the lease table: it returns the parts of the hash key space
// [0, 2^128−1] that no lease accounts for, sorted and merged; nil when the
// space is covered. A hole means records that no worker will process until a
// shard sync (NewLeases) creates the missing lease; KCL runs a shard sync
// when a hole persists over several audits (PeriodicShardSyncManager).
//
// A lease accounts for its hash range while it is unfinished, and also once
// finished as long as its hand-over is incomplete: its ChildShardIDs are
// unknown (not written) or some child has no lease yet — a deferred merge
// child (see ChildLeases), which a later ChildLeases or NewLeases creates.
// Counting those keeps the audit quiet during the normal lifecycle; what it
// reports are ranges nobody will pick up, such as a parent lease deleted
// before its children had leases.
//
// Leases without a hash range (written by KCL 1.x, which did not record it)
// are ignored: they cannot show coverage, so a table of such leases reports
// holes, and the caller should skip the audit when a lease lacks its range.
func Coverage(leases []lease.Lease) (holes []hashkey.Range) {
	byKey := index(leases)
	var covered []hashkey.Range
	for _, l := range leases {
		if l.HashRange == nil || l.HashRange.Start.Compare(l.HashRange.End) > 0 {
			continue
		}
		if accountsFor(l, byKey) {
			covered = append(covered, *l.HashRange)
		}
	}
	slices.SortFunc(covered, func(a, b hashkey.Range) int { return a.Start.Compare(b.Start) })

	next := hashkey.Key{} // the lowest key not yet known to be covered
	for _, r := range covered {
		if r.Start.Compare(next) > 0 {
			holes = append(holes, hashkey.Range{Start: next, End: prev(r.Start)})
		}
		if r.End.Compare(next) >= 0 {
			if r.End == hashkey.Max {
				return holes
			}
			next = succ(r.End)
		}
	}
	return append(holes, hashkey.Range{Start: next, End: hashkey.Max})
}

func accountsFor(l lease.Lease, byKey map[string]lease.Lease) bool {
	if !l.Finished() || len(l.ChildShardIDs) == 0 {
		return true
	}
	for _, c := range l.ChildShardIDs {
		if _, ok := byKey[c]; !ok {
			return true
		}
	}
	return false
}

// succ returns k+1; k must be below hashkey.Max.
func succ(k hashkey.Key) hashkey.Key {
	k.Lo++
	if k.Lo == 0 {
		k.Hi++
	}
	return k
}

// prev returns k−1; k must be above zero.
func prev(k hashkey.Key) hashkey.Key {
	if k.Lo == 0 {
		k.Hi--
	}
	k.Lo--
	return k
}
