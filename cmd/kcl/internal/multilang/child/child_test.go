package child

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/protocol"
)

const shardID = "shardId-000000000007"

// start starts the test binary as a child in mode, with a leak check run
// when the test ends (after its own cleanups, which kill the child).
func start(t *testing.T, mode string, spec Spec) (*Child, *observer.ObservedLogs) {
	t.Helper()
	checkLeaks(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, mode)
	core, logs := observer.New(zapcore.InfoLevel)
	spec.Argv = []string{exe, "-test.run=^$"}
	spec.ShardID = shardID
	spec.Logger = zap.New(core)
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Kill(); err != nil {
			t.Errorf("Kill: %v", err)
		}
	})
	return c, logs
}

// checkLeaks fails the test if, once it ended, goroutines or file
// descriptors are left over.
func checkLeaks(t *testing.T) {
	t.Helper()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), openFDs(t)
			if g <= goroutines && f <= fds {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leak: %d goroutines (was %d), %d open fds (was %d)", g, goroutines, f, fds)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func noCheckpoint(protocol.CheckpointRequest) protocol.CheckpointError {
	return protocol.InvalidStateException
}

func ptr[T any](v T) *T { return &v }

var (
	initMsg    = protocol.AppendInitialize(nil, protocol.Initialize{ShardID: shardID, SequenceNumber: ptr("TRIM_HORIZON")})
	recordsMsg = protocol.AppendProcessRecords(nil, []protocol.Record{{Data: []byte("hello"), PartitionKey: "pk", SequenceNumber: "1"}, {Data: []byte("world"), PartitionKey: "pk", SequenceNumber: "2"}}, nil)
)

// acceptFirst accepts checkpoint "1" and refuses every other one, recording
// the requests in order.
func acceptFirst(seen *[]string) func(protocol.CheckpointRequest) protocol.CheckpointError {
	return func(req protocol.CheckpointRequest) protocol.CheckpointError {
		seq := "<nil>"
		if req.SequenceNumber != nil {
			seq = *req.SequenceNumber
		}
		*seen = append(*seen, seq)
		if seq == "1" {
			return ""
		}
		return protocol.IllegalArgumentException
	}
}

func TestWellBehavedChildGoesThroughItsLifeAndExitsOnClose(t *testing.T) {
	for _, ending := range []string{"leaseLost", "shardEnded"} {
		t.Run("ending with "+ending, func(t *testing.T) {
			c, _ := start(t, "well-behaved", Spec{Timeout: 10 * time.Second})
			ctx := context.Background()
			if err := c.Call(ctx, initMsg, "initialize", noCheckpoint); err != nil {
				t.Fatalf("initialize: %v", err)
			}
			var seen []string
			if err := c.Call(ctx, recordsMsg, "processRecords", acceptFirst(&seen)); err != nil {
				t.Fatalf("processRecords: %v", err)
			}
			if strings.Join(seen, ",") != "1,2" {
				t.Errorf("checkpoint requests = %v, want [1 2] in order", seen)
			}
			end := protocol.AppendLeaseLost(nil)
			if ending == "shardEnded" {
				end = protocol.AppendShardEnded(nil)
			}
			if err := c.Call(ctx, end, ending, noCheckpoint); err != nil {
				t.Fatalf("%s: %v", ending, err)
			}
			if err := c.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if c.Garbage() != 0 {
				t.Errorf("Garbage() = %d, want 0", c.Garbage())
			}
		})
	}
}

func TestCheckpointRepliesCarryTheCallbacksError(t *testing.T) {
	// The well-behaved child exits 3 without a status if a reply does not
	// echo its request with the expected error; answering the wrong error
	// must therefore fail the call.
	c, _ := start(t, "well-behaved", Spec{Timeout: 10 * time.Second})
	ctx := context.Background()
	if err := c.Call(ctx, initMsg, "initialize", noCheckpoint); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	acceptAll := func(protocol.CheckpointRequest) protocol.CheckpointError { return "" }
	err := c.Call(ctx, recordsMsg, "processRecords", acceptAll)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Reason != ReasonExited || !errors.Is(err, io.EOF) {
		t.Fatalf("processRecords = %v, want a CallError with ReasonExited wrapping io.EOF", err)
	}
}

func TestFailingCallsCostTheChild(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		spec    Spec
		ctx     func(t *testing.T) context.Context
		before  func(t *testing.T, c *Child)
		reason  Reason
		wantErr error
	}{
		{name: "a child that exits mid-call fails the call with end of file", mode: "exit", reason: ReasonExited, wantErr: io.EOF},
		{name: "a status for another action fails the call", mode: "wrong", reason: ReasonWrongResponse},
		{name: "a line longer than MaxLine fails the call", mode: "huge", spec: Spec{MaxLine: 4096}, reason: ReasonLineTooLong, wantErr: protocol.ErrLineTooLong},
		{name: "a hung child fails the call after the timeout", mode: "hang", spec: Spec{Timeout: 200 * time.Millisecond}, reason: ReasonTimeout, wantErr: ErrTimeout},
		{
			name: "a hung child fails the call when its context ends", mode: "hang", reason: ReasonCanceled, wantErr: context.DeadlineExceeded,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
		},
		{
			name: "a child that exited cannot be written to", mode: "exit-now", reason: ReasonWriteFailed,
			before: func(t *testing.T, c *Child) { <-c.exited },
		},
		{
			name: "a call on a killed child fails", mode: "hang", reason: ReasonWriteFailed, wantErr: os.ErrClosed,
			before: func(t *testing.T, c *Child) { _ = c.Kill() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := start(t, tt.mode, tt.spec)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			if tt.before != nil {
				tt.before(t, c)
			} else if tt.mode != "hang" && tt.mode != "wrong" {
				if err := c.Call(context.Background(), initMsg, "initialize", noCheckpoint); err != nil {
					t.Fatalf("initialize: %v", err)
				}
			}
			action := "processRecords"
			msg := recordsMsg
			if tt.mode == "hang" || tt.mode == "wrong" || tt.before != nil {
				action, msg = "initialize", initMsg
			}
			begin := time.Now()
			err := c.Call(ctx, msg, action, noCheckpoint)
			var ce *CallError
			if !errors.As(err, &ce) || !errors.Is(err, ErrChildFailed) {
				t.Fatalf("Call = %v, want a *CallError matching ErrChildFailed", err)
			}
			if ce.Reason != tt.reason || ce.Action != action {
				t.Errorf("Call = %v: reason %v action %q, want %v %q", err, ce.Reason, ce.Action, tt.reason, action)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Call = %v, want it to wrap %v", err, tt.wantErr)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("Call took %v", d)
			}
			// The child is unusable afterwards.
			err = c.Call(context.Background(), recordsMsg, "processRecords", noCheckpoint)
			if !errors.As(err, &ce) || ce.Reason != ReasonClosed || !errors.Is(err, ErrChildFailed) {
				t.Errorf("Call after a failure = %v, want ReasonClosed", err)
			}
		})
	}
}

func TestGarbageOnStdoutIsCountedLoggedAndSkipped(t *testing.T) {
	c, logs := start(t, "garbage", Spec{})
	if err := c.Call(context.Background(), initMsg, "initialize", noCheckpoint); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if err := c.Call(context.Background(), recordsMsg, "processRecords", noCheckpoint); err != nil {
		t.Fatalf("processRecords: %v", err)
	}
	if got := c.Garbage(); got != 6 {
		t.Errorf("Garbage() = %d, want 6", got)
	}
	entries := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(entries) != 6 {
		t.Fatalf("%d warnings, want 6: %v", len(entries), entries)
	}
	for _, e := range entries {
		f := e.ContextMap()
		if f["shard_id"] != shardID || f["pid"] != int64(c.PID()) || f["line"] == "" || f["reason"] == "" {
			t.Errorf("warning %q has fields %v, want shard_id, pid, line and reason", e.Message, f)
		}
	}
	if got := entries[0].ContextMap()["line"]; got != "Processing record 42" {
		t.Errorf("first garbage line = %q", got)
	}
}

func TestStderrLinesAreLoggedWithShardAndPID(t *testing.T) {
	t.Setenv("KCL_TEST_MARK", "inherited")
	c, logs := start(t, "stderr", Spec{})
	if err := c.Call(context.Background(), initMsg, "initialize", noCheckpoint); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if err := c.Call(context.Background(), protocol.AppendLeaseLost(nil), "leaseLost", noCheckpoint); err != nil {
		t.Fatalf("leaseLost: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close read stderr to its end, so every line is logged by now.
	wd, _ := os.Getwd()
	var lines []string
	for _, e := range logs.FilterLevelExact(zapcore.InfoLevel).All() {
		f := e.ContextMap()
		if f["shard_id"] != shardID || f["pid"] != int64(c.PID()) {
			t.Errorf("entry %q has fields %v, want shard_id %q and pid %d", e.Message, f, shardID, c.PID())
		}
		lines = append(lines, f["line"].(string))
	}
	want := []string{
		"Traceback (most recent call last):", "cwd=" + wd + " mark=inherited",
		"Traceback (most recent call last):", "cwd=" + wd + " mark=inherited",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged stderr lines:\n%q\nwant\n%q", lines, want)
	}
}

func TestCloseKillsAChildThatIgnoresStdinEOF(t *testing.T) {
	c, _ := start(t, "deaf", Spec{})
	if err := c.Call(context.Background(), initMsg, "initialize", noCheckpoint); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if err := c.Call(context.Background(), protocol.AppendLeaseLost(nil), "leaseLost", noCheckpoint); err != nil {
		t.Fatalf("leaseLost: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := c.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-c.exited:
	default:
		t.Error("the child was not reaped by Close")
	}
}

func TestKillStopsAChildInTheMiddleOfACall(t *testing.T) {
	c, _ := start(t, "hang", Spec{})
	done := make(chan error, 1)
	go func() { done <- c.Call(context.Background(), initMsg, "initialize", noCheckpoint) }()
	time.Sleep(50 * time.Millisecond) // let the call block; the test holds either way
	if err := c.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrChildFailed) {
			t.Errorf("Call = %v, want ErrChildFailed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Call did not return after Kill")
	}
	if err := c.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
}

func TestStartRefusesWhatCannotRun(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want error
	}{
		{"a missing executable is not found on PATH", []string{"kcl-test-no-such-processor", "app.py"}, exec.ErrNotFound},
		{"an empty command line is refused", nil, nil},
		{"a missing path is not found", []string{"/nonexistent/kcl-test/processor"}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			c, err := Start(context.Background(), Spec{Argv: tt.argv})
			if err == nil {
				_ = c.Kill()
				t.Fatal("Start succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Start = %v, want it to wrap %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "child: start") {
				t.Errorf("Start = %q, want the package prefix", err)
			}
		})
	}
}
