package host

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/protocol"
	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

const stream = "orders"

// testProps are properties for a host over the fake stream whose children
// are this test binary (see testChild).
func testProps() *properties.Config {
	return &properties.Config{
		Executable:                  []string{os.Args[0]},
		ApplicationName:             "app",
		TableName:                   "app",
		StreamName:                  stream,
		InitialPosition:             properties.TrimHorizon,
		FailoverTime:                10 * time.Second,
		MaxRecords:                  100,
		IdleTimeBetweenReads:        200 * time.Millisecond,
		ShardSyncInterval:           time.Second,
		ParentShardPollInterval:     100 * time.Millisecond,
		MaxLeasesToStealAtOneTime:   properties.DefaultMaxLeasesToStealAtOneTime,
		RetrievalMode:               properties.Polling,
		GracefulLeaseHandoffTimeout: 5 * time.Second,
		ShutdownGrace:               10 * time.Second,
	}
}

// run is a Host whose Run is in progress.
type run struct {
	h      *Host
	cancel context.CancelFunc
	done   chan error
	log    string
}

// startHost sets the test child's environment and runs a host over f and
// store.
func startHost(t *testing.T, f *fakekinesis.Fake, store lease.Store, env map[string]string) *run {
	t.Helper()
	dir := t.TempDir()
	r := &run{log: filepath.Join(dir, "child.log"), done: make(chan error, 1)}
	t.Setenv("KCL_HOST_TEST_CHILD", "1")
	t.Setenv("KCL_HOST_TEST_LOG", r.log)
	for k, v := range env {
		t.Setenv(k, strings.ReplaceAll(v, "$DIR", dir))
	}
	h, err := New(Config{Properties: testProps(), Kinesis: f, Store: store,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.h = h
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	return r
}

// lines returns the child log's lines that start with prefix.
func (r *run) lines(prefix string) []string {
	b, _ := os.ReadFile(r.log)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// records returns the data of the records the children recorded, per shard,
// in the order they were recorded.
func (r *run) records() map[string][]string {
	out := map[string][]string{}
	for _, l := range r.lines("rec ") {
		f := strings.Fields(l)
		out[f[1]] = append(out[f[1]], f[4])
	}
	return out
}

// count returns how many records the children recorded, failing the test
// if Run has returned.
func (r *run) count(t *testing.T) int {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run returned early: %v", err)
	default:
	}
	return len(r.lines("rec "))
}

// stop cancels Run and returns its error.
func (r *run) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after the stop")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func put(f *fakekinesis.Fake, from, to int) {
	for i := from; i < to; i++ {
		f.Put(stream, "k"+strconv.Itoa(i%3), []byte(strconv.Itoa(i)))
	}
}

// inOrder reports whether data holds from … to-1 in order, each once.
func inOrder(data []string, from, to int) bool {
	if len(data) != to-from {
		return false
	}
	for i, d := range data {
		if d != strconv.Itoa(from+i) {
			return false
		}
	}
	return true
}

// The records reach the child in order, each once; a graceful stop sends
// shutdownRequested, stores the child's final checkpoint, releases the
// lease, sends leaseLost and reaps the child.
func TestHostDeliversInOrderAndStopsGracefully(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, nil)
	put(f, 0, 10)
	waitFor(t, "10 records", func() bool { return r.count(t) >= 10 })
	put(f, 10, 25)
	waitFor(t, "25 records", func() bool { return r.count(t) >= 25 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := r.records()["shardId-000000000000"]; !inOrder(got, 0, 25) {
		t.Errorf("child got %v, want 0…24 in order, once each", got)
	}
	if got, want := r.lines("end "), []string{"end shardId-000000000000 shutdownRequested", "end shardId-000000000000 leaseLost"}; !slices.Equal(got, want) {
		t.Errorf("endings %q, want %q", got, want)
	}
	leases := store.Leases()
	if len(leases) != 1 || leases[0].Owner != "" {
		t.Fatalf("leases after the stop: %+v, want one, released", leases)
	}
	if !leases[0].Checkpoint.IsSequence() {
		t.Errorf("checkpoint %v, want the last record's", leases[0].Checkpoint)
	}
	if st := r.h.Stats(); st.Started != 1 || st.Running != 0 || st.Failed != 0 {
		t.Errorf("stats %+v, want 1 started, none running, none failed", st)
	}
}

// A child that exits mid-batch costs only itself: a new child is
// initialized at the last checkpoint and given every record since it
// again, then the failed batch; nothing is skipped.
func TestHostReplacesAFailedChildAndReplaysSinceTheCheckpoint(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_CRASH_ONCE": "$DIR/crashed"})
	put(f, 0, 10)
	waitFor(t, "the first batch", func() bool { return r.count(t) >= 10 })
	put(f, 10, 20)
	waitFor(t, "a second child to be initialized", func() bool { return len(r.lines("init ")) >= 2 })
	waitFor(t, "20 records after the crash", func() bool { return r.count(t) >= 30 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := r.records()["shardId-000000000000"]
	// The first child recorded 0…9 and died in the batch of 10…19 before
	// recording it; the second was initialized at TRIM_HORIZON (nothing was
	// checkpointed) and got 0…19.
	if !inOrder(got[:10], 0, 10) || !inOrder(got[10:], 0, 20) {
		t.Errorf("children got %v, want 0…9 then 0…19", got)
	}
	if inits := r.lines("init "); inits[1] != "init shardId-000000000000 TRIM_HORIZON" {
		t.Errorf("second child's initialize: %q, want at TRIM_HORIZON", inits[1])
	}
	st := r.h.Stats()
	if st.Started != 2 || st.Failed != 1 || st.Replayed != 10 {
		t.Errorf("stats %+v, want 2 started, 1 failed, 10 replayed", st)
	}
}

// After a checkpoint, a replacement child is initialized at it and given
// only the records after it.
func TestHostReplaysOnlyAfterTheCheckpoint(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_CRASH_ONCE": "$DIR/crashed", "KCL_HOST_TEST_CHECKPOINT": "batch"})
	put(f, 0, 10)
	waitFor(t, "the first batch", func() bool { return r.count(t) >= 10 })
	put(f, 10, 20)
	waitFor(t, "records after the crash", func() bool { return r.count(t) >= 20 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := r.records()["shardId-000000000000"]; !inOrder(got, 0, 20) {
		t.Errorf("children got %v, want 0…19 once each", got)
	}
	inits := r.lines("init ")
	if len(inits) != 2 || strings.HasSuffix(inits[1], "TRIM_HORIZON") {
		t.Errorf("initializes %q, want the second at the first batch's checkpoint", inits)
	}
	if st := r.h.Stats(); st.Replayed != 0 || st.Failed != 1 {
		t.Errorf("stats %+v, want 1 failed, nothing replayed", st)
	}
}

// A checkpoint beyond the delivered records is refused with
// IllegalArgumentException, and processing goes on.
func TestHostRefusesACheckpointBeyondTheDeliveredRecords(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_BEYOND": "1", "KCL_HOST_TEST_CHECKPOINT": "batch"})
	put(f, 0, 5)
	waitFor(t, "5 records", func() bool { return r.count(t) >= 5 })
	put(f, 5, 10)
	waitFor(t, "10 records", func() bool { return r.count(t) >= 10 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ck := r.lines("ckpt ")
	if len(ck) < 2 || ck[0] != "ckpt "+string(protocol.IllegalArgumentException) || ck[1] != "ckpt ok" {
		t.Errorf("checkpoint replies %q, want IllegalArgumentException, then ok", ck)
	}
}

// At the end of a split shard the child gets shardEnded, checkpoints, and
// SHARD_END is stored; the children of the shard are processed after it.
func TestHostEndsASplitShard(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_CHECKPOINT": "batch"})
	put(f, 0, 10)
	waitFor(t, "10 records", func() bool { return r.count(t) >= 10 })
	if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	put(f, 10, 40)
	waitFor(t, "40 records", func() bool { return r.count(t) >= 40 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.Contains(r.lines("end "), "end shardId-000000000000 shardEnded") {
		t.Errorf("endings %q: the parent got no shardEnded", r.lines("end "))
	}
	for _, l := range store.Leases() {
		if l.Key == "shardId-000000000000" && l.Checkpoint != checkpoint.ShardEnd {
			t.Errorf("parent's checkpoint %v, want SHARD_END", l.Checkpoint)
		}
	}
	recs := r.records()
	if n := len(recs["shardId-000000000001"]) + len(recs["shardId-000000000002"]); n != 30 {
		t.Errorf("children shards got %d records, want 30", n)
	}
}

// An executable that cannot be found is an error before anything starts,
// not a failure of every shard.
func TestNewRejectsAMissingExecutable(t *testing.T) {
	p := testProps()
	p.Executable = []string{"kcl-no-such-processor-here", "--flag"}
	_, err := New(Config{Properties: p, Kinesis: fakekinesis.New(), Store: memlease.New()})
	if err == nil || !strings.Contains(err.Error(), "kcl-no-such-processor-here") {
		t.Fatalf("New: %v, want an error naming the executable", err)
	}
}

// A batch far larger than the encoding chunk reaches the child whole: the
// message is written in pieces, each record intact and in order.
func TestHostWritesALargeBatchInPieces(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_CHECKPOINT": "batch"})
	const n, size = 40, 9 << 10 // 360 KiB of data, ~480 KiB encoded: several chunks
	want := make([]string, n)
	for i := range n {
		want[i] = strconv.Itoa(i) + "-" + strings.Repeat(string(rune('a'+i%26)), size)
		f.Put(stream, "k", []byte(want[i]))
	}
	waitFor(t, "the large batch", func() bool { return r.count(t) >= n })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := r.records()["shardId-000000000000"]
	if !slices.Equal(got, want) {
		t.Errorf("child got %d records (want %d), not the records put, in order", len(got), n)
	}
}

// A child that dies after the host stored its checkpoint but before the
// call's end: the Worker delivers the same batch again, and the new child,
// initialized at that checkpoint, is sent none of the records it covers
// (found by the multilang chaos soak).
func TestHostSendsNoRecordAtOrBeforeTheNewChildsCheckpoint(t *testing.T) {
	f := fakekinesis.New(fakekinesis.WithStream(stream, 1))
	store := memlease.New()
	r := startHost(t, f, store, map[string]string{"KCL_HOST_TEST_DIE_AFTER_CHECKPOINT": "$DIR/died", "KCL_HOST_TEST_CHECKPOINT": "batch"})
	put(f, 0, 10)
	waitFor(t, "the first batch", func() bool { return r.count(t) >= 10 })
	put(f, 10, 20)
	waitFor(t, "a second child", func() bool { return len(r.lines("init ")) >= 2 })
	put(f, 20, 30)
	waitFor(t, "the third batch", func() bool { return r.count(t) >= 30 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, _ := os.ReadFile(r.log)
	var from checkpoint.Position
	children := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "init":
			children++
			from, _ = checkpoint.Parse(f[2], 0)
		case len(f) == 5 && f[0] == "rec":
			sub, _ := strconv.ParseUint(f[3], 10, 64)
			p, err := checkpoint.At(f[2], sub)
			if err != nil {
				t.Fatalf("record line %q: %v", l, err)
			}
			if from.IsSequence() && p.Compare(from) <= 0 {
				t.Errorf("child %d initialized at %v was sent record %v (data %s)", children, from, p, f[4])
			}
		}
	}
	if children != 2 {
		t.Fatalf("%d children initialized, want 2", children)
	}
	if got := r.records()["shardId-000000000000"]; !inOrder(got, 0, 30) {
		t.Errorf("children got %v, want 0…29 once each (the second child from the first's checkpoint)", got)
	}
}
