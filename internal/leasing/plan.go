package leasing

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/kclgo/kcl/lease"
)

// PlanInput is what a taker pass knows when it decides what to take.
type PlanInput struct {
	// Self is this worker's id.
	Self string
	// Leases is a snapshot of the whole table.
	Leases []lease.Lease
	// Expired reports whether a lease owned by another worker has expired
	// (see Observer.Expired).
	Expired func(lease.Lease) bool
	// Held reports whether this process currently holds (or is acquiring) the
	// lease. A lease that names Self as owner but is not held — left by an
	// earlier process that used the same worker id — is available.
	Held func(key string) bool
	// MaxLeases caps how many leases this worker holds; 0 means no cap.
	MaxLeases int
	// Rand shuffles the candidates so that workers starting together do not
	// all race for the same leases. Nil means no shuffling (key order).
	Rand *rand.Rand
}

// Plan is the outcome of a taker pass.
type Plan struct {
	// Target is this worker's fair share: ceil(active leases / workers),
	// capped by MaxLeases.
	Target int
	// Workers is the number of workers the plan assumed, this one included.
	Workers int
	// Take lists available leases (unowned, expired, or stale leases of our
	// own id) to take now, most urgent first.
	Take []lease.Lease
	// Spare lists the other available leases, in the same order: a taker
	// whose take of a lease in Take is fenced off by a faster worker tries
	// the next spare instead, without waiting for another pass.
	Spare []lease.Lease
	// Handoff lists leases owned by over-loaded workers to ask for, used only
	// when too few leases are available to reach Target.
	Handoff []lease.Lease
}

// PlanTakes decides what one taker pass should do. It is a pure function.
//
// Finished leases (checkpoint SHARD_END) are ignored: they are not counted and
// never taken. Leases in a handoff count for their incoming owner. Workers are
// the owners of unexpired leases plus Self. Available leases are taken up to
// the target; if that is not enough, the shortfall is requested from workers
// holding more than the target — each gives at most its excess, the most
// loaded first — so a newcomer reaches its fair share in one pass when the
// owners cooperate, instead of KCL's one lease per pass. A worker still below
// the floor (active leases / workers) then asks workers above the floor for
// their leases beyond it. A fleet whose counts differ by at most one stays put.
func PlanTakes(in PlanInput) Plan {
	expired := in.Expired
	if expired == nil {
		expired = func(lease.Lease) bool { return false }
	}
	held := in.Held
	if held == nil {
		held = func(string) bool { return false }
	}

	counts := map[string]int{in.Self: 0}
	var available []lease.Lease
	byOwner := map[string][]lease.Lease{}
	active := 0
	for _, l := range in.Leases {
		if l.Finished() {
			continue
		}
		active++
		switch {
		case l.Owner == "":
			available = append(available, l)
		case l.Owner == in.Self:
			if held(l.Key) {
				counts[in.Self]++
			} else {
				available = append(available, l)
			}
		case expired(l):
			available = append(available, l)
		default:
			counts[l.Owner]++
			if !l.InHandoff() {
				byOwner[l.Owner] = append(byOwner[l.Owner], l)
			}
		}
	}

	p := Plan{Workers: len(counts)}
	if active == 0 {
		return p
	}
	p.Target = (active + p.Workers - 1) / p.Workers
	if in.MaxLeases > 0 && p.Target > in.MaxLeases {
		p.Target = in.MaxLeases
	}
	need := p.Target - counts[in.Self]
	if need <= 0 {
		return p
	}

	// Expired leases first (their shards are being processed by nobody and
	// have waited longest), then unowned ones; shuffled within each group.
	shuffle(in.Rand, available)
	slices.SortStableFunc(available, func(a, b lease.Lease) int {
		return cmp.Compare(rankAvailable(a), rankAvailable(b))
	})
	n := min(need, len(available))
	p.Take, p.Spare = available[:n:n], available[n:]
	need -= n
	if need == 0 {
		return p
	}

	// Ask over-loaded workers for the shortfall. First workers above the
	// target give their excess; then, if this worker would still be below
	// the floor (active / workers), workers above the floor give what they
	// hold beyond it, so every count ends between floor and target.
	floor := active / p.Workers
	if in.MaxLeases > 0 && floor > in.MaxLeases {
		floor = in.MaxLeases
	}
	mine := counts[in.Self] + len(p.Take)
	owners := make([]string, 0, len(byOwner))
	for o := range byOwner {
		owners = append(owners, o)
	}
	slices.SortFunc(owners, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	asked := map[string]int{}
	ask := func(o string, give int) {
		cands := byOwner[o][asked[o]:]
		give = min(give, len(cands))
		if give <= 0 {
			return
		}
		shuffle(in.Rand, cands)
		p.Handoff = append(p.Handoff, cands[:give]...)
		asked[o] += give
		counts[o] -= give
		mine += give
		need -= give
	}
	for _, o := range owners {
		if need > 0 && counts[o] > p.Target {
			ask(o, min(counts[o]-p.Target, need))
		}
	}
	for _, o := range owners {
		if mine < floor && counts[o] > floor {
			ask(o, min(counts[o]-floor, floor-mine))
		}
	}
	return p
}

func rankAvailable(l lease.Lease) int {
	if l.Owner == "" {
		return 1
	}
	return 0 // expired, or a stale lease of our own id
}

func shuffle(r *rand.Rand, ls []lease.Lease) {
	slices.SortFunc(ls, func(a, b lease.Lease) int { return cmp.Compare(a.Key, b.Key) })
	if r == nil {
		return
	}
	r.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
}
