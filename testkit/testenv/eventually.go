package testenv

import (
	"testing"
	"time"
)

// Eventually calls cond every tick until it returns true, and fails the test
// with msg (formatted with args) if that has not happened within timeout or
// when the test's context ends. cond runs on the calling goroutine, first
// without delay. Use it instead of fixed sleeps.
func Eventually(t testing.TB, timeout, tick time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		if cond() {
			return
		}
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("testenv: not true after %v: "+msg, append([]any{timeout}, args...)...)
		case <-t.Context().Done():
			t.Fatalf("testenv: test ended while waiting: "+msg, args...)
		case <-ticker.C:
		}
	}
}
