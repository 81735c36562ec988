package leasing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease/memlease"
)

// TestLastContactFollowsTheTable checks, in both modes, that LastContact
// advances while the table answers and stands still while it does not: the
// Worker's readiness is judged from it.
func TestLastContactFollowsTheTable(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []leasing.Option
	}{
		{"per-lease", []leasing.Option{leasing.WithLeaseDuration(3 * time.Second)}},
		{"kcl fleet", []leasing.Option{fleetMode}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var down atomic.Bool
				store := memlease.New(memlease.WithFault(func(memlease.Op, string) error {
					if down.Load() {
						return errors.New("table unreachable")
					}
					return nil
				}))
				c, err := leasing.NewCoordinator(store, "w1", mode.opts...)
				if err != nil {
					t.Fatal(err)
				}
				if !c.LastContact().IsZero() {
					t.Fatal("LastContact is set before Run")
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = c.Run(ctx, context.WithoutCancel(ctx), func(*leasing.Held) {})
				}()
				time.Sleep(5 * time.Second)
				first := c.LastContact()
				if first.IsZero() || time.Since(first) > 2*time.Second {
					t.Fatalf("LastContact %v after 5 s of a reachable table (now %v), want within 2 s", first, time.Now())
				}
				down.Store(true)
				time.Sleep(10 * time.Second)
				if got := c.LastContact(); time.Since(got) < 8*time.Second {
					t.Errorf("LastContact %v, %v ago, after 10 s of an unreachable table: it moved", got, time.Since(got))
				}
				down.Store(false)
				time.Sleep(5 * time.Second)
				if got := c.LastContact(); time.Since(got) > 2*time.Second {
					t.Errorf("LastContact %v ago after the table came back, want within 2 s", time.Since(got))
				}
				cancel()
				<-done
			})
		})
	}
}
