package app_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kclgo/kcl/cmd/kcl/internal/app"
	"github.com/kclgo/kcl/cmd/kcl/internal/cli"
	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/testkit/testenv"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDescribeAndResetAnApplicationOfWorkers(t *testing.T) {
	setup(t)
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 2)
	table := testenv.UniqueName(t, "app")
	r := kcl(t, "app", "describe", table)
	if r.code != 1 {
		t.Fatalf("before the worker created its table: exit %d, want 1", r.code)
	}
	app.RunWorkerForTest(t, kc, ddb, stream, table, "worker-1")

	var v app.JSONView
	testenv.Eventually(t, 60*time.Second, 500*time.Millisecond, func() bool {
		r := kcl(t, "app", "describe", table, "--stream", stream, "--observe", "1s", "--lease-duration", "3s", "-o", "json")
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || len(v.Leases) != 2 {
			return false
		}
		for _, l := range v.Leases {
			if l.State != "active" || l.MillisBehindLatest == nil || *l.MillisBehindLatest != 0 {
				return false
			}
		}
		return len(v.Workers) == 1 && v.Workers[0].Worker == "worker-1" && v.Workers[0].Leases == 2
	}, "both leases active on worker-1, caught up")

	r = kcl(t, "app", "describe", table, "--stream", stream, "--observe", "1s", "--lease-duration", "3s")
	if r.code != 0 || strings.Count(r.stdout, " active ") != 2 || !strings.Contains(r.stdout, "no problems seen") {
		t.Errorf("table: exit %d, want both leases active and no problems:\n%s", r.code, r.stdout)
	}

	r = kcl(t, "app", "reset", table, "--to", "trim-horizon", "--observe", "1s", "--lease-duration", "3s", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, "held by a live worker") || !strings.Contains(r.stdout, "(live)") {
		t.Errorf("reset under a live worker: exit %d, stderr %q; want 1 and a refusal", r.code, r.stderr)
	}
}

func TestDescribeWatchRepaintsUntilInterrupted(t *testing.T) {
	setup(t)
	table := fixtureTable(t, "kcl-lease-items.json")
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run([]string{"app", "describe", table, "--watch", "--interval", "100ms"},
			&ops.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	}()
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return strings.Count(out.String(), "\x1b[H\x1b[2J") >= 3
	}, "three repaints")
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after Ctrl-C, want 0: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("describe --watch did not stop on SIGINT")
	}
	if !strings.Contains(out.String(), "PROBLEMS") {
		t.Errorf("a repaint lacks the view:\n%s", out.String())
	}
}
