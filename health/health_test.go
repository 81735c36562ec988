package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/health"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// fixed is a Checker that reports h.
type fixed consumer.Health

func (f fixed) Health() consumer.Health { return consumer.Health(f) }

func get(t *testing.T, h http.Handler, path string) (int, health.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var rep health.Report
	if rec.Code != http.StatusNotFound {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("GET %s: body %q: %v", path, rec.Body, err)
		}
	}
	return rec.Code, rep
}

func TestProbes(t *testing.T) {
	now := time.Now()
	ready := consumer.Health{
		At: now, StreamName: "orders", WorkerID: "w1", State: consumer.WorkerRunning, InitialSync: true, Leases: 3,
		LastLeaseContact: now.Add(-300 * time.Millisecond), LeaseContactLimit: 2 * time.Second, LastShardSync: now.Add(-time.Minute),
	}
	stale := ready
	stale.LastLeaseContact = now.Add(-3 * time.Second)
	starting := ready
	starting.State, starting.InitialSync, starting.Leases = consumer.WorkerStarting, false, 0
	stopped := ready
	stopped.State, stopped.Err = consumer.WorkerStopped, errors.New("consumer: stream not found")
	backoff := ready
	backoff.Shards = []consumer.ShardHealth{
		{ShardID: "shardId-000000000001", State: consumer.ShardProcessing},
		{ShardID: "shardId-000000000002", State: consumer.ShardRetrying, Failures: 4, LastError: errors.New("db down")},
	}
	tests := []struct {
		name             string
		workers          []health.Checker
		live, readyCode  int
		problemSubstring string
	}{
		{"a running worker that reached its table recently is live and ready", []health.Checker{fixed(ready)}, 200, 200, ""},
		{"a worker whose table contact is older than its limit is live but not ready", []health.Checker{fixed(stale)}, 200, 503, "lease table contact"},
		{"a starting worker is live but not ready", []health.Checker{fixed(starting)}, 200, 503, "starting"},
		{"a stopped worker is neither", []health.Checker{fixed(stopped)}, 503, 503, "stopped"},
		{"one unready worker of two makes the process unready", []health.Checker{fixed(ready), fixed(stale)}, 200, 503, "lease table contact"},
		{"a shard in backoff leaves the worker ready", []health.Checker{fixed(backoff)}, 200, 200, ""},
		{"no worker is live and not ready", nil, 200, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := health.Handler(tt.workers...)
			code, rep := get(t, h, "/healthz")
			if code != tt.live {
				t.Errorf("/healthz = %d %+v, want %d", code, rep, tt.live)
			}
			code, rep = get(t, h, "/readyz")
			if code != tt.readyCode {
				t.Errorf("/readyz = %d %+v, want %d", code, rep, tt.readyCode)
			}
			if (code == 200) != (rep.Status == health.StatusOK) || len(rep.Workers) != len(tt.workers) {
				t.Errorf("/readyz report %+v does not match its status %d", rep, code)
			}
			problems := ""
			for _, w := range rep.Workers {
				problems += w.Problem
			}
			if tt.problemSubstring != "" && !strings.Contains(problems, tt.problemSubstring) {
				t.Errorf("/readyz problems %q, want one containing %q", problems, tt.problemSubstring)
			}
		})
	}
}

func TestReportListsOnlyShardsThatAreNotSimplyProcessing(t *testing.T) {
	now := time.Now()
	h := consumer.Health{At: now, State: consumer.WorkerRunning, Shards: []consumer.ShardHealth{
		{ShardID: "a", State: consumer.ShardProcessing},
		{ShardID: "b", State: consumer.ShardRetrying, Failures: 4, LastError: errors.New("db down")},
		{ShardID: "c", State: consumer.ShardProcessing, FetchFailures: 2, LastFetchError: errors.New("throttled")},
		{ShardID: "d", State: consumer.ShardWaitingForParents},
	}}
	rep := health.Check(true, fixed(h))
	var got []string
	for _, s := range rep.Workers[0].Shards {
		got = append(got, s.Shard+":"+s.State+":"+s.LastError+s.LastFetchError)
	}
	if want := "b:retrying:db down c:processing:throttled d:waiting_for_parents:"; strings.Join(got, " ") != want {
		t.Errorf("shards %q, want %q", strings.Join(got, " "), want)
	}
}

func TestOtherPathsAndMethods(t *testing.T) {
	h := health.Handler()
	if code, _ := get(t, h, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics = %d, want 404", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/app/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.Len() != 0 {
		t.Errorf("HEAD /app/readyz = %d with %d bytes, want 503 without a body", rec.Code, rec.Body.Len())
	}
}

func TestProbesOfARealWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream("orders", 2))
		w, err := consumer.New(f, memlease.New(), "orders",
			consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
				return consumer.ProcessorFunc(func(context.Context, *consumer.Batch) error { return nil }), nil
			}),
			consumer.WithWorkerID("w1"), consumer.WithInitialPosition(checkpoint.TrimHorizon))
		if err != nil {
			t.Fatal(err)
		}
		h := health.Handler(w)
		if code, _ := get(t, h, "/readyz"); code != 503 {
			t.Errorf("/readyz before Run = %d, want 503", code)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(3 * time.Second)
		code, rep := get(t, h, "/readyz")
		if code != 200 || rep.Workers[0].Leases != 2 || rep.Workers[0].State != "running" {
			t.Errorf("/readyz while running = %d %+v, want 200 with 2 leases", code, rep)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if code, _ := get(t, h, "/healthz"); code != 503 {
			t.Errorf("/healthz after Run returned = %d, want 503", code)
		}
	})
}
