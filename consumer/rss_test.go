package consumer_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
	"github.com/kclgo/kcl/testkit/testenv"
)

var rss = flag.String("rss", "", "run TestIdleShardsRSS, which measures the whole process, with the fake as Kinesis client (fake) or an SDK client answered by the fake (sdk)")

// idleShards and maxIdleRSS are the memory target of one Worker owning
// 1,000 idle shards.
const (
	idleShards = 1000
	maxIdleRSS = 100 << 20
)

// TestIdleShardsRSS measures the memory of one Worker that owns 1,000
// shards with no records, with the default options, once every shard has
// been polled three times more; it fails above 100 MB of resident memory.
// The process's resident set includes the fake Kinesis, the in-memory lease
// table and the test binary, so their share (measured before the Worker
// starts) is reported too. With -rss=fake the Worker calls the fake
// directly; with -rss=sdk it calls a *kinesis.Client whose HTTP client is
// answered by the fake in memory, which adds the SDK's stack depth and
// garbage but no network. It runs only with -rss, once per process and
// without -race:
//
//	go test -run TestIdleShardsRSS -v ./consumer/ -rss=fake
//	go test -run TestIdleShardsRSS -v ./consumer/ -rss=sdk
func TestIdleShardsRSS(t *testing.T) {
	switch *rss {
	case "":
		t.Skip("measures the whole process; run alone with -rss=fake or -rss=sdk")
	case "fake", "sdk":
	default:
		t.Fatalf("-rss=%q: want fake or sdk", *rss)
	}
	f := fakekinesis.New(fakekinesis.WithShardLimit(idleShards), fakekinesis.WithStream("s", idleShards))
	var api consumer.KinesisAPI = f
	if *rss == "sdk" {
		api = sdkClient(f)
	}
	store := memlease.New()
	fac := consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(context.Context, *consumer.Batch) error { return nil }), nil
	})
	w, err := consumer.New(api, store, "s", fac)
	if err != nil {
		t.Fatal(err)
	}
	before := readMemory(t)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()

	// Wait until the Worker owns every lease, then until every shard has
	// been polled about three times more (the default idle time is 1 s).
	start := time.Now()
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() bool { return owned(store, w.ID()) == idleShards },
		"the Worker does not own all %d leases", idleShards)
	ownedAfter := time.Since(start)
	polls := f.Stats().Calls["GetRecords"]
	cpu, idleStart := readUsage().cpu, time.Now()
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() bool { return f.Stats().Calls["GetRecords"] >= polls+3*idleShards },
		"fewer than %d GetRecords calls after the leases were taken", 3*idleShards)
	cpu, wall := readUsage().cpu-cpu, time.Since(idleStart)
	after := readMemory(t)

	t.Logf("Kinesis client: %s", *rss)
	t.Logf("all %d leases owned after %v; %d GetRecords calls", idleShards, ownedAfter.Round(time.Millisecond), f.Stats().Calls["GetRecords"])
	t.Logf("before the Worker (test binary, fake with %d shards, lease table): %v", idleShards, before)
	t.Logf("with the Worker:  %v", after)
	t.Logf("Worker's share: RSS %.1f MB (%.1f KB per shard), heap in use %.1f MB (%.1f KB per shard), %d goroutines (%.1f per shard)",
		mb(after.rss-before.rss), kb(after.rss-before.rss)/idleShards,
		mb(after.heapInuse-before.heapInuse), kb(after.heapInuse-before.heapInuse)/idleShards,
		after.goroutines-before.goroutines, float64(after.goroutines-before.goroutines)/idleShards)
	t.Logf("while idle: %.1f%% of a core, %v CPU per shard per second (the fake, and with -rss=sdk the JSON answering, included)",
		100*cpu.Seconds()/wall.Seconds(), time.Duration(float64(cpu)/wall.Seconds()/idleShards).Round(time.Microsecond/10))
	if after.rss > maxIdleRSS {
		t.Errorf("resident set is %.1f MB with %d idle shards, want at most %.0f MB", mb(after.rss), idleShards, mb(maxIdleRSS))
	}
}

func owned(store *memlease.Store, owner string) int {
	n := 0
	for _, l := range store.Leases() {
		if l.Owner == owner {
			n++
		}
	}
	return n
}

// memory is what the process uses, after a garbage collection.
type memory struct {
	rss, heapInuse, stacks uint64
	goroutines             int
}

func readMemory(t *testing.T) memory {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heapInuse: ms.HeapInuse, stacks: ms.StackInuse, goroutines: runtime.NumGoroutine()}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("cannot read the resident set size: %v", err)
	}
	for sc := bufio.NewScanner(bytes.NewReader(status)); sc.Scan(); {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kib, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS: %v", err)
			}
			m.rss = kib << 10
		}
	}
	return m
}

func (m memory) String() string {
	return "RSS " + strconv.FormatFloat(mb(m.rss), 'f', 1, 64) + " MB, heap in use " +
		strconv.FormatFloat(mb(m.heapInuse), 'f', 1, 64) + " MB, stacks " +
		strconv.FormatFloat(mb(m.stacks), 'f', 1, 64) + " MB, " + strconv.Itoa(m.goroutines) + " goroutines"
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }
func kb(n uint64) float64 { return float64(n) / (1 << 10) }
