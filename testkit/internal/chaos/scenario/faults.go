package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
	"github.com/kclgo/kcl/testkit/internal/chaos/proxy"
	"github.com/kclgo/kcl/internal/streamctl"
)

// proxyRules returns the rules of a proxy fault window of kind k, for the
// Kinesis and the DynamoDB proxy; scale in [0, 1) varies the latencies;
// failover is the failover time (Config.failoverTime).
func proxyRules(k string, scale float64, failover time.Duration) (kin, ddb []proxy.Rule) {
	lat := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(scale*float64(hi-lo)) }
	switch k {
	case FaultLatency:
		kin = []proxy.Rule{{Kind: proxy.Latency, Probability: 0.5, Latency: lat(100*time.Millisecond, 800*time.Millisecond)}}
		ddb = []proxy.Rule{{Kind: proxy.Latency, Probability: 0.3, Latency: lat(50*time.Millisecond, 400*time.Millisecond)}}
	case FaultReset:
		kin = []proxy.Rule{{Kind: proxy.Reset, Probability: 0.1}}
		ddb = []proxy.Rule{{Kind: proxy.Reset, Probability: 0.05}}
	case FaultBlackhole:
		kin = []proxy.Rule{{Kind: proxy.Blackhole, Probability: 0.05, Latency: lat(time.Second, 3*time.Second)}}
		ddb = []proxy.Rule{{Kind: proxy.Blackhole, Probability: 0.03, Latency: lat(time.Second, 3*time.Second)}}
	case FaultError500:
		kin = []proxy.Rule{{Kind: proxy.Error500, Probability: 0.15}}
		ddb = []proxy.Rule{{Kind: proxy.Error500, Probability: 0.1}}
	case FaultThrottle:
		kin = []proxy.Rule{{Op: "GetRecords", Kind: proxy.Throttle, Probability: 0.3}, {Op: "ListShards", Kind: proxy.Throttle, Probability: 0.2}}
		ddb = []proxy.Rule{{Kind: proxy.Throttle, Probability: 0.1}}
	case FaultExpiredIterator:
		kin = []proxy.Rule{{Op: "GetRecords", Kind: proxy.ExpiredIterator, Probability: 0.2}}
	case FaultSlowDynamoDB:
		// Up to half the failover time per call: renewals or heartbeats
		// are late, some leases expire or some workers miss their
		// deadline, and their shards move.
		ddb = []proxy.Rule{{Kind: proxy.Latency, Probability: 1, Latency: lat(failover/10, failover/2)}}
	case FaultDropResponse:
		kin = []proxy.Rule{{Op: "GetRecords", Kind: proxy.DropResponse, Probability: 0.05}}
		ddb = []proxy.Rule{{Op: "UpdateItem", Kind: proxy.DropResponse, Probability: 0.1}, {Op: "PutItem", Kind: proxy.DropResponse, Probability: 0.1}}
	case FaultSlowBody:
		kin = []proxy.Rule{{Op: "GetRecords", Kind: proxy.SlowBody, Probability: 0.3, Latency: lat(20*time.Millisecond, 100*time.Millisecond)}}
	}
	return kin, ddb
}

// executor carries out a schedule. Actions start at their time, in order;
// reshards run inline (the next action waits for the stream to be ACTIVE),
// pauses, restarts and proxy windows finish in the background.
type executor struct {
	cfg      Config
	st       *streamctl.Stream
	fl       *fleet
	kin, ddb *proxy.Proxy
	j        *journal
	// leader reads the leader lock (lease.FleetStore.Leader).
	leader func(context.Context) (lease.LeaderLock, error)

	mu     sync.Mutex
	counts map[string]int // actions carried out, by kind
	errs   []string
	// disrupted holds the workers a process or leader fault is acting on:
	// killed or stopped and not restarted yet, paused, partitioned. A
	// leader fault lands on whichever worker leads, which the schedule
	// cannot know, and when the executor falls behind its schedule (a
	// reshard the emulator is slow to finish) actions due long ago run back
	// to back; a second fault on a disrupted worker is skipped, so that it
	// neither races the first one's restart nor leaves the fleet without an
	// undisturbed worker.
	disrupted map[string]bool
	wg        sync.WaitGroup
}

func (e *executor) count(kind string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[kind]++
}

// skip records an action that could not start because its worker is not
// running (a restart took longer than the schedule assumed): not a
// failure of the system under test.
func (e *executor) skip(a Action, err error) {
	e.j.logf("%s skipped: %v", a.Kind, err)
	e.count("skipped " + a.Kind)
}

func (e *executor) fail(a Action, err error) {
	e.j.logf("%s FAILED: %v", a.Kind, err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf("%v: %v", a, err))
}

// run carries out actions, each at start+At, until ctx is done; then it
// waits for the background parts (which are cut short: windows close,
// paused workers continue, killed workers restart at once).
func (e *executor) run(ctx context.Context, start time.Time, actions []Action) {
	for _, a := range actions {
		sleep(ctx, time.Until(start.Add(a.At)))
		if ctx.Err() != nil {
			break
		}
		e.do(ctx, a)
	}
	e.wg.Wait()
}

func (e *executor) do(ctx context.Context, a Action) {
	e.j.logf("%s", a)
	switch {
	case a.Kind == FaultJoin:
		if err := e.fl.start(a.Worker); err != nil {
			e.fail(a, err)
			return
		}
		e.count(a.Kind)
	case a.Kind == FaultStopReshard:
		if !e.pause(ctx, a, a.Worker, false) {
			return
		}
		if err := e.reshard(ctx, a); errors.Is(err, errShardLimit) {
			e.skip(a, err)
		} else if err != nil {
			e.fail(a, err)
		}
	case isReshard(a.Kind):
		if err := e.reshard(ctx, a); errors.Is(err, errShardLimit) {
			e.skip(a, err)
			return
		} else if err != nil {
			e.fail(a, err)
			return
		}
		e.count(a.Kind)
	case a.Kind == FaultSIGSTOP:
		e.pause(ctx, a, a.Worker, false)
	case a.Kind == FaultPartition:
		e.partition(ctx, a, a.Worker, false)
	case isLeaderFault(a.Kind):
		e.leaderFault(ctx, a)
	case a.Kind == FaultSIGKILLChild:
		pid, err := e.fl.pid(a.Worker)
		if err != nil {
			e.skip(a, err)
			return
		}
		kids, err := children(pid)
		if err != nil {
			e.fail(a, err)
			return
		}
		if len(kids) == 0 {
			e.skip(a, fmt.Errorf("host %s (pid %d) has no children", a.Worker, pid))
			return
		}
		kid := kids[min(int(a.Pick*float64(len(kids))), len(kids)-1)]
		if err := syscall.Kill(kid, syscall.SIGKILL); err != nil {
			e.skip(a, fmt.Errorf("child %d of %s: %w", kid, a.Worker, err)) // exited meanwhile
			return
		}
		e.j.logf("SIGKILL child %d of %s (one of %d)", kid, a.Worker, len(kids))
		e.count(a.Kind)
	case a.Kind == FaultSIGKILL || a.Kind == FaultSIGTERM:
		e.stop(ctx, a, a.Worker, false)
	default:
		kin, ddb := proxyRules(a.Kind, a.Scale, e.cfg.failoverTime())
		if err := e.kin.SetRules(kin); err != nil {
			e.fail(a, err)
			return
		}
		if err := e.ddb.SetRules(ddb); err != nil {
			e.fail(a, err)
			return
		}
		e.count("window " + a.Kind)
		e.background(ctx, a, func(bctx context.Context) {
			sleep(bctx, a.Dur)
			_ = e.kin.SetRules(nil)
			_ = e.ddb.SetRules(nil)
			e.j.logf("window %s closed", a.Kind)
		})
	}
}

// claim records that a fault acts on worker until release, and reports
// false if one already does.
func (e *executor) claim(worker string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.disrupted[worker] {
		return false
	}
	if e.disrupted == nil {
		e.disrupted = make(map[string]bool)
	}
	e.disrupted[worker] = true
	return true
}

func (e *executor) release(worker string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.disrupted, worker)
}

// errDisrupted is matched by a fault on a worker another fault acts on.
var errDisrupted = errors.New("disrupted already")

// stop sends w SIGKILL (FaultSIGKILL, FaultLeaderSIGKILL) or SIGTERM and
// restarts it a.Dur after it exited.
func (e *executor) stop(ctx context.Context, a Action, w string, leader bool) {
	sig, kind := syscall.SIGKILL, history.SIGKILL
	if a.Kind == FaultSIGTERM {
		sig, kind = syscall.SIGTERM, history.SIGTERM
	}
	if !e.claim(w) {
		e.skip(a, fmt.Errorf("worker %s: %w", w, errDisrupted))
		return
	}
	p, err := e.fl.signalAs(w, sig, kind, leader)
	if err != nil {
		e.release(w)
		e.skip(a, err)
		return
	}
	e.count(a.Kind)
	e.background(ctx, a, func(bctx context.Context) {
		defer e.release(w)
		if !wait(p, e.cfg.ShutdownTimeout+5*time.Second) {
			e.j.logf("%s did not exit after %s: killing it", w, a.Kind)
			_, _ = e.fl.signal(w, syscall.SIGKILL, history.SIGKILL)
			<-p.done
		}
		sleep(bctx, a.Dur)
		e.j.logf("restart %s", w)
		if err := e.fl.start(w); err != nil {
			e.fail(a, err)
		}
	})
}

// pause sends w SIGSTOP and SIGCONT a.Dur later, and reports whether it
// was stopped.
func (e *executor) pause(ctx context.Context, a Action, w string, leader bool) bool {
	if !e.claim(w) {
		e.skip(a, fmt.Errorf("worker %s: %w", w, errDisrupted))
		return false
	}
	if _, err := e.fl.signalAs(w, syscall.SIGSTOP, history.SIGSTOP, leader); err != nil {
		e.release(w)
		e.skip(a, err)
		return false
	}
	e.count(a.Kind)
	e.background(ctx, a, func(bctx context.Context) {
		defer e.release(w)
		sleep(bctx, a.Dur)
		e.cont(a, w)
	})
	return true
}

// partition cuts w off from DynamoDB (its own listener of the DynamoDB
// proxy) for a.Dur; its Kinesis calls go on.
func (e *executor) partition(ctx context.Context, a Action, w string, leader bool) {
	if !e.claim(w) {
		e.skip(a, fmt.Errorf("worker %s: %w", w, errDisrupted))
		return
	}
	if !e.fl.running(w) {
		e.release(w)
		e.skip(a, fmt.Errorf("worker %s is not running", w))
		return
	}
	e.j.lines(history.Lifecycle{T: time.Now(), Worker: w, Kind: history.Partition, Leader: leader})
	if err := e.ddb.Isolate(w); err != nil {
		e.release(w)
		e.fail(a, err)
		return
	}
	e.count(a.Kind)
	e.background(ctx, a, func(bctx context.Context) {
		defer e.release(w)
		sleep(bctx, a.Dur)
		e.ddb.Heal(w)
		e.j.lines(history.Lifecycle{T: time.Now(), Worker: w, Kind: history.Heal, Leader: leader})
		e.j.logf("healed %s", w)
	})
}

// leaderFault kills, pauses or partitions the worker the leader lock names
// now.
func (e *executor) leaderFault(ctx context.Context, a Action) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	lock, err := e.leader(rctx)
	cancel()
	switch {
	case errors.Is(err, lease.ErrNotFound):
		e.skip(a, errors.New("no leader lock yet"))
		return
	case err != nil:
		e.fail(a, fmt.Errorf("reading the leader lock: %w", err))
		return
	case lock.Owner == "":
		e.skip(a, fmt.Errorf("the leader lock is released (epoch %d)", lock.Epoch))
		return
	}
	w := lock.Owner
	e.j.logf("the leader is %s (epoch %d)", w, lock.Epoch)
	switch a.Kind {
	case FaultLeaderSIGKILL:
		e.stop(ctx, a, w, true)
	case FaultLeaderSIGSTOP:
		e.pause(ctx, a, w, true)
	case FaultLeaderPartition:
		e.partition(ctx, a, w, true)
	}
}

// background runs f on its own goroutine; f's context ends with ctx.
func (e *executor) background(ctx context.Context, a Action, f func(context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(ctx)
	}()
}

func (e *executor) cont(a Action, w string) {
	if _, err := e.fl.signal(w, syscall.SIGCONT, history.SIGCONT); err != nil {
		e.fail(a, err)
		return
	}
	e.j.logf("SIGCONT %s", w)
}

// errShardLimit is matched by a reshard the stream as it is now cannot take
// (a split at the maximum, a merge of one shard): the stream is not in the
// state the schedule planned for, because an earlier reshard ended elsewhere
// or late. Such an action is skipped, not counted as a problem.
var errShardLimit = errors.New("the stream's shard count does not allow it")

// reshard carries out a reshard action on the stream as it is now.
func (e *executor) reshard(ctx context.Context, a Action) error {
	open, err := e.st.OpenShards(ctx)
	if err != nil {
		return err
	}
	n := len(open)
	pick := func(m int) int { return min(int(a.Pick*float64(m)), m-1) }
	switch kind := a.Kind; {
	case kind == FaultSplit:
		if n >= e.cfg.MaxShards {
			return fmt.Errorf("%w: %d open shards, the maximum", errShardLimit, n)
		}
		id, err := e.st.Split(ctx, open, pick(n))
		if err == nil {
			e.j.logf("split %s: %d open shards", id, n+1)
		}
		return err
	case kind == FaultMerge:
		if n < 2 {
			return fmt.Errorf("%w: %d open shard, nothing to merge", errShardLimit, n)
		}
		a, b, err := e.st.Merge(ctx, open, pick(n-1))
		if err == nil {
			e.j.logf("merged %s and %s: %d open shards", a, b, n-1)
		}
		return err
	case kind == FaultScaleUp || kind == FaultStopReshard:
		to := stopReshardTarget(n, e.cfg.MaxShards)
		if kind == FaultScaleUp {
			if n >= e.cfg.MaxShards {
				return fmt.Errorf("%w: %d open shards, the maximum", errShardLimit, n)
			}
			to = min(2*n, e.cfg.MaxShards)
		}
		return e.scale(ctx, n, to)
	default: // scale down
		if n < 2 {
			return fmt.Errorf("%w: %d open shard, cannot scale down", errShardLimit, n)
		}
		return e.scale(ctx, n, (n+1)/2)
	}
}

// scale runs UpdateShardCount from n to to open shards and journals where
// the stream ended, which on kinesis-mock is not always to.
func (e *executor) scale(ctx context.Context, n, to int) error {
	got, err := e.st.Scale(ctx, to)
	if err != nil {
		return err
	}
	if got != to {
		e.j.logf("scaled %d -> %d open shards (asked for %d; kinesis-mock's uniform scaling)", n, got, to)
		return nil
	}
	e.j.logf("scaled %d -> %d open shards", n, to)
	return nil
}
