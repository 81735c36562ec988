package leasing_test

import (
	"flag"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
)

// TestSimulationScale runs the scenarios of TestSimulation (cold start,
// steady state, join, graceful stop, crash, two stops at once; in kcl-fleet
// mode several crashes and the leader's crash too) at fleet scale, in both
// coordination modes (-sim.mode): per-lease renewal with the default 10 s
// lease (every lease renewed by its holder, every worker scanning the
// table) and kcl-fleet mode with its defaults (F = 2 s, H = 500 ms). For
// each shape it prints what each mode costs in DynamoDB reads and writes per
// lease-hour, item by item and in capacity units, by operation (the kcl-fleet
// leader's own share beside), next to what KCL 2.x and KCL 3.x would cost
// for the same shape by their algorithms (kclModel), its timings, and
// kcl-fleet mode against issue 12's targets; then a summary of every shape.
// It is off unless -sim.scale is given:
//
//	go test -count=1 ./internal/leasing -run TestSimulationScale -v -sim.scale
//	go test -count=1 ./internal/leasing -run TestSimulationScale -v -sim.scale -sim.shapes=1000x10 -sim.checkpoint=1s
//
// -sim.shapes lists the shapes (leases×workers, comma-separated; default
// every combination of 1,000 and 10,000 leases with 10, 100 and 500
// workers). -sim.steady sets the simulated steady state (default 20 s in
// per-lease mode: a whole number of take intervals (2 s) and of renew
// intervals (10 s / 3); 60 s in kcl-fleet mode, see simfleet_test.go).
// -sim.checkpoint=d makes every consumer checkpoint once per d while it holds
// its lease; without it consumers checkpoint only when they give a lease up
// (a handoff or a graceful stop), which is what the consumer's default
// policy, CheckpointManual, writes for a processor that never checkpoints.
var (
	simScale      = flag.Bool("sim.scale", false, "TestSimulationScale: run the fleet-scale shapes (slow; off in CI)")
	simShapes     = flag.String("sim.shapes", "1000x10,1000x100,1000x500,10000x10,10000x100,10000x500", "TestSimulationScale: shapes to run, leases×workers, comma-separated")
	simCheckpoint = flag.Duration("sim.checkpoint", 0, "TestSimulation(Scale): each consumer checkpoints once per this interval while it holds its lease (0: only on a handoff or a stop)")
)

func TestSimulationScale(t *testing.T) {
	if !*simScale {
		t.Skip("fleet-scale simulation: run with -sim.scale (see the doc comment)")
	}
	shapes, err := parseShapes(*simShapes)
	if err != nil {
		t.Fatal(err)
	}
	modes, err := simModes()
	if err != nil {
		t.Fatal(err)
	}
	steady := 20 * time.Second
	if *simSteady > 0 {
		steady = *simSteady
	}
	// The coordinators' table scans allocate most; collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	seed := *simSeed
	var all []scaleResult
	for _, sh := range shapes {
		var results []scaleResult
		for _, fleet := range modes {
			cfg := simConfig{
				leases: sh[0], workers: sh[1], leaseDuration: leasing.DefaultLeaseDuration, steady: steady,
				checkpointEvery: *simCheckpoint, scale: true, fleet: fleet,
			}
			if fleet {
				cfg.steady = fleetSteady()
			}
			t.Run(fmt.Sprintf("%s/seed=%d", cfg.name(), seed), func(t *testing.T) {
				began := time.Now()
				r := scaleResult{cfg: cfg}
				synctest.Test(t, func(t *testing.T) {
					r.events, r.cost = runSimulation(t, cfg, seed)
				})
				r.wall = time.Since(began)
				t.Logf("wall time %v", r.wall.Round(time.Millisecond))
				if t.Failed() {
					t.Logf("seed %d; replay with: %s", seed, replayCommand(cfg, seed))
				}
				if r.cost.workers > 0 { // the run got as far as its steady state
					results = append(results, r)
				}
			})
		}
		if len(results) > 0 && (testing.Verbose() || t.Failed()) {
			var events []simEvent
			var costs []simCost
			var wall time.Duration
			for _, r := range results {
				events = append(events, r.events...)
				costs = append(costs, r.cost)
				wall += r.wall
			}
			printSimulation(events, costs, seed, wall)
			fmt.Print(scaleReport(results))
		}
		all = append(all, results...)
	}
	if len(all) > 0 && (testing.Verbose() || t.Failed()) {
		fmt.Print(scaleSummary(all))
	}
}

// scaleResult is one shape run in one mode.
type scaleResult struct {
	cfg    simConfig
	events []simEvent
	cost   simCost
	wall   time.Duration
}

// parseShapes parses "1000x10,10000x500" into {leases, workers} pairs.
func parseShapes(s string) ([][2]int, error) {
	var out [][2]int
	for f := range strings.SplitSeq(s, ",") {
		l, w, ok := strings.Cut(strings.TrimSpace(f), "x")
		nl, err1 := strconv.Atoi(l)
		nw, err2 := strconv.Atoi(w)
		if !ok || err1 != nil || err2 != nil || nl < 1 || nw < 1 {
			return nil, fmt.Errorf("-sim.shapes: %q is not leases×workers, such as 1000x10", f)
		}
		out = append(out, [2]int{nl, nw})
	}
	return out, nil
}

// Capacity model. On-demand DynamoDB bills reads in units of 4 KB (a strongly
// consistent read costs 1 unit per 4 KB, an eventually consistent one half),
// a Scan or Query by the bytes of the items it reads summed per page (≤ 1 MB)
// and rounded up to 4 KB, and writes in units of 1 KB, a failed conditional
// write like a successful one
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html).
const (
	leaseItemBytes = 300     // a lease item as KCL writes it (lease/dynamolease: "200–400 bytes")
	indexKeyBytes  = 60      // an entry of the KEYS_ONLY owner index: leaseOwner + leaseKey, names and values
	scanPageBytes  = 1 << 20 // DynamoDB's page limit, with no Limit set
)

// scanUnits returns the read units a Scan of n lease items costs, at 1 unit
// per 4 KB (strongly consistent) or 0.5 (eventually consistent).
func scanUnits(n float64, consistent bool) float64 {
	perPage := float64(scanPageBytes / leaseItemBytes)
	full := math.Floor(n / perPage)
	rest := n - full*perPage
	units := full*math.Ceil(perPage*leaseItemBytes/4096) + math.Ceil(rest*leaseItemBytes/4096)
	if !consistent {
		units /= 2
	}
	return units
}

// queryUnits returns the read units an eventually consistent Query of the
// owner index returning n keys costs (at least half a unit).
func queryUnits(n float64) float64 { return max(1, math.Ceil(n*indexKeyBytes/4096)) / 2 }

// opCost is one row of a cost breakdown: an operation's requests, the items
// they read or wrote, and their capacity units, each per lease-hour.
type opCost struct {
	op              string
	requests, items float64
	rcu, wcu        float64
	write           bool // a write (else a read), whatever its count
}

// kclModel is what a KCL version costs for one shape, computed from its
// algorithm with its defaults (failoverTimeMillis 10 s, epsilonMillis 25 ms),
// in steady state, per lease-hour, plus its failover and join times as far as
// the algorithm fixes them. Source paths are in awslabs/amazon-kinesis-client
// (amazon-kinesis-client/src/main/java/software/amazon/kinesis/), as of
// commit 024eb86 (v3.x; the 2.x paths are unchanged there).
type kclModel struct {
	name           string
	ops            []opCost
	failover, join string
	stop           string
}

const (
	kclFailover = 10 * time.Second      // LeaseManagementConfig.failoverTimeMillis
	kclEpsilon  = 25 * time.Millisecond // LeaseManagementConfig.epsilonMillis
)

// kclRenewsPerLeaseHour: every holder renews each lease every
// failover/3 − epsilon (CommonCalculations.getRenewerTakerIntervalMillis,
// scheduled at a fixed rate in DynamoDBLeaseCoordinator.start), in 2.x and
// in 3.x alike: 3,600 s / 3.308 s ≈ 1,088. One UpdateItem each.
func kclRenewsPerLeaseHour() float64 {
	return time.Hour.Seconds() / (kclFailover/3 - kclEpsilon).Seconds()
}

// kcl2 models KCL 2.x (lease-count based assignment, every worker a taker).
func kcl2(leases, workers int, checkpointEvery time.Duration) kclModel {
	L, W := float64(leases), float64(workers)
	takeInterval := 2 * (kclFailover + kclEpsilon) // DynamoDBLeaseCoordinator: takerIntervalMillis = (leaseDuration + epsilon) × 2
	scansPerHour := W * time.Hour.Seconds() / takeInterval.Seconds()
	// DynamoDBLeaseTaker.takeLeases scans the whole table each pass
	// (leaseRefresher.listLeases); DynamoDBLeaseRefresher's Scan sets
	// consistentRead(false) by default (LeaseManagementConfig.consistentReads
	// = false): half a unit per 4 KB.
	taker := opCost{op: "scan (taker, every worker / 20.05 s)", requests: scansPerHour / L, items: scansPerHour}
	taker.rcu = taker.requests * scanUnits(L, false)
	// DeterministicShuffleShardSyncLeaderDecider: every worker lists the
	// leases every ELECTION_SCHEDULING_INTERVAL_MILLIS = 5 min to elect the
	// shard-sync leader.
	elect := opCost{op: "scan (leader election, every worker / 5 min)", requests: W * 12 / L, items: W * 12}
	elect.rcu = elect.requests * scanUnits(L, false)
	// PeriodicShardSyncManager: the leader audits the hash ranges by listing
	// the leases every leasesRecoveryAuditorExecutionFrequencyMillis
	// (DEFAULT_PERIODIC_SHARD_SYNC_INTERVAL_MILLIS = 2 min).
	audit := opCost{op: "scan (leader audit / 2 min)", requests: 30 / L, items: 30}
	audit.rcu = audit.requests * scanUnits(L, false)
	renew := kclRenewsPerLeaseHour()
	m := kclModel{
		name: "KCL 2.x",
		ops: []opCost{taker, elect, audit,
			{op: "renew", requests: renew, items: renew, wcu: renew}},
		// A taker first sees a lease's last counter up to one scan after it
		// was written and takes it on its first scan at least failoverTime
		// later (DynamoDBLeaseTaker: lease expired when not seen to change
		// for failoverTime), so crash → take is one to two take intervals;
		// KCL-REFERENCE.md §4: 17–40 s measured.
		failover: fmt.Sprintf("17–40 s crash → taken (≤ 2 × %v)", takeInterval),
		// Leases are not released on a graceful stop (KCL-REFERENCE.md §4,
		// #845, #474): successors wait for expiry as after a crash.
		stop: "= failover (no release)",
	}
	// Join: a balanced fleet has no available lease, so the newcomer steals
	// maxLeasesToStealAtOneTime = 1 per pass (LeaseManagementConfig;
	// DynamoDBLeaseTaker.chooseLeasesToSteal) until it has its floor share.
	need := leases / (workers + 1)
	m.join = fmt.Sprintf("≈ %s (%d steals, 1 per %v)", fmtDuration(time.Duration(max(need-1, 0))*takeInterval), need, takeInterval)
	m.ops = appendCheckpoints(m.ops, checkpointEvery)
	return m
}

// kcl3 models KCL 3.x (worker-utilization-aware assignment by a leader).
func kcl3(leases, workers int, checkpointEvery time.Duration) kclModel {
	L, W := float64(leases), float64(workers)
	lamInterval := 2 * kclFailover // LeaseManagementConfig.leaseAssignmentIntervalMillis(): 2 × failoverTimeMillis
	// DynamoDBLeaseCoordinator: leaseDiscovererIntervalMillis =
	// leaseAssignmentIntervalMillis / 2 − epsilon, at a fixed rate, on every
	// worker. DynamoDBLeaseDiscoverer.discoverNewLeases queries
	// LeaseOwnerToLeaseKeyIndex (KEYS_ONLY, eventually consistent) for its
	// own keys and GetItems only keys it does not hold yet (none in steady
	// state).
	discoverEvery := lamInterval/2 - kclEpsilon
	queries := W * time.Hour.Seconds() / discoverEvery.Seconds()
	query := opCost{op: "query (owner index, every worker / 9.975 s)", requests: queries / L, items: queries * (L / W) / L}
	query.rcu = query.requests * queryUnits(L/W)
	// LeaseAssignmentManager.performAssignment, on the leader only, every
	// leaseAssignmentIntervalMillis (scheduleWithFixedDelay): one scan of the
	// lease table, leases and WorkerMetricStats rows
	// (MigrationAwareLAMDataManager: entityDAO.scanEntities(LEASE,
	// WORKER_METRIC_STATS); DynamoDBLeaseTableDao's Scan is eventually
	// consistent). WorkerMetricStats rows are counted at the lease item
	// size.
	lamScans := time.Hour.Seconds() / lamInterval.Seconds()
	lam := opCost{op: "scan (leader LAM / 20 s)", requests: lamScans / L, items: lamScans * (L + W) / L}
	lam.rcu = lam.requests * scanUnits(L+W, false)
	// WorkerMetricStatsReporter: each worker writes its row every
	// workerMetricsReporterFreqInMillis = 30 s (LeaseManagementConfig),
	// assumed under 1 KB.
	wms := opCost{op: "WorkerMetricStats write (every worker / 30 s)", requests: W * 120 / L, items: W * 120 / L, wcu: W * 120 / L}
	// DynamoDBLockBasedLeaderDecider: the leader heartbeats its lock item
	// every 30 s (120 s lock, issue 12 and ../shared/testdata/kcl3-items.json);
	// a follower tries to acquire it at most once per heartbeat period: one
	// consistent GetItem.
	lockWrite := opCost{op: "leader lock heartbeat (leader / 30 s)", requests: 120 / L, items: 120 / L, wcu: 120 / L}
	lockRead := opCost{op: "leader lock read (every follower / 30 s)", requests: (W - 1) * 120 / L, items: (W - 1) * 120 / L, rcu: (W - 1) * 120 / L}
	// PeriodicShardSyncManager runs on the leader in 3.x too: the same
	// hash-range audit scan every 2 min as in 2.x.
	audit := opCost{op: "scan (leader audit / 2 min)", requests: 30 / L, items: 30}
	audit.rcu = audit.requests * scanUnits(L, false)
	renew := kclRenewsPerLeaseHour()
	m := kclModel{
		name: "KCL 3.x",
		ops: []opCost{query, lam, audit, lockRead, wms, lockWrite,
			{op: "renew", requests: renew, items: renew, wcu: renew}},
		// The leader judges expiry from its LAM scans (lease not seen to
		// change for failoverTime), reassigns on a LAM run, and the new
		// owner finds it by its next discovery: up to 2 LAM intervals + one
		// discovery interval; KCL-REFERENCE.md §4: 20–50 s.
		failover: fmt.Sprintf("20–50 s crash → taken (≤ 2 × %v + %v)", lamInterval, discoverEvery),
		// Utilization-driven: the newcomer counts once its first
		// WorkerMetricStats row (≤ 30 s) is read by a LAM run, which then
		// moves leases by graceful handoff (≤ 30 s each,
		// gracefulLeaseHandoffTimeoutMillis) while workers deviate from the
		// mean utilization by more than reBalanceThresholdPercentage (10 %),
		// a dampened share per run. It depends on the workers' CPU, which
		// this model does not have.
		join: "not modelled (CPU-driven, ≥ 30 s + LAM runs)",
		stop: "not modelled",
	}
	m.ops = appendCheckpoints(m.ops, checkpointEvery)
	return m
}

// appendCheckpoints adds the checkpoint writes of a consumer that
// checkpoints once per d (none if d is 0): the same policy in every row.
func appendCheckpoints(ops []opCost, d time.Duration) []opCost {
	if d <= 0 {
		return ops
	}
	n := time.Hour.Seconds() / d.Seconds()
	return append(ops, opCost{op: "checkpoint (every " + d.String() + ")", requests: n, items: n, wcu: n})
}

func sumCosts(ops []opCost) (reads, writes, rcu, wcu float64) {
	for _, o := range ops {
		if o.write || o.wcu > 0 {
			writes += o.items
		} else {
			reads += o.items
		}
		rcu += o.rcu
		wcu += o.wcu
	}
	return reads, writes, rcu, wcu
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	}
	return d.Round(100 * time.Millisecond).String()
}

// scaleReport formats one shape's cost breakdown in each mode run and its
// comparison with KCL 2.x and 3.x.
func scaleReport(results []scaleResult) string {
	var b strings.Builder
	cfg := results[0].cfg
	policy := "consumers checkpoint only on a handoff or a graceful stop (CheckpointManual with a processor that never checkpoints)"
	if cfg.checkpointEvery > 0 {
		policy = fmt.Sprintf("consumers checkpoint once per %v while holding (CheckpointEvery(%v), or CheckpointAfterEachBatch with one batch per %v)", cfg.checkpointEvery, cfg.checkpointEvery, cfg.checkpointEvery)
	}
	var runs []string
	for _, r := range results {
		runs = append(runs, fmt.Sprintf("%s: steady state %v simulated, wall time %v", r.cfg.mode(), r.cfg.steady, r.wall.Round(time.Millisecond)))
	}
	fmt.Fprintf(&b, "\n### %d leases × %d workers (%s)\n\n", cfg.leases, cfg.workers, strings.Join(runs, "; "))
	fmt.Fprintf(&b, "Checkpoint policy: %s.\n", policy)
	fmt.Fprintf(&b, "Capacity: lease item %d B, owner-index entry %d B, roster %d B per worker id; kcl reads strongly consistent (Scan, GetItem: 1 RCU per 4 KB), KCL eventually consistent (0.5); owner-index queries eventually consistent (0.5 RCU per 4 KB), heartbeat BatchGetItems strongly consistent (1 RCU per heartbeat); 1 WCU per write (Assign 2, or 3 when it moves an owned lease; Join and Leave 1 per KB of roster), failed conditional writes included.\n", leaseItemBytes, indexKeyBytes, rosterIDBytes)

	for _, r := range results {
		rows := storeCosts(r.cfg.leases, r.cfg.steady, r.cost.traffic, r.cfg.fleet)
		if !r.cfg.fleet {
			b.WriteString("\nkcl today (per-lease renewal), steady state, per lease-hour, by operation:\n\n| operation | requests | items | RCU | WCU |\n|---|---|---|---|---|\n")
			for _, o := range rows {
				fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.1f |\n", o.op, o.requests, o.items, o.rcu, o.wcu)
			}
			continue
		}
		lead := storeCosts(r.cfg.leases, r.cfg.steady, r.cost.leader, true)
		fmt.Fprintf(&b, "\nkcl fleet (%s), steady state, per lease-hour, by operation, and the leader's own share (%s):\n\n", r.cfg.mode(), r.cost.leaderID)
		b.WriteString("| operation | requests | items | RCU | WCU | leader: requests | leader: items | leader: RCU | leader: WCU |\n|---|---|---|---|---|---|---|---|---|\n")
		var none []string
		for i, o := range rows {
			l := lead[i]
			if o.requests == 0 && l.requests == 0 {
				none = append(none, o.op)
				continue
			}
			fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f |\n", o.op, o.requests, o.items, o.rcu, o.wcu, l.requests, l.items, l.rcu, l.wcu)
		}
		lr, lw, lrcu, lwcu := sumCosts(lead)
		fr, fw, frcu, fwcu := sumCosts(rows)
		fmt.Fprintf(&b, "| **total** | | %.0f read, %.0f written | %.1f | %.1f | | %.0f read, %.0f written | %.1f | %.1f |\n", fr, fw, frcu, fwcu, lr, lw, lrcu, lwcu)
		if len(none) > 0 {
			fmt.Fprintf(&b, "\nNo request in the steady state: %s.\n", strings.Join(none, ", "))
		}
	}

	m2, m3 := kcl2(cfg.leases, cfg.workers, cfg.checkpointEvery), kcl3(cfg.leases, cfg.workers, cfg.checkpointEvery)
	for _, m := range []kclModel{m2, m3} {
		fmt.Fprintf(&b, "\n%s (model), steady state, per lease-hour, by operation:\n\n| operation | requests | items | RCU | WCU |\n|---|---|---|---|---|\n", m.name)
		for _, o := range m.ops {
			fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.1f | %.1f |\n", o.op, o.requests, o.items, o.rcu, o.wcu)
		}
	}

	r2, w2, rcu2, wcu2 := sumCosts(m2.ops)
	ratio := func(r, w, rcu, wcu float64) string {
		return fmt.Sprintf("%.3f | %.3f", (r+w)/(r2+w2), (rcu+wcu)/(rcu2+wcu2))
	}
	b.WriteString("\nSide by side (per lease-hour; reads and writes in items; ÷ KCL 2.x: reads + writes, and RCU + WCU, over KCL 2.x's):\n\n")
	b.WriteString("| | reads | writes | RCU | WCU | items ÷ KCL 2.x | units ÷ KCL 2.x | leader alone: reads, writes (RCU, WCU) | crash failover | leader crash | join to fair share | graceful stop | cold start |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range results {
		r, w, rcu, wcu := sumCosts(storeCosts(res.cfg.leases, res.cfg.steady, res.cost.traffic, res.cfg.fleet))
		ev := eventsByKind(res.events)
		crash, join, leave, cold := ev["crash"], ev["join"], ev["leave"], ev["cold"]
		if !res.cfg.fleet {
			fmt.Fprintf(&b, "| kcl today (simulated) | %.0f | %.0f | %.1f | %.0f | %s | – | %v crash → all processed (%v last renewal → taken, max) | – | %v | %v stop → all processed (%v release → taken, max) | %v to fair share, %d moves, max %d per lease, %d leases > 2 |\n",
				r, w, rcu, wcu, ratio(r, w, rcu, wcu), crash.after, crash.value, join.value, leave.after, leave.value, cold.value, cold.moved, cold.mostMoves, cold.movedOver2)
			continue
		}
		lr, lw, lrcu, lwcu := sumCosts(storeCosts(res.cfg.leases, res.cfg.steady, res.cost.leader, true))
		lc := ev["leader"]
		fmt.Fprintf(&b, "| kcl fleet (simulated) | %.0f | %.0f | %.1f | %.0f | %s | %.0f, %.0f (%.1f, %.1f) | median %v, max %v (%d crashes) | median %v, max %v (%d crashes; new leader ≤ %v) | %v newcomer, %v all | %v stop → all processed | %v to fair share, %d moves, max %d per lease, %d leases > 2 |\n",
			r, w, rcu, wcu, ratio(r, w, rcu, wcu), lr, lw, lrcu, lwcu, crash.median, crash.value, len(crash.trials),
			lc.median, lc.value, len(lc.trials), lc.leaderAt, join.value, ms(join.after), leave.value, cold.value, cold.moved, cold.mostMoves, cold.movedOver2)
	}
	for _, m := range []kclModel{m2, m3} {
		r, w, rcu, wcu := sumCosts(m.ops)
		fmt.Fprintf(&b, "| %s (model) | %.0f | %.0f | %.1f | %.0f | %s | – | %s | – | %s | %s | not modelled |\n", m.name, r, w, rcu, wcu, ratio(r, w, rcu, wcu), m.failover, m.join, m.stop)
	}

	for _, res := range results {
		if !res.cfg.fleet {
			continue
		}
		b.WriteString("\nkcl fleet against issue 12's targets:\n\n| target | measured | met |\n|---|---|---|\n")
		for _, c := range fleetTargets(res, m2) {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.target, c.measured, c.verdict())
		}
	}
	return b.String()
}

// eventsByKind indexes a run's events by the first word of their scenario
// (cold, join, leave, crash, leader; "2 leave at once" is "2").
func eventsByKind(events []simEvent) map[string]simEvent {
	ev := map[string]simEvent{}
	for _, e := range events {
		ev[strings.Fields(e.scenario)[0]] = e
	}
	return ev
}

// targetCheck is one of issue 12's targets, checked on one run.
type targetCheck struct {
	target, measured string
	met              bool
	// elsewhere names the shape the issue sets the target at, when this
	// run's is another: the figure is then given, not judged.
	elsewhere string
}

func (c targetCheck) verdict() string {
	switch {
	case c.elsewhere != "":
		return "– (set at " + c.elsewhere + ")"
	case c.met:
		return "met"
	}
	return "**missed**"
}

// fleetTargets checks a kcl-fleet run against issue 12's targets. The cost
// target is the at 1,000 leases × 100 workers and the cold-start one
// at 10,000 × 500; at other shapes their figures are given, not judged.
func fleetTargets(r scaleResult, m2 kclModel) []targetCheck {
	ev := eventsByKind(r.events)
	crash, lc, leave, two, join, cold := ev["crash"], ev["leader"], ev["leave"], ev["2"], ev["join"], ev["cold"]
	rd, wr, _, _ := sumCosts(storeCosts(r.cfg.leases, r.cfg.steady, r.cost.traffic, true))
	r2, w2, _, _ := sumCosts(m2.ops)
	ratio := (rd + wr) / (r2 + w2)
	at := func(leases, workers int) string {
		if r.cfg.leases == leases && r.cfg.workers == workers {
			return ""
		}
		return fmt.Sprintf("%d × %d", leases, workers)
	}
	return []targetCheck{
		{fmt.Sprintf("steady reads + writes per lease-hour ≤ 1/10 of KCL 2.x's (%s)", checkpointPolicy(r.cfg)),
			fmt.Sprintf("%.0f + %.0f = %.0f vs %.0f: %.3f", rd, wr, rd+wr, r2+w2, ratio), ratio <= fleetCostTarget, at(1000, 100)},
		{fmt.Sprintf("crash failover ≤ %v median, ≤ %v max", fleetCrashMedian, fleetCrashMax),
			fmt.Sprintf("median %v, max %v (%s)", crash.median, crash.value, fmtDurations(crash.trials)),
			crash.median <= fleetCrashMedian && crash.value <= fleetCrashMax, ""},
		{fmt.Sprintf("leader crash ≤ %v", fleetLeaderTarget),
			fmt.Sprintf("max %v, median %v (%s)", lc.value, lc.median, fmtDurations(lc.trials)), lc.value <= fleetLeaderTarget, ""},
		{fmt.Sprintf("graceful stop ≤ %v (stop → peers process)", fleetStopTarget),
			fmt.Sprintf("%v; two at once %v", leave.value, two.value), leave.value <= fleetStopTarget, ""},
		{fmt.Sprintf("join to fair share (±1) ≤ %v, 0 duplicates", fleetJoinTarget),
			fmt.Sprintf("newcomer %v, all balanced %v, %d duplicates", join.value, ms(join.after), join.dups),
			join.value <= fleetJoinTarget && join.after <= fleetJoinTarget && join.dups == 0, ""},
		{fmt.Sprintf("cold start: each lease moved ≤ %d times", fleetMovesTarget),
			fmt.Sprintf("max %d, %d leases > 2; fair share after %v", cold.mostMoves, cold.movedOver2, cold.value), cold.mostMoves <= fleetMovesTarget, at(10000, 500)},
		{"no lease processed in two places at once, no committed checkpoint lost (whole run)",
			fmt.Sprintf("%d overlaps, %d lost", r.cost.overlaps, r.cost.lost), r.cost.overlaps == 0 && r.cost.lost == 0, ""},
	}
}

func checkpointPolicy(cfg simConfig) string {
	if cfg.checkpointEvery > 0 {
		return fmt.Sprintf("a checkpoint per lease every %v", cfg.checkpointEvery)
	}
	return "checkpoints at the default policy: none while holding"
}

// scaleSummary formats every shape's kcl-fleet figures against per-lease
// kcl and KCL 2.x and 3.x, with issue 12's targets.
func scaleSummary(all []scaleResult) string {
	var b strings.Builder
	b.WriteString("\n### Summary: steady reads + writes per lease-hour (items), and kcl fleet against issue 12's targets\n\n")
	b.WriteString("| shape | kcl today | kcl fleet | KCL 2.x | KCL 3.x | fleet ÷ KCL 2.x | crash median / max | leader crash median / max | graceful stop (two at once) | join: newcomer / all, duplicates | cold start: max moves per lease | targets missed | wall time (today, fleet) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	type shape struct{ leases, workers int }
	var order []shape
	byShape := map[shape][]scaleResult{}
	for _, r := range all {
		k := shape{r.cfg.leases, r.cfg.workers}
		if byShape[k] == nil {
			order = append(order, k)
		}
		byShape[k] = append(byShape[k], r)
	}
	for _, k := range order {
		m2, m3 := kcl2(k.leases, k.workers, *simCheckpoint), kcl3(k.leases, k.workers, *simCheckpoint)
		total := func(ops []opCost) float64 { r, w, _, _ := sumCosts(ops); return r + w }
		today, fleetCol, ratio, crash, leader, stop, join, cold, missed := "–", "–", "–", "–", "–", "–", "–", "–", "–"
		walls := []string{"–", "–"}
		for _, r := range byShape[k] {
			t := total(storeCosts(r.cfg.leases, r.cfg.steady, r.cost.traffic, r.cfg.fleet))
			if !r.cfg.fleet {
				today = fmt.Sprintf("%.0f", t)
				walls[0] = fmtDuration(r.wall)
				continue
			}
			walls[1] = fmtDuration(r.wall)
			fleetCol = fmt.Sprintf("%.0f", t)
			ratio = fmt.Sprintf("%.3f", t/total(m2.ops))
			ev := eventsByKind(r.events)
			crash = fmt.Sprintf("%v / %v", ev["crash"].median, ev["crash"].value)
			leader = fmt.Sprintf("%v / %v", ev["leader"].median, ev["leader"].value)
			stop = fmt.Sprintf("%v (%v)", ev["leave"].value, ev["2"].value)
			join = fmt.Sprintf("%v / %v, %d", ev["join"].value, ms(ev["join"].after), ev["join"].dups)
			cold = fmt.Sprintf("%d (%d > 2)", ev["cold"].mostMoves, ev["cold"].movedOver2)
			var miss []string
			for _, c := range fleetTargets(r, m2) {
				if !c.met && c.elsewhere == "" {
					miss = append(miss, strings.Fields(c.target)[0])
				}
			}
			missed = "none"
			if len(miss) > 0 {
				missed = "**" + strings.Join(miss, ", ") + "**"
			}
		}
		fmt.Fprintf(&b, "| %d × %d | %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			k.leases, k.workers, today, fleetCol, total(m2.ops), total(m3.ops), ratio, crash, leader, stop, join, cold, missed, strings.Join(walls, ", "))
	}
	return b.String()
}

func TestCapacityModel(t *testing.T) {
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"a consistent scan of 1,000 items of 300 B reads 293 KB: 74 units", scanUnits(1000, true), 74},
		{"an eventually consistent scan costs half", scanUnits(1000, false), 37},
		{"a scan of 10,000 items rounds up per 1 MB page: 256 + 256 + 221 units", scanUnits(10000, true), 733},
		{"an empty owner-index query costs half a unit", queryUnits(0), 0.5},
		{"100 index keys of 60 B are two 4 KB blocks, eventually consistent", queryUnits(100), 1},
		{"KCL renews every 10 s / 3 − 25 ms: 1,088 times an hour", math.Round(kclRenewsPerLeaseHour()), 1088},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
