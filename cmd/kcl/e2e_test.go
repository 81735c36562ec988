package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/testkit/testenv"
)

// envTestChild makes the test binary a MultiLangDaemon child processor:
// "ok" answers every message, "hang" never answers shutdownRequested.
const envTestChild = "KCL_TEST_CHILD"

// runTestChild is the child processor: it writes "got <action>" to stderr
// (which the host logs) for every message and answers with a status.
func runTestChild(mode string) {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m struct {
			Action string `json:"action"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Action == "" {
			continue
		}
		fmt.Fprintf(os.Stderr, "got %s\n", m.Action)
		if m.Action == "shutdownRequested" && mode == "hang" {
			time.Sleep(time.Hour)
		}
		fmt.Printf("{\"action\":\"status\",\"responseFor\":%q}\n", m.Action)
	}
}

// running is a kcl process whose JSON log lines the test reads.
type running struct {
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder
}

func startKCL(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	r := &running{cmd: exec.CommandContext(t.Context(), kclBin, args...), lines: make(chan string, 64)}
	r.cmd.Env = env
	r.cmd.Dir = t.TempDir()
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
	})
	return r
}

// waitLog reads log lines until one matches, failing the test after timeout.
func (r *running) waitLog(t *testing.T, timeout time.Duration, what string, match func(logEntry) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("kcl exited before logging %s:\n%s", what, r.log.String())
			}
			r.log.WriteString(line + "\n")
			if e, ok := parseLog(line); ok && match(e) {
				return
			}
		case <-deadline:
			t.Fatalf("kcl did not log %s within %v:\n%s", what, timeout, r.log.String())
		}
	}
}

// wait waits for the process to exit (at most timeout) and returns its
// status and how long that took.
func (r *running) wait(t *testing.T, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		for line := range r.lines {
			r.log.WriteString(line + "\n")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("kcl did not exit within %v:\n%s", timeout, r.log.String())
	}
	err := r.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return r.cmd.ProcessState.ExitCode(), time.Since(start)
}

func childSaid(action string) func(logEntry) bool {
	return func(e logEntry) bool { return e.Msg == "child stderr" && e.Fields["line"] == "got "+action }
}

// hostProperties writes a file for a one-shard stream on the emulators whose
// child is this test binary, and removes the lease table at cleanup.
func hostProperties(t *testing.T) string {
	t.Helper()
	stream := testenv.CreateStream(t, testenv.Kinesis(t), 1)
	app := testenv.UniqueName(t, "kclcli")
	ddb := testenv.DynamoDB(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(app)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("deleting the lease table %s: %v", app, err)
		}
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(self, " ") {
		t.Skipf("the test binary's path %q has a space, which executableName cannot express", self)
	}
	return writeProperties(t,
		"executableName = "+self,
		"applicationName = "+app,
		"streamName = "+stream,
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"regionName = "+testenv.Region,
		"kinesisEndpoint = "+testenv.KinesisEndpoint(t),
		"dynamoDBEndpoint = "+testenv.DynamoDBEndpoint(t),
		"initialPositionInStream = TRIM_HORIZON",
		"retrievalMode = POLLING",
		"idleTimeBetweenReadsInMillis = 200",
		"shutdownGraceMillis = 60000",
	)
}

func TestSIGTERMStopsTheHostGracefullyWithStatus0(t *testing.T) {
	testenv.Require(t)
	file := hostProperties(t)
	r := startKCL(t, isolatedEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", envTestChild+"=ok"),
		"multilang", "--log-format", "json", file)
	r.waitLog(t, time.Minute, "the child's initialize", childSaid("initialize"))
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, _ := r.wait(t, time.Minute)
	if code != 0 {
		t.Errorf("status %d after SIGTERM, want 0:\n%s", code, r.log.String())
	}
	for _, action := range []string{"shutdownRequested"} {
		if findLog(r.log.String(), childSaid(action)) == nil {
			t.Errorf("the child was not sent %s:\n%s", action, r.log.String())
		}
	}
}

func TestSecondSignalKillsTheChildrenAndExits1AtOnce(t *testing.T) {
	testenv.Require(t)
	file := hostProperties(t)
	r := startKCL(t, isolatedEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", envTestChild+"=hang"),
		"multilang", "--log-format", "json", file)
	r.waitLog(t, time.Minute, "the child's initialize", childSaid("initialize"))
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The child never answers shutdownRequested, so the graceful stop
	// would wait for shutdownGraceMillis (a minute).
	r.waitLog(t, 30*time.Second, "shutdownRequested sent to the child", childSaid("shutdownRequested"))
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, took := r.wait(t, 30*time.Second)
	if code != 1 {
		t.Errorf("status %d after a second signal, want 1:\n%s", code, r.log.String())
	}
	if took > 10*time.Second {
		t.Errorf("kcl took %v to exit after the second signal, want at once", took)
	}
	if findLog(r.log.String(), func(e logEntry) bool {
		return e.Msg == "stopping at once: killing every child" && e.Fields["signal"] == "interrupt"
	}) == nil {
		t.Errorf("the second signal was not logged:\n%s", r.log.String())
	}
	// The hung child was killed, not left behind.
	init := findLog(r.log.String(), childSaid("initialize"))
	pid, _ := init.Fields["pid"].(float64)
	if pid <= 0 {
		t.Fatalf("the child's log entry has no pid: %v", init.Fields)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool { return gone(int(pid)) },
		"the child (pid %d) is still running after kcl exited", int(pid))
}

// gone reports whether process pid has exited (it may be a zombie not yet
// reaped by its new parent).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
