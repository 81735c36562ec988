package leasing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kclgo/kcl/lease"
)

// ModeChoice is the coordination a worker should run on a table, and why.
type ModeChoice struct {
	// Fleet is true for kcl-fleet coordination, false for per-lease renewal
	// (KCL-compatible).
	Fleet bool
	// Reason says in one sentence what decided it.
	Reason string
	// Foreign lists what shows that per-lease workers (Java KCL, or kcl in
	// KCL-compatible mode) use the table: Java coordination items and lease
	// owners without a kcl-fleet heartbeat. Empty when Fleet is true.
	Foreign []string
}

// ErrForeignTable is returned by ChooseMode when kcl-fleet coordination was
// required but the table is used by per-lease workers: kcl-fleet workers
// renew no lease one by one, so a Java KCL worker (or a kcl worker in
// KCL-compatible mode) on the same table would see their leases expire and
// take them while they are processed.
var ErrForeignTable = errors.New("leasing: the lease table is used by per-lease workers (Java KCL, or kcl in KCL-compatible mode)")

// CanFleet reports whether store can hold kcl-fleet coordination: it
// implements lease.FleetStore and lease.OwnerLister.
func CanFleet(store lease.Store) bool {
	_, okF := store.(lease.FleetStore)
	_, okO := store.(lease.OwnerLister)
	return okF && okO
}

// ChooseMode reads the table once and chooses the coordination for a
// worker that starts on it (DESIGN.md, "Modes and detection"). kcl-fleet
// needs a store that implements lease.FleetStore and lease.OwnerLister.
// It is chosen unless the table shows per-lease workers: Java KCL 3.x
// coordination items (lease.Surveyor), or an unfinished lease whose owner
// (or outgoing owner) has no kcl-fleet heartbeat. A lease left owned by a
// per-lease worker that has since stopped counts too: it is released or
// taken over in KCL-compatible mode, and a later start chooses again.
//
// With requireFleet, a table that shows per-lease workers gives an error
// matching ErrForeignTable instead of a KCL-compatible choice.
func ChooseMode(ctx context.Context, store lease.Store, requireFleet bool) (ModeChoice, error) {
	if !CanFleet(store) {
		if requireFleet {
			return ModeChoice{}, fmt.Errorf("leasing: kcl-fleet coordination needs a store with heartbeats and an owner index (lease.FleetStore, lease.OwnerLister); %T lacks them", store)
		}
		return ModeChoice{Reason: fmt.Sprintf("the lease store (%T) lacks the heartbeats and owner index kcl fleet needs", store)}, nil
	}
	fs := store.(lease.FleetStore)
	var foreign []string
	if sv, ok := store.(lease.Surveyor); ok {
		s, err := sv.Survey(ctx)
		if err != nil {
			return ModeChoice{}, fmt.Errorf("leasing: surveying the lease table: %w", err)
		}
		foreign = append(foreign, s.Java...)
	}
	leases, err := store.List(ctx)
	var me *lease.MalformedError
	if err != nil && !errors.As(err, &me) {
		return ModeChoice{}, fmt.Errorf("leasing: reading the lease table: %w", err)
	}
	owners := map[string]bool{}
	for _, l := range leases {
		if l.Finished() {
			continue
		}
		for _, o := range []string{l.Owner, l.CheckpointOwner} {
			if o != "" {
				owners[o] = true
			}
		}
	}
	ids := make([]string, 0, len(owners))
	for o := range owners {
		ids = append(ids, o)
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		hbs, err := fs.Heartbeats(ctx, ids)
		if err != nil {
			return ModeChoice{}, fmt.Errorf("leasing: reading heartbeats: %w", err)
		}
		have := map[string]bool{}
		for _, hb := range hbs {
			have[hb.WorkerID] = true
		}
		for _, id := range ids {
			if !have[id] {
				foreign = append(foreign, fmt.Sprintf("leases owned by %q, which has no kcl-fleet heartbeat", id))
			}
		}
	}
	if len(foreign) == 0 {
		return ModeChoice{Fleet: true, Reason: "no per-lease worker uses the table"}, nil
	}
	shown := foreign
	if len(shown) > 3 {
		shown = append(slices.Clip(shown[:3]), fmt.Sprintf("%d more", len(foreign)-3))
	}
	if requireFleet {
		return ModeChoice{}, fmt.Errorf("%w: %s", ErrForeignTable, strings.Join(shown, "; "))
	}
	return ModeChoice{Reason: "per-lease workers use the table: " + strings.Join(shown, "; "), Foreign: foreign}, nil
}
