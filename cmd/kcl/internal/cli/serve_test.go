package cli

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeHost is a run/kill pair like the host's: run blocks until its context
// ends, then takes stopDelay to stop (or until killed) and returns stopErr.
type fakeHost struct {
	stopErr error
	killed  chan struct{}
	exited  chan struct{}
	// block makes run wait for kill after its context ends.
	block bool
}

func newFakeHost(stopErr error, block bool) *fakeHost {
	return &fakeHost{stopErr: stopErr, block: block, killed: make(chan struct{}), exited: make(chan struct{})}
}

func (f *fakeHost) run(ctx context.Context) error {
	defer close(f.exited)
	<-ctx.Done()
	if f.block {
		<-f.killed
		return errors.New("killed")
	}
	return f.stopErr
}

func (f *fakeHost) kill() { close(f.killed) }

func serveAsync(t *testing.T, sigs chan os.Signal, f *fakeHost) (<-chan error, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	done := make(chan error, 1)
	go func() { done <- serve(t.Context(), sigs, zap.New(core), f.run, f.kill) }()
	return done, logs
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return")
		return nil
	}
}

func TestServeFirstSignalStopsGracefully(t *testing.T) {
	for _, tt := range []struct {
		name    string
		stopErr error
	}{
		{name: "the host returns nil after a graceful stop", stopErr: nil},
		{name: "a start-up step ends with context.Canceled", stopErr: context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			f := newFakeHost(tt.stopErr, false)
			done, logs := serveAsync(t, sigs, f)
			sigs <- syscall.SIGTERM
			if err := wait(t, done); err != nil {
				t.Errorf("serve = %v, want nil after a graceful stop", err)
			}
			select {
			case <-f.killed:
				t.Error("kill was called on a graceful stop")
			default:
			}
			if n := logs.FilterMessage("stopping gracefully; a second signal stops at once").
				FilterField(zap.Stringer("signal", syscall.SIGTERM)).Len(); n != 1 {
				t.Errorf("graceful stop logged %d times, want 1: %v", n, logs.All())
			}
		})
	}
}

func TestServeSecondSignalKillsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	f := newFakeHost(nil, true)
	done, logs := serveAsync(t, sigs, f)
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGINT
	err := wait(t, done)
	if !errors.Is(err, errKilled) {
		t.Errorf("serve = %v, want errKilled", err)
	}
	select {
	case <-f.killed:
	default:
		t.Error("kill was not called on the second signal")
	}
	<-f.exited
	if n := logs.FilterMessage("stopping at once: killing every child").
		FilterField(zap.Stringer("signal", syscall.SIGINT)).Len(); n != 1 {
		t.Errorf("kill logged %d times, want 1: %v", n, logs.All())
	}
}

func TestServeReturnsTheHostsFailure(t *testing.T) {
	errBoom := errors.New("boom")
	core, _ := observer.New(zapcore.InfoLevel)
	err := serve(t.Context(), make(chan os.Signal), zap.New(core),
		func(context.Context) error { return errBoom }, func() { t.Error("kill called") })
	if !errors.Is(err, errBoom) {
		t.Errorf("serve = %v, want %v", err, errBoom)
	}
}

func TestServeCanceledWithoutASignalIsAFailure(t *testing.T) {
	// A run that reports context.Canceled although no signal asked for a
	// stop did not stop gracefully: it must not exit 0.
	core, _ := observer.New(zapcore.InfoLevel)
	err := serve(t.Context(), make(chan os.Signal), zap.New(core),
		func(context.Context) error { return context.Canceled }, func() {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("serve = %v, want context.Canceled", err)
	}
}
