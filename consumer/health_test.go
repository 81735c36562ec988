package consumer_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func TestHealthFollowsTheWorkerThroughItsLife(t *testing.T) {
	for _, mode := range []struct {
		name  string
		coord consumer.Coordination
		fleet bool
		limit time.Duration
	}{
		{"kcl fleet", consumer.CoordinationFleet(), true, 2 * time.Second},
		{"KCL-compatible", consumer.CoordinationKCL(), false, 10 * time.Second},
	} {
		t.Run(mode.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
				store := memlease.New()
				j := &journal{}
				putRange(f, 0, 20, 4)
				w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithCoordination(mode.coord))
				h := w.Health()
				if h.State != consumer.WorkerCreated || !h.Live() || h.Problem() == nil || h.WorkerID != "w1" || h.StreamName != streamName {
					t.Fatalf("before Run: %+v, live %v, problem %v; want created, live, not ready", h, h.Live(), h.Problem())
				}
				r := start(t, w)
				waitFor(t, "20 records", time.Minute, func() bool { return j.count() >= 20 })
				time.Sleep(3 * time.Second)
				h = w.Health()
				if h.State != consumer.WorkerRunning || !h.InitialSync || h.Fleet != mode.fleet || h.Leases != 2 || len(h.Shards) != 2 {
					t.Fatalf("running: %+v; want running, synced, fleet %v, 2 leases and 2 shards", h, mode.fleet)
				}
				if err := h.Problem(); err != nil || !h.Live() {
					t.Errorf("running: problem %v, live %v; want ready and live", err, h.Live())
				}
				if h.LeaseContactLimit != mode.limit || h.At.Sub(h.LastLeaseContact) > mode.limit/2 || h.LastShardSync.IsZero() {
					t.Errorf("running: lease contact %v ago (limit %v), last shard sync %v; want recent contact within limit %v and a sync",
						h.At.Sub(h.LastLeaseContact), h.LeaseContactLimit, h.LastShardSync, mode.limit)
				}
				for _, s := range h.Shards {
					if s.State != consumer.ShardProcessing || s.LastBatch.IsZero() || s.Failures != 0 || s.FetchFailures != 0 {
						t.Errorf("shard %+v: want processing with a batch done and no failures", s)
					}
				}
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
				h = w.Health()
				if h.State != consumer.WorkerStopped || h.Live() || h.Problem() == nil || len(h.Shards) != 0 {
					t.Errorf("after Run: %+v; want stopped, not live, not ready, no shards", h)
				}
			})
		})
	}
}

func TestHealthShowsAFailingShardInBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 5, 1)
		boom := errors.New("database down")
		var failing atomic.Bool
		failing.Store(true)
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.batch = func(context.Context, *consumer.Batch) error {
				if failing.Load() {
					return boom
				}
				return nil
			}
		}), "w1")
		r := start(t, w)
		time.Sleep(5 * time.Second)
		h := w.Health()
		if len(h.Shards) != 1 {
			t.Fatalf("shards %+v, want 1", h.Shards)
		}
		s := h.Shards[0]
		if s.State != consumer.ShardRetrying || s.Failures < 2 || !errors.Is(s.LastError, boom) {
			t.Errorf("failing shard %+v; want retrying with failures and the processor's error", s)
		}
		if err := h.Problem(); err != nil {
			t.Errorf("a failing processor makes the worker unready: %v", err)
		}
		failing.Store(false)
		waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
		if s := w.Health().Shards[0]; s.State != consumer.ShardProcessing || s.Failures != 0 || s.LastError != nil {
			t.Errorf("recovered shard %+v; want processing, failures reset", s)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHealthShowsFetchFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var throttle atomic.Bool
		throttle.Store(true)
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1), fakekinesis.WithFault(func(op string, in any) error {
			if op == "GetRecords" && throttle.Load() {
				return fakekinesis.Throttled()
			}
			return nil
		}))
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 5, 1)
		w := newWorker(t, f, store, factory(j, store, nil), "w1")
		r := start(t, w)
		time.Sleep(5 * time.Second)
		if s := w.Health().Shards; len(s) != 1 || s[0].FetchFailures < 2 || s[0].LastFetchError == nil {
			t.Errorf("throttled shard %+v; want fetch failures counted with the last error", s)
		}
		throttle.Store(false)
		waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
		if s := w.Health().Shards; len(s) != 1 || s[0].FetchFailures != 0 || s[0].LastFetchError != nil {
			t.Errorf("shard %+v after the throttling ended; want fetch failures reset", s)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestHealthIsNotReadyWhileTheLeaseTableIsOutOfReach(t *testing.T) {
	for _, coord := range []consumer.Coordination{consumer.CoordinationFleet(), consumer.CoordinationKCL()} {
		t.Run(coord.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
				var down atomic.Bool
				store := memlease.New(memlease.WithFault(func(memlease.Op, string) error {
					if down.Load() {
						return errors.New("no route to the table")
					}
					return nil
				}))
				j := &journal{}
				w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithCoordination(coord))
				r := start(t, w)
				time.Sleep(3 * time.Second)
				if err := w.Health().Problem(); err != nil {
					t.Fatalf("before the outage: %v", err)
				}
				down.Store(true)
				time.Sleep(w.Health().LeaseContactLimit + 2*time.Second)
				h := w.Health()
				if err := h.Problem(); err == nil || !strings.Contains(err.Error(), "lease table contact") {
					t.Errorf("%v into the outage: problem %v; want one naming the lease table", h.LeaseContactLimit+2*time.Second, err)
				}
				if !h.Live() {
					t.Error("an unreachable table made the worker not live: a restart would not help")
				}
				down.Store(false)
				waitFor(t, "readiness again", time.Minute, func() bool { return w.Health().Problem() == nil })
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
