package memlease_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestReportWorkerMetricsRecordsReportsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memlease.New()
		ctx := t.Context()
		start := time.Now()
		reports := []lease.WorkerMetrics{
			{WorkerID: "w1", CPU: 12.5, MaxCPU: 100},
			{WorkerID: "w2", CPU: -1, MaxCPU: 100}, // no sample this interval
			{WorkerID: "w1", MaxCPU: 0},            // no CPU metric at all
		}
		for _, m := range reports {
			if err := s.ReportWorkerMetrics(ctx, m); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Second)
		}
		got := s.MetricsReports()
		if len(got) != len(reports) {
			t.Fatalf("recorded %d reports, want %d", len(got), len(reports))
		}
		for i, r := range got {
			if r.WorkerMetrics != reports[i] || !r.At.Equal(start.Add(time.Duration(i)*30*time.Second)) {
				t.Errorf("report %d = %+v, want %+v at %v", i, r, reports[i], start.Add(time.Duration(i)*30*time.Second))
			}
		}
		if st := s.Stats(); st.MetricsReports != 3 || st.Writes() != 0 {
			t.Errorf("Stats: %d reports, %d writes; want 3 and 0", st.MetricsReports, st.Writes())
		}
		if d := s.Stats().Sub(memlease.Stats{MetricsReports: 1}); d.MetricsReports != 2 {
			t.Errorf("Stats.Sub counts %d reports, want 2", d.MetricsReports)
		}
	})
}

func TestReportWorkerMetricsRefusesInvalidReportsAndCanBeFaulted(t *testing.T) {
	injected := errors.New("injected")
	s := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
		if op == memlease.OpReportWorkerMetrics && key == "cut-off" {
			return injected
		}
		return nil
	}))
	ctx := t.Context()
	for _, m := range []lease.WorkerMetrics{
		{CPU: 1, MaxCPU: 100},
		{WorkerID: "w", CPU: 100.5, MaxCPU: 100},
		{WorkerID: "w", CPU: 1, MaxCPU: 101},
	} {
		if err := s.ReportWorkerMetrics(ctx, m); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	if err := s.ReportWorkerMetrics(ctx, lease.WorkerMetrics{WorkerID: "cut-off", CPU: 1, MaxCPU: 100}); !errors.Is(err, injected) {
		t.Errorf("faulted report: %v, want the injected error", err)
	}
	if got := s.MetricsReports(); len(got) != 0 || s.Stats().MetricsReports != 0 {
		t.Errorf("recorded %+v; want nothing", got)
	}
	if memlease.OpReportWorkerMetrics.String() != "ReportWorkerMetrics" || memlease.OpReportWorkerMetrics.IsWrite() {
		t.Errorf("OpReportWorkerMetrics is %q, IsWrite %v", memlease.OpReportWorkerMetrics, memlease.OpReportWorkerMetrics.IsWrite())
	}
}
