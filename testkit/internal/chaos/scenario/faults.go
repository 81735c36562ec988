package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/kclgo/kcl/testkit/internal/chaos/history"
	"github.com/kclgo/kcl/testkit/internal/chaos/proxy"
	"github.com/kclgo/kcl/testkit/internal/streamctl"
)

// proxyRules returns the rules of a proxy fault window of kind k, for the
// Kinesis and the DynamoDB proxy; scale in [0, 1) varies the latencies.
func proxyRules(k string, scale float64, leaseDuration time.Duration) (kin, ddb []proxy.Rule) {
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
		// Up to half the lease duration per call: renewals are late, some
		// leases expire and move.
		ddb = []proxy.Rule{{Kind: proxy.Latency, Probability: 1, Latency: lat(leaseDuration/10, leaseDuration/2)}}
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

	mu     sync.Mutex
	counts map[string]int // actions carried out, by kind
	errs   []string
	// restarting holds the workers signalled by a SIGKILL or SIGTERM action
	// whose restart is still to come. When the executor falls behind its
	// schedule (a reshard the emulator is slow to finish), actions due long
	// ago run back to back, and a second stop of the same worker would
	// otherwise race the first one's restart.
	restarting map[string]bool
	wg         sync.WaitGroup
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
		if _, err := e.fl.signal(a.Worker, syscall.SIGSTOP, history.SIGSTOP); err != nil {
			e.skip(a, err)
			return
		}
		e.count(a.Kind)
		e.background(ctx, a, func(bctx context.Context) {
			sleep(bctx, a.Dur)
			e.cont(a)
		})
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
		if _, err := e.fl.signal(a.Worker, syscall.SIGSTOP, history.SIGSTOP); err != nil {
			e.skip(a, err)
			return
		}
		e.count(a.Kind)
		e.background(ctx, a, func(bctx context.Context) {
			sleep(bctx, a.Dur)
			e.cont(a)
		})
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
		sig, kind := syscall.SIGKILL, history.SIGKILL
		if a.Kind == FaultSIGTERM {
			sig, kind = syscall.SIGTERM, history.SIGTERM
		}
		if !e.markRestarting(a.Worker) {
			e.skip(a, fmt.Errorf("worker %s is already stopping, its restart pending", a.Worker))
			return
		}
		p, err := e.fl.signal(a.Worker, sig, kind)
		if err != nil {
			e.doneRestarting(a.Worker)
			e.skip(a, err)
			return
		}
		e.count(a.Kind)
		e.background(ctx, a, func(bctx context.Context) {
			defer e.doneRestarting(a.Worker)
			if !wait(p, e.cfg.ShutdownTimeout+5*time.Second) {
				e.j.logf("%s did not exit after %s: killing it", a.Worker, a.Kind)
				_, _ = e.fl.signal(a.Worker, syscall.SIGKILL, history.SIGKILL)
				<-p.done
			}
			sleep(bctx, a.Dur)
			e.j.logf("restart %s", a.Worker)
			if err := e.fl.start(a.Worker); err != nil {
				e.fail(a, err)
			}
		})
	default:
		kin, ddb := proxyRules(a.Kind, a.Scale, e.cfg.LeaseDuration)
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

// markRestarting records that worker is being stopped and will be restarted,
// and reports false if it already was.
func (e *executor) markRestarting(worker string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.restarting[worker] {
		return false
	}
	if e.restarting == nil {
		e.restarting = make(map[string]bool)
	}
	e.restarting[worker] = true
	return true
}

func (e *executor) doneRestarting(worker string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.restarting, worker)
}

// background runs f on its own goroutine; f's context ends with ctx.
func (e *executor) background(ctx context.Context, a Action, f func(context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(ctx)
	}()
}

func (e *executor) cont(a Action) {
	if _, err := e.fl.signal(a.Worker, syscall.SIGCONT, history.SIGCONT); err != nil {
		e.fail(a, err)
		return
	}
	e.j.logf("SIGCONT %s", a.Worker)
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
