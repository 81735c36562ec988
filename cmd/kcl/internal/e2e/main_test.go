package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/testenv"
)

// binDir holds the kcl binary built for this test run; TestMain removes it.
var binDir string

// parallel is how many cases run at once unless -parallel is given. They wait
// on the emulators and on child processes far more than they compute, and
// -parallel's default, GOMAXPROCS, is 2 in CI: the package would take minutes.
const parallel = "8"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", parallel); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "kcl-multilang-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// kclBinary builds the kcl command once per test run and returns its path.
func kclBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		start := time.Now()
		goTool, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		path := filepath.Join(binDir, "kcl")
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command(goTool, append(args, "github.com/kclgo/kcl/cmd/kcl")...).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build github.com/kclgo/kcl/cmd/kcl: %w\n%s", err, out)
			return
		}
		build.path = path
		t.Logf("built kcl (race detector: %v) in %v", raceEnabled, time.Since(start).Round(100*time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// repoRoot returns the directory holding the go.mod of github.com/kclgo/kcl.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kclgo/kcl\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("e2e: no go.mod of github.com/kclgo/kcl above the working directory")
		}
		dir = parent
	}
}

// A lang is one client library a test runs its processor in.
type lang struct {
	name string
	// executable returns the executableName of the test processor.
	executable func(t *testing.T) string
}

var langs = []lang{
	{"node", nodeProcessor},
	{"python", pythonProcessor},
}

// nodeProcessor runs testdata/multilang/processor.js, written on aws-kcl.
func nodeProcessor(t *testing.T) string {
	t.Helper()
	node, _ := testenv.RequireNode(t, "aws-kcl")
	return executable(t, node, filepath.Join(repoRoot(t), "testdata", "multilang", "processor.js"))
}

// pythonProcessor runs testdata/multilang/processor.py, the test wrapper of
// examples/multilang-python.
func pythonProcessor(t *testing.T) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		if testenv.Required() {
			t.Fatalf("e2e: python3 is not on PATH (%s=1 forbids skipping)", testenv.EnvRequireEmulators)
		}
		t.Skip("e2e: python3 is not on PATH")
	}
	return executable(t, python, filepath.Join(repoRoot(t), "testdata", "multilang", "processor.py"))
}

// executable joins argv into an executableName, which the host splits on
// spaces: no part may contain one.
func executable(t *testing.T, argv ...string) string {
	t.Helper()
	for _, a := range argv {
		if strings.ContainsAny(a, " \t") {
			t.Fatalf("e2e: %q contains a space, which executableName cannot express; move the checkout", a)
		}
	}
	return strings.Join(argv, " ")
}
