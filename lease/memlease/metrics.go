package memlease

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kclgo/kcl/lease"
)

var _ lease.MetricsReporter = (*Store)(nil)

// MetricsReport is one call of ReportWorkerMetrics, as the Store recorded it.
type MetricsReport struct {
	lease.WorkerMetrics
	At time.Time // when the report was made, on the Store's clock
}

// ReportWorkerMetrics implements lease.MetricsReporter: it records m, for
// tests to read with MetricsReports, and writes nothing else; the Store keeps
// no Java KCL rows. It refuses what lease.MetricsReporter calls invalid, and
// WithFault sees it as OpReportWorkerMetrics with the worker id as key.
// Stats counts it in MetricsReports.
func (s *Store) ReportWorkerMetrics(ctx context.Context, m lease.WorkerMetrics) error {
	switch {
	case m.WorkerID == "":
		return fmt.Errorf("memlease: %v: %w", OpReportWorkerMetrics, errors.New("empty worker id"))
	case m.MaxCPU < 0 || m.MaxCPU > 100:
		return fmt.Errorf("memlease: %v %q: MaxCPU %d, want 0 to 100", OpReportWorkerMetrics, m.WorkerID, m.MaxCPU)
	case m.MaxCPU > 0 && (math.IsNaN(m.CPU) || m.CPU > 100):
		return fmt.Errorf("memlease: %v %q: CPU %v, want at most 100", OpReportWorkerMetrics, m.WorkerID, m.CPU)
	}
	if err := s.begin(ctx, OpReportWorkerMetrics, m.WorkerID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.MetricsReports++
	s.reports = append(s.reports, MetricsReport{WorkerMetrics: m, At: time.Now()})
	return nil
}

// MetricsReports returns the reports recorded so far, oldest first. Like
// Leases, it bypasses faults and counts.
func (s *Store) MetricsReports() []MetricsReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports)
}
