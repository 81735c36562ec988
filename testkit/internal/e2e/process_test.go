package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/testenv"
)

// binDir holds the worker binary built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kcl-e2e-")
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

// workerBinary builds examples/worker once per test run and returns its path.
func workerBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		start := time.Now()
		goTool, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("the go command is not on PATH: %w", err)
			return
		}
		path := filepath.Join(binDir, "worker")
		// examples/worker is a module of its own (it uses plugin/kprom):
		// build it in its directory, found from kcl's go.mod.
		gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
		if err != nil {
			build.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		cmd := exec.Command(goTool, "build", "-o", path, ".")
		cmd.Dir = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "examples", "worker")
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build examples/worker: %w\n%s", err, out)
			return
		}
		build.path = path
		t.Logf("built examples/worker in %v", time.Since(start).Round(100*time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// workerProc is one examples/worker process. Its standard output is fed to
// the recorder as it arrives; its standard error (the worker's log) goes to
// a file shown when the test fails.
type workerProc struct {
	id      string
	cmd     *exec.Cmd
	rec     *recorder
	started time.Time
	logFile string
	exited  chan struct{} // closed once the process has exited
	waitErr error         // set before exited is closed
}

// startProc starts a worker process with the test timings, consuming the
// fixture's stream with lease owner id and the extra flags args, and kills
// it in t.Cleanup if it still runs then.
func (f *fixture) startProc(t *testing.T, rec *recorder, id string, args ...string) *workerProc {
	t.Helper()
	bin := workerBinary(t)
	logFile := filepath.Join(t.TempDir(), id+".log")
	stderr, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(bin,
		"-stream", f.stream, "-table", f.table, "-id", id,
		"-lease-duration", leaseDuration.String(), "-idle", idleTime.String(),
		"-initial", "trim_horizon", "-checkpoint", "batch", "-shutdown-timeout", stopTimeout.String())
	cmd.Args = append(cmd.Args, args...)
	cmd.Env = append(os.Environ(),
		testenv.EnvKinesisEndpoint+"="+testenv.KinesisEndpoint(t),
		testenv.EnvDynamoDBEndpoint+"="+testenv.DynamoDBEndpoint(t))
	cmd.Stderr = stderr
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &workerProc{id: id, cmd: cmd, rec: rec, logFile: logFile, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", id, err)
	}
	go func() {
		p.read(rec, stdout)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("worker %s log (last lines of %s):\n%s", id, logFile, tail(logFile, 40))
		}
	})
	return p
}

// line is one line of the worker's output: a record or a lease event.
type line struct {
	W     string `json:"w"`
	Shard string `json:"shard"`
	Event string `json:"event"`
	Seq   string `json:"seq"`
	Sub   uint64 `json:"sub"`
	Data  string `json:"data"`
}

// read feeds the process's output to rec until the process closes it. A
// last line cut short by SIGKILL is dropped: its batch never returned, so it
// was not checkpointed and is delivered again.
func (p *workerProc) read(rec *recorder, stdout io.Reader) {
	br := bufio.NewReaderSize(stdout, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rec.malformedLine(fmt.Sprintf("worker %s: reading standard output: %v", p.id, err))
			}
			return
		}
		var l line
		if err := json.Unmarshal(b, &l); err != nil || l.W == "" || l.Shard == "" {
			rec.malformedLine(fmt.Sprintf("worker %s: %q", p.id, b))
			continue
		}
		if l.W != p.id {
			rec.malformedLine(fmt.Sprintf("worker %s printed worker id %q", p.id, l.W))
		}
		if l.Event != "" {
			rec.lease(l.W, l.Shard, l.Event)
			continue
		}
		rec.record(l.W, l.Shard, []byte(l.Data), l.Seq, l.Sub)
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (p *workerProc) kill(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker %s: %v", p.id, err)
	}
	p.wait(t, 10*time.Second)
	p.rec.lease(p.id, "", kindKilled)
	return at
}

// term sends SIGTERM, waits for the graceful stop and checks that the
// process exited 0. It returns when the signal was sent.
func (p *workerProc) term(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM worker %s: %v", p.id, err)
	}
	p.wait(t, stopTimeout+5*time.Second)
	if p.waitErr != nil {
		t.Errorf("worker %s after SIGTERM: %v, want exit status 0", p.id, p.waitErr)
	}
	return at
}

func (p *workerProc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("worker %s did not exit within %v", p.id, timeout)
	}
}

// logged returns when the worker first logged msg after since, read from its
// log (zap's JSON lines on standard error, ts in seconds since the epoch).
func (p *workerProc) logged(msg string, since time.Time) (time.Time, bool) {
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return time.Time{}, false
	}
	for l := range bytes.Lines(b) {
		var e struct {
			TS  float64 `json:"ts"`
			Msg string  `json:"msg"`
		}
		if json.Unmarshal(l, &e) != nil || e.Msg != msg {
			continue
		}
		at := time.Unix(0, int64(e.TS*1e9))
		if at.After(since) {
			return at, true
		}
	}
	return time.Time{}, false
}

// tail returns the last n lines of file.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var sb strings.Builder
	for _, l := range lines {
		sb.Write(l)
		sb.WriteByte('\n')
	}
	return sb.String()
}
