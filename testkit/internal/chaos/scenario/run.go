package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
	"github.com/kclgo/kcl/testkit/internal/chaos/proxy"
	"github.com/kclgo/kcl/internal/streamctl"
)

// Config describes a scenario. Zero fields take the defaults named on them.
type Config struct {
	// Seed drives every random choice: the fault schedule and both proxies'
	// draws. The same seed replays the same schedule.
	Seed uint64
	// Duration is how long records are produced; faults happen within it,
	// the last ones 2 failover times + 5 s before its end. Default 2m.
	Duration time.Duration
	// Workers is the number of worker processes started (joins add up to
	// two more). Default 3.
	Workers int
	// Shards is the stream's initial shard count (default 4); reshards keep
	// the open shards within [1, MaxShards] (default 8).
	Shards, MaxShards int
	// Keys is the number of partition keys (default 16); Rate the user
	// records put per second over all keys (default 60).
	Keys int
	Rate float64
	// Coordination is how the workers coordinate (their -coordination):
	// "auto" (the default) leaves the Worker's default, which on the run's
	// new table must choose kcl fleet mode — a worker process that chose
	// otherwise is a problem of the run; "fleet" requires kcl fleet mode;
	// "kcl" is per-lease renewal (KCL-compatible mode). The multilang
	// mode's hosts take the Worker's default: "auto" only.
	Coordination string
	// LeaseDuration is the workers' lease duration (default 3s): the
	// failover time with per-lease renewal. In kcl fleet mode the failover
	// time is F, the library's default (leasing.DefaultFailoverTime, 2 s),
	// and the lease duration only bounds leases of workers outside the
	// fleet, of which a run has none.
	LeaseDuration time.Duration
	// ShutdownTimeout bounds a worker's graceful stop (default 5s).
	ShutdownTimeout time.Duration
	// Checkpoint is the workers' -checkpoint policy: batch (default),
	// every=DURATION or manual.
	Checkpoint string
	// Faults are the kinds the schedule draws from (default AllFaults in
	// kcl fleet mode, PerLeaseFaults with per-lease renewal); an empty
	// non-nil slice means no faults.
	Faults []string
	// Bug is passed to every worker's -bug flag ("" for none).
	Bug string
	// WorkerCommand runs a worker: the program and the arguments before the
	// worker's flags, e.g. {"/path/to/kclchaos", "worker"}. Required unless
	// HostCommand is set.
	WorkerCommand []string
	// HostCommand, when set, makes every worker a `kcl multilang` host (the
	// multilang mode; see multilang.go): the kcl binary and the arguments
	// before "--properties-file FILE", e.g. {"/path/to/kcl", "multilang"}.
	// Its children record the history; Checkpoint must then be "batch" and
	// Bug "", and the fault kinds may include FaultSIGKILLChild (the default
	// is MultilangFaults).
	HostCommand []string
	// ChildCommand is the child process every host runs (package
	// testkit/internal/chaos/mlchild): the program and the arguments before
	// the child's flags, e.g. {"/path/to/kclchaos", "mlchild"}. Required with
	// HostCommand; no argument may contain a space (executableName is split
	// on spaces).
	ChildCommand []string
	// WorkerEnv is added to the workers' environment.
	WorkerEnv []string
	// KinesisEndpoint and DynamoDBEndpoint are the emulators' URLs.
	// Required.
	KinesisEndpoint, DynamoDBEndpoint string
	// Dir receives the logs of the run; default a new temporary directory.
	Dir string
	// DrainTimeout bounds the wait, after production ends, for every
	// produced record to be processed (default 60s).
	DrainTimeout time.Duration
	// Progress receives a line per action as it happens (default none).
	Progress io.Writer
	// Keep keeps the stream and the lease table.
	Keep bool
}

func (c *Config) setDefaults() error {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Duration, 2*time.Minute)
	def(&c.LeaseDuration, 3*time.Second)
	def(&c.ShutdownTimeout, 5*time.Second)
	def(&c.DrainTimeout, 60*time.Second)
	defInt(&c.Workers, 3)
	defInt(&c.Shards, 4)
	defInt(&c.MaxShards, 8)
	defInt(&c.Keys, 16)
	if c.Rate == 0 {
		c.Rate = 60
	}
	if c.Checkpoint == "" {
		c.Checkpoint = "batch"
	}
	if c.Coordination == "" {
		c.Coordination = "auto"
	}
	multilang := len(c.HostCommand) > 0
	perLease := c.Coordination == "kcl"
	if c.Faults == nil {
		switch {
		case multilang:
			c.Faults = MultilangFaults
		case perLease:
			c.Faults = PerLeaseFaults
		default:
			c.Faults = AllFaults
		}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	for _, f := range c.Faults {
		switch {
		case f == FaultSIGKILLChild && !multilang:
			return fmt.Errorf("scenario: fault kind %q needs the multilang mode (Config.HostCommand)", f)
		case f != FaultSIGKILLChild && !slices.Contains(AllFaults, f):
			return fmt.Errorf("scenario: unknown fault kind %q", f)
		case isLeaderFault(f) && perLease:
			return fmt.Errorf("scenario: fault kind %q needs kcl fleet mode: with per-lease renewal no worker leads", f)
		}
	}
	switch {
	case c.Coordination != "auto" && c.Coordination != "fleet" && c.Coordination != "kcl":
		return fmt.Errorf("scenario: Config.Coordination %q: want auto, fleet or kcl", c.Coordination)
	case multilang && c.Coordination != "auto":
		return fmt.Errorf("scenario: Config.Coordination %q: the multilang mode's hosts take the Worker's default (auto)", c.Coordination)
	case multilang && len(c.ChildCommand) == 0:
		return errors.New("scenario: Config.ChildCommand is empty (needed with HostCommand)")
	case multilang && (c.Checkpoint != "batch" || c.Bug != ""):
		return fmt.Errorf("scenario: checkpoint policy %q and bug %q: the multilang mode's child checkpoints every batch and has no bugs", c.Checkpoint, c.Bug)
	case !multilang && len(c.WorkerCommand) == 0:
		return errors.New("scenario: Config.WorkerCommand is empty")
	case c.KinesisEndpoint == "" || c.DynamoDBEndpoint == "":
		return errors.New("scenario: Config.KinesisEndpoint and DynamoDBEndpoint are required (scripts/emulators.sh start)")
	case c.Workers < 1 || c.Shards < 1 || c.MaxShards < c.Shards || c.Keys < 1 || c.Rate < 0:
		return fmt.Errorf("scenario: Workers %d, Shards %d, MaxShards %d, Keys %d, Rate %v: out of range",
			c.Workers, c.Shards, c.MaxShards, c.Keys, c.Rate)
	}
	return nil
}

// failoverTime is how long a worker that stopped proving it is alive keeps
// its shards: the lease duration with per-lease renewal, F in kcl fleet
// mode. Fault durations and the checker's overlap rule are in its units.
func (c *Config) failoverTime() time.Duration {
	if c.Coordination == "kcl" {
		return c.LeaseDuration
	}
	return leasing.DefaultFailoverTime
}

// Result is what a run found.
type Result struct {
	Seed        uint64
	Dir, Stream string
	Schedule    []Action
	Report      history.Report
	// Faults counts what was injected: actions carried out by kind, proxy
	// faults as "kinesis/<kind>" and "dynamodb/<kind>".
	Faults map[string]int
	// Leases is the lease table at the end.
	Leases []lease.Lease
	// Coordination counts the worker processes by the coordination they
	// chose, as they logged it ("kcl fleet", "KCL-compatible"); a process
	// told to use per-lease renewal logs no choice.
	Coordination map[string]int
	// Leaderships counts, by worker, the times a worker process started
	// leading its kcl fleet, as it logged them.
	Leaderships map[string]int
	// Problems lists what went wrong around the checker: workers that
	// failed on their own, actions that failed, records never processed
	// within the drain timeout.
	Problems []string
	Elapsed  time.Duration
}

// OK reports whether the checker found nothing and no worker failed.
func (r Result) OK() bool { return r.Report.OK() && len(r.Problems) == 0 }

// Run runs the scenario: it creates a stream and a lease table, starts a
// proxy in front of each emulator and the workers behind them, produces
// records while it carries out the fault schedule, heals everything, waits
// for every record to be processed, stops the workers and checks the
// history. It blocks for about Config.Duration plus the drain. It returns
// an error only when the run could not be carried out; the verdict is in
// Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return Result{}, err
	}
	begin := time.Now()
	res := Result{Seed: cfg.Seed, Stream: fmt.Sprintf("kclchaos-%d-%d", cfg.Seed, time.Now().UnixNano()%1e6)}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "kclchaos-")
		if err != nil {
			return res, err
		}
		cfg.Dir = d
	} else if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return res, err
	}
	res.Dir = cfg.Dir
	j, err := openJournal(filepath.Join(cfg.Dir, "harness.jsonl"), filepath.Join(cfg.Dir, "faults.log"), cfg.Progress, begin)
	if err != nil {
		return res, err
	}
	defer j.close()
	j.logf("seed=%d stream=%s dir=%s", cfg.Seed, res.Stream, cfg.Dir)

	kc, ddb := clients(cfg.KinesisEndpoint, cfg.DynamoDBEndpoint)
	st := &streamctl.Stream{Client: kc, Name: res.Stream}
	if err := st.Create(ctx, cfg.Shards); err != nil {
		return res, err
	}
	store, err := dynamolease.New(ddb, res.Stream)
	if err != nil {
		return res, err
	}
	if err := store.EnsureTable(ctx); err != nil {
		return res, err
	}
	if !cfg.Keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = st.Delete(dctx)
			_, _ = ddb.DeleteTable(dctx, &dynamodb.DeleteTableInput{TableName: aws.String(res.Stream)})
		}()
	}

	kin, err := proxy.New(cfg.KinesisEndpoint, proxy.WithSeed(int64(cfg.Seed)))
	if err != nil {
		return res, err
	}
	defer kin.Close()
	dpx, err := proxy.New(cfg.DynamoDBEndpoint, proxy.WithSeed(int64(cfg.Seed)+1))
	if err != nil {
		return res, err
	}
	defer dpx.Close()
	kinURL, err := kin.Start()
	if err != nil {
		return res, err
	}
	// Every worker reaches DynamoDB through a listener of its own, so that
	// a partition cuts it alone; the shared one serves no one.
	if _, err := dpx.Start(); err != nil {
		return res, err
	}
	ddbURLs := make(map[string]string)
	if err := writeSettings(cfg.Dir, settings{Coordination: cfg.Coordination, FailoverTime: cfg.failoverTime().String()}); err != nil {
		return res, err
	}

	fl := &fleet{
		cmd: cfg.WorkerCommand, dir: cfg.Dir, j: j, members: make(map[string]*member),
		args: []string{"-stream", res.Stream, "-table", res.Stream, "-coordination", cfg.Coordination,
			"-lease-duration", cfg.LeaseDuration.String(),
			"-shutdown-timeout", cfg.ShutdownTimeout.String(), "-checkpoint", cfg.Checkpoint, "-bug", cfg.Bug},
		env: append(append(os.Environ(), cfg.WorkerEnv...), "KCL_KINESIS_ENDPOINT="+kinURL),
		dynamoDB: func(id string) (string, error) { // under fleet.mu
			if u, ok := ddbURLs[id]; ok {
				return u, nil
			}
			u, err := dpx.StartClient(id)
			if err != nil {
				return "", err
			}
			ddbURLs[id] = u
			return u, nil
		},
	}
	if len(cfg.HostCommand) > 0 {
		fl.host = cfg.HostCommand
		fl.env = append(fl.env, hostEnv...)
		fl.props = func(id, logPrefix, ddbURL string) (string, error) {
			return hostProps{stream: res.Stream, worker: id, kinesisEndpoint: kinURL, dynamoDBEndpoint: ddbURL,
				leaseDuration: cfg.LeaseDuration, shutdown: cfg.ShutdownTimeout,
				child: append(slices.Clone(cfg.ChildCommand), "-worker", id, "-log", logPrefix)}.properties()
		}
	}
	defer fl.stopAll(cfg.ShutdownTimeout + 5*time.Second) // on early returns
	for i := range cfg.Workers {
		if err := fl.start(workerID(i)); err != nil {
			return res, err
		}
	}

	ft := cfg.failoverTime()
	quiet := 2*ft + 5*time.Second
	res.Schedule = plan(planInput{
		seed: cfg.Seed, faults: cfg.Faults, workers: cfg.Workers, shards: cfg.Shards, maxShards: cfg.MaxShards,
		failover: ft, shutdown: cfg.ShutdownTimeout,
		from: 5 * time.Second, to: cfg.Duration - quiet, minGap: 1500 * time.Millisecond, maxGap: 4500 * time.Millisecond,
	})
	for _, a := range res.Schedule {
		fmt.Fprintf(j.faults, "planned %v\n", a)
	}

	// Produce and inject faults.
	ex := &executor{cfg: cfg, st: st, fl: fl, kin: kin, ddb: dpx, j: j, counts: make(map[string]int), leader: store.Leader}
	prod := newProducer(kc, res.Stream, cfg.Keys, cfg.Rate, j)
	pctx, stopProducing := context.WithTimeout(ctx, cfg.Duration)
	defer stopProducing()
	start := time.Now()
	exDone := make(chan struct{})
	go func() {
		defer close(exDone)
		ex.run(pctx, start, res.Schedule)
	}()
	j.logf("producing for %s at %v records/s; %d actions planned", cfg.Duration, cfg.Rate, len(res.Schedule))
	perr := prod.run(pctx)
	stopProducing()
	<-exDone
	_ = kin.SetRules(nil)
	_ = dpx.SetRules(nil)
	if perr != nil {
		return res, perr
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	j.logf("produced %d records; draining", prod.produced)

	// Drain: every worker that should run is running; wait for the rest.
	missing, err := drain(ctx, fl, j, filepath.Join(cfg.Dir, "harness.jsonl"), cfg.DrainTimeout)
	if err != nil {
		return res, err
	}
	if missing > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d records not processed within the drain timeout %s", missing, cfg.DrainTimeout))
	}
	fl.stopAll(cfg.ShutdownTimeout + 5*time.Second)
	j.logf("workers stopped")

	// The verdict.
	if res.Leases, err = store.List(ctx); err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("reading the lease table: %v", err))
	}
	h, err := readHistory(filepath.Join(cfg.Dir, "harness.jsonl"), fl.logFiles())
	if err != nil {
		return res, err
	}
	res.Faults = ex.counts
	for name, p := range map[string]*proxy.Proxy{"kinesis": kin, "dynamodb": dpx} {
		for k, n := range p.Stats().ByKind() {
			res.Faults[name+"/"+k.String()] += n
		}
	}
	final, err := writeFinalLeases(cfg.Dir, res.Leases)
	if err != nil {
		return res, err
	}
	res.Report = history.Check(h, history.Options{FailoverTime: ft, Epsilon: 20 * time.Millisecond,
		Faults: res.Faults, Leases: final})
	res.Problems = append(res.Problems, ex.errs...)
	res.Problems = append(res.Problems, fl.problems()...)
	if res.Coordination, res.Leaderships, err = readWorkerLogs(cfg.Dir); err != nil {
		return res, err
	}
	res.Problems = append(res.Problems, coordinationProblems(cfg.Coordination, res.Coordination)...)
	cp, err := childProblems(cfg.Dir, 20)
	if err != nil {
		return res, err
	}
	res.Problems = append(res.Problems, cp...)
	res.Elapsed = time.Since(begin)
	return res, nil
}

// finalLeasesFile holds the lease table at the end of a run, as JSON.
const finalLeasesFile = "final-leases.json"

// writeFinalLeases writes the lease table to dir for CheckDir and returns
// it in the checker's form.
func writeFinalLeases(dir string, leases []lease.Lease) ([]history.FinalLease, error) {
	final := make([]history.FinalLease, 0, len(leases))
	for _, l := range leases {
		cp, err := l.Checkpoint.MarshalText()
		if err != nil {
			cp = []byte(l.Checkpoint.String())
		}
		final = append(final, history.FinalLease{Shard: l.Key, Owner: l.Owner, Checkpoint: string(cp)})
	}
	b, err := json.MarshalIndent(final, "", "  ")
	if err != nil {
		return nil, err
	}
	return final, os.WriteFile(filepath.Join(dir, finalLeasesFile), append(b, '\n'), 0o644)
}

// CheckDir checks the logs a run left in dir again (harness.jsonl, the
// workers' or children's w*.jsonl and final-leases.json), with the failover
// time the run used (the checker's Options.FailoverTime): to look at a run
// after the fact, or at an old run with a newer checker. A zero failover
// takes the run's own from its settings.json, or, for a run older than
// that file, 3 s (the lease duration runs used then). The fault counts are
// not in the logs; the report has none.
func CheckDir(dir string, failover time.Duration) (history.Report, error) {
	harness := filepath.Join(dir, "harness.jsonl")
	if _, err := os.Stat(harness); err != nil {
		return history.Report{}, fmt.Errorf("scenario: %s is not a kclchaos log directory: %w", dir, err)
	}
	if failover == 0 {
		var err error
		if failover, err = runFailoverTime(dir); err != nil {
			return history.Report{}, err
		}
	}
	workers, err := filepath.Glob(filepath.Join(dir, "w*.jsonl"))
	if err != nil {
		return history.Report{}, err
	}
	h, err := readHistory(harness, workers)
	if err != nil {
		return history.Report{}, err
	}
	var final []history.FinalLease
	switch b, err := os.ReadFile(filepath.Join(dir, finalLeasesFile)); {
	case errors.Is(err, os.ErrNotExist): // a run that did not finish: no rule 7
	case err != nil:
		return history.Report{}, err
	default:
		if err := json.Unmarshal(b, &final); err != nil {
			return history.Report{}, fmt.Errorf("scenario: %s: %w", filepath.Join(dir, finalLeasesFile), err)
		}
	}
	return history.Check(h, history.Options{FailoverTime: failover, Epsilon: 20 * time.Millisecond, Leases: final}), nil
}

// readHistory reads the harness log and the workers' logs.
func readHistory(harness string, workers []string) (history.History, error) {
	var h history.History
	for _, f := range append([]string{harness}, workers...) {
		if err := h.ReadFile(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return h, err
		}
	}
	return h, nil
}

// drain waits until every produced record was processed by someone, or
// timeout; it returns how many were not.
func drain(ctx context.Context, fl *fleet, j *journal, harness string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		h, err := readHistory(harness, fl.logFiles())
		if err != nil {
			return 0, err
		}
		type rec struct {
			key string
			n   int
		}
		seen := make(map[rec]bool, len(h.Processed))
		for _, p := range h.Processed {
			seen[rec{p.Key, p.N}] = true
		}
		missing := 0
		for _, p := range h.Produced {
			if !seen[rec{p.Key, p.N}] {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			j.logf("drained: %d of %d produced records not processed", missing, len(h.Produced))
			return missing, nil
		}
		sleep(ctx, time.Second)
		if ctx.Err() != nil {
			return missing, ctx.Err()
		}
	}
}

// clients builds the harness's own clients, straight to the emulators.
func clients(kinesisURL, dynamoURL string) (*kinesis.Client, *dynamodb.Client) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("chaos", "chaos", ""),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kinesisURL) })
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dynamoURL) })
	return kc, ddb
}

// Print writes the result as kclchaos prints it: the checker's table, the
// lease table's summary and the problems.
func (r Result) Print(w io.Writer) error {
	fmt.Fprintf(w, "\nseed %d, %s, stream %s, logs in %s\n", r.Seed, r.Elapsed.Round(time.Second), r.Stream, r.Dir)
	if err := r.Report.Table(w); err != nil {
		return err
	}
	ended := 0
	var open []string
	for _, l := range r.Leases {
		if l.Checkpoint.Kind() == checkpoint.KindShardEnd {
			ended++
		} else {
			open = append(open, fmt.Sprintf("%s@%s", l.Key, l.Owner))
		}
	}
	slices.Sort(open)
	fmt.Fprintf(w, "lease table: %d leases, %d at SHARD_END; open: %s\n", len(r.Leases), ended, strings.Join(open, " "))
	var modes, leaders []string
	for _, m := range slices.Sorted(maps.Keys(r.Coordination)) {
		modes = append(modes, fmt.Sprintf("%s by %d worker processes", m, r.Coordination[m]))
	}
	for _, id := range slices.Sorted(maps.Keys(r.Leaderships)) {
		leaders = append(leaders, fmt.Sprintf("%s %d", id, r.Leaderships[id]))
	}
	if len(modes) == 0 {
		modes = []string{"none chosen (per-lease renewal required)"}
	}
	fmt.Fprintf(w, "coordination: %s; leaderships: %s\n", strings.Join(modes, ", "), orNone(strings.Join(leaders, ", ")))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	_, err := fmt.Fprintf(w, "verdict: %s\n", map[bool]string{true: "OK", false: "FAIL"}[r.OK()])
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
