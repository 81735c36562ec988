package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// The coordination a Worker runs follows from the option and the table:
// kcl fleet writes a heartbeat and a roster, KCL-compatible writes neither.
func TestCoordinationFollowsTheOptionAndTheTable(t *testing.T) {
	javaTable := func(s *memlease.Store) { s.AddForeignItem("WorkerMetricStats row of java-1") }
	javaLease := func(s *memlease.Store) {
		s.Put(lease.Lease{Key: "shardId-000000000001", Owner: "java-1", Counter: 7, Checkpoint: checkpoint.TrimHorizon})
	}
	tests := []struct {
		name      string
		mode      consumer.Coordination
		setup     func(*memlease.Store)
		wantFleet bool
		wantErr   error
	}{
		{name: "auto on a new table", mode: consumer.CoordinationAuto(), wantFleet: true},
		{name: "auto on a table with KCL 3.x items", mode: consumer.CoordinationAuto(), setup: javaTable},
		{name: "auto on a table with a lease a Java worker owns", mode: consumer.CoordinationAuto(), setup: javaLease},
		{name: "fleet on a new table", mode: consumer.CoordinationFleet(), wantFleet: true},
		{name: "fleet on a table with KCL 3.x items", mode: consumer.CoordinationFleet(), setup: javaTable, wantErr: consumer.ErrForeignTable},
		{name: "fleet on a table with a lease a Java worker owns", mode: consumer.CoordinationFleet(), setup: javaLease, wantErr: consumer.ErrForeignTable},
		{name: "kcl on a new table", mode: consumer.CoordinationKCL()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				if tt.setup != nil {
					tt.setup(store)
				}
				before := store.Stats().Writes()
				j := &journal{}
				w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithCoordination(tt.mode))
				if tt.wantErr != nil {
					ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
					defer cancel()
					err := w.Run(ctx)
					if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "java-1") {
						t.Fatalf("Run = %v, want %v naming java-1", err, tt.wantErr)
					}
					if n := store.Stats().Writes() - before; n != 0 {
						t.Errorf("%d writes before the refusal, want none", n)
					}
					return
				}
				r := start(t, w)
				time.Sleep(5 * time.Second)
				if err := r.stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
				s, err := store.Survey(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if s.Fleet != tt.wantFleet {
					t.Errorf("kcl fleet items written: %v, want %v", s.Fleet, tt.wantFleet)
				}
			})
		})
	}
}
