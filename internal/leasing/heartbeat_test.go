package leasing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// Heartbeat timings of these tests: F 2 s, H 500 ms, m 200 ms (the default
// for F = 2 s), so the worker's deadline is 1.8 s after a successful send.
const (
	hbF      = 2 * time.Second
	hbH      = 500 * time.Millisecond
	hbMargin = 200 * time.Millisecond
)

// beatScript decides, for each heartbeat of worker "w" as it is sent, how
// long it takes before reaching the table and whether it fails there. It
// records the send time of each heartbeat.
type beatScript struct {
	mu    sync.Mutex
	sends []time.Time
	// plan is called with the number of the heartbeat (0 for the first);
	// it returns the delay before the heartbeat reaches the table and
	// whether it is cut off (fails without landing).
	plan func(n int) (delay time.Duration, cut bool)
}

var errPartitioned = errors.New("partitioned")

func (b *beatScript) fault(op memlease.Op, key string) error {
	if op != memlease.OpBeat || key != "w" {
		return nil
	}
	b.mu.Lock()
	n := len(b.sends)
	b.sends = append(b.sends, time.Now())
	b.mu.Unlock()
	delay, cut := b.plan(n)
	time.Sleep(delay)
	if cut {
		return errPartitioned
	}
	return nil
}

func (b *beatScript) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sends)
}

func (b *beatScript) send(n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sends[n]
}

// runHeartbeater starts a Heartbeater for "w" over store (its context a
// child of the test's), running until ctx ends, and returns it and a channel
// that receives Run's error.
func runHeartbeater(t *testing.T, ctx context.Context, store *memlease.Store, opts ...leasing.HeartbeatOption) (*leasing.Heartbeater, <-chan error) {
	t.Helper()
	opts = append([]leasing.HeartbeatOption{leasing.WithFailoverTime(hbF), leasing.WithHeartbeatInterval(hbH)}, opts...)
	hb, err := leasing.NewHeartbeater(t.Context(), store, "w", opts...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hb.Run(ctx) }()
	return hb, done
}

// expectExpiryAt waits for hb's context and checks it was cancelled exactly
// at want with ErrHeartbeatExpired, and not a nanosecond earlier.
func expectExpiryAt(t *testing.T, hb *leasing.Heartbeater, done <-chan error, want time.Time) {
	t.Helper()
	time.Sleep(time.Until(want) - time.Nanosecond)
	synctest.Wait()
	if err := hb.Context().Err(); err != nil {
		t.Fatalf("context cancelled before the deadline %v (now %v): %v", want, time.Now(), context.Cause(hb.Context()))
	}
	<-hb.Context().Done()
	if now := time.Now(); !now.Equal(want) {
		t.Fatalf("context cancelled at %v, want exactly %v (F − m after the last successful send)", now, want)
	}
	cause := context.Cause(hb.Context())
	if !errors.Is(cause, leasing.ErrHeartbeatExpired) || !errors.Is(cause, lease.ErrLeaseLost) {
		t.Fatalf("cause = %v, want ErrHeartbeatExpired matching lease.ErrLeaseLost", cause)
	}
	if err := <-done; !errors.Is(err, leasing.ErrHeartbeatExpired) {
		t.Fatalf("Run returned %v, want ErrHeartbeatExpired", err)
	}
}

func TestHeartbeatDeadlineIsFMinusMarginAfterTheLastSuccessfulSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Beats 0–3 succeed; the partition starts right after beat 3.
		script := &beatScript{plan: func(n int) (time.Duration, bool) { return 0, n > 3 }}
		store := memlease.New(memlease.WithFault(script.fault))
		hb, done := runHeartbeater(t, t.Context(), store)
		<-hb.Ready()
		time.Sleep(3*hbH + time.Millisecond)
		last := script.send(3)
		if got := hb.Deadline(); !got.Equal(last.Add(hbF - hbMargin)) {
			t.Fatalf("Deadline() = %v, want %v", got, last.Add(hbF-hbMargin))
		}
		expectExpiryAt(t, hb, done, last.Add(hbF-hbMargin))
		// Beats sent after the partition began are the ones that failed, and
		// nothing is sent once the deadline passed.
		n := script.count()
		time.Sleep(5 * hbH)
		if got := script.count(); got != n {
			t.Fatalf("%d heartbeats sent after the deadline", got-n)
		}
	})
}

func TestHeartbeatThatSucceedsLateCountsFromItsSendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Beat 1 takes 1.2 s to land (more than an interval, less than
		// the deadline left); every later beat fails.
		script := &beatScript{plan: func(n int) (time.Duration, bool) {
			switch {
			case n == 0:
				return 0, false
			case n == 1:
				return 1200 * time.Millisecond, false
			default:
				return 0, true
			}
		}}
		store := memlease.New(memlease.WithFault(script.fault))
		hb, done := runHeartbeater(t, t.Context(), store)
		<-hb.Ready()
		time.Sleep(hbH + time.Millisecond)
		slow := script.send(1)
		if !slow.Equal(script.send(0).Add(hbH)) {
			t.Fatalf("beat 1 sent at %v, want %v", slow, script.send(0).Add(hbH))
		}
		expectExpiryAt(t, hb, done, slow.Add(hbF-hbMargin))
	})
}

func TestHeartbeatInFlightAtTheDeadlineDoesNotExtendIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Beat 1 lands 2 s after it was sent, after the deadline of beat 0.
		script := &beatScript{plan: func(n int) (time.Duration, bool) {
			if n == 1 {
				return 2 * time.Second, false
			}
			return 0, n > 1
		}}
		store := memlease.New(memlease.WithFault(script.fault))
		hb, done := runHeartbeater(t, t.Context(), store)
		<-hb.Ready()
		expectExpiryAt(t, hb, done, script.send(0).Add(hbF-hbMargin))
		// The late success revives nothing.
		if cause := context.Cause(hb.Context()); !errors.Is(cause, leasing.ErrHeartbeatExpired) {
			t.Fatalf("cause after the late success = %v", cause)
		}
	})
}

func TestHeartbeatReportsEachAssignEpochChangeOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		var (
			mu     sync.Mutex
			epochs []int64
		)
		report := func(e int64) {
			mu.Lock()
			epochs = append(epochs, e)
			mu.Unlock()
		}
		ctx, cancel := context.WithCancel(t.Context())
		hb, done := runHeartbeater(t, ctx, store, leasing.WithAssignEpochChange(report))
		<-hb.Ready()
		synctest.Wait()
		check := func(when string, want ...int64) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			if len(epochs) != len(want) {
				t.Fatalf("%s: reported %v, want %v", when, epochs, want)
			}
			for i := range want {
				if epochs[i] != want[i] {
					t.Fatalf("%s: reported %v, want %v", when, epochs, want)
				}
			}
		}
		check("after the first beat", 0)
		time.Sleep(3 * hbH)
		check("without a change", 0)

		// Two marks between beats are one change.
		time.Sleep(hbH / 2)
		for range 2 {
			if err := store.MarkAssigned(t.Context(), "w"); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(hbH / 2)
		synctest.Wait()
		check("after two marks", 0, 2)
		time.Sleep(4 * hbH)
		check("after two marks and more beats", 0, 2)

		if err := store.MarkAssigned(t.Context(), "w"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * hbH)
		check("after a third mark", 0, 2, 3)

		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run returned %v after its context ended, want nil", err)
		}
		if cause := context.Cause(hb.Context()); !errors.Is(cause, leasing.ErrHeartbeatStopped) {
			t.Fatalf("cause after Run returned = %v, want ErrHeartbeatStopped", cause)
		}
	})
}

func TestHeartbeatWritesStateAndLeaseCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		var leases int
		var mu sync.Mutex
		count := func() int { mu.Lock(); defer mu.Unlock(); return leases }
		hb, _ := runHeartbeater(t, t.Context(), store, leasing.WithLeaseCount(count))
		read := func() lease.Heartbeat {
			t.Helper()
			synctest.Wait()
			hbs, err := store.Heartbeats(t.Context(), []string{"w"})
			if err != nil || len(hbs) != 1 {
				t.Fatalf("Heartbeats = %v, %v", hbs, err)
			}
			return hbs[0]
		}
		if got := read(); got.State != lease.WorkerStarting || got.Counter != 1 {
			t.Fatalf("first heartbeat = %+v, want starting, counter 1", got)
		}

		mu.Lock()
		leases = 3
		mu.Unlock()
		hb.SetState(lease.WorkerRunning)
		// A state change is written at once, not at the next interval.
		if got := read(); got.State != lease.WorkerRunning || got.Leases != 3 || got.Counter != 2 {
			t.Fatalf("after SetState(running) = %+v, want running, 3 leases, counter 2", got)
		}
		time.Sleep(hbH)
		if got := read(); got.Counter != 3 {
			t.Fatalf("an interval later counter = %d, want 3", got.Counter)
		}

		time.Sleep(hbH / 3)
		hb.SetState(lease.WorkerStopping)
		if got := read(); got.State != lease.WorkerStopping || got.Counter != 4 {
			t.Fatalf("after SetState(stopping) = %+v, want stopping, counter 4", got)
		}
		hb.SetState(lease.WorkerStopping) // no change: no extra write
		time.Sleep(hbH - time.Millisecond)
		if got := read(); got.Counter != 4 {
			t.Fatalf("counter = %d before the next interval, want 4", got.Counter)
		}
		time.Sleep(time.Millisecond)
		if got := read(); got.State != lease.WorkerStopping || got.Counter != 5 {
			t.Fatalf("next interval = %+v, want stopping, counter 5", got)
		}
	})
}

func TestHeartbeatOptionsAreValidated(t *testing.T) {
	store := memlease.New()
	for _, tc := range []struct {
		name string
		opts []leasing.HeartbeatOption
	}{
		{"a zero failover time is refused", []leasing.HeartbeatOption{leasing.WithFailoverTime(0)}},
		{"an interval of half the failover time is refused", []leasing.HeartbeatOption{leasing.WithHeartbeatInterval(time.Second)}},
		{"a margin over a quarter of the failover time is refused", []leasing.HeartbeatOption{leasing.WithHeartbeatMargin(600 * time.Millisecond)}},
		{"a nil logger is refused", []leasing.HeartbeatOption{leasing.WithHeartbeatLogger(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leasing.NewHeartbeater(t.Context(), store, "w", tc.opts...)
			var oe *leasing.OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v, want *OptionError", err)
			}
		})
	}
	if _, err := leasing.NewHeartbeater(t.Context(), store, "w"); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
