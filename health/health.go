// Package health serves the liveness and readiness of kcl Workers over HTTP,
// for Kubernetes probes and load balancers:
//
//	probes := health.Handler(w) // w is a *consumer.Worker
//	mux.Handle("/healthz", probes)
//	mux.Handle("/readyz", probes)
//
// A Worker is live until its Run has returned (its loops are running, or
// about to): a failed liveness probe restarts the process, which helps only
// a worker that stopped. It is ready while it runs, its first shard sync is
// done and it proved itself to the lease table within the lease duration
// (kcl fleet: the failover time) — see consumer.Health.Problem. A worker
// cut off from its lease table is not ready, but still live: its leases
// expire and its peers take its shards, and it takes them back when the
// table answers again.
package health

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/kclgo/kcl/consumer"
)

// Checker is what the handler asks: *consumer.Worker implements it.
type Checker interface {
	Health() consumer.Health
}

var _ Checker = (*consumer.Worker)(nil)

// Handler returns a handler that answers a request whose path ends in
// "/healthz" with the liveness of every worker given, and one whose path
// ends in "/readyz" with their readiness; any other path is 404. The status
// is 200 when every worker is live (ready), 503 otherwise; the body is a
// JSON object (see Report). With no worker, liveness is 200 and readiness
// 503. The handler reads memory only: it never blocks on I/O.
func Handler(workers ...Checker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ready bool
		switch {
		case strings.HasSuffix(r.URL.Path, "/healthz"):
		case strings.HasSuffix(r.URL.Path, "/readyz"):
			ready = true
		default:
			http.NotFound(rw, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rep := Check(ready, workers...)
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		if rep.Status != StatusOK {
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method == http.MethodHead {
			return
		}
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}

// The values of Report.Status.
const (
	StatusOK          = "ok"
	StatusUnavailable = "unavailable"
)

// Report is the body the handler writes.
type Report struct {
	// Status is StatusOK or StatusUnavailable.
	Status  string         `json:"status"`
	Workers []WorkerReport `json:"workers"`
}

// WorkerReport is one worker's part of a Report.
type WorkerReport struct {
	Stream string `json:"stream"`
	Worker string `json:"worker"`
	State  string `json:"state"`
	// Problem says why the worker is not live (not ready); empty if it is.
	Problem string `json:"problem,omitempty"`
	Leases  int    `json:"leases"`
	// LeaseContactAge is how long ago the worker last proved itself to the
	// lease table, and LeaseContactLimit how old that may grow.
	LeaseContactAge   string `json:"lease_contact_age,omitempty"`
	LeaseContactLimit string `json:"lease_contact_limit"`
	LastShardSync     string `json:"last_shard_sync,omitempty"`
	// Shards lists the shards that are not simply processing: waiting for
	// parents, in backoff after failures, stopping.
	Shards []ShardReport `json:"shards,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// ShardReport is a shard of a WorkerReport.
type ShardReport struct {
	Shard          string `json:"shard"`
	State          string `json:"state"`
	Since          string `json:"since"`
	Failures       int    `json:"failures,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	FetchFailures  int    `json:"fetch_failures,omitempty"`
	LastFetchError string `json:"last_fetch_error,omitempty"`
}

// Check builds the report of the workers' liveness, or readiness when
// ready is set.
func Check(ready bool, workers ...Checker) Report {
	rep := Report{Status: StatusOK, Workers: make([]WorkerReport, 0, len(workers))}
	if ready && len(workers) == 0 {
		rep.Status = StatusUnavailable
	}
	for _, c := range workers {
		h := c.Health()
		wr := WorkerReport{
			Stream: h.StreamName, Worker: h.WorkerID, State: h.State.String(), Leases: h.Leases,
			LeaseContactLimit: h.LeaseContactLimit.String(),
		}
		if !h.LastLeaseContact.IsZero() {
			wr.LeaseContactAge = h.At.Sub(h.LastLeaseContact).Round(time.Millisecond).String()
		}
		if !h.LastShardSync.IsZero() {
			wr.LastShardSync = h.LastShardSync.UTC().Format(time.RFC3339Nano)
		}
		if h.Err != nil {
			wr.Error = h.Err.Error()
		}
		switch {
		case !h.Live():
			wr.Problem = "worker " + h.State.String()
		case ready:
			if err := h.Problem(); err != nil {
				wr.Problem = err.Error()
			}
		}
		if wr.Problem != "" {
			rep.Status = StatusUnavailable
		}
		for _, s := range h.Shards {
			if s.State == consumer.ShardProcessing && s.FetchFailures == 0 {
				continue
			}
			sr := ShardReport{
				Shard: s.ShardID, State: s.State.String(), Since: s.Since.UTC().Format(time.RFC3339Nano),
				Failures: s.Failures, FetchFailures: s.FetchFailures,
			}
			if s.LastError != nil {
				sr.LastError = s.LastError.Error()
			}
			if s.LastFetchError != nil {
				sr.LastFetchError = s.LastFetchError.Error()
			}
			wr.Shards = append(wr.Shards, sr)
		}
		rep.Workers = append(rep.Workers, wr)
	}
	return rep
}
