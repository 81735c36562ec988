package leasing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/lease"
)

// In per-lease mode a kcl worker may share its table with Java KCL 3.x
// workers, whose leader assigns leases only to workers that report their load
// in a WorkerMetricStats row at least every minute, and whose 2.x -> 3.x
// migration waits until every lease owner reports. When the store is a
// lease.MetricsReporter, the Coordinator reports as a KCL worker does.

// MetricsReportInterval is how often a per-lease Coordinator reports its
// worker's metrics: KCL's workerMetricsReporterFreqInMillis default. A KCL
// leader counts a worker active while its last report is less than two
// intervals old.
const MetricsReportInterval = 30 * time.Second

// metricsFirstReport is the delay before the first report: KCL's, twice its
// 1 s sampling interval, so that a new worker is seen at once.
const metricsFirstReport = 2 * time.Second

// maxCPU is the operating range reported: KCL's default, 100 %.
const maxCPU = 100

// reportMetrics reports this worker's metrics to r every
// MetricsReportInterval until ctx is done. It runs on its own goroutine for
// the life of Run's per-lease loop; failures are logged and the next
// interval reports again. It writes nothing at stop: KCL workers leave their
// row, which their leader stops counting two intervals after its last update
// and deletes a day later.
func (c *Coordinator) reportMetrics(ctx context.Context, r lease.MetricsReporter) {
	reportMetricsEvery(ctx, r, c.self, MetricsReportInterval, newProcessCPUMeter(readProcessCPU), c.log)
}

// reportMetricsEvery is reportMetrics with its interval and meter given.
// With a nil meter (no CPU reading on this platform) every report carries no
// metric (MaxCPU 0), as KCL's do on a platform it does not recognise.
func reportMetricsEvery(ctx context.Context, r lease.MetricsReporter, self string, interval time.Duration, meter *cpuMeter, log *zap.Logger) {
	if meter == nil {
		log.Info("no CPU reading on this platform: WorkerMetricStats reports carry no metric")
	}
	next := time.NewTimer(metricsFirstReport)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		next.Reset(interval)
		m := lease.WorkerMetrics{WorkerID: self}
		if meter != nil {
			m.CPU, m.MaxCPU = meter.sample(time.Now()), maxCPU
		}
		err := r.ReportWorkerMetrics(ctx, m)
		switch {
		case err == nil:
			log.Debug("reported worker metrics", zap.Float64("cpu_percent", m.CPU))
		case ctx.Err() != nil:
			return
		default:
			log.Warn("WorkerMetricStats report failed; reporting again next interval", zapErr(err),
				zap.Duration("interval", interval))
		}
	}
}

// cpuMeter measures this process's CPU utilization between readings: CPU
// time used (user and system, all threads) over wall time times the CPUs the
// process may use. This is the process's own load, not the host's: KCL on
// EC2 reads the host's /proc/stat, and on ECS and EKS its container's CPU
// against the container's limit; on a host or container the worker has to
// itself these agree.
type cpuMeter struct {
	read  func() (time.Duration, error) // the process's CPU time so far
	procs int                           // CPUs the process may use
	// last and lastAt are the previous reading and when it was made; ok is
	// false when the previous reading failed.
	last   time.Duration
	lastAt time.Time
	ok     bool
}

// newProcessCPUMeter returns a meter over read, using GOMAXPROCS as the CPUs
// the process may use (by default the machine's CPUs, or fewer under a
// cgroup CPU limit). It returns nil when a first reading fails: the platform
// has none.
func newProcessCPUMeter(read func() (time.Duration, error)) *cpuMeter {
	used, err := read()
	if err != nil {
		return nil
	}
	return &cpuMeter{read: read, procs: runtime.GOMAXPROCS(0), last: used, lastAt: time.Now(), ok: true}
}

// sample returns the utilization since the previous reading in percent,
// from 0 to 100, or -1 (KCL's mark of an interval without sample) when this
// reading or the previous one failed or no time passed.
func (m *cpuMeter) sample(now time.Time) float64 {
	used, err := m.read()
	prev, prevAt, prevOK := m.last, m.lastAt, m.ok
	m.last, m.lastAt, m.ok = used, now, err == nil
	wall := now.Sub(prevAt)
	if err != nil || !prevOK || wall <= 0 || m.procs <= 0 {
		return -1
	}
	pct := 100 * float64(used-prev) / (float64(wall) * float64(m.procs))
	return min(max(pct, 0), 100)
}

// clockTick is Linux's USER_HZ, the unit of /proc CPU times: 100 Hz on
// every architecture Go supports.
const clockTick = 10 * time.Millisecond

// readProcessCPU returns the CPU time this process has used, user and
// system, of all its threads, from /proc/self/stat (Linux). Elsewhere it
// fails.
func readProcessCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU reads utime and stime (fields 14 and 15, in clock ticks)
// of a /proc/<pid>/stat line. The command name (field 2) is in parentheses
// and may hold spaces and parentheses, so fields are counted after the last
// ')'.
func parseProcStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("leasing: /proc/self/stat: no command name")
	}
	fields := strings.Fields(stat[i+1:]) // fields[0] is field 3
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("leasing: /proc/self/stat: %d fields after the command name, want more than %d", len(fields), stime)
	}
	var ticks int64
	for _, f := range []string{fields[utime], fields[stime]} {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("leasing: /proc/self/stat: CPU time %q", f)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
