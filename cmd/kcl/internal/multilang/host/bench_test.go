package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
	"github.com/kclgo/kcl/testkit/testenv"
)

// The host benchmarks measure what the multilang host costs per record: a
// Host reads records put up front into one shard of an in-process fake
// Kinesis and hands them to a real child process, a no-op record processor
// in Node on aws-kcl 2.3.2 (testdata/noop.js) or in Python on the standard
// library (testdata/noop.py), which checkpoints every batch at its last
// record. A run is measured from the end of the first batch to the last
// batch the child replied to, so that start-up (lease taking, child start,
// initialize, the first batch, which grows the host's encoding buffer and
// warms the child up) and the graceful stop are not counted: the figures are
// the steady state's.
//
// CPU is counted, not wall time: the host's is the whole test process's
// (getrusage RUSAGE_SELF, user + system), the child's is its own
// (utime + stime of /proc/PID/stat, in clock ticks of 10 ms; a run lasts
// seconds). The test process also runs the fake Kinesis, the Worker and the
// lease store, which are not the multilang host's work, so every iteration
// first runs the same Worker (the host's own options) with an in-process
// no-op Go processor that checkpoints the same way, over the same records,
// and reports it as worker-ns/rec; multilang-ns/rec is the difference, the
// host's own cost: JSON and base64 encoding, pipe I/O, reading the child's
// replies and answering its checkpoints.
//
// rec/s is bounded by the Worker's pacing: at most one GetRecords of 10,000
// records every 200 ms per shard (Kinesis's limit of five calls per second),
// so 50,000 records per second; the Go baseline runs at that bound. busy-rec/s is
// the records over the time spent in ProcessRecords (the Worker's
// BatchInfo.Latency), which is what one shard's child could take without
// that pacing.
//
// Run with (from cmd/kcl):
//
//	go test -run '^$' -bench BenchmarkHost -benchmem ./internal/multilang/host/
//
// The Node benchmarks need node on PATH and aws-kcl@2.3.2 in the repository's
// node_modules (npm ci at the root); the Python ones need python3. A missing
// one fails the benchmark.
func BenchmarkHost(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, lang := range []string{"node", "python"} {
			b.Run(fmt.Sprintf("%s/%dB", lang, size), func(b *testing.B) {
				var argv []string
				switch lang {
				case "node":
					argv = nodeChild(b)
				case "python":
					argv = pythonChild(b)
				}
				benchmarkHost(b, argv, size)
			})
		}
	}
}

// benchRecordsFor is how many records a run reads: a few seconds' worth.
func benchRecordsFor(size int) int {
	if size >= 1024 {
		return 60_000
	}
	return 100_000
}

func benchmarkHost(b *testing.B, argv []string, size int) {
	n := benchRecordsFor(size)
	b.ReportAllocs()
	var base, ml span
	for b.Loop() {
		b.StopTimer()
		f := newFilledStream(b, n, size)
		b.StartTimer()
		base = base.add(runBench(b, f, memlease.New(), nil, n))
		b.StopTimer()
		f = newFilledStream(b, n, size)
		b.StartTimer()
		ml = ml.add(runBench(b, f, memlease.New(), argv, n))
	}
	recs, baseRecs := float64(ml.recs), float64(base.recs)
	host := float64(ml.host.Nanoseconds()) / recs
	worker := float64(base.host.Nanoseconds()) / baseRecs
	child := float64(ml.child.Nanoseconds()) / recs
	b.ReportMetric(recs/ml.wall.Seconds(), "rec/s")
	b.ReportMetric(recs/ml.busy.Seconds(), "busy-rec/s")
	b.ReportMetric(baseRecs/base.wall.Seconds(), "go-rec/s")
	b.ReportMetric(host, "host-ns/rec")
	b.ReportMetric(worker, "worker-ns/rec")
	b.ReportMetric(host-worker, "multilang-ns/rec")
	b.ReportMetric(float64(ml.allocs)/recs, "host-allocs/rec")
	b.ReportMetric(float64(base.allocs)/baseRecs, "worker-allocs/rec")
	b.ReportMetric(child, "child-ns/rec")
	b.ReportMetric(100*host/(host+child), "host-cpu-%")
	b.ReportMetric(100*(host-worker)/(host-worker+child), "multilang-cpu-%")
}

// TestBenchChildren runs the benchmarks' children through a host briefly:
// both take every record and checkpoint the last one, so the benchmarks
// measure processors that work. Like the benchmarks, it fails when node,
// aws-kcl or python3 is missing.
func TestBenchChildren(t *testing.T) {
	for _, lang := range []string{"node", "python"} {
		t.Run(lang, func(t *testing.T) {
			argv := pythonChild(t)
			if lang == "node" {
				argv = nodeChild(t)
			}
			const n = 15_000 // two batches
			f := newFilledStream(t, n, 100)
			store := memlease.New()
			sp := runBench(t, f, store, argv, n)
			if sp.checkpoints < 2 {
				t.Errorf("%d checkpoints stored while the child took %d records in two batches, want one per batch", sp.checkpoints, n)
			}
			leases := store.Leases()
			if len(leases) != 1 || !leases[0].Checkpoint.IsSequence() {
				t.Fatalf("leases %+v, want one with a sequence checkpoint", leases)
			}
			recs := f.Records(stream, "shardId-000000000000")
			if got, want := leases[0].Checkpoint.SequenceNumber(), *recs[n-1].SequenceNumber; got != want {
				t.Errorf("checkpoint %s, want the last record's, %s", got, want)
			}
		})
	}
}

// newFilledStream returns a fake holding stream with one shard and n
// records of size bytes, each with its own partition key.
func newFilledStream(b testing.TB, n, size int) *fakekinesis.Fake {
	b.Helper()
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	data := bytes.Repeat([]byte{'x'}, size)
	for i := range n {
		f.Put(stream, fmt.Sprintf("pk-%06d", i), data)
	}
	return f
}

// benchProps are the properties of a benchmark host: polling with the
// largest GetRecords Kinesis allows, from the trim horizon.
func benchProps(argv []string) *properties.Config {
	p := testProps()
	p.Executable = argv
	p.MaxRecords = 10_000
	return p
}

// span is what one measured window cost.
type span struct {
	// recs is how many records the window holds.
	recs int64
	// wall is the window's length, busy the time the processor spent in
	// ProcessRecords calls within it.
	wall, busy  time.Duration
	host, child time.Duration
	// allocs counts the heap allocations of the test process.
	allocs uint64
	// checkpoints counts the checkpoints stored from the start of the run
	// to the window's end.
	checkpoints int64
}

func (s span) add(t span) span {
	return span{s.recs + t.recs, s.wall + t.wall, s.busy + t.busy, s.host + t.host, s.child + t.child, s.allocs + t.allocs, s.checkpoints + t.checkpoints}
}

// meter is the Worker hook that delimits the measured window: from the
// end of the first batch to the end of the batch that completes n records.
// The first batch is left out as the start-up is: the host's encoding buffer
// grows to the batch's size then, once per shard, and the child warms up.
// It must be safe for concurrent use (the Worker calls hooks from its
// goroutines).
type meter struct {
	n     int64
	child func() int // the child's pid, 0 for none
	got   atomic.Int64
	ckpts atomic.Int64

	mu         sync.Mutex
	start, end sample
	first      int64 // records in the first batch, not measured
	busy       time.Duration
	childPID   int
	done       chan struct{}
}

// sample is a reading of the clocks.
type sample struct {
	ckpts  int64
	wall   time.Time
	host   time.Duration
	child  time.Duration
	allocs uint64
}

func newMeter(n int, child func() int) *meter {
	return &meter{n: int64(n), child: child, done: make(chan struct{})}
}

func (m *meter) BatchProcessed(bi consumer.BatchInfo) {
	r := int64(bi.Records)
	got := m.got.Add(r)
	if r == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.first == 0 {
		m.first = r
		if m.child != nil {
			m.childPID = m.child()
		}
		m.start = m.sample()
		if got >= m.n { // nothing to measure
			m.end = m.start
			close(m.done)
		}
		return
	}
	if got-r >= m.n {
		return // after the window
	}
	m.busy += bi.Latency
	if got >= m.n {
		m.end = m.sample()
		close(m.done)
	}
}

func (m *meter) Checkpointed(ci consumer.CheckpointInfo) {
	if ci.Err == nil {
		m.ckpts.Add(1)
	}
}

func (m *meter) sample() sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := sample{ckpts: m.ckpts.Load(), host: selfCPU(), allocs: ms.Mallocs}
	if m.childPID != 0 {
		s.child = procCPU(m.childPID)
	}
	s.wall = time.Now()
	return s
}

func (m *meter) span() span {
	m.mu.Lock()
	defer m.mu.Unlock()
	return span{
		recs: m.n - m.first,
		wall: m.end.wall.Sub(m.start.wall), busy: m.busy,
		host: m.end.host - m.start.host, child: m.end.child - m.start.child,
		allocs: m.end.allocs - m.start.allocs, checkpoints: m.end.ckpts,
	}
}

// runBench reads the n records of f through a Host whose child is argv or,
// with argv nil, through the same Worker with an in-process no-op Go
// processor, and returns what the measured window cost.
func runBench(b testing.TB, f *fakekinesis.Fake, store lease.Store, argv []string, n int) span {
	b.Helper()
	runtime.GC()
	var h *Host
	m := newMeter(n, func() int { return onlyChildPID(h) })
	props := benchProps(argv)
	if argv == nil {
		props, m.child = benchProps([]string{os.Args[0]}), nil // New wants an executable
	}
	h, err := New(Config{Properties: props, Kinesis: f, Store: store, Hooks: []any{m}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	if argv == nil {
		w, err := consumer.New(f, h.cfg.Store, stream, consumer.FactoryFunc(goNoop), h.options()...)
		if err != nil {
			b.Fatal(err)
		}
		go func() { errc <- w.Run(ctx) }()
	} else {
		go func() { errc <- h.Run(ctx) }()
	}
	select {
	case <-m.done:
	case err := <-errc:
		b.Fatalf("Run returned early: %v", err)
	case <-time.After(2 * time.Minute):
		b.Fatalf("got %d of %d records in two minutes", m.got.Load(), n)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		b.Fatal("Run did not return a minute after the stop")
	}
	if got := m.got.Load(); got != int64(n) {
		b.Fatalf("the processor got %d records, want %d", got, n)
	}
	if argv != nil && m.childPID == 0 {
		b.Fatal("no child was running after the first batch: its CPU cannot be measured")
	}
	return m.span()
}

// goNoop is the baseline's processor: it checkpoints every batch at its
// last record, as the children do.
func goNoop(consumer.ShardInfo) (consumer.Processor, error) {
	return consumer.ProcessorFunc(func(ctx context.Context, b *consumer.Batch) error {
		if len(b.Records) == 0 {
			return nil
		}
		last := &b.Records[len(b.Records)-1]
		return b.Checkpointer.CheckpointAt(ctx, last.SequenceNumber, last.SubSequenceNumber)
	}), nil
}

// onlyChildPID is the pid of h's one running child, 0 if there is none.
func onlyChildPID(h *Host) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.children {
		return c.PID()
	}
	return 0
}

// selfCPU is the CPU time (user + system) of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (utime + stime, all threads) of process pid so
// far, from /proc/PID/stat, in ticks of 10 ms (USER_HZ is 100 on Linux).
func procCPU(pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state (3), ... utime (14), stime (15).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// nodeChild is the argv of the Node no-op child. It fails b unless node is
// on PATH and aws-kcl 2.3.2 is found from testdata.
func nodeChild(b testing.TB) []string {
	b.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		b.Fatalf("the Node benchmarks need node on PATH: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "noop.js"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(node, "-p", "require('aws-kcl/package.json').version")
	cmd.Dir = filepath.Dir(script)
	out, err := cmd.Output()
	if v := strings.TrimSpace(string(out)); err != nil || v != "2.3.2" {
		b.Fatalf("the Node benchmarks need aws-kcl 2.3.2 in the repository's node_modules (npm ci at the root); found %q (%v)", v, err)
	}
	return []string{node, script}
}

// pythonChild is the argv of the Python no-op child. It fails b unless
// python3 is on PATH; the interpreter is run directly (not through a pyenv
// shim, which would add a shell and its start-up to every child).
func pythonChild(b testing.TB) []string {
	b.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Fatalf("the Python benchmarks need python3 on PATH: %v", err)
	}
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		b.Fatalf("the Python benchmarks need a working python3: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "noop.py"))
	if err != nil {
		b.Fatal(err)
	}
	return []string{strings.TrimSpace(string(out)), script}
}

// BenchmarkHostRSS100Shards measures the resident memory of a host with 100
// shards, hence 100 children (the Python no-op child), once every child is
// initialized and records flow: 100 records per shard on average are read,
// then as many again.
//
// The test binary is the host, and it also holds the fake Kinesis with its
// records and the test tooling, so two figures are reported: host-MB, the
// process's VmRSS then (an upper bound of the host's own), and delta-MB,
// that minus the VmRSS before Run (after the fake was filled and a GC
// returned the set-up's garbage to the system): the memory the Host, its
// Worker and the lease store took, leaving out the Go runtime's base and
// the test's. peak-MB is VmHWM; child-MB the mean VmRSS of one child.
//
// Run with (from cmd/kcl):
//
//	go test -run '^$' -bench BenchmarkHostRSS100Shards ./internal/multilang/host/
func BenchmarkHostRSS100Shards(b *testing.B) {
	const shards, perRound = 100, 10_000
	argv := pythonChild(b)
	var host, delta, peak, child float64
	for b.Loop() {
		b.StopTimer()
		f := fakekinesis.New(fakekinesis.WithStream(stream, shards))
		data := bytes.Repeat([]byte{'x'}, 100)
		put := func(round int) {
			for i := range perRound {
				f.Put(stream, fmt.Sprintf("pk-%d-%06d", round, i), data)
			}
		}
		put(0)
		runtime.GC()
		debug.FreeOSMemory()
		before := procStatus(b, os.Getpid(), "VmRSS")
		b.StartTimer()

		m := newMeter(2*perRound, nil)
		var firstRound sync.Once
		roundDone := make(chan struct{})
		counted := &batchCounter{fn: func(got int64) {
			if got >= perRound {
				firstRound.Do(func() { close(roundDone) })
			}
		}}
		h, err := New(Config{Properties: benchProps(argv), Kinesis: f, Store: memlease.New(), Hooks: []any{m, counted}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- h.Run(ctx) }()
		wait := func(what string, done <-chan struct{}) {
			select {
			case <-done:
			case err := <-errc:
				b.Fatalf("Run returned early: %v", err)
			case <-time.After(2 * time.Minute):
				b.Fatalf("still waiting for %s after two minutes (%d records read)", what, m.got.Load())
			}
		}
		wait("the first records", roundDone)
		if st := h.Stats(); st.Running != shards || st.Failed != 0 {
			b.Fatalf("stats %+v after every shard's first records, want %d running, none failed", st, shards)
		}
		put(1)
		wait("the second records", m.done)
		after := procStatus(b, os.Getpid(), "VmRSS")
		hwm := procStatus(b, os.Getpid(), "VmHWM")
		var children int64
		h.mu.Lock()
		for c := range h.children {
			children += procStatus(b, c.PID(), "VmRSS")
		}
		n := len(h.children)
		h.mu.Unlock()
		cancel()
		if err := <-errc; err != nil {
			b.Fatalf("Run: %v", err)
		}
		const mb = 1 << 20
		host += float64(after) / mb
		delta += float64(after-before) / mb
		peak += float64(hwm) / mb
		child += float64(children) / float64(n) / mb
	}
	runs := float64(b.N)
	b.ReportMetric(host/runs, "host-MB")
	b.ReportMetric(delta/runs, "delta-MB")
	b.ReportMetric(peak/runs, "peak-MB")
	b.ReportMetric(child/runs, "child-MB")
}

// batchCounter is a BatchHook that calls fn with the records processed so
// far after every batch.
type batchCounter struct {
	got atomic.Int64
	fn  func(got int64)
}

func (c *batchCounter) BatchProcessed(bi consumer.BatchInfo) {
	c.fn(c.got.Add(int64(bi.Records)))
}

// procStatus returns field (VmRSS, VmHWM, ...) of /proc/PID/status, in
// bytes.
func procStatus(b *testing.B, pid int, field string) int64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("%s of /proc/%d/status: %v", field, pid, err)
		}
		return kb << 10
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkHostStartup measures start-up against the emulators: from the
// start of a `kcl multilang --properties-file F` process (cmd/kcl, built
// here) to the moment its child gets initialize (the Python no-op child
// writes the time it read initialize to a file; both clocks are the
// machine's wall clock, to the millisecond). It covers the process start,
// the properties, the AWS configuration, the lease table (DescribeTable when
// it exists, CreateTable and the wait until ACTIVE when it does not), the
// Worker's first shard sync and lease taking, and the child's start (a
// Python interpreter's start, some 20 ms of it).
//
// init-ms is the mean, max-init-ms the longest; rss-MB is kcl's VmRSS when
// the child got initialize.
//
// Run with (from cmd/kcl, the emulators' variables set; see testenv):
//
//	go test -run '^$' -bench BenchmarkHostStartup -benchtime 5x ./internal/multilang/host/
func BenchmarkHostStartup(b *testing.B) {
	kc := testenv.Kinesis(b)
	ddb := testenv.DynamoDB(b)
	bin := buildKCL(b)
	py := pythonChild(b)
	streamName := testenv.CreateStream(b, kc, 1)
	for _, tableExists := range []bool{true, false} {
		name := "table-created"
		if tableExists {
			name = "table-exists"
		}
		b.Run(name, func(b *testing.B) {
			var total, worst time.Duration
			var rss int64
			for b.Loop() {
				b.StopTimer()
				table := testenv.UniqueName(b, "mlstart")
				if tableExists {
					testenv.CreateTable(b, ddb, table)
				} else {
					deleteTableAtCleanup(b, ddb, table)
				}
				k := newKCLRun(b, bin, py, streamName, table)
				b.StartTimer()
				k.start()
				d := k.waitInitialized(1)
				b.StopTimer()
				rss += procStatus(b, k.cmd.Process.Pid, "VmRSS")
				k.stop()
				b.StartTimer()
				total += d
				worst = max(worst, d)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "init-ms")
			b.ReportMetric(float64(worst.Milliseconds()), "max-init-ms")
			b.ReportMetric(float64(rss)/float64(b.N)/(1<<20), "rss-MB")
		})
	}
}

// BenchmarkKCLRSS100Shards measures the resident memory of a real
// `kcl multilang` process (cmd/kcl, built here) with 100 shards on the
// emulators, hence 100 Python no-op children, once every child is
// initialized and records have flowed through every shard (2,000 records
// put at random; it waits until each of the 100 leases holds a checkpoint
// its child wrote). Nothing but the host runs in that process. kcl-MB is its
// VmRSS then, peak-MB its VmHWM.
//
// Run with (from cmd/kcl, the emulators' variables set; see testenv):
//
//	go test -run '^$' -bench BenchmarkKCLRSS100Shards -benchtime 1x ./internal/multilang/host/
func BenchmarkKCLRSS100Shards(b *testing.B) {
	const shards = 100
	kc := testenv.Kinesis(b)
	ddb := testenv.DynamoDB(b)
	bin := buildKCL(b)
	py := pythonChild(b)
	streamName := testenv.CreateStream(b, kc, shards)
	var rss, peak int64
	for b.Loop() {
		table := testenv.UniqueName(b, "mlrss")
		deleteTableAtCleanup(b, ddb, table)
		k := newKCLRun(b, bin, py, streamName, table)
		k.start()
		k.waitInitialized(shards)
		for i := 0; i < 2000; i += 500 {
			in := &kinesis.PutRecordsInput{StreamName: aws.String(streamName)}
			for j := range 500 {
				in.Records = append(in.Records, ktypes.PutRecordsRequestEntry{
					Data: bytes.Repeat([]byte{'x'}, 100), PartitionKey: aws.String(fmt.Sprintf("pk-%d", i+j)),
				})
			}
			out, err := kc.PutRecords(b.Context(), in)
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				b.Fatalf("PutRecords: %v (%v failed)", err, out)
			}
		}
		testenv.Eventually(b, 2*time.Minute, 200*time.Millisecond, func() bool {
			return checkpointedLeases(b, ddb, table) == shards
		}, "every shard's child checkpointed")
		rss += procStatus(b, k.cmd.Process.Pid, "VmRSS")
		peak += procStatus(b, k.cmd.Process.Pid, "VmHWM")
		k.stop()
	}
	b.ReportMetric(float64(rss)/float64(b.N)/(1<<20), "kcl-MB")
	b.ReportMetric(float64(peak)/float64(b.N)/(1<<20), "peak-MB")
}

// checkpointedLeases counts the leases of table that hold a sequence
// number checkpoint.
func checkpointedLeases(b *testing.B, ddb *dynamodb.Client, table string) int {
	b.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(b.Context())
		if err != nil {
			b.Fatalf("scanning %s: %v", table, err)
		}
		for _, item := range out.Items {
			l, err := dynamolease.UnmarshalItem(item)
			if err != nil {
				b.Fatalf("lease item: %v", err)
			}
			if l.Checkpoint.IsSequence() {
				n++
			}
		}
	}
	return n
}

func deleteTableAtCleanup(b *testing.B, ddb *dynamodb.Client, table string) {
	b.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
}

// buildKCL builds cmd/kcl into a temporary directory.
func buildKCL(b *testing.B) string {
	b.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("building kcl needs go on PATH: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "kcl")
	if out, err := exec.Command(goCmd, "build", "-o", bin, "../../..").CombinedOutput(); err != nil {
		b.Fatalf("go build cmd/kcl: %v\n%s", err, out)
	}
	return bin
}

// kclRun is one `kcl multilang` process on the emulators whose children
// are the Python no-op child.
type kclRun struct {
	b       *testing.B
	cmd     *exec.Cmd
	dir     string
	began   time.Time
	exited  chan error
	logFile string
}

// newKCLRun writes the properties of a kcl process over streamName with
// lease table table.
func newKCLRun(b *testing.B, bin string, child []string, streamName, table string) *kclRun {
	b.Helper()
	dir := b.TempDir()
	props := filepath.Join(dir, "app.properties")
	writeFile(b, props, strings.Join([]string{
		"executableName = " + strings.Join(child, " "),
		"applicationName = " + table,
		"streamName = " + streamName,
		"AwsCredentialsProvider = DefaultCredentialsProvider",
		"regionName = " + testenv.Region,
		"kinesisEndpoint = " + testenv.KinesisEndpoint(b),
		"dynamoDBEndpoint = " + testenv.DynamoDBEndpoint(b),
		"initialPositionInStream = TRIM_HORIZON",
		"retrievalMode = POLLING",
		"",
	}, "\n"))
	cmd := exec.Command(bin, "multilang", "--properties-file", props)
	cmd.Env = append(os.Environ(), "KCL_BENCH_INIT_STAMP="+filepath.Join(dir, "init-stamp"),
		"AWS_ACCESS_KEY_ID=AKIDHOSTBENCH", "AWS_SECRET_ACCESS_KEY=hostbench")
	return &kclRun{b: b, cmd: cmd, dir: dir, exited: make(chan error, 1), logFile: filepath.Join(dir, "kcl.log")}
}

// start starts the process, its output going to a file.
func (k *kclRun) start() {
	k.b.Helper()
	logf, err := os.Create(k.logFile)
	if err != nil {
		k.b.Fatal(err)
	}
	defer logf.Close()
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.began = time.Now()
	if err := k.cmd.Start(); err != nil {
		k.b.Fatal(err)
	}
	go func() { k.exited <- k.cmd.Wait() }()
	k.b.Cleanup(func() { _ = k.cmd.Process.Kill() })
}

func (k *kclRun) log() string {
	l, _ := os.ReadFile(k.logFile)
	return string(l)
}

// waitInitialized waits until n children got initialize and returns the
// time from the process's start to the first.
func (k *kclRun) waitInitialized(n int) time.Duration {
	k.b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if s, err := os.ReadFile(filepath.Join(k.dir, "init-stamp")); err == nil && bytes.Count(s, []byte("\n")) >= n {
			ms, err := strconv.ParseInt(string(bytes.Fields(s)[0]), 10, 64)
			if err != nil {
				k.b.Fatalf("init stamp %q: %v", s, err)
			}
			return time.UnixMilli(ms).Sub(k.began)
		}
		select {
		case err := <-k.exited:
			k.b.Fatalf("kcl exited before %d children got initialize: %v\n%s", n, err, k.log())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.b.Fatalf("fewer than %d children got initialize within 2 minutes\n%s", n, k.log())
		}
	}
}

// stop stops the process with SIGTERM and waits for its graceful stop.
func (k *kclRun) stop() {
	k.b.Helper()
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-k.exited:
		if err != nil {
			k.b.Fatalf("kcl's graceful stop: %v\n%s", err, k.log())
		}
	case <-time.After(time.Minute):
		k.b.Fatalf("kcl did not stop within a minute of SIGTERM\n%s", k.log())
	}
}

func writeFile(b *testing.B, name, content string) {
	b.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
