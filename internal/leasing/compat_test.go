package leasing

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestParseProcStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
		ok   bool
	}{
		{"utime and stime are added, in 10 ms ticks",
			"4242 (kcl) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500 18446744073709551615",
			3250 * time.Millisecond, true},
		{"a command name with spaces and parentheses does not shift the fields",
			"7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1", 70 * time.Millisecond, true},
		{"a line without command name is refused", "4242 kcl S 1", 0, false},
		{"a short line is refused", "4242 (kcl) S 1 2 3", 0, false},
		{"a negative CPU time is refused", "1 (x) R 1 1 1 0 -1 0 0 0 0 0 -5 0 0 0 20 0 1 0 1 1 1", 0, false},
		{"a non-numeric CPU time is refused", "1 (x) R 1 1 1 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 1 1 1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatCPU(tt.stat)
			if ok := err == nil; ok != tt.ok || got != tt.want {
				t.Errorf("parseProcStatCPU = %v, %v; want %v, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestReadProcessCPUOnLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := readProcessCPU(); err == nil {
			t.Fatal("a CPU reading outside Linux")
		}
		return
	}
	before, err := readProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the reading moves: the process's own time is read.
	deadline := time.Now().Add(5 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		if now, err := readProcessCPU(); err == nil && now > before {
			return
		}
	}
	t.Fatal("process CPU time did not move in 5 s of busy loop")
}

// scriptedCPU returns readings from a script; an entry < 0 is a failed
// reading.
type scriptedCPU struct {
	mu       sync.Mutex
	script   []time.Duration
	readings int
}

func (s *scriptedCPU) read() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.script[min(s.readings, len(s.script)-1)]
	s.readings++
	if d < 0 {
		return 0, errors.New("no reading")
	}
	return d, nil
}

func TestCPUMeterMeasuresUtilizationOverTheInterval(t *testing.T) {
	cpu := &scriptedCPU{script: []time.Duration{
		3 * time.Second,  // 15 % of 2 CPUs over 10 s
		-1,               // failed: no sample
		5 * time.Second,  // the previous reading failed: no sample either
		11 * time.Second, // 30 %
		11 * time.Second, // idle: 0 %
		99 * time.Second, // more than the CPUs can give: 100 %
	}}
	start := time.Unix(1000, 0)
	m := &cpuMeter{read: cpu.read, procs: 2, lastAt: start, ok: true}
	want := []float64{15, -1, -1, 30, 0, 100}
	for i, w := range want {
		if got := m.sample(start.Add(time.Duration(i+1) * 10 * time.Second)); got != w {
			t.Errorf("sample %d = %v %%, want %v", i, got, w)
		}
	}
	if newProcessCPUMeter(func() (time.Duration, error) { return 0, errors.New("none") }) != nil {
		t.Error("a meter on a platform without reading")
	}
}

func TestReportMetricsEveryIntervalUntilStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		core, logs := observer.New(zapcore.DebugLevel)
		cpu := &scriptedCPU{script: []time.Duration{0, 6 * time.Second, -1, 12 * time.Second}}
		meter := newProcessCPUMeter(cpu.read)
		meter.procs = 4
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan struct{})
		go func() {
			reportMetricsEvery(ctx, store, "w-go", 30*time.Second, meter, zap.New(core))
			close(done)
		}()
		time.Sleep(2*time.Second + 3*30*time.Second)
		synctest.Wait()
		cancel()
		<-done
		time.Sleep(time.Minute)

		got := store.MetricsReports()
		wantAt := []time.Duration{2 * time.Second, 32 * time.Second, 62 * time.Second, 92 * time.Second}
		// 6 s of 4 CPUs over the first 2 s; then no sample; then no sample
		// (the previous reading failed); then 0 %.
		wantCPU := []float64{75, -1, -1, 0}
		if len(got) != len(wantAt) {
			t.Fatalf("%d reports, want %d (at 2 s, then every 30 s, none after stop)", len(got), len(wantAt))
		}
		for i, r := range got {
			want := lease.WorkerMetrics{WorkerID: "w-go", CPU: wantCPU[i], MaxCPU: 100}
			if r.WorkerMetrics != want || r.At.Sub(start) != wantAt[i] {
				t.Errorf("report %d = %+v at %v, want %+v at %v", i, r.WorkerMetrics, r.At.Sub(start), want, wantAt[i])
			}
		}
		if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
			t.Errorf("%d warnings, want none", n)
		}
	})
}

func TestFailedReportsAreLoggedAndTheNextIntervalReportsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		failures := 1
		store := memlease.New(memlease.WithFault(func(op memlease.Op, _ string) error {
			mu.Lock()
			defer mu.Unlock()
			if op == memlease.OpReportWorkerMetrics && failures > 0 {
				failures--
				return lease.ErrThrottled
			}
			return nil
		}))
		core, logs := observer.New(zapcore.WarnLevel)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			reportMetricsEvery(ctx, store, "w-go", 30*time.Second, nil, zap.New(core))
			close(done)
		}()
		time.Sleep(2*time.Second + 30*time.Second)
		synctest.Wait()
		cancel()
		<-done

		got := store.MetricsReports()
		if len(got) != 1 || got[0].WorkerMetrics != (lease.WorkerMetrics{WorkerID: "w-go"}) {
			t.Errorf("reports %+v, want the second one only, with no metric (no CPU reading)", got)
		}
		if warned := logs.FilterMessageSnippet("report failed").Len(); warned != 1 {
			t.Errorf("%d warnings of a failed report, want 1", warned)
		}
	})
}

func TestPerLeaseCoordinatorReportsMetricsUntilStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memlease.New()
		c, err := NewCoordinator(store, "w-a")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, t.Context(), func(*Held) {}) }()
		time.Sleep(65 * time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)

		got := store.MetricsReports()
		wantAt := []time.Duration{2 * time.Second, 32 * time.Second, 62 * time.Second}
		if len(got) != len(wantAt) {
			t.Fatalf("%d reports, want %d: every 30 s from 2 s, none after stop", len(got), len(wantAt))
		}
		for i, r := range got {
			if r.WorkerID != "w-a" || r.At.Sub(start) != wantAt[i] {
				t.Errorf("report %d of %q at %v, want of w-a at %v", i, r.WorkerID, r.At.Sub(start), wantAt[i])
			}
			if runtime.GOOS == "linux" && (r.MaxCPU != 100 || r.CPU < 0 || r.CPU > 100) {
				t.Errorf("report %d: CPU %v of %d on Linux, want a sample in 0..100 of 100", i, r.CPU, r.MaxCPU)
			}
		}
	})
}
