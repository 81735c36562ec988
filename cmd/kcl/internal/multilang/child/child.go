package child

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/protocol"
)

// Spec says how to start a child.
type Spec struct {
	// Argv is the command line, already split (executableName split on
	// spaces). Argv[0] is looked up on PATH unless it contains a slash. No
	// shell is involved.
	Argv []string
	// ShardID is the shard the child processes; it is logged with every
	// line the child writes to stderr.
	ShardID string
	// Logger receives the child's stderr lines (Info) and stdout garbage
	// (Warn), with fields shard_id and pid. Nil means zap.NewNop().
	Logger *zap.Logger
	// Timeout bounds each call (timeoutInSeconds), from the write of the
	// message to the matching status, including the checkpoint callbacks.
	// Zero means no limit.
	Timeout time.Duration
	// MaxLine is the longest line the child may write to stdout, in bytes;
	// 0 means protocol.DefaultMaxLine.
	MaxLine int
}

// maxStderrLine bounds a logged stderr line; the rest of a longer line is
// dropped and the entry is marked truncated.
const maxStderrLine = 16 << 10

// maxLoggedGarbage bounds the garbage line quoted in a log entry.
const maxLoggedGarbage = 1 << 10

// Child is one running child process. Its methods are not safe for
// concurrent use, except [Child.Kill], [Child.Garbage] and [Child.PID], which
// may be called at any time (a Call in progress then fails).
type Child struct {
	cmd    *exec.Cmd
	log    *zap.Logger
	spec   Spec
	stdin  *os.File // write end
	stdout *os.File // read end
	stderr *os.File // read end
	reader *protocol.Reader
	buf    []byte // checkpoint replies

	garbage atomic.Int64

	exited     chan struct{} // closed when the process has been reaped
	waitErr    error         // set before exited is closed
	stderrDone chan struct{} // closed when the stderr reader returned

	failed error // sticky: set by the first failed call, Close or Kill

	killOnce sync.Once
	killErr  error
}

// Start starts the child described by spec with the host's environment and
// working directory, and three pipes. It returns an error wrapping
// exec.ErrNotFound if Argv[0] is not found.
func Start(ctx context.Context, spec Spec) (*Child, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return nil, errors.New("child: start: empty command line")
	}
	if spec.Logger == nil {
		spec.Logger = zap.NewNop()
	}
	if spec.MaxLine <= 0 {
		spec.MaxLine = protocol.DefaultMaxLine
	}
	path, err := exec.LookPath(spec.Argv[0])
	if err != nil {
		return nil, fmt.Errorf("child: start %q: %w", spec.Argv[0], err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("child: start %q: %w", spec.Argv[0], context.Cause(ctx))
	}

	var files []*os.File // every pipe end, closed on error
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("child: start: %w", err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("child: start: %w", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("child: start: %w", err)
	}

	cmd := &exec.Cmd{Path: path, Args: spec.Argv, Stdin: inR, Stdout: outW, Stderr: errW}
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("child: start %q: %w", spec.Argv[0], err)
	}
	// The child holds its own copies of these ends; ours would keep the
	// pipes open after it exits.
	_ = inR.Close()
	_ = outW.Close()
	_ = errW.Close()

	c := &Child{
		cmd:        cmd,
		spec:       spec,
		log:        spec.Logger.With(zap.String("shard_id", spec.ShardID), zap.Int("pid", cmd.Process.Pid)),
		stdin:      inW,
		stdout:     outR,
		stderr:     errR,
		reader:     protocol.NewReader(outR, spec.MaxLine),
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	go c.logStderr()
	return c, nil
}

// PID returns the child's process id.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// Garbage returns how many stdout lines of the child were garbage (neither a
// status nor a checkpoint request); they are logged and skipped.
func (c *Child) Garbage() int { return int(c.garbage.Load()) }

// logStderr logs every line of the child's stderr at Info until end of file
// or until the read end is closed.
func (c *Child) logStderr() {
	defer close(c.stderrDone)
	r := bufio.NewReaderSize(c.stderr, 4096)
	var line []byte
	truncated := false
	for {
		frag, err := r.ReadSlice('\n')
		if room := maxStderrLine - len(line); len(frag) > room {
			frag, truncated = frag[:room], true
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			fields := []zap.Field{zap.String("line", string(line))} // copied: line is reused
			if truncated {
				fields = append(fields, zap.Bool("truncated", true))
			}
			c.log.Info("child stderr", fields...)
		}
		line, truncated = line[:0], false
		if err != nil {
			return
		}
	}
}

// aLongTimeAgo is a deadline in the past: it makes blocked reads and writes
// on the pipes return at once.
var aLongTimeAgo = time.Unix(1, 0)

func (c *Child) setDeadline(t time.Time) {
	_ = c.stdin.SetWriteDeadline(t)
	_ = c.stdout.SetReadDeadline(t)
}

// Call writes msg, one message encoded with a protocol Append function whose
// action is action, to the child's stdin, then reads the child's messages
// until a status whose responseFor is action.
//
// Every checkpoint request is answered before the next message is read, with
// protocol.AppendCheckpoint(req, onCheckpoint(req)); onCheckpoint runs on
// the caller's goroutine. For initialize and leaseLost, which have no
// checkpointer, pass a callback returning protocol.InvalidStateException, as
// the Java host does. Garbage lines are logged at Warn, counted and skipped.
//
// Any error is a [*CallError] matching [ErrChildFailed]; the Child is then
// unusable and must be killed. Call fails when the child closes its stdout or
// exits, sends a status for another action, writes a line longer than
// Spec.MaxLine, cannot be written to, when Spec.Timeout passes, or when ctx
// ends.
func (c *Child) Call(ctx context.Context, msg []byte, action string, onCheckpoint func(protocol.CheckpointRequest) protocol.CheckpointError) error {
	if c.failed != nil {
		return &CallError{Action: action, Reason: ReasonClosed, Err: c.failed}
	}
	err := c.call(ctx, msg, action, onCheckpoint)
	if err != nil {
		c.failed = err
	}
	return err
}

func (c *Child) call(ctx context.Context, msg []byte, action string, onCheckpoint func(protocol.CheckpointRequest) protocol.CheckpointError) error {
	if c.spec.Timeout > 0 {
		c.setDeadline(time.Now().Add(c.spec.Timeout))
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.setDeadline(aLongTimeAgo)
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
		c.setDeadline(time.Time{})
	}()
	fail := func(reason Reason, err error) error {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				reason, err = ReasonCanceled, context.Cause(ctx)
			} else {
				reason, err = ReasonTimeout, ErrTimeout
			}
		}
		return &CallError{Action: action, Reason: reason, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return &CallError{Action: action, Reason: ReasonCanceled, Err: context.Cause(ctx)}
	}

	if _, err := c.stdin.Write(msg); err != nil {
		return fail(ReasonWriteFailed, err)
	}
	for {
		m, err := c.reader.Next()
		switch {
		case errors.Is(err, protocol.ErrLineTooLong):
			return fail(ReasonLineTooLong, err)
		case err != nil:
			return fail(ReasonExited, err)
		}
		switch m := m.(type) {
		case protocol.Status:
			if m.ResponseFor != action {
				return fail(ReasonWrongResponse, fmt.Errorf("child: status for %q while waiting for %q", m.ResponseFor, action))
			}
			return nil
		case protocol.CheckpointRequest:
			c.buf = protocol.AppendCheckpoint(c.buf[:0], m, onCheckpoint(m))
			if _, err := c.stdin.Write(c.buf); err != nil {
				return fail(ReasonWriteFailed, err)
			}
		case protocol.Garbage:
			c.logGarbage(m)
		}
	}
}

func (c *Child) logGarbage(g protocol.Garbage) {
	c.garbage.Add(1)
	line := g.Line
	if len(line) > maxLoggedGarbage {
		line = line[:maxLoggedGarbage]
	}
	c.log.Warn("child wrote garbage on stdout", zap.String("line", line), zap.String("reason", g.Reason))
}

// Close stops the child after the status of its final call (leaseLost or
// shardEnded): it closes the child's stdin, reads its stdout and stderr to
// end of file (stdout lines are logged as garbage), and waits for it to exit.
// If ctx ends first, it kills the child and returns an error wrapping the
// context's cause. It returns an error wrapping *exec.ExitError if the child
// exited with a non-zero status. After Close the Child is unusable; Kill
// may still be called and does nothing.
func (c *Child) Close(ctx context.Context) error {
	if c.failed == nil {
		c.failed = errors.New("child: closed")
	}
	_ = c.stdin.Close()

	stop := context.AfterFunc(ctx, func() { _ = c.stdout.SetReadDeadline(aLongTimeAgo) })
	for {
		m, err := c.reader.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				// The reader gave up (line too long, or an earlier
				// failure); drain what is left unparsed.
				_, _ = io.Copy(io.Discard, c.stdout)
			}
			break
		}
		switch m := m.(type) {
		case protocol.Garbage:
			c.logGarbage(m)
		default:
			c.logGarbage(protocol.Garbage{Line: fmt.Sprintf("%#v", m), Reason: "message after the final status"})
		}
	}
	stop()

	select {
	case <-c.stderrDone:
	case <-ctx.Done():
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		_ = c.Kill()
		return fmt.Errorf("child: close: killed pid %d: %w", c.PID(), context.Cause(ctx))
	}
	_ = c.Kill() // reaped already: releases the pipes and joins the stderr reader
	if c.waitErr != nil {
		return fmt.Errorf("child: close: pid %d: %w", c.PID(), c.waitErr)
	}
	return nil
}

// Kill kills the child with SIGKILL (on Unix, its whole process group: the
// child runs in a group of its own), waits for it to be reaped, closes the
// pipes and joins the goroutine logging its stderr. It may be called at any
// time, also while a Call is in progress (the Call then fails), and more
// than once.
func (c *Child) Kill() error {
	c.killOnce.Do(func() {
		if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.killErr = fmt.Errorf("child: kill pid %d: %w", c.PID(), err)
		}
		if err := killGroup(c.PID()); err != nil && c.killErr == nil {
			c.killErr = fmt.Errorf("child: kill process group %d: %w", c.PID(), err)
		}
		<-c.exited
		// Closing the read ends also ends the stderr reader if a grandchild
		// still holds the write end.
		_ = c.stdin.Close()
		_ = c.stdout.Close()
		_ = c.stderr.Close()
		<-c.stderrDone
	})
	return c.killErr
}
