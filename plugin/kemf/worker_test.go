package kemf_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap/zaptest"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/plugin/kemf"
	"github.com/kclgo/kcl/testkit/fakekinesis"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestWorkerRunOnEmulators runs a Worker with the exporter on kinesis-mock
// and DynamoDB Local, validates every line it wrote, and checks the values
// against the run: RecordsProcessed and DataBytesProcessed per shard equal
// what the processor saw, CurrentLeases in a flush made while the worker
// runs equals the leases the table gives it, and after a graceful stop it
// is 0 with every lease taken and released.
func TestWorkerRunOnEmulators(t *testing.T) {
	const shards, records = 2, 200
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, shards)
	store := leaseTable(t)
	want := putRecords(t, kc, stream, records)

	const workerID = "kemf-worker"
	var out syncBuffer
	e, err := kemf.New(&out, "kcl-test", kemf.WithWorkerDimension(), kemf.WithStreamDimension(), kemf.WithLeaseStore(store))
	if err != nil {
		t.Fatal(err)
	}
	stopEMF := run(t, e)
	var seen processed
	w, err := consumer.New(kc, store, stream, seen.factory(),
		consumer.WithWorkerID(workerID),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithHooks(e),
		consumer.WithLogger(zaptest.NewLogger(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runWorker(t, w)

	testenv.Eventually(t, 90*time.Second, 100*time.Millisecond, func() bool { return seen.total() >= want.records },
		"the processor saw %d of %d records", seen.total(), want.records)
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool { return owned(t, store, workerID) == shards },
		"the table does not give the worker its %d leases", shards)
	before := e.Stats().Flushes
	e.Flush()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool { return e.Stats().Flushes > before },
		"Flush did not flush")
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() bool {
		lines := parseEMF(t, out.Bytes())
		return len(find(lines, "Operation", "TakeLeases")) > int(before)
	}, "the flush was not written")
	running := parseEMF(t, out.Bytes())
	renew := find(running, "Operation", "RenewAllLeases", "WorkerIdentifier", workerID)
	if got := renew[len(renew)-1].metrics["CurrentLeases"]; len(got) != 1 || int(got[0]) != owned(t, store, workerID) {
		t.Errorf("CurrentLeases while running = %v, want %d, the leases the table gives the worker", got, owned(t, store, workerID))
	}

	stopWorker()
	stopEMF()
	lines := parseEMF(t, out.Bytes())
	perShard, bytes := seen.snapshot()
	pt := find(lines, "Operation", "ProcessTask")
	if got := int(total(pt, "RecordsProcessed")); got != want.records || got != seen.total() {
		t.Errorf("RecordsProcessed = %d, want %d (put) = %d (processed)", got, want.records, seen.total())
	}
	if got := int(total(pt, "DataBytesProcessed")); got != want.bytes || got != bytes {
		t.Errorf("DataBytesProcessed = %d, want %d (put) = %d (processed)", got, want.bytes, bytes)
	}
	for id, n := range perShard {
		sh := find(lines, "Operation", "ProcessTask", "ShardId", id)
		if got := int(total(sh, "RecordsProcessed")); got != n {
			t.Errorf("RecordsProcessed{ShardId=%s} = %d, want %d", id, got, n)
		}
		if len(values(sh, "MillisBehindLatest")) == 0 || total(sh, "KinesisDataFetcher.getRecords.Success") == 0 {
			t.Errorf("shard %s: no MillisBehindLatest or no successful GetRecords", id)
		}
		if got, batches := total(sh, "UpdateLease.Success"), len(values(sh, "RecordProcessor.processRecords.Time")); int(got) < batches {
			t.Errorf("shard %s: UpdateLease.Success = %v, want at least its %d batches (a checkpoint after each)", id, got, batches)
		}
	}
	worker := []string{"WorkerIdentifier", workerID}
	renew = find(lines, append([]string{"Operation", "RenewAllLeases"}, worker...)...)
	if last := renew[len(renew)-1].metrics["CurrentLeases"]; len(last) != 1 || last[0] != 0 {
		t.Errorf("CurrentLeases after the stop = %v, want 0", last)
	}
	for metric, want := range map[string]float64{"TakenLeases": shards, "ReleasedLeases": shards, "LostLeases": 0} {
		op := "RenewAllLeases"
		if metric == "TakenLeases" {
			op = "TakeLeases"
		}
		if got := total(find(lines, append([]string{"Operation", op}, worker...)...), metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if got := find(lines, "StreamName", stream); len(got) == 0 {
		t.Errorf("no line with StreamName %s", stream)
	}
	for _, l := range lines {
		if l.dims["Operation"] != "LeaseTable" && l.dims["StreamName"] != stream {
			t.Errorf("a line without StreamName %s: %v", stream, l.dims)
		}
	}
	table := find(lines, "Operation", "LeaseTable", "TableName", store.Table())
	calls, capacity := 0.0, 0.0
	for _, l := range table {
		for name, vs := range l.metrics {
			switch {
			case strings.HasSuffix(name, ".Calls"):
				calls += vs[0]
			case strings.HasSuffix(name, ".ConsumedCapacity"):
				capacity += vs[0]
			}
		}
	}
	st := store.Stats()
	wantCalls := st.Calls.GetItem + st.Calls.PutItem + st.Calls.UpdateItem + st.Calls.DeleteItem + st.Calls.Scan +
		st.Calls.Query + st.Calls.BatchGetItem + st.Calls.DescribeTable + st.Calls.CreateTable
	// The store made no call after the Worker stopped, before the last
	// flush: the flushes' deltas add up to its totals.
	if wantCap := st.ReadCapacityUnits + st.WriteCapacityUnits; calls == 0 || int64(calls) != wantCalls || math.Abs(capacity-wantCap) > 1e-6 {
		t.Errorf("LeaseTable: %v calls and %v capacity units over the flushes, want the store's %d and %v", calls, capacity, wantCalls, wantCap)
	}
	if st := e.Stats(); st.DroppedFlushes != 0 || st.WriteErrors != 0 || st.Lines != int64(len(lines)) {
		t.Errorf("Stats %+v, want %d lines, nothing dropped or failed", st, len(lines))
	}
}

// TestBlockedWriterNeverStallsAWorker processes records with a Worker (on
// the in-process fake Kinesis) whose exporter's writer is blocked for the
// whole run, flushing often: every record is processed, and flushes are
// dropped instead.
func TestBlockedWriterNeverStallsAWorker(t *testing.T) {
	const shards, records = 4, 400
	f := fakekinesis.New(fakekinesis.WithStream("s", shards))
	want := putRecords(t, f, "s", records)
	w := &blockingWriter{release: make(chan struct{})}
	defer close(w.release)
	e, err := kemf.New(w, "app", kemf.WithBuffer(1), kemf.WithDrainTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stopEMF := run(t, e)
	var seen processed
	worker, err := consumer.New(f, memlease.New(), "s", seen.factory(),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithMaxRecords(10), // many batches, many hook calls
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithHooks(e),
	)
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runWorker(t, worker)
	testenv.Eventually(t, 60*time.Second, 5*time.Millisecond, func() bool {
		e.Flush()
		return seen.total() >= want.records
	}, "the processor saw %d of %d records with the exporter's writer blocked", seen.total(), want.records)
	stopWorker()
	stopEMF()
	if st := e.Stats(); st.DroppedFlushes == 0 || st.Lines != 0 {
		t.Errorf("Stats %+v: want flushes dropped and no line written while the writer is blocked", st)
	}
}

// runWorker starts w.Run and returns a function that stops it gracefully
// and waits for it.
func runWorker(t *testing.T, w *consumer.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// processed counts what the processor was given.
type processed struct {
	mu      sync.Mutex
	records map[string]int
	bytes   int
}

func (p *processed) factory() consumer.Factory {
	return consumer.FactoryFunc(func(consumer.ShardInfo) (consumer.Processor, error) {
		return consumer.ProcessorFunc(func(_ context.Context, b *consumer.Batch) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.records == nil {
				p.records = map[string]int{}
			}
			p.records[b.ShardID] += len(b.Records)
			for _, r := range b.Records {
				p.bytes += len(r.Data)
			}
			return nil
		}), nil
	})
}

func (p *processed) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.records {
		n += v
	}
	return n
}

func (p *processed) snapshot() (map[string]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.records {
		out[k] = v
	}
	return out, p.bytes
}

// leaseTable creates a lease table (with its owner index) on DynamoDB
// Local, removed at cleanup.
func leaseTable(t *testing.T) *dynamolease.Store {
	t.Helper()
	ddb := testenv.DynamoDB(t)
	table := testenv.UniqueName(t, "leases")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	store, err := dynamolease.New(ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	return store
}

func owned(t *testing.T, store lease.Store, owner string) int {
	t.Helper()
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range ls {
		if l.Owner == owner {
			n++
		}
	}
	return n
}

// put is what putRecords wrote.
type put struct{ records, bytes int }

// putter is the PutRecords of *kinesis.Client and of the fake.
type putter interface {
	PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// putRecords writes n records with distinct partition keys, so that they
// spread over the shards, in PutRecords calls of up to 100.
func putRecords(t *testing.T, kc putter, stream string, n int) put {
	t.Helper()
	var p put
	for start := 0; start < n; start += 100 {
		var entries []types.PutRecordsRequestEntry
		for i := start; i < min(n, start+100); i++ {
			data := []byte(fmt.Sprintf("record %d", i))
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: data})
			p.records++
			p.bytes += len(data)
		}
		out, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil {
			t.Fatalf("PutRecords: %v", err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %d records failed", aws.ToInt32(out.FailedRecordCount))
		}
	}
	return p
}
