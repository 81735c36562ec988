package leasing_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// TestSimulation runs the coordinator with a fleet of workers over one
// in-memory table of 1,000 leases, in fake time (testing/synctest), and
// prints what each scenario costs and how long it takes:
//
//  1. cold start: every worker starts at once (within a millisecond) on an
//     unowned table;
//  2. steady state: store writes per lease-hour and reads per worker-minute;
//  3. join: one more worker joins the balanced fleet;
//  4. graceful leave: one worker stops;
//  5. crash: one worker is cut off from the table;
//  6. two workers stop gracefully at once (a rolling deploy).
//
// Throughout it checks that no lease is processed by two workers at once,
// that no committed checkpoint is lost across a move, and that the fleet
// rebalances to within one lease of its fair share after every change.
//
// Replaying a failure. The seed fixes every random choice the simulation and
// the coordinators make: each coordinator's source is seeded from it and its
// start index; the crash victim and instant, the sub-millisecond stagger
// between workers that start or stop "at the same instant", and the time each
// consumer takes to finish its batch on a stop all come from it. Fake time
// makes every timing independent of the machine. What no seed fixes is the
// order in which goroutines due at the same fake instant run — it is up to the
// Go scheduler and to select's random choice (more so under -race). The
// stagger removes such ties between workers; ties within one worker remain
// (its take pass and assignment poll fall due together every take interval).
// So a seed replays the same scenario with the same choices and, measured, the
// same number of acquisitions at the same instants for most of the run (seed
// 1, six runs: all 2,876 acquisitions alike up to 32 s, then some keys went to
// other workers). Each run logs a digest of its acquisitions (time, key,
// worker, sorted) to compare runs by. A failing run logs its seed and the
// command that replays it, and each overlap names the instants that decide
// it: when the earlier holder acquired the lease, and the last write before
// the take (whose, and how long before).
//
// -sim.seeds=N runs seeds -sim.seed … -sim.seed+N−1. -sim.margin sets the
// coordinators' expiry margin (-sim.margin=0 shows what it prevents).
// -sim.lockstep starts and stops workers at the very same instant, as the
// simulation did before the stagger: adversarial — every worker's scans then
// coincide with every other's renewals, which is what first exposed an overlap
// — but not replayable, since the scheduler orders all those ties.
//
// By default it runs 10 workers with the default 10 s lease and an 8 s steady
// state (fast enough for CI under -race). The full table, for 10, 50 and 100
// workers at an 8 s lease and at the default, KCL's 10 s, with an 80 s steady
// state (rates are periodic: 10 min gives the same figures, at eight times
// the run time):
//
//	go test ./internal/leasing -run TestSimulation -v -sim.full
//
// -sim.checkpoint=d makes each consumer checkpoint every d while it holds
// its lease (by default it checkpoints only when it gives the lease up).
// TestSimulationScale (-sim.scale) runs the same scenarios with 1,000 and
// 10,000 leases and up to 500 workers, and compares their cost with KCL's.
//
// Both coordination modes run by default (-sim.mode=lease|fleet|both): the
// per-lease renewal above, and kcl-fleet mode (WithFleet: heartbeats and an
// elected leader), whose workers go through the same scenarios, with several
// worker crashes and a crash of the leader (simfleet_test.go).
//
// Targets missed are marked in the table; -sim.strict makes them fail the
// test.
var (
	simFull   = flag.Bool("sim.full", false, "TestSimulation: run 10, 50 and 100 workers at 8 s and 10 s (default) leases")
	simSeed   = flag.Uint64("sim.seed", 1, "TestSimulation: seed of the simulation's random choices (the first, with -sim.seeds)")
	simSeeds  = flag.Int("sim.seeds", 1, "TestSimulation: how many seeds to run, from -sim.seed on")
	simMargin = flag.Duration("sim.margin", -1, "TestSimulation: the coordinators' expiry margin (default: the coordinator's)")
	simLock   = flag.Bool("sim.lockstep", false, "TestSimulation: start and stop workers at the very same fake instant (adversarial: the Go scheduler orders their ties, so a seed does not replay)")
	simStrict = flag.Bool("sim.strict", false, "TestSimulation: fail when a scenario misses its target (not only an invariant), and run the tests of known misses")
	simSteady = flag.Duration("sim.steady", 0, "TestSimulation: simulated steady-state duration (default 80s with -sim.full, 8s otherwise)")
)

const simLeases = 1000

type simConfig struct {
	leases        int
	workers       int
	leaseDuration time.Duration
	steady        time.Duration
	// checkpointEvery, if positive, makes each consumer checkpoint once per
	// interval while it holds a lease (see -sim.checkpoint); 0: only the
	// final checkpoint on a handoff or a graceful stop.
	checkpointEvery time.Duration
	scale           bool // run by TestSimulationScale
	// fleet runs the coordinators in kcl-fleet mode (WithFleet with its
	// defaults), where leaseDuration does not apply.
	fleet bool
}

func (c simConfig) name() string {
	suffix := ""
	if c.fleet {
		suffix = "_fleet"
	}
	if c.scale {
		return fmt.Sprintf("%dleases_%dworkers%s", c.leases, c.workers, suffix)
	}
	if c.fleet {
		return fmt.Sprintf("%dworkers%s", c.workers, suffix)
	}
	return fmt.Sprintf("%dworkers_%v", c.workers, c.leaseDuration)
}

// mode names the coordination mode of c for the tables.
func (c simConfig) mode() string {
	if c.fleet {
		return fmt.Sprintf("fleet F=%v H=%v", leasing.DefaultFailoverTime, fleetHeartbeat)
	}
	return fmt.Sprintf("lease %v", c.leaseDuration)
}

func TestSimulation(t *testing.T) {
	modes, err := simModes()
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{10}
	durations := []time.Duration{leasing.DefaultLeaseDuration}
	steady := 8 * time.Second // a few renewals at the default lease duration
	if *simFull {
		sizes = []int{10, 50, 100}
		durations = []time.Duration{8 * time.Second, leasing.DefaultLeaseDuration}
		steady = 80 * time.Second // a whole number of renew intervals at 8 s and 10 s leases, and of take intervals
		// The coordinators' table scans allocate most; collecting less
		// often cuts the full run's CPU time by a fifth.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if *simSteady > 0 {
		steady = *simSteady
	}
	if *simSeeds < 1 {
		t.Fatalf("-sim.seeds=%d: want at least 1", *simSeeds)
	}
	for seed := *simSeed; seed < *simSeed+uint64(*simSeeds); seed++ {
		start := time.Now()
		var events []simEvent
		var costs []simCost
		var cfgs []simConfig
		for _, fleet := range modes {
			if fleet {
				for _, n := range sizes {
					cfgs = append(cfgs, simConfig{leases: simLeases, workers: n, leaseDuration: leasing.DefaultLeaseDuration,
						steady: fleetSteady(), checkpointEvery: *simCheckpoint, fleet: true})
				}
				continue
			}
			for _, d := range durations {
				for _, n := range sizes {
					cfgs = append(cfgs, simConfig{leases: simLeases, workers: n, leaseDuration: d, steady: steady, checkpointEvery: *simCheckpoint})
				}
			}
		}
		for _, cfg := range cfgs {
			t.Run(fmt.Sprintf("%s/seed=%d", cfg.name(), seed), func(t *testing.T) {
				began := time.Now()
				synctest.Test(t, func(t *testing.T) {
					ev, cost := runSimulation(t, cfg, seed)
					events = append(events, ev...)
					costs = append(costs, cost)
				})
				t.Logf("wall time %v", time.Since(began).Round(time.Millisecond))
				if t.Failed() {
					t.Logf("seed %d; replay with: %s", seed, replayCommand(cfg, seed))
				}
			})
		}
		if len(costs) > 0 && (testing.Verbose() || t.Failed()) {
			printSimulation(events, costs, seed, time.Since(start))
		}
	}
}

// replayCommand returns the go test command that runs cfg with seed again.
func replayCommand(cfg simConfig, seed uint64) string {
	test := "TestSimulation"
	if cfg.scale {
		test = "TestSimulationScale"
	}
	cmd := fmt.Sprintf("go test ./internal/leasing -run '%s/%s/seed=%d$' -v -sim.seed=%d -sim.steady=%v", test, cfg.name(), seed, seed, cfg.steady)
	if cfg.scale {
		cmd += fmt.Sprintf(" -sim.scale -sim.shapes=%dx%d", cfg.leases, cfg.workers)
	}
	if *simFull {
		cmd += " -sim.full"
	}
	if cfg.checkpointEvery > 0 {
		cmd += fmt.Sprintf(" -sim.checkpoint=%v", cfg.checkpointEvery)
	}
	if *simMargin >= 0 {
		cmd += fmt.Sprintf(" -sim.margin=%v", *simMargin)
	}
	if *simLock {
		cmd += " -sim.lockstep"
	}
	if cfg.fleet {
		cmd += " -sim.mode=fleet"
		if *simCrashes != defaultSimCrashes {
			cmd += fmt.Sprintf(" -sim.crashes=%d", *simCrashes)
		}
	} else {
		cmd += " -sim.mode=lease"
	}
	return cmd + " -count=1"
}

// sim is a fleet whose workers run simulated shard consumers that advance
// their checkpoints, and whose store views record when each lease was last
// written and given up.
type sim struct {
	*fleet
	cfg  simConfig
	seed uint64
	rng  *rand.Rand
	next int       // index of the next worker to start
	live []*worker // workers running and connected, in start order

	// Guarded by fleet.mu, like the harness's overlap tracking.
	lastHolder map[string]string // last worker to process each key
	moves      int               // acquisitions of a key last processed by another worker
	keyMoves   map[string]int    // moves of each key
	firstAcq   map[string]stamp  // first acquisition of each key since beginPhase, and by whom
	lastWrite  map[string]stamp  // key -> last successful write (renew, take, handoff, checkpoint, release), and its writer
	prevWrite  map[string]stamp  // key -> the successful write before lastWrite
	acqs       []acquisition     // every acquisition, for the run's digest
	gaveUp     map[string]stamp  // last release (who = "") or assignment to a peer (who = the peer)
	committed  map[string]int64  // key -> highest checkpoint sequence written
	lost       []string          // checkpoints lost across a move
	carried    int               // acquisitions of a key with a committed checkpoint
	stores     map[string]*simStore
	roster     map[string]bool // the roster as the workers' Join and Leave left it (kcl-fleet mode)
	toDead     int             // leases assigned to a crashed worker (kcl-fleet mode)
}

// acquisition is a worker starting to process a lease.
type acquisition struct {
	at       time.Time
	key, who string
}

// stamp is who did something to a lease, and when.
type stamp struct {
	who string
	at  time.Time
}

func runSimulation(t *testing.T, cfg simConfig, seed uint64) ([]simEvent, simCost) {
	s := &sim{
		fleet: newFleet(t, cfg.leases),
		cfg:   cfg, seed: seed,
		rng:        rand.New(rand.NewPCG(seed, uint64(cfg.workers))),
		lastHolder: map[string]string{},
		keyMoves:   map[string]int{},
		firstAcq:   map[string]stamp{},
		lastWrite:  map[string]stamp{},
		prevWrite:  map[string]stamp{},
		gaveUp:     map[string]stamp{},
		committed:  map[string]int64{},
		stores:     map[string]*simStore{},
		roster:     map[string]bool{},
	}
	defer s.shutdown() // also on t.Fatal, so the bubble can end
	var events []simEvent
	ev := func(e simEvent) {
		e.workers, e.lease, e.mode = cfg.workers, cfg.leaseDuration, cfg.mode()
		e.value = ms(e.value)
		events = append(events, e)
	}

	ev(s.coldStart())
	cost := s.steadyState()
	ev(s.join())
	ev(s.leave(1))
	if cfg.fleet {
		ev(s.fleetCrash(false))
		ev(s.fleetCrash(true))
	} else {
		ev(s.crash())
	}
	ev(s.leave(2))

	// The digest covers the scenarios, not the final stop of every worker
	// at once.
	s.mu.Lock()
	cost.digest, cost.acquisitions = s.digestLocked(), len(s.acqs)
	s.mu.Unlock()
	s.shutdown()
	if *simStrict {
		for _, e := range events {
			if e.missed() {
				t.Errorf("%s: %s = %v, target %v %s", e.scenario, e.metric, e.value, e.target, strings.Join(e.miss, ", "))
			}
		}
	}
	s.checkNoOverlap()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.mem().Leases() {
		if got, want := seqOf(l.Checkpoint), s.committed[l.Key]; got < want {
			s.lost = append(s.lost, fmt.Sprintf("%s: table checkpoint %d after the run, %d was committed", l.Key, got, want))
		}
	}
	for _, l := range s.lost {
		t.Errorf("checkpoint lost: %s", l)
	}
	cost.overlaps, cost.lost, cost.carried = len(s.overlaps), len(s.lost), s.carried
	t.Logf("seed %d: %d acquisitions, digest %016x", seed, cost.acquisitions, cost.digest)
	return events, cost
}

// digest returns a hash of every acquisition (fake time, key, worker), sorted
// so that the order of acquisitions at one fake instant does not matter: two
// runs with equal digests made the same moves at the same instants.
// The caller holds s.mu.
func (s *sim) digestLocked() uint64 {
	acqs := slices.Clone(s.acqs)
	slices.SortFunc(acqs, func(a, b acquisition) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.key, b.key), strings.Compare(a.who, b.who))
	})
	h := fnv.New64a()
	for _, a := range acqs {
		fmt.Fprintf(h, "%d %s %s\n", a.at.UnixNano(), a.key, a.who)
	}
	return h.Sum64()
}

// simStore is one worker's view of the table: the harness's crashable view,
// recording when each lease was last written, and when and to whom a worker
// gave one up, and counting the requests this worker made as memlease.Stats
// counts them (so that the leader's own traffic can be told apart). Its
// lease.FleetStore methods are in simfleet_test.go.
type simStore struct {
	*workerStore
	s  *sim
	id string

	lastBeat atomic.Int64 // UnixNano of the start of the last successful Beat

	mu sync.Mutex
	tr simTraffic // this worker's requests that reached the table
}

func (st *simStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	l, err := st.workerStore.Get(ctx, key)
	st.count(err, func(t *simTraffic) { t.Gets++ })
	return l, err
}

func (st *simStore) List(ctx context.Context) ([]lease.Lease, error) {
	ls, err := st.workerStore.List(ctx)
	st.count(err, func(t *simTraffic) { t.Lists++; t.ListedItems += int64(len(ls)) })
	return ls, err
}

func (st *simStore) ListOwned(ctx context.Context, owner string) ([]string, error) {
	keys, err := st.workerStore.ListOwned(ctx, owner)
	st.count(err, func(t *simTraffic) { t.ListOwnedCalls++; t.OwnedKeys += int64(len(keys)) })
	return keys, err
}

func (st *simStore) Create(ctx context.Context, l lease.Lease) error {
	err := st.workerStore.Create(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Create })
	return err
}

func (st *simStore) Delete(ctx context.Context, l lease.Lease) error {
	err := st.workerStore.Delete(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Delete })
	return err
}

func (st *simStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	nl, err := st.workerStore.Renew(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Renew })
	st.s.wrote(l.Key, st.id, err)
	return nl, err
}

func (st *simStore) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	nl, err := st.workerStore.Take(ctx, l, owner)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Take })
	st.s.wrote(l.Key, st.id, err)
	if err == nil && owner != st.id {
		st.s.recordGaveUp(l.Key, owner) // assigned to a peer on a graceful stop
	}
	return nl, err
}

func (st *simStore) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	nl, err := st.workerStore.Handoff(ctx, l, to)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Handoff })
	st.s.wrote(l.Key, st.id, err)
	return nl, err
}

func (st *simStore) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	nl, err := st.workerStore.Checkpoint(ctx, l, u)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Checkpoint })
	st.s.wrote(l.Key, st.id, err)
	return nl, err
}

func (st *simStore) Release(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	nl, err := st.workerStore.Release(ctx, l)
	st.countWrite(err, func(t *simTraffic) *memlease.WriteCount { return &t.Release })
	st.s.wrote(l.Key, st.id, err)
	if err == nil {
		st.s.recordGaveUp(l.Key, "")
	}
	return nl, err
}

// reached reports whether a request that returned err reached the table,
// and so was counted by memlease: a crashed worker's requests and requests
// with a done context never do; a failed condition does (it is billed).
func reached(err error) bool {
	return !errors.Is(err, errDead) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// count applies add to this worker's traffic if the request reached the
// table.
func (st *simStore) count(err error, add func(t *simTraffic)) {
	if !reached(err) {
		return
	}
	st.mu.Lock()
	add(&st.tr)
	st.mu.Unlock()
}

// countWrite counts a conditional write, succeeded or failed.
func (st *simStore) countWrite(err error, w func(t *simTraffic) *memlease.WriteCount) {
	st.count(err, func(t *simTraffic) {
		if err == nil {
			w(t).Succeeded++
		} else {
			w(t).Failed++
		}
	})
}

// traffic returns the requests this worker made so far.
func (st *simStore) traffic() simTraffic {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.tr
}

// wrote records a successful write to key by who: the last time observers
// saw its counter change.
func (s *sim) wrote(key, who string, err error) {
	if err != nil {
		return
	}
	s.mu.Lock()
	s.prevWrite[key] = s.lastWrite[key]
	s.lastWrite[key] = stamp{who: who, at: time.Now()}
	s.mu.Unlock()
}

func (s *sim) recordGaveUp(key, to string) {
	s.mu.Lock()
	s.gaveUp[key] = stamp{who: to, at: time.Now()}
	s.mu.Unlock()
}

// start starts a worker with a seeded random source.
func (s *sim) start() *worker {
	id := fmt.Sprintf("w%03d", s.next)
	s.next++
	ws := &workerStore{sharedStore: s.store}
	w := &worker{id: id, store: ws, done: make(chan struct{})}
	opts := []leasing.Option{
		leasing.WithLeaseDuration(s.cfg.leaseDuration),
		leasing.WithRand(rand.New(rand.NewPCG(s.seed, uint64(s.next)))),
	}
	if *simMargin >= 0 {
		opts = append(opts, leasing.WithExpiryMargin(*simMargin))
	}
	if s.cfg.fleet {
		opts = append(opts, leasing.WithFleet(0, 0))
	}
	st := &simStore{workerStore: ws, s: s, id: id}
	c, err := leasing.NewCoordinator(st, id, opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	w.coord = c
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	s.mu.Lock()
	s.workers[id] = w
	s.stores[id] = st
	s.mu.Unlock()
	s.live = append(s.live, w)
	go func() {
		defer close(w.done)
		if err := c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) { go s.consume(w, h) }); err != nil {
			s.t.Errorf("%s: Run: %v", id, err)
		}
	}()
	return w
}

// consume plays a shard consumer. It checks that the lease carries the last
// checkpoint committed for it, "processes" while the lease's context is live,
// and on a handoff or a graceful stop writes a final checkpoint one record
// further and calls Done, as a processor's shutdown hook would.
func (s *sim) consume(w *worker, h *leasing.Held) {
	key := h.Key()
	seq := seqOf(h.Lease().Checkpoint)
	now := time.Now()
	s.mu.Lock()
	if s.processing[key] == nil {
		s.processing[key] = map[string]bool{}
	}
	for other := range s.processing[key] {
		// The facts that decide an overlap: when the earlier holder got the
		// lease, and the last write before this acquisition (the earlier
		// holder's last proof of ownership, if it made it).
		before := s.lastWrite[key]
		if before.who == w.id && before.at.Equal(now) {
			before = s.prevWrite[key] // the write of this acquisition itself
		}
		s.overlaps = append(s.overlaps, fmt.Sprintf("%s acquired %s at %v while %s still processed it (%s acquired it at %v; the last write before was by %s at %v, %v earlier)",
			w.id, key, now.Format("15:04:05.000000"), other, other, s.acquiredAt[key].Format("15:04:05.000000"),
			before.who, before.at.Format("15:04:05.000000"), now.Sub(before.at)))
	}
	s.processing[key][w.id] = true
	s.acquiredAt[key] = now
	s.acqs = append(s.acqs, acquisition{at: now, key: key, who: w.id})
	if prev := s.lastHolder[key]; prev != "" && prev != w.id {
		s.moves++
		s.keyMoves[key]++
	}
	s.lastHolder[key] = w.id
	if _, ok := s.firstAcq[key]; !ok {
		s.firstAcq[key] = stamp{who: w.id, at: now}
	}
	if c := s.committed[key]; c > 0 {
		s.carried++
		if seq < c {
			s.lost = append(s.lost, fmt.Sprintf("%s acquired %s at checkpoint %d; %d was committed", w.id, key, seq, c))
		}
	}
	s.mu.Unlock()

	seq = s.checkpointWhileHeld(h, seq)

	s.mu.Lock()
	delete(s.processing[key], w.id)
	s.mu.Unlock()
	if w.store.crashed.Load() {
		return
	}
	cause := context.Cause(h.Context())
	if !errors.Is(cause, leasing.ErrHandoffRequested) && !errors.Is(cause, leasing.ErrStopping) {
		return
	}
	// The in-flight batch takes up to a millisecond to finish, an amount
	// fixed by the seed, the worker, the lease and its checkpoint: the
	// consumers of a stopping worker then finish in an order the seed
	// decides, not the Go scheduler, and so does the order in which their
	// leases are assigned to peers.
	time.Sleep(s.finishTime(w.id, key, seq))
	ctx := context.Background()
	next := seq + 1
	cp, err := checkpoint.At(strconv.FormatInt(next, 10), 0)
	if err != nil {
		s.t.Errorf("checkpoint.At(%d): %v", next, err)
		return
	}
	if err := h.WriteCheckpoint(ctx, cp, checkpoint.Position{}, nil); err == nil {
		s.mu.Lock()
		s.committed[key] = max(s.committed[key], next)
		s.mu.Unlock()
	}
	if err := h.Done(ctx); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
		s.t.Errorf("%s: Done(%s): %v", w.id, key, err)
	}
}

// checkpointWhileHeld waits until h's context is done and, if the
// simulation checkpoints periodically, checkpoints one record further every
// checkpointEvery meanwhile, as a processor under CheckpointEvery (or
// CheckpointAfterEachBatch, with a batch per interval) would. It returns the
// last sequence number checkpointed (seq if none).
func (s *sim) checkpointWhileHeld(h *leasing.Held, seq int64) int64 {
	if s.cfg.checkpointEvery <= 0 {
		<-h.Context().Done()
		return seq
	}
	t := time.NewTicker(s.cfg.checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-h.Context().Done():
			return seq
		case <-t.C:
		}
		cp, err := checkpoint.At(strconv.FormatInt(seq+1, 10), 0)
		if err != nil {
			s.t.Errorf("checkpoint.At(%d): %v", seq+1, err)
			<-h.Context().Done()
			return seq
		}
		if err := h.WriteCheckpoint(h.Context(), cp, checkpoint.Position{}, nil); err != nil {
			<-h.Context().Done() // lost, expired, or handed off: the context ends
			return seq
		}
		seq++
		s.mu.Lock()
		s.committed[h.Key()] = max(s.committed[h.Key()], seq)
		s.mu.Unlock()
	}
}

// finishTime returns how long a consumer of key on worker who, at checkpoint
// seq, takes to finish its in-flight batch: up to a millisecond, a function
// of the seed and its arguments (not of a shared source, whose draws would
// be ordered by the scheduler).
func (s *sim) finishTime(who, key string, seq int64) time.Duration {
	if *simLock {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d %s %s %d", s.seed, who, key, seq)
	return time.Duration(1 + h.Sum64()%uint64(time.Millisecond))
}

// seqOf returns the sequence number of a checkpoint written by consume, or 0
// for TRIM_HORIZON.
func seqOf(p checkpoint.Position) int64 {
	if !p.IsSequence() {
		return 0
	}
	n, _ := strconv.ParseInt(p.SequenceNumber(), 10, 64)
	return n
}

// shutdown stops every worker at once and waits for them.
func (s *sim) shutdown() {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for _, w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
	s.live = nil
}

// loads returns how many leases each worker's consumers process.
func (s *sim) loads() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, ws := range s.processing {
		for id := range ws {
			out[id]++
		}
	}
	return out
}

// fairShare returns the floor and ceiling of the simulation's leases / n.
func (s *sim) fairShare(n int) (lo, hi int) { return s.cfg.leases / n, (s.cfg.leases + n - 1) / n }

// balanced reports whether the live workers process every lease between
// them, each within [floor, ceil] of its fair share.
func (s *sim) balanced() bool {
	loads := s.loads()
	lo, hi := s.fairShare(len(s.live))
	total := 0
	for _, w := range s.live {
		n := loads[w.id]
		if n < lo || n > hi {
			return false
		}
		total += n
	}
	return total == s.cfg.leases
}

// settled reports whether the fleet is balanced and the table agrees with
// what runs: every lease owned by the one worker processing it, no handoff
// in progress.
func (s *sim) settled() bool {
	if !s.balanced() {
		return false
	}
	leases := s.mem().Leases()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range leases {
		ws := s.processing[l.Key]
		if l.InHandoff() || len(ws) != 1 || !ws[l.Owner] {
			return false
		}
	}
	return true
}

// phase snapshots the counters an event is measured against.
type phase struct {
	at       time.Time
	store    memlease.Stats
	moves    int
	overlaps int
	toDead   int
	passes   map[string]int64
	forced   int64
}

func (s *sim) beginPhase() phase {
	s.mu.Lock()
	clear(s.firstAcq)
	moves, overlaps, toDead := s.moves, len(s.overlaps), s.toDead
	s.mu.Unlock()
	p := phase{at: time.Now(), store: s.mem().Stats(), moves: moves, overlaps: overlaps, toDead: toDead, passes: map[string]int64{}}
	for _, w := range s.live {
		st := w.coord.Stats()
		p.passes[w.id] = st.Passes
		p.forced += st.ForcedTakes
	}
	return p
}

// measure fills an event's counters for the phase begun at p.
func (s *sim) measure(p phase, e *simEvent) {
	s.mu.Lock()
	e.moved = s.moves - p.moves
	e.dups = len(s.overlaps) - p.overlaps
	e.toDead = s.toDead - p.toDead
	s.mu.Unlock()
	if e.toDead > 0 {
		e.note += fmt.Sprintf("; %d leases assigned to a crashed worker", e.toDead)
	}
	d := s.mem().Stats().Sub(p.store)
	e.writes, e.failed = d.Writes(), failedWrites(d)
	e.forced = -p.forced
	for _, w := range s.live {
		e.forced += w.coord.Stats().ForcedTakes
	}
}

// maxPasses returns the most taker passes any of ws made since p.
func (s *sim) maxPasses(p phase, ws ...*worker) int64 {
	var n int64
	for _, w := range ws {
		n = max(n, w.coord.Stats().Passes-p.passes[w.id])
	}
	return n
}

const simLimit = 2 * time.Minute // longest any event may take before the run fails

// coldStart starts the fleet at one instant on the unowned table.
func (s *sim) coldStart() simEvent {
	p := s.beginPhase()
	for range s.cfg.workers {
		s.start()
		s.stagger()
	}
	synctest.Wait()
	waitFor(s.t, simLimit, func() bool {
		total := 0
		for _, n := range s.loads() {
			total += n
		}
		return total == s.cfg.leases
	})
	covered := time.Since(p.at)
	waitFor(s.t, simLimit, s.balanced)
	e := simEvent{scenario: "cold start", metric: "all within fair share", value: time.Since(p.at), passes: s.maxPasses(p, s.live...)}
	s.measure(p, &e)
	lo, hi := s.fairShare(len(s.live))
	s.mu.Lock()
	most, twice, over2 := 0, 0, 0
	for _, n := range s.keyMoves {
		most = max(most, n)
		if n >= 2 {
			twice++
		}
		if n > 2 {
			over2++
		}
	}
	s.mu.Unlock()
	var asked int64
	for _, w := range s.live {
		asked += w.coord.Stats().HandoffsRequested
	}
	e.mostMoves, e.movedOver2 = most, over2
	e.note = fmt.Sprintf("[%d, %d] each; every lease processed after %v; %d handoffs requested; %d leases moved twice or more (at most %d times)",
		lo, hi, ms(covered), asked, twice, most) + e.note
	waitFor(s.t, simLimit, s.settled) // a later move shows in the next event
	return e
}

// steadyState measures what a settled fleet costs.
func (s *sim) steadyState() simCost {
	if s.cfg.fleet {
		// The followers re-read the owner index 1 s and 4 s after their
		// last assignment; the steady state begins after those.
		time.Sleep(5 * time.Second)
		synctest.Wait()
	}
	leader := s.leaderOf()
	before := s.trafficByWorker()
	p := s.beginPhase()
	time.Sleep(s.cfg.steady)
	synctest.Wait()
	d := s.mem().Stats().Sub(p.store)
	after := s.trafficByWorker()
	tr := sumTraffic(after).sub(sumTraffic(before))
	if tr.Stats != d {
		s.t.Errorf("steady state: the workers' requests as the simulation counted them, %+v, differ from memlease's, %+v", tr.Stats, d)
	}
	tr.Stats = d
	s.mu.Lock()
	moved := s.moves - p.moves
	s.mu.Unlock()
	if moved != 0 {
		s.t.Errorf("steady state: %d leases moved in a balanced fleet", moved)
	}
	if !s.settled() {
		s.t.Error("steady state: the fleet is no longer settled")
	}
	c := simCost{leases: s.cfg.leases, workers: s.cfg.workers, lease: s.cfg.leaseDuration, mode: s.cfg.mode(), fleet: s.cfg.fleet,
		simulated: s.cfg.steady, stats: d, traffic: tr, moved: moved}
	if leader != nil && s.leaderOf() == leader {
		c.leaderID = leader.id
		c.leader = after[leader.id].sub(before[leader.id])
	} else if s.cfg.fleet {
		s.t.Errorf("steady state: the leader changed (was %v)", leader)
	}
	return c
}

// join starts one more worker.
func (s *sim) join() simEvent {
	n := len(s.live)
	p := s.beginPhase()
	w := s.start()
	lo, hi := s.fairShare(len(s.live))
	var passes int64
	took := waitFor(s.t, simLimit, func() bool {
		k := s.loads()[w.id]
		passes = w.coord.Stats().Passes
		return k >= lo && k <= hi
	})
	e := simEvent{
		scenario: fmt.Sprintf("join %d→%d", n, n+1), metric: "newcomer within fair share",
		value: took, target: 10 * time.Second, passes: passes,
		note: fmt.Sprintf("[%d, %d]", lo, hi),
	}
	if s.cfg.fleet {
		e.target = fleetJoinTarget // issue 12: fair share ±1 within 5 s, no duplicate
	} else if passes > 2 {
		e.miss = append(e.miss, fmt.Sprintf("%d taker passes > 2", passes))
	}
	waitFor(s.t, simLimit, s.balanced)
	e.after = time.Since(p.at)
	e.note += fmt.Sprintf("; all balanced %v after start", ms(e.after))
	s.measure(p, &e)
	if e.forced != 0 {
		e.miss = append(e.miss, fmt.Sprintf("%d forced takes", e.forced))
	}
	if s.cfg.fleet && e.after > e.target {
		e.miss = append(e.miss, fmt.Sprintf("all balanced after %v > %v", ms(e.after), e.target))
	}
	if e.dups > 0 {
		e.miss = append(e.miss, fmt.Sprintf("%d leases processed twice at once", e.dups))
	}
	waitFor(s.t, simLimit, s.settled) // a later move shows in the next event
	return e
}

// stagger lets up to a millisecond of fake time pass, a random amount drawn
// from the seed, between workers starting or stopping "at the same instant".
// Real processes never act at the same nanosecond, and in fake time two
// workers acting at the same instant are ordered by the Go scheduler, not by
// the seed: staggering them keeps the runs of one seed alike.
func (s *sim) stagger() {
	if *simLock {
		return
	}
	time.Sleep(time.Duration(1 + s.rng.Int64N(int64(time.Millisecond))))
}

// victim picks a live worker at random and removes it from the live list.
func (s *sim) victim() *worker {
	i := s.rng.IntN(len(s.live))
	w := s.live[i]
	s.live = slices.Delete(s.live, i, i+1)
	return w
}

// heldBy returns the keys w's consumers process.
func (s *sim) heldBy(w *worker) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, ws := range s.processing {
		if ws[w.id] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// takenOver reports whether a worker other than those gone has acquired each
// of keys since the phase began.
func (s *sim) takenOver(gone []*worker, keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		a, ok := s.firstAcq[k]
		if !ok || slices.ContainsFunc(gone, func(w *worker) bool { return w.id == a.who }) {
			return false
		}
	}
	return true
}

// mem returns the simulation's in-memory store, for its cost counters.
func (s *sim) mem() *memlease.Store { return s.store.(*memlease.Store) }

// leave stops k workers gracefully at the same instant.
func (s *sim) leave(k int) simEvent {
	n := len(s.live)
	var gone []*worker
	var keys []string
	for range k {
		w := s.victim()
		gone = append(gone, w)
		keys = append(keys, s.heldBy(w)...)
	}
	p := s.beginPhase()
	for _, w := range gone {
		w.cancel() // the graceful stop begins
		s.stagger()
	}
	waitFor(s.t, simLimit, func() bool { return s.takenOver(gone, keys) })
	for _, w := range gone {
		<-w.done
	}
	s.mu.Lock()
	var afterRelease, afterStop time.Duration
	toStopping, expired := 0, 0
	for _, key := range keys {
		a := s.firstAcq[key]
		afterStop = max(afterStop, a.at.Sub(p.at))
		g, ok := s.gaveUp[key]
		if !ok || g.at.Before(p.at) {
			expired++ // never released
			continue
		}
		afterRelease = max(afterRelease, a.at.Sub(g.at))
		if slices.ContainsFunc(gone, func(w *worker) bool { return w.id == g.who }) {
			toStopping++
		}
	}
	s.mu.Unlock()
	e := simEvent{
		scenario: fmt.Sprintf("leave %d→%d", n, n-k), metric: "release → peer processes (max)",
		value: afterRelease, target: time.Second, passes: s.maxPasses(p, s.live...),
		note:  fmt.Sprintf("%d leases; stop → all processed %v", len(keys), ms(afterStop)),
		after: ms(afterStop),
	}
	if k > 1 {
		// A lease assigned to a worker that is itself stopping is released
		// again by it (it lingers two assignment polls) and taken on a
		// survivor's next pass: the single-stop target does not apply.
		e.scenario = fmt.Sprintf("%d leave at once %d→%d", k, n, n-k)
		e.target = 2*leasing.DefaultAssignmentPollInterval + leasing.DefaultTakeInterval
		e.note += fmt.Sprintf("; %d assigned to a worker that was itself stopping", toStopping)
	}
	if s.cfg.fleet {
		// kcl-fleet: the stopping worker assigns each lease to a running
		// peer, which learns it from its next heartbeat. Issue 12's target
		// is on stop → all processed. Of two workers stopping together at
		// most one can give leases to the other, which passes them on at
		// its next owner-index poll (TestFleetGracefulStopHandsOverAtOnce
		// allows 1 s).
		e.metric, e.value, e.target = "stop → peer processes (max)", afterStop, fleetStopTarget
		e.note = fmt.Sprintf("%d leases; assigned by the stopping worker → processed %v (max)", len(keys), ms(afterRelease))
		if k > 1 {
			e.target = 2 * fleetStopTarget
			e.note += fmt.Sprintf("; %d assigned to a worker that was itself stopping", toStopping)
		}
	}
	if expired > 0 {
		e.miss = append(e.miss, fmt.Sprintf("%d leases left to expire", expired))
	}
	waitFor(s.t, simLimit, s.balanced)
	e.note += fmt.Sprintf("; balanced %v after stop", ms(time.Since(p.at)))
	s.measure(p, &e)
	waitFor(s.t, simLimit, s.settled) // a later move shows in the next event
	return e
}

// crash cuts one worker off from the table.
func (s *sim) crash() simEvent {
	n := len(s.live)
	w := s.victim()
	// Crash at a random instant within a renew interval.
	time.Sleep(time.Duration(s.rng.Int64N(int64(s.cfg.leaseDuration / 3))))
	synctest.Wait()
	keys := s.heldBy(w)
	p := s.beginPhase()
	w.crash()
	synctest.Wait() // writes in flight at the crash land, or fail
	// The last renewal of each lease: its last write before the crash (a
	// renewal, or the handoff or assignment that made w its owner).
	s.mu.Lock()
	renewed := make(map[string]time.Time, len(keys))
	for _, k := range keys {
		renewed[k] = s.lastWrite[k].at
	}
	s.mu.Unlock()
	waitFor(s.t, simLimit, func() bool { return s.takenOver([]*worker{w}, keys) })
	s.mu.Lock()
	var worst, afterCrash, spread time.Duration
	var first stamp
	var firstAfter time.Duration // from the last renewal to the first take
	for _, k := range keys {
		a := s.firstAcq[k]
		since := a.at.Sub(renewed[k])
		worst = max(worst, since)
		afterCrash = max(afterCrash, a.at.Sub(p.at))
		if first.at.IsZero() || a.at.Before(first.at) {
			first, firstAfter = a, since
		}
	}
	wave := 0
	for _, k := range keys {
		at := s.firstAcq[k].at
		spread = max(spread, at.Sub(first.at))
		if at.Equal(first.at) {
			wave++
		}
	}
	s.mu.Unlock()
	failedTakes := s.mem().Stats().Take.Failed - p.store.Take.Failed
	e := simEvent{
		scenario: fmt.Sprintf("crash %d→%d", n, n-1), metric: "last renewal → peer processes (max)",
		value: worst, target: s.cfg.leaseDuration + 2*time.Second, passes: s.maxPasses(p, s.live...),
		note: fmt.Sprintf("%d leases; %d taken %v after their last renewal (%d takes fenced off), the rest within %v more; crash → all processed %v",
			len(keys), wave, ms(firstAfter), failedTakes, ms(spread), ms(afterCrash)),
		after: ms(afterCrash),
	}
	waitFor(s.t, simLimit, s.balanced)
	e.note += fmt.Sprintf("; balanced %v after crash", ms(time.Since(p.at)))
	s.measure(p, &e)
	// Let the dead worker's Run return in the background: its stop waits
	// the shutdown timeout for consumers that will never call Done.
	w.cancel()
	waitFor(s.t, simLimit, s.settled) // a later move shows in the next event
	return e
}

// ms rounds a fake-time duration to the millisecond, the resolution at which
// the simulation reports and compares: renewing every lease duration / 3
// leaves nanosecond residues (8 s / 3 = 2.666666666 s) that mean nothing.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func failedWrites(d memlease.Stats) int64 {
	return d.Create.Failed + d.Renew.Failed + d.Take.Failed + d.Handoff.Failed +
		d.Checkpoint.Failed + d.Release.Failed + d.Delete.Failed
}

// simEvent is one row of the event table.
type simEvent struct {
	workers  int
	lease    time.Duration
	mode     string // simConfig.mode
	scenario string
	metric   string
	value    time.Duration
	target   time.Duration // 0: none
	miss     []string      // targets missed other than value > target
	passes   int64
	moved    int
	forced   int64
	writes   int64
	failed   int64
	note     string
	// Leave and crash: from the stop or the crash until a peer processes
	// every lease the worker held.
	after time.Duration
	// Cold start only: the most times one lease moved, and how many leases
	// moved more than twice (issue 12's target: none, at 10,000 × 500).
	mostMoves, movedOver2 int
	// Join: all balanced after. Every event: leases processed by two
	// workers at once during it (the harness's overlap check).
	dups int
	// kcl-fleet mode: leases assigned to a crashed worker during the event.
	toDead int
	// kcl-fleet crashes: each crash's time to all processed, their median,
	// and, for the leader, the slowest crash → a new leader.
	trials   []time.Duration
	median   time.Duration
	leaderAt time.Duration
}

func (e simEvent) missed() bool { return e.target > 0 && e.value > e.target || len(e.miss) > 0 }

// simCost is one row of the steady-state cost table.
type simCost struct {
	leases    int
	workers   int
	lease     time.Duration
	mode      string
	fleet     bool
	simulated time.Duration
	stats     memlease.Stats
	traffic   simTraffic // stats, with the roster's and the assignments' sizes
	leader    simTraffic // the leader's own requests (kcl-fleet mode)
	leaderID  string
	moved     int
	// Invariants over the whole run.
	overlaps, lost, carried int
	acquisitions            int
	digest                  uint64 // of the acquisitions, to compare runs
}

func printSimulation(events []simEvent, costs []simCost, seed uint64, wall time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nLease simulation: %d leases, seed %d, wall time %v\n\n", costs[0].leases, seed, wall.Round(time.Millisecond))
	b.WriteString("| N | mode | scenario | metric | value | target | met | taker passes (fleet: leader scans) | leases moved | forced takes | store writes (failed) | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range events {
		target, met := "–", "–"
		if e.target > 0 {
			target = "≤ " + e.target.String()
			met = "yes"
			if e.value > e.target {
				met = "**no**"
			}
		}
		if len(e.miss) > 0 {
			met = "**no**: " + strings.Join(e.miss, ", ")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %v | %s | %s | %d | %d | %d | %d (%d) | %s |\n",
			e.workers, e.mode, e.scenario, e.metric, e.value, target, met,
			e.passes, e.moved, e.forced, e.writes, e.failed, e.note)
	}

	checkpoints := "no checkpoints"
	if *simCheckpoint > 0 {
		checkpoints = fmt.Sprintf("a checkpoint per lease every %v", *simCheckpoint)
	}
	var leaseCosts, fleetCosts []simCost
	for _, c := range costs {
		if c.fleet {
			fleetCosts = append(fleetCosts, c)
		} else {
			leaseCosts = append(leaseCosts, c)
		}
	}
	if len(leaseCosts) > 0 {
		printLeaseSteady(&b, leaseCosts, checkpoints)
	}
	if len(fleetCosts) > 0 {
		fmt.Fprintf(&b, "\nSteady state, kcl-fleet mode (balanced fleet, %s): per lease-hour, in items (reads and writes) and capacity units (see TestSimulationScale for the model); the leader's own share; the columns after WCU count requests.\n\n", checkpoints)
		b.WriteString(fleetSteadyTable(fleetCosts))
	}
	b.WriteString("\nInvariants over each whole run: a lease processed by two workers at once; a committed checkpoint missing when a lease was next acquired, or from the table at the end.\n\n")
	b.WriteString("| N | mode | overlaps | checkpoints lost | acquisitions checked against a committed checkpoint | acquisitions digest |\n|---|---|---|---|---|---|\n")
	for _, c := range costs {
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %016x |\n", c.workers, c.mode, c.overlaps, c.lost, c.carried, c.digest)
	}
	b.WriteString("\nKCL 2.x for comparison (10 s lease, renew every 3.3 s, scan every 20 s): ≈ 1,090 writes/lease-h; 3 List calls and 3,000 items read per worker-minute at 1,000 leases.\n")
	fmt.Print(b.String())
}

// printLeaseSteady writes the steady-state table of per-lease runs.
func printLeaseSteady(b *strings.Builder, costs []simCost, checkpoints string) {
	fmt.Fprintf(b, "\nSteady state (balanced fleet, %s): writes per lease-hour by operation, reads per worker per minute.\n", checkpoints)
	b.WriteString("A List of n leases reads n items (a Scan billed by item size); ListOwned is a KEYS_ONLY index query.\n\n")
	b.WriteString("| N | lease | simulated | writes/lease-h | renew | take | handoff | checkpoint | release | failed | List calls/worker/min | items read/worker/min | Get/worker/min | ListOwned calls/worker/min | owned keys/worker/min | items read/lease-h | leases moved |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range costs {
		leaseHours := float64(c.leases) * c.simulated.Hours()
		workerMinutes := float64(c.workers) * c.simulated.Minutes()
		perLH := func(n int64) string { return fmt.Sprintf("%.0f", float64(n)/leaseHours) }
		perWM := func(n int64) string { return fmt.Sprintf("%.1f", float64(n)/workerMinutes) }
		d := c.stats
		fmt.Fprintf(b, "| %d | %v | %v | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
			c.workers, c.lease, c.simulated, perLH(d.Writes()), perLH(d.Renew.Total()), perLH(d.Take.Total()),
			perLH(d.Handoff.Total()), perLH(d.Checkpoint.Total()), perLH(d.Release.Total()), perLH(failedWrites(d)),
			perWM(d.Lists), perWM(d.ListedItems), perWM(d.Gets), perWM(d.ListOwnedCalls), perWM(d.OwnedKeys),
			perLH(d.ListedItems), c.moved)
	}
}

// TestConcurrentGracefulStopsHandOverPromptly: when two workers stop
// gracefully at the same instant (a rolling deploy with more than one
// unavailable), each may assign some of its leases to the other. A stopping
// worker lingers for two assignment polls and releases what it is handed, so
// the survivor takes those leases on its next pass instead of waiting for them
// to expire.
func TestConcurrentGracefulStopsHandOverPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 9)
		a, b, c := f.start("a"), f.start("b"), f.start("c")
		waitFor(t, 30*time.Second, func() bool { return f.holding("a") == 3 && f.holding("b") == 3 && f.holding("c") == 3 })
		a.cancel()
		b.cancel()
		<-a.done
		<-b.done
		stranded := 0
		for _, o := range f.owners() {
			if o == "a" || o == "b" {
				stranded++
			}
		}
		took := waitFor(t, 30*time.Second, func() bool { return f.holding("c") == 9 })
		if took > leasing.DefaultTakeInterval || stranded > 0 {
			t.Errorf("c processes all leases %v after a and b stopped (want ≤ %v); %d leases were left owned by a stopped worker (want 0)", took, leasing.DefaultTakeInterval, stranded)
		}
		f.checkNoOverlap()
		c.stop()
	})
}

// TestHandoffFromAnOwnerThatHasNotPickedUpItsLease covers a worker asking for
// a lease whose owner has not yet picked it up (assigned to it by a stopping
// peer, or handed to it by a final checkpoint, less than an assignment poll
// ago). The owner never held it, so no processor writes a final checkpoint:
// the owner completes the handoff itself on its next scan instead of letting
// it time out.
func TestHandoffFromAnOwnerThatHasNotPickedUpItsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFleet(t, 0)
		b := f.start("b") // its first pass finds nothing; it polls every 500 ms
		time.Sleep(100 * time.Millisecond)
		for i := range 4 {
			l := lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: checkpoint.TrimHorizon}
			if err := f.store.Create(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Take(t.Context(), l, "b"); err != nil { // as a stopping peer assigns it
				t.Fatal(err)
			}
		}
		c := f.start("c") // its first pass asks b for two leases before b has polled
		took := waitFor(t, 30*time.Second, func() bool { return f.holding("b") == 2 && f.holding("c") == 2 })
		if took > leasing.DefaultTakeInterval || c.coord.Stats().ForcedTakes != 0 {
			t.Errorf("c processes its share %v after joining, with %d forced takes; want ≤ %v and none", took, c.coord.Stats().ForcedTakes, leasing.DefaultTakeInterval)
		}
		f.checkNoOverlap()
		b.stop()
		c.stop()
	})
}
