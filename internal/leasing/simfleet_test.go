package leasing_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// This file is the kcl-fleet side of the lease simulation (TestSimulation
// and TestSimulationScale): the workers run the Coordinator with
// WithFleet(0, 0) — heartbeats every H = 400 ms, failover time F = 2 s, one
// elected leader that assigns — through the same scenarios as the per-lease
// mode, plus the crash of the leader.
//
// -sim.mode=lease|fleet|both chooses the modes (default both).
// -sim.crashes=N crashes N workers one after another in kcl-fleet mode, each
// at a random instant and replaced by a new worker before the next, and then
// the leader N times likewise, to give the failover time a median; the
// per-lease mode crashes one worker. The steady state of kcl-fleet mode
// lasts 60 s by default (-sim.steady overrides it): a whole number of every
// period of the mode — the leader's table scan and the followers'
// owner-index read (30 s), the slow lock poll (20 s), the standbys' lock and
// leader-heartbeat reads (F/3) and the heartbeats (H). -sim.margin and
// -sim.lockstep's stop order apply to both modes; the lease duration does
// not apply to kcl-fleet mode.
var (
	simMode    = flag.String("sim.mode", "both", "TestSimulation(Scale): lease (per-lease renewal), fleet (kcl-fleet: heartbeats and a leader) or both")
	simCrashes = flag.Int("sim.crashes", defaultSimCrashes, "TestSimulation(Scale): kcl-fleet mode crashes this many workers, then the leader this many times, one after another (each replaced)")
)

const defaultSimCrashes = 3

// The kcl-fleet defaults the simulation runs with, and issue 12's targets.
const (
	fleetHeartbeat    = leasing.DefaultFailoverTime / 5
	fleetSteadyPeriod = 60 * time.Second
	fleetCrashMedian  = 3 * time.Second        // crash → survivors process the shards, median
	fleetCrashMax     = 4 * time.Second        // … and max
	fleetLeaderTarget = 4 * time.Second        // leader crash → survivors process its shards
	fleetStopTarget   = 500 * time.Millisecond // graceful stop → peers process the shards
	fleetJoinTarget   = 5 * time.Second        // join → fair share ±1
	fleetCostTarget   = 0.1                    // steady reads + writes per lease-hour ÷ KCL 2.x's, at 1,000 × 100
	fleetMovesTarget  = 2                      // cold start: each lease moved at most this often (at 10,000 × 500)
)

// simModes returns the modes -sim.mode selects: false for per-lease, true
// for kcl-fleet.
func simModes() ([]bool, error) {
	switch *simMode {
	case "lease":
		return []bool{false}, nil
	case "fleet":
		return []bool{true}, nil
	case "both":
		return []bool{false, true}, nil
	}
	return nil, fmt.Errorf("-sim.mode=%q: want lease, fleet or both", *simMode)
}

// fleetSteady returns the simulated steady state of kcl-fleet mode.
func fleetSteady() time.Duration {
	if *simSteady > 0 {
		return *simSteady
	}
	return fleetSteadyPeriod
}

// simTraffic is what one worker (or the sum of several) asked of the table,
// counted as memlease.Stats counts it, with what Stats leaves to the reader:
// the size of the roster each Roster, Join and Leave read or wrote, and which
// assignments changed an owner (they write the owner index twice).
type simTraffic struct {
	memlease.Stats
	rosterRCU   float64 // Roster reads in read units, by the roster's size
	joinWCU     float64 // Join writes in write units, by the roster's size
	leaveWCU    float64 // Leave writes likewise
	assignMoved int64   // successful Assigns of an owned lease
}

func (a simTraffic) sub(b simTraffic) simTraffic {
	return simTraffic{
		Stats:     a.Stats.Sub(b.Stats),
		rosterRCU: a.rosterRCU - b.rosterRCU, joinWCU: a.joinWCU - b.joinWCU, leaveWCU: a.leaveWCU - b.leaveWCU,
		assignMoved: a.assignMoved - b.assignMoved,
	}
}

func (a simTraffic) add(b simTraffic) simTraffic {
	neg := simTraffic{}.sub(b)
	return a.sub(neg)
}

func sumTraffic(m map[string]simTraffic) simTraffic {
	var t simTraffic
	for _, w := range m {
		t = t.add(w)
	}
	return t
}

// trafficByWorker returns every worker's requests so far.
func (s *sim) trafficByWorker() map[string]simTraffic {
	s.mu.Lock()
	stores := make([]*simStore, 0, len(s.stores))
	for _, st := range s.stores {
		stores = append(stores, st)
	}
	s.mu.Unlock()
	out := make(map[string]simTraffic, len(stores))
	for _, st := range stores {
		out[st.id] = st.traffic()
	}
	return out
}

// rosterIDBytes is what one worker id adds to the roster item (a string set
// element): an id of about 36 characters and its overhead.
const rosterIDBytes = 40

// The kcl-fleet store calls, counted and recorded.

func (st *simStore) Beat(ctx context.Context, id string, ws lease.WorkerState, n int) (lease.Heartbeat, error) {
	sent := time.Now()
	hb, err := st.workerStore.Beat(ctx, id, ws, n)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Beat })
	if err == nil {
		st.lastBeat.Store(sent.UnixNano())
	}
	return hb, err
}

func (st *simStore) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	hbs, err := st.workerStore.Heartbeats(ctx, ids)
	if err == nil {
		n := int64(len(slices.Compact(slices.Sorted(slices.Values(ids)))))
		if n > 0 {
			st.count(err, func(t *simTraffic) {
				t.HeartbeatReads++
				t.HeartbeatBatches += (n + 99) / 100
				t.HeartbeatKeys += n
				t.HeartbeatItems += int64(len(hbs))
			})
		}
	}
	return hbs, err
}

func (st *simStore) MarkAssigned(ctx context.Context, id string) error {
	err := st.workerStore.MarkAssigned(ctx, id)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.MarkAssigned })
	return err
}

func (st *simStore) SetStandby(ctx context.Context, id string, on bool) error {
	err := st.workerStore.SetStandby(ctx, id, on)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.SetStandby })
	return err
}

func (st *simStore) Fence(ctx context.Context, id string, counter int64) error {
	err := st.workerStore.Fence(ctx, id, counter)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Fence })
	return err
}

func (st *simStore) Join(ctx context.Context, id string) error {
	err := st.workerStore.Join(ctx, id)
	units := st.s.rosterWrite(id, true, err)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { t.joinWCU += units; return &t.Join })
	return err
}

func (st *simStore) Leave(ctx context.Context, id string) error {
	err := st.workerStore.Leave(ctx, id)
	units := st.s.rosterWrite(id, false, err)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { t.leaveWCU += units; return &t.Leave })
	return err
}

// rosterWrite mirrors a Join (or a Leave) of id and returns the write units
// it costs: DynamoDB bills an update by the larger of the item before and
// after, per KB.
func (s *sim) rosterWrite(id string, join bool, err error) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.roster)
	if err == nil {
		if join {
			s.roster[id] = true
		} else {
			delete(s.roster, id)
		}
	}
	return max(1, math.Ceil(float64(rosterIDBytes*max(before, len(s.roster)))/1024))
}

func (st *simStore) Roster(ctx context.Context) ([]string, error) {
	ids, err := st.workerStore.Roster(ctx)
	st.count(err, func(t *simTraffic) {
		t.RosterReads++
		t.rosterRCU += max(1, math.Ceil(float64(rosterIDBytes*len(ids))/4096))
	})
	return ids, err
}

func (st *simStore) Leader(ctx context.Context) (lease.LeaderLock, error) {
	l, err := st.workerStore.Leader(ctx)
	st.count(err, func(t *simTraffic) { t.LeaderReads++ })
	return l, err
}

func (st *simStore) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	l, err := st.workerStore.AcquireLeader(ctx, id, seen)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.AcquireLeader })
	return l, err
}

func (st *simStore) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	nl, err := st.workerStore.RenewLeader(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.RenewLeader })
	return nl, err
}

func (st *simStore) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	err := st.workerStore.ReleaseLeader(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.ReleaseLeader })
	return err
}

func (st *simStore) Assign(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	nl, err := st.workerStore.Assign(ctx, l, to)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount {
		if err == nil && l.Owner != "" {
			t.assignMoved++
		}
		return &t.Assign
	})
	st.s.wrote(l.Key, st.id, err)
	if err == nil && l.Owner == st.id && to != st.id {
		st.s.recordGaveUp(l.Key, to) // given to a peer on a graceful stop
	}
	if err == nil {
		st.s.assigned(to)
	}
	return nl, err
}

// assigned counts an assignment to a crashed worker: it waits for the
// leader to find the worker dead and assign the lease again.
func (s *sim) assigned(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[to]; w != nil && w.store.crashed.Load() {
		s.toDead++
	}
}

var _ lease.FleetStore = (*simStore)(nil)

// leaderOf returns the live worker that leads, or nil.
func (s *sim) leaderOf() *worker {
	for _, w := range s.live {
		if w.coord.Leading() {
			return w
		}
	}
	return nil
}

// fleetCrash crashes a follower (or, with leader set, the leader)
// -sim.crashes times, each at a random instant within a failover time,
// replacing the crashed worker with a new one before the next crash. It
// reports the slowest crash → survivors process every lease the worker held,
// with the median of the crashes beside it.
func (s *sim) fleetCrash(leader bool) simEvent {
	n := len(s.live)
	trials := max(1, *simCrashes)
	var took, sinceBeat, newLeader, balanced []time.Duration
	var lingering []string // crashed workers still in the roster at each crash
	total := simEvent{}
	held := 0
	for i := range trials {
		time.Sleep(time.Duration(s.rng.Int64N(int64(leasing.DefaultFailoverTime))))
		synctest.Wait()
		var w *worker
		if leader {
			waitFor(s.t, simLimit, func() bool { return s.leaderOf() != nil })
			w = s.leaderOf()
			s.live = slices.DeleteFunc(s.live, func(x *worker) bool { return x == w })
		} else {
			w = s.follower()
		}
		keys := s.heldBy(w)
		held += len(keys)
		lingering = append(lingering, strconv.Itoa(s.deadInRoster()))
		p := s.beginPhase()
		w.crash()
		synctest.Wait() // writes in flight at the crash land, or fail
		s.mu.Lock()
		st := s.stores[w.id]
		s.mu.Unlock()
		beat := time.Unix(0, st.lastBeat.Load())
		led := time.Duration(-1)
		waitFor(s.t, simLimit, func() bool {
			if leader && led < 0 && s.leaderOf() != nil {
				led = time.Since(p.at)
			}
			return s.takenOver([]*worker{w}, keys) && (!leader || led >= 0)
		})
		var worst, fromBeat time.Duration
		s.mu.Lock()
		for _, k := range keys {
			a := s.firstAcq[k]
			worst = max(worst, a.at.Sub(p.at))
			fromBeat = max(fromBeat, a.at.Sub(beat))
		}
		s.mu.Unlock()
		waitFor(s.t, simLimit, s.balanced)
		took, sinceBeat, balanced = append(took, ms(worst)), append(sinceBeat, ms(fromBeat)), append(balanced, ms(time.Since(p.at)))
		if leader {
			newLeader = append(newLeader, ms(led))
		}
		var e simEvent
		s.measure(p, &e)
		total.moved += e.moved
		total.forced += e.forced
		total.writes += e.writes
		total.failed += e.failed
		total.dups += e.dups
		total.toDead += e.toDead
		total.passes = max(total.passes, s.maxPasses(p, s.live...))
		// Let the dead worker's Run return in the background.
		w.cancel()
		if i < trials-1 {
			s.start() // its replacement
		}
		waitFor(s.t, simLimit, s.settled) // a later move shows in the next event
	}
	e := total
	e.trials = took
	e.value, e.median = slices.Max(took), median(took)
	e.target = fleetCrashMax
	e.scenario = fmt.Sprintf("crash %d→%d", n, n-1)
	e.metric = "crash → peers process all its leases (max)"
	what := "workers"
	if leader {
		e.scenario = fmt.Sprintf("leader crash %d→%d", n, n-1)
		e.target = fleetLeaderTarget
		e.leaderAt = slices.Max(newLeader)
		what = "leaders"
	}
	if trials > 1 {
		e.scenario += fmt.Sprintf(" (%d %s, each replaced but the last)", trials, what)
	}
	e.note = fmt.Sprintf("%d leases; crash → all processed %s (median %v); last heartbeat → all processed %s; crash → balanced %s; crashed workers still in the roster at the crash: %s",
		held, fmtDurations(took), e.median, fmtDurations(sinceBeat), fmtDurations(balanced), strings.Join(lingering, ", "))
	if e.toDead > 0 {
		e.note += fmt.Sprintf("; %d leases assigned to a crashed worker", e.toDead)
	}
	if leader {
		e.note += fmt.Sprintf("; crash → new leader %s", fmtDurations(newLeader))
	} else if e.median > fleetCrashMedian {
		e.miss = append(e.miss, fmt.Sprintf("median %v > %v", e.median, fleetCrashMedian))
	}
	if e.dups > 0 {
		e.miss = append(e.miss, fmt.Sprintf("%d leases processed twice at once", e.dups))
	}
	return e
}

// deadInRoster returns how many crashed workers the roster still lists.
func (s *sim) deadInRoster() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.roster {
		if w := s.workers[id]; w != nil && w.store.crashed.Load() {
			n++
		}
	}
	return n
}

// follower picks a live worker that does not lead at random and removes it
// from the live list.
func (s *sim) follower() *worker {
	var cands []int
	for i, w := range s.live {
		if !w.coord.Leading() {
			cands = append(cands, i)
		}
	}
	i := cands[s.rng.IntN(len(cands))]
	w := s.live[i]
	s.live = slices.Delete(s.live, i, i+1)
	return w
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Sorted(slices.Values(ds))
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return ms((ds[len(ds)/2-1] + ds[len(ds)/2]) / 2)
}

func fmtDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ", ")
}

// storeCosts breaks the steady-state traffic tr down by operation, per
// lease-hour, with the capacity units lease/dynamolease would consume: its
// Scan and GetItem are strongly consistent (ops.go), its owner-index Query
// eventually consistent (a GSI cannot be read consistently), every lease
// write is an UpdateItem (or PutItem, DeleteItem) of an item under 1 KB; in
// kcl-fleet mode (with fleet set, its rows follow) a heartbeat BatchGetItem
// reads each item strongly consistently (1 unit), the roster and the
// leader lock are strongly consistent GetItems (the roster 1 unit per 4 KB
// of ids), heartbeat, lock and standby writes are 1 unit, Join and Leave 1
// unit per KB of roster, and an Assign 2 units for an unowned lease and 3
// for an owned one (it writes the owner index too; measured on DynamoDB
// Local), a failed one 1.
func storeCosts(leases int, simulated time.Duration, tr simTraffic, fleet bool) []opCost {
	lh := float64(leases) * simulated.Hours()
	per := func(n int64) float64 { return float64(n) / lh }
	d := tr.Stats
	scan := opCost{op: "scan (List)", requests: per(d.Lists), items: per(d.ListedItems)}
	if d.Lists > 0 {
		scan.rcu = per(d.Lists) * scanUnits(float64(d.ListedItems)/float64(d.Lists), true)
	}
	query := opCost{op: "query (owner index)", requests: per(d.ListOwnedCalls), items: per(d.OwnedKeys)}
	if d.ListOwnedCalls > 0 {
		query.rcu = per(d.ListOwnedCalls) * queryUnits(float64(d.OwnedKeys)/float64(d.ListOwnedCalls))
	}
	rows := []opCost{scan, {op: "get", requests: per(d.Gets), items: per(d.Gets), rcu: per(d.Gets)}, query}
	if fleet {
		rows = append(rows,
			opCost{op: "heartbeats (BatchGetItem)", requests: per(d.HeartbeatBatches), items: per(d.HeartbeatItems), rcu: per(d.HeartbeatItems)},
			opCost{op: "roster (GetItem)", requests: per(d.RosterReads), items: per(d.RosterReads), rcu: tr.rosterRCU / lh},
			opCost{op: "leader lock (GetItem)", requests: per(d.LeaderReads), items: per(d.LeaderReads), rcu: per(d.LeaderReads)})
	}
	write := func(op string, c memlease.WriteCount, wcu float64) opCost {
		n := per(c.Total())
		return opCost{op: op, requests: n, items: n, wcu: wcu, write: true}
	}
	unit := func(op string, c memlease.WriteCount) opCost { return write(op, c, per(c.Total())) }
	rows = append(rows, unit("renew", d.Renew), unit("take", d.Take), unit("handoff", d.Handoff),
		unit("checkpoint", d.Checkpoint), unit("release", d.Release), unit("create", d.Create), unit("delete", d.Delete))
	if fleet {
		assignWCU := 2*(d.Assign.Succeeded-tr.assignMoved) + 3*tr.assignMoved + d.Assign.Failed
		rows = append(rows,
			unit("heartbeat (Beat)", d.Beat),
			write("assign", d.Assign, per(assignWCU)),
			unit("mark assigned", d.MarkAssigned),
			unit("set standby", d.SetStandby),
			unit("fence", d.Fence),
			write("join roster", d.Join, tr.joinWCU/lh), write("leave roster", d.Leave, tr.leaveWCU/lh),
			unit("acquire leader lock", d.AcquireLeader),
			unit("renew leader lock", d.RenewLeader),
			unit("release leader lock", d.ReleaseLeader))
	}
	return rows
}

// fleetSteadyTable formats the steady-state rows of kcl-fleet runs: per
// lease-hour, what the fleet reads and writes, and what its leader alone
// does.
func fleetSteadyTable(costs []simCost) string {
	var b strings.Builder
	b.WriteString("| N | leases | simulated | reads/lease-h (items) | writes/lease-h | RCU/lease-h | WCU/lease-h | heartbeat writes | heartbeat items read | roster reads | lock reads | lock writes | scans | items scanned | owner-index queries | gets | assign | checkpoint | leader: reads, writes (items) | leader: RCU, WCU | leader | leases moved |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range costs {
		lh := float64(c.leases) * c.simulated.Hours()
		per := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/lh) }
		d := c.traffic.Stats
		r, w, rcu, wcu := sumCosts(storeCosts(c.leases, c.simulated, c.traffic, true))
		lr, lw, lrcu, lwcu := sumCosts(storeCosts(c.leases, c.simulated, c.leader, true))
		fmt.Fprintf(&b, "| %d | %d | %v | %.0f | %.0f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f, %.0f | %.1f, %.1f | %s | %d |\n",
			c.workers, c.leases, c.simulated, r, w, rcu, wcu,
			per(d.Beat.Total()), per(d.HeartbeatItems), per(d.RosterReads), per(d.LeaderReads),
			per(d.AcquireLeader.Total()+d.RenewLeader.Total()+d.ReleaseLeader.Total()),
			per(d.Lists), per(d.ListedItems), per(d.ListOwnedCalls), per(d.Gets), per(d.Assign.Total()), per(d.Checkpoint.Total()),
			lr, lw, lrcu, lwcu, c.leaderID, c.moved)
	}
	return b.String()
}

// Two misses of kcl-fleet mode that the simulation found, reduced to a few
// workers; both failed before the leader learned to give nothing to a worker
// it has not seen beating and to prune dead workers from the roster the
// round after their leases were reassigned.

// TestFleetLeaderCrashWithACrashedWorkerInTheRoster: a crashed worker stays
// in the roster until a leader prunes it. A leader elected meanwhile reads
// its last heartbeat, stuck at "running", and must count it alive for F from
// that first read; it used to assign the dead leader's leases to it, where
// they waited F more (leader crash ≈ 4.5 s instead of ≈ 2.5–3 s).
func TestFleetLeaderCrashWithACrashedWorkerInTheRoster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 12)
		ids := []string{"w1", "w2", "w3", "w4"}
		ws := map[string]*worker{}
		for _, id := range ids {
			ws[id] = f.start(id, fleetMode)
		}
		waitFor(t, 10*time.Second, func() bool { return f.settled(12, ids...) })
		time.Sleep(3 * time.Second) // let the standbys observe the leader
		lead := f.leader()
		var dead *worker
		for _, id := range ids {
			if ws[id] != lead {
				dead = ws[id]
				break
			}
		}
		var rest []string
		for _, id := range ids {
			if ws[id] != lead && ws[id] != dead {
				rest = append(rest, id)
			}
		}
		dead.crash()
		live := append([]string{lead.id}, rest...)
		waitFor(t, 10*time.Second, func() bool { return f.settled(12, live...) })
		time.Sleep(time.Second)
		lead.crash()
		took := waitFor(t, 20*time.Second, func() bool { return f.fairSplit(12, rest...) })
		t.Logf("leader crash %v after a follower's crash: survivors process every lease %v later", time.Second, took)
		if took > fleetLeaderTarget {
			t.Errorf("leader crash with a crashed worker still in the roster: failover took %v, want ≤ %v", took, fleetLeaderTarget)
		}
		dead.end()
		lead.end()
		for _, id := range rest {
			ws[id].stop()
		}
		f.checkNoOverlap()
	})
}

// TestFleetGracefulStopAfterACrash: a stopping worker hands its leases to
// the peers whose last heartbeat says running or starting (fleetPeers), read
// once, so a crashed worker still in the roster is one of them — the first
// one, when its last heartbeat announced fewer leases than the live peers
// hold since its own were reassigned. A lease it is given waits until the
// leader's next table scan reassigns it: in the simulation's two stops at
// once, 2.5 s instead of 0.5 s.
func TestFleetGracefulStopAfterACrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memlease.New()
		f := newFleetOn(t, mem, 12)
		ids := []string{"w1", "w2", "w3", "w4"}
		ws := map[string]*worker{}
		logs := map[string]*assignLog{}
		for _, id := range ids {
			logs[id] = &assignLog{Store: mem}
			ws[id] = f.startOn(logs[id], id, fleetMode)
		}
		waitFor(t, 10*time.Second, func() bool { return f.settled(12, ids...) })
		var followers []*worker
		for _, id := range ids {
			if !ws[id].coord.Leading() {
				followers = append(followers, ws[id])
			}
		}
		dead, stopping := followers[0], followers[1]
		dead.crash()
		var live []string
		for _, id := range ids {
			if id != dead.id {
				live = append(live, id)
			}
		}
		waitFor(t, 10*time.Second, func() bool { return f.settled(12, live...) })
		time.Sleep(time.Second)
		var rest []string
		for _, id := range live {
			if id != stopping.id {
				rest = append(rest, id)
			}
		}
		go stopping.stop()
		took := waitFor(t, 20*time.Second, func() bool { return f.fairSplit(12, rest...) })
		<-stopping.done
		t.Logf("graceful stop after a crash: the others process every lease %v later", took)
		if n := logs[stopping.id].count(dead.id); n > 0 {
			t.Errorf("the stopping worker assigned %d leases to %s, which had crashed before the stop (want 0)", n, dead.id)
		}
		dead.end()
		for _, id := range rest {
			ws[id].stop()
		}
		f.checkNoOverlap()
	})
}

// assignLog is a worker's view of a memlease store that records to whom
// its Assigns gave leases.
type assignLog struct {
	*memlease.Store
	mu sync.Mutex
	to []string
}

func (a *assignLog) Assign(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	nl, err := a.Store.Assign(ctx, l, to)
	if err == nil {
		a.mu.Lock()
		a.to = append(a.to, to)
		a.mu.Unlock()
	}
	return nl, err
}

// count returns how many leases were assigned to id.
func (a *assignLog) count(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, to := range a.to {
		if to == id {
			n++
		}
	}
	return n
}
