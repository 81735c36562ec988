package shardsync

import (
	"cmp"
	"slices"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// state is what NewLeases concludes about one shard.
type state uint8

const (
	stateLeased    state = iota + 1 // the shard has a lease
	stateProcessed                  // a descendant has a lease: never lease the shard again
	stateGone                       // not in the listing (expired) and no lease
	stateSkipped                    // precedes the initial position (LATEST: closed, never leased)
	statePlanned                    // NewLeases creates its lease
	stateWaiting                    // an ancestor is still to be processed; leased when its parents end
	stateVisiting                   // on the recursion stack (guards against a malformed cyclic listing)
)

// NewLeases returns the leases to create for shards, the stream's shard
// listing (the first of duplicate ids counts), given the existing leases of the application (the whole lease
// table, or nil when it is empty), sorted by key. The new leases are unowned,
// with counter 0, ParentShardIDs (both parents of a merge child, whether or
// not listed) and HashRange set.
//
// initial is the application's initial position: checkpoint.TrimHorizon,
// checkpoint.Latest or checkpoint.AtTimestamp; any other value is treated as
// TrimHorizon, which never skips records. It applies only to the part of the
// stream the application has never processed.
//
// The rules, applied to each listed shard without a lease, parents before
// children (a parent is what the shard's ParentID and AdjacentParentID name):
//
//  1. A shard a descendant of which has a lease is never leased again: it was
//     processed and its lease cleaned up, or it precedes the initial position
//     (for example the closed ancestors of the shards leased at LATEST).
//  2. A shard all of whose parents are unlisted (expired, or a shard of the
//     stream's first generation) or skipped by rule 3 is the start of a
//     lineage the application has not processed: with TRIM_HORIZON or
//     AT_TIMESTAMP it is leased at that position — these are the oldest
//     shards of the listing, so nothing is skipped; with LATEST it is leased
//     at LATEST if it is open.
//  3. With LATEST, such a shard that is closed is skipped: all its records
//     precede the initial position.
//  4. A shard whose parents are leased, processed (rule 1), unlisted or
//     skipped, at least one of them leased or processed, is on the frontier:
//     it is leased at TRIM_HORIZON and waits for its parents in Ready.
//  5. Any other shard — a parent of it is still to be leased — gets no lease
//     now; its lease comes from ChildLeases when its parents end, or from a
//     later NewLeases. This keeps Ready's "a parent without a lease is done"
//     rule sound: no lease is created while a parent that needs processing
//     has none.
//
// On an empty table rules 2 and 3 alone apply: TRIM_HORIZON and AT_TIMESTAMP
// lease the shards with no parent in the listing, LATEST the open shards
// whose ancestors are all closed. The caller may pass a listing filtered with
// ListShards' ShardFilter (AT_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP) when the
// table is empty, as KCL does: with AT_TIMESTAMP the filtered listing holds
// exactly the shards open at the timestamp, which are then leased. With the
// full listing, AT_TIMESTAMP leases the oldest shards, and those that closed
// before the timestamp end at once with no record (KCL's non-empty-table
// behaviour). On a non-empty table pass the full listing: a parent missing
// from a filtered listing would look expired.
//
// Where this differs from KCL's NonEmptyLeaseTableSynchronizer: KCL creates
// no lease for the frontier (rule 4), leaving it to the parents' end; here
// the frontier is leased at every sync, which repairs a child lease lost or
// never created (for example a deferred merge child). A frontier shard whose
// parents are all processed (rule 1) is leased at TRIM_HORIZON rather than
// at the initial position, so a lost child lease costs duplicates, never lost
// records. In KCL's LATEST example (leases 4, 5, 7 over shards 0–10) KCL
// leases closed shard 6 at LATEST so that it ends at once; here 6 is skipped
// (rule 3) and its child 8 is leased at TRIM_HORIZON (rule 4), which has the
// same effect.
func NewLeases(shards []Shard, existing []lease.Lease, initial checkpoint.Position) []lease.Lease {
	switch initial.Kind() {
	case checkpoint.KindTrimHorizon, checkpoint.KindLatest, checkpoint.KindAtTimestamp:
	default:
		initial = checkpoint.TrimHorizon
	}
	p := planner{
		byID:     make(map[string]Shard, len(shards)),
		leased:   make(map[string]bool, len(existing)),
		children: make(map[string][]string),
		states:   make(map[string]state, len(shards)),
		checks:   make(map[string]checkpoint.Position),
		initial:  initial,
		// superseded memoises hasLeasedDescendant.
		superseded: make(map[string]bool),
	}
	var unique []Shard
	for _, s := range shards {
		if _, dup := p.byID[s.ID]; dup || s.ID == "" {
			continue
		}
		p.byID[s.ID] = s
		unique = append(unique, s)
		for _, par := range s.parents() {
			p.children[par] = append(p.children[par], s.ID)
		}
	}
	for _, l := range existing {
		p.leased[l.Key] = true
		for _, par := range l.ParentShardIDs {
			p.children[par] = append(p.children[par], l.Key)
		}
		p.children[l.Key] = append(p.children[l.Key], l.ChildShardIDs...)
	}
	var out []lease.Lease
	for _, s := range unique {
		if p.state(s.ID) == statePlanned {
			out = append(out, newLease(s.ID, s.parents(), s.HashRange, p.checks[s.ID]))
		}
	}
	slices.SortFunc(out, func(a, b lease.Lease) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

type planner struct {
	byID     map[string]Shard
	leased   map[string]bool
	children map[string][]string // from the listing and the leases' parent and child ids
	states   map[string]state
	checks   map[string]checkpoint.Position // checkpoint of each planned shard
	initial  checkpoint.Position
	// superseded memoises hasLeasedDescendant.
	superseded map[string]bool
}

// state returns the state of shard id, computing its ancestors' first.
func (p *planner) state(id string) state {
	if st, ok := p.states[id]; ok {
		if st == stateVisiting {
			return stateGone // a cycle: malformed listing; treat the edge as absent
		}
		return st
	}
	st := p.compute(id)
	p.states[id] = st
	return st
}

func (p *planner) compute(id string) state {
	if p.leased[id] {
		return stateLeased
	}
	s, listed := p.byID[id]
	if !listed {
		return stateGone
	}
	if p.hasLeasedDescendant(id, map[string]bool{}) {
		return stateProcessed
	}
	p.states[id] = stateVisiting
	fresh, frontier := true, true // fresh: all parents gone or skipped
	for _, par := range s.parents() {
		switch p.state(par) {
		case stateGone, stateSkipped:
		case stateLeased, stateProcessed:
			fresh = false
		default: // planned or waiting
			fresh, frontier = false, false
		}
	}
	switch {
	case fresh && p.initial.Kind() == checkpoint.KindLatest && s.Closed:
		return stateSkipped
	case fresh:
		p.checks[id] = p.initial
		return statePlanned
	case frontier:
		p.checks[id] = checkpoint.TrimHorizon
		return statePlanned
	default:
		return stateWaiting
	}
}

// hasLeasedDescendant reports whether a descendant of id (through the
// listing's parent links and the leases' parent and child ids) has a lease.
func (p *planner) hasLeasedDescendant(id string, onPath map[string]bool) bool {
	if v, ok := p.superseded[id]; ok {
		return v
	}
	if onPath[id] {
		return false
	}
	onPath[id] = true
	found := false
	for _, c := range p.children[id] {
		if p.leased[c] || p.hasLeasedDescendant(c, onPath) {
			found = true
			break
		}
	}
	delete(onPath, id)
	p.superseded[id] = found
	return found
}
