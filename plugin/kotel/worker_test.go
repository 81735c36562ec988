package kotel_test

import (
	"context"
	"fmt"
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
	"github.com/kclgo/kcl/plugin/kotel"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestWorkerRunOnEmulators runs a Worker with the plugin on kinesis-mock and
// DynamoDB Local and checks the collected values against the run: records
// and bytes counted equal those the processor saw, shard by shard; leases
// held equal the leases the lease table says the worker owns; and after a
// graceful stop none is held and every one was released.
func TestWorkerRunOnEmulators(t *testing.T) {
	const shards, records = 2, 200
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, shards)
	store := leaseTable(t)
	want := putRecords(t, kc, stream, records)

	const workerID = "kotel-worker"
	m, c := newMetrics(t, kotel.WithLeaseStore(store))
	defer m.Close()
	var seen processed
	w, err := consumer.New(kc, store, stream, seen.factory(),
		consumer.WithWorkerID(workerID),
		consumer.WithInitialPosition(checkpoint.TrimHorizon),
		consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
		consumer.WithIdleTime(200*time.Millisecond),
		consumer.WithHooks(m),
		consumer.WithLogger(zaptest.NewLogger(t)),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	defer stop()

	testenv.Eventually(t, 90*time.Second, 100*time.Millisecond, func() bool { return seen.total() >= want.records },
		"the processor saw %d of %d records", seen.total(), want.records)
	// Leases held, as the plugin reports them and as the table has them.
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		return c.collect().value("kcl.leases.held") == float64(owned(t, store, workerID))
	}, "kcl.leases.held differs from the leases the table gives the worker")

	s := c.collect()
	if got := int(s.value("kcl.leases.held")); got != shards {
		t.Errorf("kcl.leases.held = %d, want %d", got, shards)
	}
	if got := int(s.value("kcl.leases.acquired")); got != shards {
		t.Errorf("kcl.leases.acquired = %d, want %d", got, shards)
	}
	perShard, bytes := seen.snapshot()
	if got := int(s.value("kcl.records.processed")); got != want.records || got != seen.total() {
		t.Errorf("kcl.records.processed = %d, want %d (put) = %d (processed)", got, want.records, seen.total())
	}
	if got := int(s.value("kcl.bytes.processed")); got != want.bytes || got != bytes {
		t.Errorf("kcl.bytes.processed = %d, want %d (put) = %d (processed)", got, want.bytes, bytes)
	}
	for id, n := range perShard {
		if got := int(s.value("kcl.records.processed", shard(id))); got != n {
			t.Errorf("kcl.records.processed{shard=%s} = %d, want %d", id, got, n)
		}
		if got := s.match("kcl.behind_latest", shard(id)); len(got) != 1 {
			t.Errorf("kcl.behind_latest{shard=%s}: %d series, want 1", id, len(got))
		}
	}
	if got := s.value("kcl.shard_syncs"); got < 1 {
		t.Errorf("kcl.shard_syncs = %v, want at least the first", got)
	}
	if got := s.value("kcl.dynamodb.calls"); got == 0 || s.value("kcl.dynamodb.consumed_capacity") == 0 {
		t.Errorf("kcl.dynamodb.calls = %v, consumed capacity %v: want both above 0", got, s.value("kcl.dynamodb.consumed_capacity"))
	}
	for name := range s.metrics {
		if name == "kcl.dynamodb.calls" || name == "kcl.dynamodb.consumed_capacity" {
			continue
		}
		for _, p := range s.points(name) {
			if v, _ := p.attrs.Value(kotel.StreamKey); v.AsString() != stream {
				t.Errorf("%s %v: stream %q, want %q", name, p.attrs.ToSlice(), v.AsString(), stream)
			}
			if v, _ := p.attrs.Value(kotel.WorkerKey); v.AsString() != workerID {
				t.Errorf("%s %v: worker %q, want %q", name, p.attrs.ToSlice(), v.AsString(), workerID)
			}
		}
	}

	// A graceful stop releases every lease.
	stop()
	s = c.collect()
	if got := s.value("kcl.leases.held"); got != 0 || owned(t, store, workerID) != 0 {
		t.Errorf("after the stop, kcl.leases.held = %v and the table gives the worker %d leases, want 0 and 0", got, owned(t, store, workerID))
	}
	if got := int(s.value("kcl.leases.released", kotel.ReasonKey.String("stopping"))); got != shards {
		t.Errorf("kcl.leases.released{reason=stopping} = %d, want %d", got, shards)
	}
	if got := s.value("kcl.leases.lost"); got != 0 {
		t.Errorf("kcl.leases.lost = %v, want 0", got)
	}
	if got := s.value("kcl.records.processed"); int(got) != seen.total() {
		t.Errorf("after the stop, kcl.records.processed = %v, want %d", got, seen.total())
	}
	// Once stopped, every call and batch has been counted and timed.
	batches := s.count("kcl.batch.records")
	if batches == 0 || batches != s.count("kcl.processing.duration") {
		t.Errorf("kcl.batch.records count %d, kcl.processing.duration count %d: want the same, above 0", batches, s.count("kcl.processing.duration"))
	}
	if got := s.value("kcl.batch.records"); int(got) != want.records {
		t.Errorf("kcl.batch.records sum = %v, want %d", got, want.records)
	}
	getRecords := kotel.OpKey.String("GetRecords")
	if got := s.value("kcl.kinesis.calls", getRecords); got < float64(shards) || uint64(got) != s.count("kcl.kinesis.call.duration", getRecords) {
		t.Errorf("kcl.kinesis.calls{op=GetRecords} = %v (%d timed), want at least one per shard, each timed", got, s.count("kcl.kinesis.call.duration", getRecords))
	}
	if got := s.value("kcl.kinesis.errors"); got != 0 {
		t.Errorf("kcl.kinesis.errors = %v, want 0", got)
	}
	// With a checkpoint after each batch, every batch was checkpointed.
	if got := s.value("kcl.checkpoints"); uint64(got) < batches || s.value("kcl.checkpoint.failures") != 0 {
		t.Errorf("checkpoint writes = %v (%v failed), want at least the %d batches, none failed", got, s.value("kcl.checkpoint.failures"), batches)
	}
	if t.Failed() {
		for name := range s.metrics {
			for _, p := range s.points(name) {
				t.Logf("%s %v value %v count %d", name, p.attrs.ToSlice(), p.value, p.count)
			}
		}
	}
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

// putRecords writes n records with distinct partition keys, so that they
// spread over the shards, in PutRecords calls of up to 100.
func putRecords(t *testing.T, kc *kinesis.Client, stream string, n int) put {
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
