package leasing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// TestHolderStopsBeforeAnyTake pits a holder that is cut off from the table
// against a taker that scans it every 100 ms and takes the lease the moment
// its Observer says it expired, in the two worst cases for the holder:
//
//   - the taker's scan lands at the very instant of the holder's last
//     renewal, so the taker's expiry clock starts when the holder's does;
//   - the lease was assigned to the holder by a stopping peer, the taker saw
//     that write at once, and the holder found it only at its next
//     assignment poll 400 ms later, then was cut off.
//
// At the taker's expiry instant the holder must have stopped strictly before
// — its context cancelled with ErrExpired, Valid false, WriteCheckpoint
// refused without a write — and by at least the expiry margin.
func TestHolderStopsBeforeAnyTake(t *testing.T) {
	for _, tc := range []struct {
		name       string
		assigned   bool
		d          time.Duration
		wantMargin time.Duration
	}{
		{name: "the taker scans at the instant of the holder's last renewal", d: 8 * time.Second, wantMargin: 200 * time.Millisecond},
		{name: "the same at KCL's 10 s lease", d: 10 * time.Second, wantMargin: 200 * time.Millisecond},
		{name: "the same at a 60 s lease, where the drift bound (1 %) sets the margin", d: time.Minute, wantMargin: 600 * time.Millisecond},
		{name: "the taker saw the assignment a poll before the holder read it", assigned: true, d: 8 * time.Second, wantMargin: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stoppedAt, takeAt := holderVersusTaker(t, tc.assigned, tc.d)
				if gap := takeAt.Sub(stoppedAt); gap < tc.wantMargin {
					t.Errorf("the holder stopped %v before the taker could take; want at least the margin, %v", gap, tc.wantMargin)
				}
			})
		})
	}
}

// TestWithoutAMarginTheHolderStopsAsTheTakerTakes shows that the scan in
// TestHolderStopsBeforeAnyTake lands exactly: with no margin the holder's
// deadline is the taker's expiry instant, and which of the two acts first is
// up to the scheduler (in a real fleet, up to the two clocks' rates).
func TestWithoutAMarginTheHolderStopsAsTheTakerTakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stoppedAt, takeAt := holderVersusTaker(t, false, leasing.DefaultLeaseDuration, leasing.WithExpiryMargin(0))
		if !stoppedAt.Equal(takeAt) {
			t.Errorf("with no margin the holder stopped at %v, the taker could take at %v; want the same instant", stoppedAt, takeAt)
		}
	})
}

// holderVersusTaker runs the scenario of TestHolderStopsBeforeAnyTake and
// with lease duration d (renewed every d/3) and returns when the holder
// stopped and when the taker's Observer first reported the lease expired (and
// took it). It fails the test if the holder had not stopped by then.
func holderVersusTaker(t *testing.T, assigned bool, d time.Duration, opts ...leasing.Option) (stoppedAt, takeAt time.Time) {
	mem := memlease.New()
	ws := &workerStore{sharedStore: mem}
	c, err := leasing.NewCoordinator(ws, "holder", append([]leasing.Option{leasing.WithLeaseDuration(d)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}

	acquired := make(chan *leasing.Held, 1)
	var stopped atomic.Int64 // UnixNano of the holder's context being cancelled
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Run(ctx, drainAfter(ctx), func(h *leasing.Held) {
			acquired <- h
			go func() {
				<-h.Context().Done()
				stopped.Store(time.Now().UnixNano())
				_ = h.Done(context.Background())
			}()
		})
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	obs := leasing.NewObserver(d)
	l := lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}
	var h *leasing.Held
	if assigned {
		// The holder's first pass found an empty table; its first
		// assignment poll is at 500 ms.
		time.Sleep(100 * time.Millisecond)
		if err := mem.Create(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Take(t.Context(), l, "holder"); err != nil { // as a stopping peer assigns it
			t.Fatal(err)
		}
		scan(t, mem, obs)
		h = <-acquired
		synctest.Wait()
	} else {
		if err := mem.Create(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		h = <-acquired // the holder's first pass takes it
		time.Sleep(d / 3)
		synctest.Wait() // the holder's renewal at this instant has landed
		if got := time.Unix(0, ws.lastRenew.Load()); !got.Equal(time.Now()) {
			t.Fatalf("the holder's last renewal began at %v, want now (%v)", got, time.Now())
		}
	}
	ws.crashed.Store(true) // no more renewals: the holder expires by its own clock

	for limit := time.Now().Add(2 * d); ; {
		now, ls := scan(t, mem, obs)
		if len(ls) == 1 && obs.Expired(now, ls[0]) {
			synctest.Wait() // whatever else is due at this instant runs
			at := stopped.Load()
			if at == 0 || h.Context().Err() == nil {
				t.Fatalf("the taker may take the lease at %v while the holder still processes it", now.Format("15:04:05.000"))
			}
			stoppedAt = time.Unix(0, at)
			if cause := context.Cause(h.Context()); !errors.Is(cause, leasing.ErrExpired) {
				t.Errorf("the holder stopped with cause %v, want ErrExpired", cause)
			}
			if h.Valid() {
				t.Error("Valid() = true after the holder's deadline")
			}
			if err := h.WriteCheckpoint(t.Context(), checkpoint.TrimHorizon, checkpoint.Position{}, nil); !errors.Is(err, leasing.ErrExpired) {
				t.Errorf("WriteCheckpoint after the deadline = %v, want ErrExpired (refused without a write)", err)
			}
			if _, err := mem.Take(t.Context(), ls[0], "taker"); err != nil {
				t.Fatalf("take: %v", err)
			}
			return stoppedAt, now
		}
		if now.After(limit) {
			t.Fatalf("the taker never saw the lease expire")
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
	}
}

// scan reads the table and records it in obs, as a taker pass does.
func scan(t *testing.T, store lease.Store, obs *leasing.Observer) (time.Time, []lease.Lease) {
	ls, err := store.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	obs.Observe(now, ls)
	return now, ls
}
