// Command kclchaos is kcl's chaos harness: it runs a fleet of worker
// processes against the local emulators while it kills, stops, pauses and
// restarts them, reshards the stream and puts a fault-injecting proxy
// between the workers and the emulators, then checks the whole history
// (testkit/internal/chaos/history) and prints a table. It exits 1 when the checker
// finds a violation or a worker failed, 2 on bad flags or when the run
// could not be carried out.
//
// Start the emulators first (they are shared and left running):
//
//	scripts/emulators.sh start && eval "$(scripts/emulators.sh env)"
//	go run ./testkit/cmd/kclchaos                   # CI size: 2 minutes, random seed
//	go run ./testkit/cmd/kclchaos -seed 42          # replay a run
//	go run ./testkit/cmd/kclchaos -soak             # 20 minutes
//	go run ./testkit/cmd/kclchaos -coordination kcl # per-lease renewal instead of kcl fleet mode
//	go run ./testkit/cmd/kclchaos -bug unfenced     # show that the checker catches a fencing bug
//	go run ./testkit/cmd/kclchaos check /tmp/kclchaos-123  # check an earlier run's logs again
//
// With -multilang the workers are `kcl multilang` hosts (the binary of
// cmd/kcl, given with -kcl or found on PATH) whose children record the
// history, and the faults include killing one child of a host:
//
//	(cd cmd/kcl && go build -o /tmp/kcl .)
//	go run ./testkit/cmd/kclchaos -multilang -kcl /tmp/kcl          # 2 minutes
//	go run ./testkit/cmd/kclchaos -multilang -kcl /tmp/kcl -soak    # 20 minutes
//
// or use scripts/chaos.sh, which starts and stops the emulators itself (and
// builds kcl for -multilang).
//
// `kclchaos worker …` is the worker process the harness starts (package
// testkit/internal/chaos/worker), `kclchaos mlchild …` the child process of
// the multilang mode's hosts (package testkit/internal/chaos/mlchild); they
// are not meant to be run by hand.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kclgo/kcl/testkit/internal/chaos/mlchild"
	"github.com/kclgo/kcl/testkit/internal/chaos/scenario"
	"github.com/kclgo/kcl/testkit/internal/chaos/worker"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "worker":
			os.Exit(worker.Main(os.Args[2:], os.Stderr))
		case "mlchild":
			os.Exit(mlchild.Main(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "check":
			os.Exit(check(os.Args[2:]))
		}
	}
	os.Exit(run())
}

// check is `kclchaos check [-failover D] DIR`: the checker again over the
// logs of an earlier run.
func check(args []string) int {
	fs := flag.NewFlagSet("kclchaos check", flag.ContinueOnError)
	var failover time.Duration
	fs.DurationVar(&failover, "failover", 0, "the failover time the run used: its lease duration with per-lease renewal, F in kcl fleet mode (default: the run's, from DIR/settings.json)")
	fs.DurationVar(&failover, "lease-duration", 0, "the same as -failover")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: kclchaos check [-failover D] DIR\n\nChecks the logs an earlier run left in DIR again and prints the table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	r, err := scenario.CheckDir(fs.Arg(0), failover)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	if err := r.Table(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	if !r.OK() {
		return 1
	}
	return 0
}

func run() int {
	var (
		seed       = flag.Uint64("seed", 0, "seed of every random choice (default: from the clock, printed)")
		duration   = flag.Duration("duration", 0, "how long records are produced and faults injected (default 2m, 20m with -soak)")
		workers    = flag.Int("workers", 3, "worker processes (joins add up to two)")
		rate       = flag.Float64("rate", 60, "user records put per second")
		shards     = flag.Int("shards", 4, "initial shards")
		coord      = flag.String("coordination", "auto", "how the workers coordinate: auto (the Worker's default, which must choose kcl fleet mode on the run's new table), fleet (kcl fleet mode required) or kcl (per-lease renewal, KCL-compatible mode; no leader faults)")
		leaseDur   = flag.Duration("lease-duration", 3*time.Second, "workers' lease duration (their failover time with -coordination kcl)")
		faults     = flag.String("faults", "all", "comma-separated fault kinds, \"all\" or \"none\"; kinds: "+strings.Join(scenario.AllFaults, ",")+", and with -multilang "+scenario.FaultSIGKILLChild)
		multilang  = flag.Bool("multilang", false, "workers are kcl multilang hosts running a recording child; faults include "+scenario.FaultSIGKILLChild)
		kcl        = flag.String("kcl", "", "the kcl binary for -multilang (default: kcl on PATH)")
		bug        = flag.String("bug", "", "deliberate bug in every worker: unfenced or child-before-parent")
		checkpoint = flag.String("checkpoint", "batch", "workers' checkpoint policy: batch, every=DURATION or manual (manual replays records after every graceful release, which the checker reports as \"after release\" duplicates)")
		soak       = flag.Bool("soak", false, "long run: -duration defaults to 20m")
		dir        = flag.String("dir", "", "directory for the run's logs (default: a new temporary directory)")
		keep       = flag.Bool("keep", false, "keep the stream and the lease table")
		quiet      = flag.Bool("q", false, "do not print actions as they happen")
	)
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *duration == 0 {
		*duration = 2 * time.Minute
		if *soak {
			*duration = 20 * time.Minute
		}
	}
	var kinds []string
	switch *faults {
	case "all": // the mode's default
	case "none", "":
		kinds = []string{}
	default:
		kinds = strings.Split(*faults, ",")
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	cfg := scenario.Config{
		Seed: *seed, Duration: *duration, Workers: *workers, Rate: *rate, Shards: *shards,
		Coordination: *coord, LeaseDuration: *leaseDur, Faults: kinds, Bug: *bug, Checkpoint: *checkpoint,
		WorkerCommand:   []string{self, "worker"},
		KinesisEndpoint: os.Getenv("KCL_KINESIS_ENDPOINT"), DynamoDBEndpoint: os.Getenv("KCL_DYNAMODB_ENDPOINT"),
		Dir: *dir, Keep: *keep, Progress: os.Stdout,
	}
	if *quiet {
		cfg.Progress = nil
	}
	if *multilang {
		if *kcl == "" {
			if *kcl, err = exec.LookPath("kcl"); err != nil {
				fmt.Fprintln(os.Stderr, "kclchaos: -multilang needs the kcl binary: -kcl PATH (cd cmd/kcl && go build -o DIR/kcl .):", err)
				return 2
			}
		}
		cfg.HostCommand = []string{*kcl, "multilang"}
		cfg.ChildCommand = []string{self, "mlchild"}
		cfg.WorkerCommand = nil
	}
	if _, err := worker.ParseBug(*bug); err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	if _, err := worker.ParsePolicy(*checkpoint); err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	fmt.Printf("seed=%d\n", *seed)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := scenario.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kclchaos: seed=%d: %v\n", *seed, err)
		return 2
	}
	if err := res.Print(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kclchaos:", err)
		return 2
	}
	fmt.Printf("seed=%d (replay: kclchaos -seed %d", *seed, *seed)
	if *multilang {
		fmt.Printf(" -multilang")
	}
	if *coord != "auto" {
		fmt.Printf(" -coordination %s", *coord)
	}
	if *duration != 2*time.Minute {
		fmt.Printf(" -duration %s", *duration)
	}
	fmt.Println(")")
	if !res.OK() {
		return 1
	}
	return 0
}
