// Command demo is kcl's end-to-end demonstration, the README's "make demo":
// a fleet of worker processes consumes a stream on the local emulators while
// the stream is resharded and workers are stopped, killed and restarted, and
// a checker proves that every record was processed, in order per key.
//
// It creates a stream and a lease table, builds examples/worker and starts
// three of them, and puts numbered records under 16 partition keys
// (plain records and KPL aggregates, see examples/producer). While records
// flow it scales the stream from 2 to 4 shards, merges two of the new
// shards, stops one worker with SIGTERM (graceful: it checkpoints and hands
// its leases over), kills another with SIGKILL (its leases expire and are
// taken over) and restarts it. It then stops producing, waits until every
// record was processed, stops the workers and prints what it saw: records
// produced and processed, duplicates (re-deliveries after the crash are
// expected), per-key order violations and lost records (there must be none),
// failover timings and the lease table.
//
// Run it with:
//
//	make demo
//
// or, with the emulators already running:
//
//	eval "$(scripts/emulators.sh env)" && go run ./testkit/cmd/kcldemo
//
// It finishes in about a minute and exits non-zero if a record was lost, a
// key went out of order or a worker failed. Workers' logs (standard error)
// go to a temporary directory, printed when something failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kclgo/kcl/examples/producer/sequenced"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/internal/streamctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// config holds the flags.
type config struct {
	shards, keys     int
	rate             float64
	produce, drain   time.Duration
	leaseDuration    time.Duration
	shutdownTimeout  time.Duration
	workerBin        string
	checkpointing    string
	keep, showEvents bool
	restartNow       bool
	efo              bool
}

func run(ctx context.Context) error {
	var c config
	flag.IntVar(&c.shards, "shards", 2, "shards of the new stream; it is scaled to twice as many, then two are merged")
	flag.IntVar(&c.keys, "keys", 16, "partition keys")
	flag.Float64Var(&c.rate, "rate", 80, "user records put per second")
	flag.DurationVar(&c.produce, "produce", 45*time.Second, "how long records are put")
	flag.DurationVar(&c.drain, "drain", 20*time.Second, "how long to wait, after the last put, for every record to be processed")
	flag.DurationVar(&c.leaseDuration, "lease-duration", 3*time.Second, "workers' lease duration: a killed worker's shards move after about this long")
	flag.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "workers' graceful stop bound")
	flag.StringVar(&c.checkpointing, "checkpoint", "batch", "workers' -checkpoint: batch, or manual to see re-deliveries (duplicates)")
	flag.StringVar(&c.workerBin, "worker", "", "worker binary to run (default: build examples/worker)")
	flag.BoolVar(&c.restartNow, "restart-now", false, "restart the killed worker at once, under the same id, before its leases expire")
	flag.BoolVar(&c.keep, "keep", false, "keep the stream, the lease table and the worker logs")
	flag.BoolVar(&c.showEvents, "events", true, "print lease events as they happen")
	flag.BoolVar(&c.efo, "efo", false, "workers read through enhanced fan-out (SubscribeToShard over HTTP/2) instead of polling")
	flag.Parse()

	kc, ddb, err := clients()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kcl-demo-")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("kcl-demo-%s-%d", time.Now().Format("150405"), os.Getpid())
	d := &demo{cfg: c, start: time.Now(), out: newConsole(), dir: dir, chk: checker.New()}
	d.setPhase("setup")
	d.out.printf("stream and lease table %s; worker logs in %s", name, dir)

	// Stream and lease table.
	st := &streamctl.Stream{Client: kc, Name: name}
	if err := st.Create(ctx, c.shards); err != nil {
		return err
	}
	if !c.keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := st.Delete(dctx); err != nil {
				d.out.printf("delete stream: %v", err)
			}
			if _, err := ddb.DeleteTable(dctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				d.out.printf("delete lease table: %v", err)
			}
		}()
	}
	store, err := dynamolease.New(ddb, name)
	if err != nil {
		return err
	}
	if err := store.EnsureTable(ctx); err != nil {
		return err
	}

	// Workers.
	bin := c.workerBin
	if bin == "" {
		bin = filepath.Join(dir, "worker")
		// examples/worker is a module of its own (it uses plugin/kprom):
		// build it in its directory, found from kcl's go.mod.
		gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			return fmt.Errorf("go env GOMOD: %w", err)
		}
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		build.Dir = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "examples", "worker")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build examples/worker: %w", err)
		}
	}
	args := []string{"-stream", name, "-table", name,
		"-lease-duration", c.leaseDuration.String(),
		"-shutdown-timeout", c.shutdownTimeout.String(),
		"-initial", "trim_horizon", "-checkpoint", c.checkpointing}
	if c.efo {
		args = append(args, "-efo", name) // the stream's consumer, deleted with the stream
	} else {
		args = append(args, "-idle", "200ms")
	}
	d.fleet = newFleet(bin, dir, d.chk, args...)
	defer d.stopAll() // on early returns; a no-op once every worker stopped
	for _, id := range []string{"w1", "w2", "w3"} {
		if err := d.fleet.start(id); err != nil {
			return err
		}
	}

	// Producer.
	keys := make([]string, c.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i)
	}
	prod, err := sequenced.New(kc, sequenced.Config{
		Stream: name, Keys: keys, Rate: c.rate, Mode: sequenced.Mixed, MaxPerAggregate: 4, Acked: d.chk.Produced,
	})
	if err != nil {
		return err
	}
	d.prod = prod
	prodCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	prodDone := make(chan error, 1)
	go func() { prodDone <- prod.Run(prodCtx) }()

	// The live view runs until the summary.
	viewCtx, stopViewCtx := context.WithCancel(ctx)
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		d.view(viewCtx)
	}()
	stopView := func() { stopViewCtx(); <-viewDone }
	defer stopView()

	if err := d.script(ctx, st, prodDone); err != nil {
		stopProducing()
		return err
	}
	stopProducing()
	if err := <-prodDone; err != nil {
		return fmt.Errorf("producer: %w", err)
	}

	d.setPhase("drain")
	drained := d.waitDrained(ctx, c.drain)
	d.metrics.sample(ctx, d.fleet.metricsAddrs())
	d.setPhase("stop")
	d.stopAll()
	stopView()

	return d.summary(ctx, store, drained)
}

// demo is the state of one run.
type demo struct {
	cfg   config
	start time.Time
	out   *console
	dir   string
	chk   *checker.Checker
	fleet *fleet
	prod  *sequenced.Producer
	// metrics samples the workers' /metrics for the per-shard summary.
	metrics shardMetrics

	mu       sync.Mutex
	phase    string
	failover []string // observed failover timings, for the summary
	problems []string // failures seen during the run
}

func (d *demo) setPhase(p string) {
	d.mu.Lock()
	d.phase = p
	d.mu.Unlock()
	if p != "setup" {
		d.out.printf("phase: %s", p)
	}
}

func (d *demo) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.mu.Lock()
	d.problems = append(d.problems, msg)
	d.mu.Unlock()
	d.out.printf("PROBLEM: %s", msg)
}

func (d *demo) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.mu.Lock()
	d.failover = append(d.failover, msg)
	d.mu.Unlock()
	d.out.printf("%s", msg)
}

// script is the scenario, timed from the first put.
func (d *demo) script(ctx context.Context, st *streamctl.Stream, prodDone <-chan error) error {
	t0 := time.Now()
	// at waits until offset after t0, watching for failures meanwhile.
	at := func(offset time.Duration) error {
		for {
			if f := d.fleet.failures(); len(f) > 0 {
				return fmt.Errorf("%s", strings.Join(f, "; "))
			}
			wait := min(time.Until(t0.Add(offset)), 200*time.Millisecond)
			if wait <= 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-prodDone:
				return fmt.Errorf("producer stopped early: %w", err)
			case <-time.After(wait):
			}
		}
	}
	d.setPhase("produce")

	if err := at(5 * time.Second); err != nil {
		return err
	}
	d.setPhase(fmt.Sprintf("scale %d→%d", d.cfg.shards, 2*d.cfg.shards))
	if _, err := st.Scale(ctx, 2*d.cfg.shards); err != nil {
		return err
	}

	if err := at(12 * time.Second); err != nil {
		return err
	}
	d.setPhase("merge")
	a, b, err := mergeFirstPair(ctx, st)
	if err != nil {
		return err
	}
	d.out.printf("merged %s and %s", a, b)

	if err := at(18 * time.Second); err != nil {
		return err
	}
	d.setPhase("sigterm w1")
	if err := d.gracefulStop(ctx, "w1"); err != nil {
		return err
	}

	if err := at(24 * time.Second); err != nil {
		return err
	}
	victim := d.busiest("w1")
	d.setPhase("sigkill " + victim)
	if d.cfg.restartNow {
		if err := d.killAndRestart(ctx, victim); err != nil {
			return err
		}
	} else {
		if err := d.kill(ctx, victim); err != nil {
			return err
		}
		d.setPhase("restart " + victim)
		if err := d.fleet.start(victim); err != nil {
			return err
		}
	}
	restarted := time.Now()

	// Keep producing a while after the restart, so the restarted worker
	// gets leases and records.
	return at(max(d.cfg.produce, restarted.Add(6*time.Second).Sub(t0)))
}

// busiest returns the running worker, other than except, that holds the
// most shards.
func (d *demo) busiest(except string) string {
	best, most := "", -1
	for _, id := range d.fleet.running() {
		if n := len(d.fleet.owned(id)); id != except && n > most {
			best, most = id, n
		}
	}
	return best
}

// gracefulStop stops worker id with SIGTERM and reports how long it took to
// exit and for its shards to be acquired by the others.
func (d *demo) gracefulStop(ctx context.Context, id string) error {
	shards := d.fleet.owned(id)
	t := time.Now()
	p, err := d.fleet.signal(id, syscall.SIGTERM)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(d.cfg.shutdownTimeout + 5*time.Second):
		return fmt.Errorf("worker %s did not exit within %v of SIGTERM", id, d.cfg.shutdownTimeout+5*time.Second)
	case <-ctx.Done():
		return ctx.Err()
	}
	exited := time.Since(t)
	taken := d.waitAcquired(ctx, t, id, shards)
	status := "exit status 0"
	if p.err != nil {
		status = p.err.Error() // reported as a failure in the summary
	}
	d.note("SIGTERM %s: exited (%s) after %v; its shards [%s] acquired by others after %s",
		id, status, exited.Round(time.Millisecond), shortShards(shards), taken)
	return nil
}

// kill kills worker id with SIGKILL and waits until its shards were
// acquired by the others.
func (d *demo) kill(ctx context.Context, id string) error {
	shards, t, err := d.sigkill(ctx, id)
	if err != nil {
		return err
	}
	taken := d.waitAcquired(ctx, t, id, shards)
	d.note("SIGKILL %s: its shards [%s] acquired by others after %s (%s)",
		id, shortShards(shards), taken, d.failoverNote())
	return nil
}

// failoverNote says what bounds a crash failover: in kcl fleet mode, the
// workers' default on the demo's new table, the 2 s failover time; the lease
// duration only in KCL-compatible mode.
func (d *demo) failoverNote() string {
	return fmt.Sprintf("kcl fleet coordination, failover time 2s; KCL-compatible mode would wait for the %v lease", d.cfg.leaseDuration)
}

// sigkill kills worker id with SIGKILL and waits for it to exit. It returns
// the shards the worker owned and when it was killed.
func (d *demo) sigkill(ctx context.Context, id string) (shards []string, killed time.Time, err error) {
	shards = d.fleet.owned(id)
	killed = time.Now()
	p, err := d.fleet.signal(id, syscall.SIGKILL)
	if err != nil {
		return nil, killed, err
	}
	select {
	case <-p.done:
		return shards, killed, nil
	case <-ctx.Done():
		return nil, killed, ctx.Err()
	}
}

// killAndRestart kills worker id with SIGKILL, restarts it at once under
// the same id, and reports when its shards were acquired again, by anyone.
func (d *demo) killAndRestart(ctx context.Context, id string) error {
	shards, t, err := d.sigkill(ctx, id)
	if err != nil {
		return err
	}
	if err := d.fleet.start(id); err != nil {
		return err
	}
	taken := d.waitAcquired(ctx, t, "", shards)
	d.note("SIGKILL %s, restarted at once: its shards [%s] acquired again after %s (%s)",
		id, shortShards(shards), taken, d.failoverNote())
	return nil
}

// waitAcquired waits until workers other than id acquired every one of
// shards after since, and describes how long each took.
func (d *demo) waitAcquired(ctx context.Context, since time.Time, id string, shards []string) string {
	if len(shards) == 0 {
		return "- (it held none)"
	}
	deadline := time.Now().Add(4*d.cfg.leaseDuration + 5*time.Second)
	for {
		got := d.fleet.acquiredAfter(since, id, shards)
		if len(got) == len(shards) || time.Now().After(deadline) || ctx.Err() != nil {
			var parts []string
			for _, s := range shards {
				if e, ok := got[s]; ok {
					parts = append(parts, fmt.Sprintf("%s→%s %v", shortShards([]string{s}), e.w, e.at.Sub(since).Round(time.Millisecond)))
				} else {
					parts = append(parts, fmt.Sprintf("%s not yet", shortShards([]string{s})))
				}
			}
			return strings.Join(parts, ", ")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDrained waits until every produced record was processed, or timeout.
func (d *demo) waitDrained(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if d.chk.Report().Lost == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopAll stops every running worker with SIGTERM and waits for them,
// killing those that outlast their shutdown timeout.
func (d *demo) stopAll() {
	if d.fleet == nil {
		return
	}
	ids := d.fleet.running()
	var procs []*process
	for _, id := range ids {
		p, err := d.fleet.signal(id, syscall.SIGTERM)
		if err == nil {
			procs = append(procs, p)
		}
	}
	limit := time.After(d.cfg.shutdownTimeout + 5*time.Second)
	for i, p := range procs {
		select {
		case <-p.done:
		case <-limit:
			d.problem("worker %s did not stop within %v of SIGTERM; killed", ids[i], d.cfg.shutdownTimeout+5*time.Second)
			_, _ = d.fleet.signal(ids[i], syscall.SIGKILL)
			<-p.done
		}
	}
}

// view prints lease events as workers report them (with -events) and a
// progress line once a second, until ctx is done.
func (d *demo) view(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	seen := 0
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			d.out.progress("")
			return
		case <-t.C:
		}
		if d.cfg.showEvents {
			d.fleet.mu.Lock()
			evs := slices.Clone(d.fleet.events[seen:])
			seen = len(d.fleet.events)
			d.fleet.mu.Unlock()
			for _, e := range evs {
				d.out.printf("  %5.1fs %s %s %s", e.at.Sub(d.start).Seconds(), e.w, e.kind, e.shard)
			}
		}
		if i%20 == 0 {
			d.metrics.sample(ctx, d.fleet.metricsAddrs())
		}
		if i%10 != 0 {
			continue
		}
		d.mu.Lock()
		phase := d.phase
		d.mu.Unlock()
		processed := 0
		for _, n := range d.fleet.counts() {
			processed += n
		}
		d.out.progress(fmt.Sprintf("%5.1fs %-12s produced %5d  processed %5d |%s",
			time.Since(d.start).Seconds(), phase, d.prod.Stats().Records, processed, d.fleet.status()))
	}
}

// mergeFirstPair merges the two open shards with the lowest hash keys, which
// are adjacent, waits for the merge to complete and returns them.
func mergeFirstPair(ctx context.Context, st *streamctl.Stream) (a, b string, err error) {
	open, err := st.OpenShards(ctx)
	if err != nil {
		return "", "", err
	}
	if len(open) < 2 {
		return "", "", fmt.Errorf("merge: %d open shards, need 2", len(open))
	}
	return st.Merge(ctx, open, 0)
}
