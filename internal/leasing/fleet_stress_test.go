package leasing_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease/memlease"
)

// TestFleetRandomFaults runs a kcl fleet (WithFleet, default timings) of 3 to
// 6 workers over one memlease table of 20 to 40 leases, in fake time, for
// -fleet.duration while it crashes workers (and restarts them, under the same
// id or a new one), partitions them for a while and heals them, slows their
// store calls before and after the table, stops them gracefully and starts
// new ones; the leader is a target like any other. Consumers checkpoint
// periodically. After every step it checks that no lease is processed by two
// workers at once, that no two workers lead at the same instant (sampled
// every 10 ms), and that no checkpoint moves backwards: each write that lands
// is at or past the last one that landed, and the table is at or past every
// write a consumer was told succeeded. At the end it heals everything and
// requires a worker to lead within fleetLeaderless, and from then, within
// fleetConverge, every lease to be processed by exactly one live worker,
// which the table names as its owner, the live workers within one lease of
// each other. A crashed worker's calls all fail but its goroutines run on:
// its consumers must stop by its own deadline, as a cut-off worker's do.
//
// A seed fixes the driver's choices (steps, victims, durations); fake time
// makes every timing independent of the machine. Goroutines due at the same
// fake instant still run in the scheduler's order, so a replay takes the same
// steps but may not reach the very same interleaving. A failure names its
// seed, the command that replays it, and the last steps.
//
//	go test ./internal/leasing -run TestFleetRandomFaults -race -fleet.seeds=200
var (
	fleetSeed     = flag.Uint64("fleet.seed", 1, "TestFleetRandomFaults: the first seed")
	fleetSeeds    = flag.Int("fleet.seeds", 5, "TestFleetRandomFaults: how many seeds to run, from -fleet.seed on")
	fleetDuration = flag.Duration("fleet.duration", 2*time.Minute, "TestFleetRandomFaults: simulated time of faults per seed")
	fleetLog      = flag.Bool("fleet.log", false, "TestFleetRandomFaults: on a failure, print the coordinators' log (Info and above) of the last 30 s before the failure")
)

// The fleet timings of these tests: the defaults.
const (
	fleetF      = leasing.DefaultFailoverTime // F, 2 s
	fleetH      = fleetF / 4                  // H, 500 ms
	fleetMargin = 200 * time.Millisecond      // m at F = 2 s: a worker stops F − m after its last successful heartbeat's send
	// fleetConverge bounds the time from the end of all faults, once a
	// worker leads, until every lease is processed by one live worker.
	fleetConverge = 15 * time.Second
	// fleetLeaderless bounds the time from the end of all faults until a
	// worker leads. When the leader and its standbys are all gone, the
	// remaining workers read the lock every slow lock poll and take it over
	// at the first read at least F after the read that saw its last
	// version: up to two slow polls.
	fleetLeaderless = 2*leasing.DefaultSlowLockPoll + fleetF + fleetH
)

func TestFleetRandomFaults(t *testing.T) {
	for seed := *fleetSeed; seed < *fleetSeed+uint64(*fleetSeeds); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { fleetChaos(t, seed, *fleetDuration) })
		})
	}
}

type incState uint8

const (
	incRunning  incState = iota + 1
	incStopping          // a graceful stop is under way
	incCrashed           // every store call fails; ended later
	incEnded             // Run returned
)

// incarnation is one run of a worker: a worker id may run again after its
// previous incarnation ended.
type incarnation struct {
	*worker
	label string // id#n: processing is recorded by incarnation
	link  *link
	// ckEvery is how often its consumers checkpoint while they process; 0:
	// only a final checkpoint on a handoff or a stop.
	ckEvery time.Duration
	// Guarded by chaos.mu.
	state   incState
	reapAt  time.Time // crashed: when to end it
	restart bool      // crashed: start the same id again once ended
	reaping bool
	// killedAt: killed (kill), its processing ended then.
	killedAt time.Time
}

// span is one consumer's processing of one lease.
type span struct {
	key, label, id string
	start, end     time.Time // end is zero while it processes
	cause          error
	// stillborn: the lease's context had ended when the coordinator handed
	// it over (a lease acquired after the worker's deadline); its consumer
	// processes nothing.
	stillborn bool
}

// chaos is a fleet under random faults.
type chaos struct {
	t      *testing.T
	seed   uint64
	f      *fleet
	raw    *memlease.Store
	book   *ckBook
	begin  time.Time
	logger *zap.Logger
	logs   *observer.ObservedLogs // with -fleet.log
	failAt time.Time              // when an invariant was first seen broken

	mu      sync.Mutex
	incs    []*incarnation
	nextID  int
	steps   []string
	spans   []*span
	leaders []string      // instants at which two workers led
	samples [2]int        // leader samples: with no leader, with one
	lastLed time.Time     // the last sample with a leader
	gap     time.Duration // the longest stretch without one
}

func newChaos(t *testing.T, seed uint64, leases int) *chaos {
	raw := memlease.New()
	c := &chaos{
		t: t, seed: seed, raw: raw, book: newCkBook(), begin: time.Now(), lastLed: time.Now(),
		f:      newFleetOn(t, raw, leases),
		logger: zap.NewNop(),
	}
	if *fleetLog {
		core, logs := observer.New(zap.InfoLevel)
		c.logger, c.logs = zap.New(core), logs
	}
	return c
}

func (c *chaos) step(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, fmt.Sprintf("%8v  ", time.Since(c.begin).Truncate(time.Millisecond))+fmt.Sprintf(format, args...))
}

// start starts an incarnation of worker id ("" for a new id) whose consumers
// checkpoint only when they give a lease up.
func (c *chaos) start(id string) *incarnation { return c.startWith(id, 0) }

// startWith starts an incarnation of worker id ("" for a new id) whose
// consumers also checkpoint every ckEvery.
func (c *chaos) startWith(id string, ckEvery time.Duration) *incarnation {
	c.mu.Lock()
	if id == "" {
		c.nextID++
		id = fmt.Sprintf("w%d", c.nextID)
	}
	n := 1
	for _, in := range c.incs {
		if in.id == id {
			n++
		}
	}
	stream := uint64(len(c.incs))
	c.mu.Unlock()
	ln := &link{}
	w := &worker{id: id, store: &workerStore{sharedStore: &linkStore{Store: c.raw, link: ln, book: c.book}}, done: make(chan struct{})}
	in := &incarnation{worker: w, label: fmt.Sprintf("%s#%d", id, n), link: ln, state: incRunning, ckEvery: ckEvery}
	coord, err := leasing.NewCoordinator(w.store, id, fleetMode,
		leasing.WithRand(rand.New(rand.NewPCG(c.seed, stream))),
		leasing.WithLogger(c.logger.With(zap.String("incarnation", in.label))))
	if err != nil {
		c.t.Fatal(err)
	}
	w.coord = coord
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	c.mu.Lock()
	c.incs = append(c.incs, in)
	c.mu.Unlock()
	go func() {
		defer close(w.done)
		if err := coord.Run(ctx, drainAfter(ctx), func(h *leasing.Held) {
			stillborn := h.Context().Err() != nil // onAcquire runs on the coordinator's goroutine
			go c.consume(in, h, stillborn)
		}); err != nil {
			c.t.Errorf("%s: Run: %v", in.label, err)
		}
		c.mu.Lock()
		in.state = incEnded
		c.mu.Unlock()
	}()
	c.step("start %s", in.label)
	return in
}

// consume plays a shard consumer: it processes while the lease's context
// lives, checkpointing a further position every in.ckEvery if set; then, on
// a handoff or a stop, writes a final checkpoint; then calls Done, as the
// Worker does whatever the cause. Its span records when it processed.
func (c *chaos) consume(in *incarnation, h *leasing.Held, stillborn bool) {
	key := h.Key()
	sp := &span{key: key, label: in.label, id: in.id, start: time.Now(), stillborn: stillborn}
	c.f.mu.Lock()
	if c.f.processing[key] == nil {
		c.f.processing[key] = map[string]bool{}
	}
	c.f.processing[key][in.label] = true
	c.f.mu.Unlock()
	c.mu.Lock()
	c.spans = append(c.spans, sp)
	c.mu.Unlock()
	// Processing ends the instant the context does, whatever write is in
	// flight; the final checkpoint and Done wait until that is recorded.
	ended := make(chan struct{})
	context.AfterFunc(h.Context(), func() {
		c.f.mu.Lock()
		delete(c.f.processing[key], in.label)
		c.f.mu.Unlock()
		c.mu.Lock()
		sp.end, sp.cause = time.Now(), context.Cause(h.Context())
		c.mu.Unlock()
		close(ended)
	})

	pos := seqOf(h.Lease().Checkpoint)
	var tick <-chan time.Time
	if in.ckEvery > 0 {
		t := time.NewTicker(in.ckEvery + time.Duration(pos%97)*time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	write := func(ctx context.Context) {
		p, _ := checkpoint.At(strconv.FormatInt(pos, 10), 0)
		if err := h.WriteCheckpoint(ctx, p, checkpoint.Position{}, nil); err == nil {
			c.book.ok(key, p)
		}
	}
	for h.Context().Err() == nil {
		select {
		case <-h.Context().Done():
			continue
		case <-tick:
		}
		pos += 10 // records processed since the last checkpoint
		// As an SDK call would, the write has a timeout of its own: it may
		// land after the lease's context ended, and then fencing decides.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		write(ctx)
		cancel()
	}
	<-ended
	cause := context.Cause(h.Context())
	if errors.Is(cause, leasing.ErrHandoffRequested) || errors.Is(cause, leasing.ErrStopping) {
		pos++
		write(context.Background())
	}
	_ = h.Done(context.Background()) // fails under faults; the lease then expires or is reassigned
}

// sampleLeaders checks every 10 ms until ctx ends that at most one worker
// leads.
func (c *chaos) sampleLeaders(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		incs := slices.Clone(c.incs)
		c.mu.Unlock()
		var leading []string
		for _, in := range incs {
			select {
			case <-in.done:
				continue
			default:
			}
			if in.link.running() && in.coord.Leading() {
				leading = append(leading, in.label)
			}
		}
		c.mu.Lock()
		if len(leading) > 1 {
			c.leaders = append(c.leaders, fmt.Sprintf("at %v %v lead together", time.Since(c.begin), leading))
		} else {
			c.samples[len(leading)]++
		}
		if len(leading) == 1 {
			c.gap = max(c.gap, time.Since(c.lastLed))
			c.lastLed = time.Now()
		}
		c.mu.Unlock()
	}
}

// check fails the test if an invariant was broken so far.
func (c *chaos) check() {
	c.t.Helper()
	var bad []string
	c.mu.Lock()
	bad = append(bad, c.overlaps()...)
	bad = append(bad, c.leaders...)
	c.mu.Unlock()
	bad = append(bad, c.book.check(c.raw.Leases())...)
	if len(bad) > 0 {
		c.fatalf("seed %d: %s", c.seed, strings.Join(bad, "\n"))
	}
}

func (c *chaos) fatalf(format string, args ...any) {
	c.t.Helper()
	c.failAt = time.Now()
	c.t.Fatalf(format, args...)
}

// overlaps returns the pairs of spans of one lease that overlap: the later
// one started before the earlier one ended. A lease handed over ends one
// span and starts the next at the same instant, which is no overlap; a
// stillborn span processed nothing. c.mu must be held.
func (c *chaos) overlaps() []string {
	byKey := map[string][]*span{}
	for _, sp := range c.spans {
		if !sp.stillborn {
			byKey[sp.key] = append(byKey[sp.key], sp)
		}
	}
	inc := map[string]*incarnation{}
	for _, in := range c.incs {
		inc[in.label] = in
	}
	// end is when a span stopped processing: at its context's end, or
	// when its process was killed.
	end := func(sp *span) time.Time {
		k := inc[sp.label].killedAt
		if !k.IsZero() && (sp.end.IsZero() || k.Before(sp.end)) {
			return k
		}
		return sp.end
	}
	var out []string
	for key, sps := range byKey {
		for j, b := range sps {
			if k := inc[b.label].killedAt; !k.IsZero() && !k.After(b.start) {
				continue // its process was dead by then
			}
			for _, a := range sps[:j] {
				if e := end(a); e.IsZero() || e.After(b.start) {
					out = append(out, fmt.Sprintf("%s: %s processed it from %v while %s processed it from %v to %s",
						key, b.label, b.start.Sub(c.begin), a.label, a.start.Sub(c.begin), c.endOf(a)))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func (c *chaos) endOf(sp *span) string {
	if sp.end.IsZero() {
		return "now"
	}
	return fmt.Sprintf("%v (%v)", sp.end.Sub(c.begin), sp.cause)
}

// report logs the steps and the replay command if the test failed.
func (c *chaos) report(test string) {
	if !c.t.Failed() {
		return
	}
	c.mu.Lock()
	steps := c.steps[max(0, len(c.steps)-60):]
	c.mu.Unlock()
	c.t.Logf("seed %d, last steps:\n%s", c.seed, strings.Join(steps, "\n"))
	if c.failAt.IsZero() {
		c.failAt = time.Now()
	}
	if c.logs != nil {
		var b strings.Builder
		from := c.failAt.Add(-30 * time.Second)
		for _, e := range c.logs.All() {
			if e.Time.Before(from) || e.Time.After(c.failAt) {
				continue
			}
			fmt.Fprintf(&b, "%8v %-5s %s", e.Time.Sub(c.begin).Truncate(time.Millisecond), e.Level, e.Message)
			for k, v := range e.ContextMap() {
				fmt.Fprintf(&b, " %s=%v", k, v)
			}
			b.WriteByte('\n')
		}
		c.t.Logf("log of the last 30 s before the failure:\n%s", b.String())
	}
	if test != "" {
		c.t.Logf("replay: go test ./internal/leasing -run '%s/seed=%d$' -fleet.seed=%d -fleet.seeds=1 -fleet.duration=%v -v", test, c.seed, c.seed, *fleetDuration)
	}
}

// kill kills in as SIGKILL would: its processing ends now and every store
// call of it fails from now on. (crash leaves its goroutines running until
// its own deadline: a worker cut off from the table, which is the harder
// case.)
func (c *chaos) kill(in *incarnation) {
	c.mu.Lock()
	in.state, in.killedAt = incCrashed, time.Now()
	c.mu.Unlock()
	in.crash()
	in.link.cut(time.Now().Add(24 * time.Hour))
}

// pick returns the incarnations in state st, in start order.
func (c *chaos) pick(st ...incState) []*incarnation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*incarnation
	for _, in := range c.incs {
		if slices.Contains(st, in.state) {
			out = append(out, in)
		}
	}
	return out
}

func (c *chaos) leaderOf(ins []*incarnation) *incarnation {
	for _, in := range ins {
		if in.link.running() && in.coord.Leading() {
			return in
		}
	}
	return nil
}

// shutdown ends every incarnation and waits for them (deferred, so that it
// also runs after a t.Fatal).
func (c *chaos) shutdown() {
	c.mu.Lock()
	incs := slices.Clone(c.incs)
	c.mu.Unlock()
	for _, in := range incs {
		in.link.heal()
		in.cancel()
	}
	for _, in := range incs {
		select {
		case <-in.done:
		case <-time.After(2 * shutdownTimeout):
			c.t.Errorf("seed %d: %s did not stop within %v", c.seed, in.label, 2*shutdownTimeout)
		}
	}
}

// converged reports whether the running incarnations process every lease
// between them, each within one lease of the others' share, each lease by
// the worker the table names as its owner, with no handoff pending.
func (c *chaos) converged() bool {
	return c.settled(len(c.raw.Leases()), c.pick(incRunning)...)
}

func fleetChaos(t *testing.T, seed uint64, dur time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 0xf1ee7))
	c := newChaos(t, seed, 20+rng.IntN(21))
	defer c.report("TestFleetRandomFaults")
	defer c.shutdown()
	sctx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() { defer close(sampled); c.sampleLeaders(sctx) }()
	defer func() { stopSampling(); <-sampled }()

	// Consumers checkpoint every 200 ms to 3 s, or only when they give a
	// lease up.
	start := func(id string) {
		every := 200*time.Millisecond + time.Duration(rng.Int64N(int64(2800*time.Millisecond)))
		if rng.IntN(4) == 0 {
			every = 0
		}
		c.startWith(id, every)
	}
	for range 3 + rng.IntN(4) {
		start("")
	}
	end := c.begin.Add(dur)
	faults := 0
	for time.Now().Before(end) {
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(2200*time.Millisecond))))
		synctest.Wait()
		c.check()
		now := time.Now()

		// Crashed workers are ended after a while and, for some, their id
		// restarted once the previous incarnation has ended.
		for _, in := range c.pick(incCrashed) {
			c.mu.Lock()
			due := !in.reaping && !now.Before(in.reapAt)
			in.reaping = in.reaping || due
			c.mu.Unlock()
			if due {
				c.step("end %s", in.label)
				go in.end()
			}
		}
		for _, in := range c.pick(incEnded) {
			c.mu.Lock()
			again := in.restart
			in.restart = false
			c.mu.Unlock()
			if again {
				start(in.id)
			}
		}

		live := c.pick(incRunning, incStopping)
		running := c.pick(incRunning)
		victim := func() *incarnation {
			if l := c.leaderOf(live); l != nil && rng.IntN(3) == 0 {
				return l
			}
			if len(live) == 0 {
				return nil
			}
			return live[rng.IntN(len(live))]
		}
		switch r := rng.IntN(100); {
		case r < 22: // partition, short (survived) or long (deadline passes)
			if v := victim(); v != nil {
				d := 200*time.Millisecond + time.Duration(rng.Int64N(int64(1300*time.Millisecond)))
				if rng.IntN(2) == 0 {
					d = fleetF + time.Duration(rng.Int64N(int64(8*time.Second)))
				}
				v.link.cut(now.Add(d))
				c.step("partition %s for %v", v.label, d)
				faults++
			}
		case r < 42: // slow calls, before and/or after the table
			if v := victim(); v != nil {
				var before, after time.Duration
				if rng.IntN(3) > 0 {
					before = time.Duration(rng.Int64N(int64(3 * fleetH)))
				}
				if rng.IntN(3) > 0 {
					after = time.Duration(rng.Int64N(int64(3 * fleetH)))
				}
				d := time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
				v.link.slow(now.Add(d), before, after)
				c.step("slow %s for %v: %v before, %v after", v.label, d, before, after)
				faults++
			}
		case r < 54: // crash
			if v := victim(); v != nil && len(c.pick(incCrashed)) < 2 {
				c.mu.Lock()
				v.state = incCrashed
				v.reapAt = now.Add(time.Second + time.Duration(rng.Int64N(int64(8*time.Second))))
				v.restart = rng.IntN(2) == 0
				c.mu.Unlock()
				v.crash()
				c.step("crash %s (restart same id: %v)", v.label, v.restart)
				if !v.restart {
					start("")
				}
				faults++
			}
		case r < 66: // graceful stop
			if len(running) >= 3 {
				v := running[rng.IntN(len(running))]
				c.mu.Lock()
				v.state = incStopping
				c.mu.Unlock()
				c.step("stop %s", v.label)
				go v.stop()
				faults++
			}
		case r < 78: // join
			if len(running) < 6 {
				start("")
				faults++
			}
		}
	}

	// Heal everything, end the crashed workers, and let the fleet settle.
	c.step("heal all")
	for _, in := range c.pick(incRunning, incStopping, incCrashed) {
		in.link.heal()
	}
	for _, in := range c.pick(incCrashed) {
		c.mu.Lock()
		in.restart = false
		reaping := in.reaping
		in.reaping = true
		c.mu.Unlock()
		if !reaping {
			go in.end()
		}
	}
	for _, in := range c.pick(incStopping, incCrashed) {
		<-in.done
	}
	for len(c.pick(incRunning)) < 2 {
		start("")
	}
	healed := time.Now()
	var led time.Time // when a running worker first led after the heal
	for !c.converged() {
		if led.IsZero() && c.leaderOf(c.pick(incRunning)) != nil {
			led = time.Now()
		}
		switch {
		case led.IsZero() && time.Since(healed) > fleetLeaderless:
			c.check()
			c.fatalf("seed %d: no worker leads %v after the faults ended:\n%s", seed, fleetLeaderless, c.describe())
		case !led.IsZero() && time.Since(led) > fleetConverge:
			c.check()
			c.fatalf("seed %d: %v after the faults ended and a worker led (%v after), the leases are not processed fairly by the live workers, each by its owner:\n%s",
				seed, fleetConverge, led.Sub(healed), c.describe())
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
	}
	c.step("converged after %v", time.Since(healed))
	c.check()
	st := c.raw.Stats()
	if led.IsZero() {
		led = healed // converged before the first sample
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("seed %d: %d faults in %v; %d incarnations, %d leases, %d consumers, %d checkpoints landed, %d assignments, %d leaderships, a leader %.0f %% of the time (at most %v without); after healing a leader in %v, every lease processed in %v",
		seed, faults, dur, len(c.incs), len(c.raw.Leases()), len(c.spans), st.Checkpoint.Succeeded, st.Assign.Succeeded,
		st.AcquireLeader.Succeeded, 100*float64(c.samples[1])/float64(max(1, c.samples[0]+c.samples[1])), c.gap, led.Sub(healed), time.Since(healed))
}

// describe lists each lease's owner and the incarnations processing it.
func (c *chaos) describe() string {
	table := c.raw.Leases()
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	var b strings.Builder
	for _, l := range table {
		procs := make([]string, 0, len(c.f.processing[l.Key]))
		for p := range c.f.processing[l.Key] {
			procs = append(procs, p)
		}
		slices.Sort(procs)
		fmt.Fprintf(&b, "%s owner %q checkpointOwner %q counter %d: processed by %v\n", l.Key, l.Owner, l.CheckpointOwner, l.Counter, procs)
	}
	c.mu.Lock()
	var ids []string
	for _, in := range c.incs {
		fmt.Fprintf(&b, "%s state %d leading %v\n", in.label, in.state, in.link.running() && in.coord.Leading())
		ids = append(ids, in.id)
	}
	c.mu.Unlock()
	lock, err := c.raw.Leader(context.Background())
	fmt.Fprintf(&b, "leader lock %+v %v\n", lock, err)
	roster, _ := c.raw.Roster(context.Background())
	hbs, _ := c.raw.Heartbeats(context.Background(), ids)
	fmt.Fprintf(&b, "roster %v\nheartbeats %+v\n", roster, hbs)
	return b.String()
}

// settled reports whether the incarnations ins process n leases between them,
// each within one of the others, and the table agrees: every lease owned by
// the worker processing it, none in a handoff.
func (c *chaos) settled(n int, ins ...*incarnation) bool {
	table := c.raw.Leases()
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	lo, hi, total := n, 0, 0
	for _, in := range ins {
		k := 0
		for _, procs := range c.f.processing {
			if procs[in.label] {
				k++
			}
		}
		lo, hi, total = min(lo, k), max(hi, k), total+k
	}
	if total != n || hi-lo > 1 {
		return false
	}
	for _, l := range table {
		if l.InHandoff() || len(c.f.processing[l.Key]) != 1 {
			return false
		}
		for _, in := range ins {
			if c.f.processing[l.Key][in.label] && in.id != l.Owner {
				return false
			}
		}
	}
	return true
}

// open returns the spans of in still processing.
func (c *chaos) open(in *incarnation) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, sp := range c.spans {
		if sp.label == in.label && sp.end.IsZero() && !sp.stillborn {
			out = append(out, *sp)
		}
	}
	return out
}

// next returns the first span of key started at or after from by another
// incarnation than label.
func (c *chaos) next(key, label string, from time.Time) (span, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sp := range c.spans {
		if sp.key == key && sp.label != label && !sp.stillborn && !sp.start.Before(from) {
			return *sp, true
		}
	}
	return span{}, false
}

// ended returns the span of in for key that started at start, as it is now.
func (c *chaos) ended(in *incarnation, key string, start time.Time) span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sp := range c.spans {
		if sp.label == in.label && sp.key == key && sp.start.Equal(start) {
			return *sp
		}
	}
	return span{}
}

// startLeader starts a worker alone on the table and waits until it leads,
// then starts the others; it returns them all, the leader first.
func (c *chaos) startLeader(others int) []*incarnation {
	c.t.Helper()
	l := c.start("")
	waitFor(c.t, 5*time.Second, func() bool { return l.link.running() && l.coord.Leading() })
	ins := []*incarnation{l}
	for range others {
		ins = append(ins, c.start(""))
	}
	return ins
}

// TestFleetPartitionedWorkerStopsByItsDeadline cuts a worker holding leases
// off the table: each of its consumers must stop by the worker's deadline
// (F − m after the send of its last successful heartbeat, so before F after
// the cut), before any other worker starts on that lease; its leases must go
// to the others; and once healed it must rejoin and get its share back.
func TestFleetPartitionedWorkerStopsByItsDeadline(t *testing.T) {
	for _, leader := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader=%v", leader), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newChaos(t, 1, 12)
				defer c.report("")
				defer c.shutdown()
				ins := c.startLeader(2)
				waitFor(t, 10*time.Second, func() bool { return c.settled(12, ins...) })
				time.Sleep(3 * time.Second) // the standbys have read the leader's heartbeat
				victim := ins[1]
				if leader {
					victim = ins[0]
				}
				held := c.open(victim)
				if len(held) == 0 {
					t.Fatalf("%s processes nothing before the cut", victim.label)
				}

				cutAt := time.Now()
				victim.link.cut(cutAt.Add(time.Hour))
				synctest.Wait() // a heartbeat that landed before the cut has recorded its send time
				deadline := victim.link.lastBeatSent().Add(fleetF - fleetMargin)
				took := waitFor(t, 10*time.Second, func() bool {
					for _, sp := range held {
						if _, ok := c.next(sp.key, victim.label, sp.start); !ok {
							return false
						}
					}
					return true
				})
				for _, sp := range held {
					sp = c.ended(victim, sp.key, sp.start)
					nx, _ := c.next(sp.key, victim.label, sp.start)
					switch {
					case sp.end.IsZero():
						t.Errorf("%s: %s still processes it after the cut, while %s does since %v", sp.key, victim.label, nx.label, nx.start.Sub(cutAt))
					case sp.end.After(deadline):
						t.Errorf("%s: %s stopped %v after the cut, past its deadline (%v after the cut)", sp.key, victim.label, sp.end.Sub(cutAt), deadline.Sub(cutAt))
					case !errors.Is(sp.cause, leasing.ErrHeartbeatExpired):
						t.Errorf("%s: %s stopped with %v, want ErrHeartbeatExpired", sp.key, victim.label, sp.cause)
					case !nx.start.After(sp.end):
						t.Errorf("%s: %s started %v after the cut, not after %s stopped (%v after the cut)", sp.key, nx.label, nx.start.Sub(cutAt), victim.label, sp.end.Sub(cutAt))
					}
					if !sp.end.IsZero() && sp.end.Sub(cutAt) >= fleetF {
						t.Errorf("%s: %s stopped %v after the cut, not within F (%v)", sp.key, victim.label, sp.end.Sub(cutAt), fleetF)
					}
				}
				t.Logf("%s cut off: its %d consumers stopped %v after the cut (its deadline); the others processed all its leases %v after the cut",
					victim.label, len(held), deadline.Sub(cutAt), took)

				victim.link.heal()
				rejoin := c.waitSettled(fleetConverge, 12, ins...)
				t.Logf("healed: %s has its share back %v later", victim.label, rejoin)
				c.check()
			})
		})
	}
}

// spansOf returns the spans of in.
func (c *chaos) spansOf(in *incarnation) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, sp := range c.spans {
		if sp.label == in.label {
			out = append(out, *sp)
		}
	}
	return out
}

// waitSettled waits until c.settled(n, ins...) holds, and returns how long
// that took; it fails the test with the table and who processes what after
// limit.
func (c *chaos) waitSettled(limit time.Duration, n int, ins ...*incarnation) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !c.settled(n, ins...) {
		if time.Since(start) > limit {
			labels := make([]string, len(ins))
			for i, in := range ins {
				labels[i] = in.label
			}
			c.fatalf("%v later, the %d leases are not processed fairly by %v, each by its owner:\n%s", limit, n, labels, c.describe())
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
	}
	return time.Since(start)
}
