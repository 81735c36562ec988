package scenario

import (
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/internal/chaos/mlchild"
	"github.com/kclgo/kcl/testkit/internal/chaos/worker"
	"github.com/kclgo/kcl/testkit/testenv"
)

// envWorker makes the test binary the worker process: Run starts
// os.Args[0] with it set, and TestMain hands over to worker.Main. envChild
// makes it the multilang mode's child (mlchild.Main): the hosts inherit it
// and pass it on to their children.
const (
	envWorker = "KCLCHAOS_TEST_WORKER"
	envChild  = "KCLCHAOS_TEST_MLCHILD"
)

func TestMain(m *testing.M) {
	if os.Getenv(envWorker) == "1" {
		os.Exit(worker.Main(os.Args[1:], os.Stderr))
	}
	if os.Getenv(envChild) == "1" {
		os.Exit(mlchild.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

var (
	chaosSeed     = flag.Uint64("chaos.seed", 20261126, "seed of TestScenario")
	chaosDuration = flag.Duration("chaos.duration", 90*time.Second, "production time of TestScenario")
	chaosBugs     = flag.Bool("chaos.bugs", true, "run the deliberate-bug scenarios (about 50 s each)")
	chaosMLDur    = flag.Duration("chaos.multilang.duration", 60*time.Second, "production time of TestScenarioMultilang")
	chaosKCL      = flag.String("chaos.kcl", "", "the kcl binary of TestScenarioMultilang (default: built from cmd/kcl)")
)

// config is a scenario on the emulators with the test binary as the worker.
func config(t *testing.T) Config {
	t.Helper()
	testenv.Require(t)
	// Not t.TempDir: the logs of a failed run are kept for a look.
	dir, err := os.MkdirTemp("", "kclchaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return Config{
		WorkerCommand:    []string{os.Args[0]},
		WorkerEnv:        []string{envWorker + "=1"},
		KinesisEndpoint:  testenv.KinesisEndpoint(t),
		DynamoDBEndpoint: testenv.DynamoDBEndpoint(t),
		Dir:              dir,
		Progress:         testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func table(t *testing.T, r Result) string {
	t.Helper()
	var b strings.Builder
	if err := r.Print(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestScenario is the CI chaos run: the workers as a Worker runs by
// default, in kcl fleet mode (a worker process that chose otherwise fails
// the run), every fault kind — the leader's kill, pause and partition
// among them — a fixed seed, about a minute and a half. Replay a failure
// with -chaos.seed.
func TestScenario(t *testing.T) {
	cfg := config(t)
	cfg.Seed = *chaosSeed
	cfg.Duration = *chaosDuration
	cfg.LeaseDuration = 3 * time.Second
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("seed=%d: %v", cfg.Seed, err)
	}
	t.Logf("\n%s", table(t, res))
	if res.Report.Produced == 0 {
		t.Fatalf("seed=%d: nothing produced", cfg.Seed)
	}
	leader := 0
	for _, k := range []string{FaultLeaderSIGKILL, FaultLeaderSIGSTOP, FaultLeaderPartition} {
		leader += res.Faults[k]
	}
	if leader == 0 || res.Coordination[modeFleet] == 0 {
		t.Errorf("seed=%d: %d leader faults, %d worker processes in kcl fleet mode; want some of each", cfg.Seed, leader, res.Coordination[modeFleet])
	}
	if !res.OK() {
		t.Errorf("seed=%d: the chaos run failed (logs in %s)", cfg.Seed, res.Dir)
	}
	// kclchaos check: the logs alone give the same verdict.
	again, err := CheckDir(res.Dir, cfg.LeaseDuration)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != res.Report.String() || !maps.Equal(again.Failover, res.Report.Failover) {
		t.Errorf("CheckDir: %s\n%v\nwant %s\n%v", again, again.Failover, res.Report, res.Report.Failover)
	}
}

// ciMultilangFaults are the kinds of TestScenarioMultilang: a minute holds
// about fifteen faults, so the host's own (children killed alone, twice as
// often) and one of each kind of the others; the soak (kclchaos -multilang
// -soak) draws from MultilangFaults.
var ciMultilangFaults = []string{FaultSIGKILLChild, FaultSIGKILLChild, FaultSIGKILL, FaultSIGTERM, FaultSIGSTOP,
	FaultSplit, FaultMerge, FaultError500, FaultSlowDynamoDB, FaultReset}

// TestScenarioMultilang is the CI chaos run of the multilang mode: `kcl
// multilang` hosts running the recording child, with children killed alone
// besides the hosts' process faults, a reshard of each kind and proxy
// windows; a fixed seed, about a minute and a half.
func TestScenarioMultilang(t *testing.T) {
	cfg := config(t)
	cfg.HostCommand = []string{kclBinary(t), "multilang"}
	cfg.ChildCommand = []string{os.Args[0]}
	cfg.WorkerCommand = nil
	cfg.WorkerEnv = []string{envChild + "=1"}
	cfg.Seed = *chaosSeed
	cfg.Duration = *chaosMLDur
	cfg.Faults = ciMultilangFaults
	cfg.LeaseDuration = 3 * time.Second
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("seed=%d: %v", cfg.Seed, err)
	}
	t.Logf("\n%s", table(t, res))
	if res.Report.Produced == 0 {
		t.Fatalf("seed=%d: nothing produced", cfg.Seed)
	}
	if res.Faults[FaultSIGKILLChild] == 0 {
		t.Errorf("seed=%d: no child was killed: %v", cfg.Seed, res.Faults)
	}
	if !res.OK() {
		t.Errorf("seed=%d: the multilang chaos run failed (logs in %s)", cfg.Seed, res.Dir)
	}
	// kclchaos check finds the children's logs too.
	again, err := CheckDir(res.Dir, cfg.LeaseDuration)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != res.Report.String() {
		t.Errorf("CheckDir: %s\nwant %s", again, res.Report)
	}
}

// kclBinary returns -chaos.kcl, or builds the kcl binary from cmd/kcl (its
// own module) into a temporary directory, with the race detector when this
// test has it.
func kclBinary(t *testing.T) string {
	t.Helper()
	if *chaosKCL != "" {
		return *chaosKCL
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "cmd", "kcl"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kcl")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kcl in %s: %v\n%s", src, err, out)
	}
	return bin
}

func TestCheckDirNeedsARunsLogs(t *testing.T) {
	if _, err := CheckDir(t.TempDir(), time.Second); err == nil {
		t.Fatal("CheckDir on an empty directory: no error")
	}
}

// TestDeliberateBugs runs short scenarios with a bug injected in every
// worker, and checks that the checker catches it. The workers renew each
// lease (-coordination kcl), which keeps per-lease renewal under chaos in
// CI; the checker's rules are the same in both modes. (In kcl fleet mode a
// worker is fenced off only as a zombie — SIGSTOPped past its deadline and
// continued with a batch in hand — so unfenced checkpoints show only with
// sigstop faults, and rarely.)
func TestDeliberateBugs(t *testing.T) {
	if !*chaosBugs {
		t.Skip("-chaos.bugs=false")
	}
	tests := []struct {
		name    string
		bug     string
		workers int
		faults  []string
		caught  func(r Result) bool
	}{
		{name: "unfenced checkpoints show as fencing violations", bug: "unfenced", workers: 2,
			faults: []string{FaultJoin, FaultSIGKILL, FaultSIGTERM},
			caught: func(r Result) bool { return r.Report.FencingViolations > 0 }},
		{name: "children processed before their parents show as order violations", bug: "child-before-parent", workers: 3,
			faults: []string{FaultStopReshard},
			caught: func(r Result) bool { return r.Report.OrderViolations > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(t)
			cfg.Seed = *chaosSeed
			cfg.Duration = 35 * time.Second
			cfg.Workers = tt.workers
			cfg.Faults = tt.faults
			cfg.Bug = tt.bug
			cfg.Coordination = "kcl"
			res, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatalf("seed=%d: %v", cfg.Seed, err)
			}
			t.Logf("\n%s", table(t, res))
			if res.Report.OK() || !tt.caught(res) {
				t.Errorf("seed=%d: -bug=%s was not caught", cfg.Seed, tt.bug)
			}
		})
	}
}
