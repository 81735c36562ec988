package kprom_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/plugin/kprom"
)

const (
	stream = "orders"
	wid    = "w1"
	shard0 = "shardId-000000000000"
	shard1 = "shardId-000000000001"
)

// feed reports a fixed history to m: two shards acquired, batches,
// fetches of every kind, failures, a shard end and a release.
func feed(m *kprom.Metrics) {
	lease := func(shard string, k consumer.LeaseEventKind, cause error) {
		m.LeaseChanged(consumer.LeaseEvent{StreamName: stream, WorkerID: wid, ShardID: shard, Kind: k, Cause: cause})
	}
	batch := func(shard string, records, bytes, aggregates int, skipped bool) {
		i := consumer.BatchInfo{StreamName: stream, WorkerID: wid, ShardID: shard, Records: records, Bytes: bytes,
			Aggregates: aggregates, Latency: 20 * time.Millisecond, Attempts: 1}
		if skipped {
			i.Skipped = &consumer.SkippedBatch{}
		}
		m.BatchProcessed(i)
	}
	fetch := func(shard, op string, behind time.Duration, kind consumer.ErrorKind, renewal bool) {
		i := consumer.FetchInfo{StreamName: stream, WorkerID: wid, ShardID: shard, Op: op, Duration: 30 * time.Millisecond,
			MillisBehindLatest: behind, Kind: kind, Throttled: kind == consumer.ErrorThrottled, Renewal: renewal}
		if kind != 0 {
			i.Err = errors.New(kind.String())
		}
		m.Fetched(i)
	}
	lease(shard0, consumer.LeaseAcquired, nil)
	lease(shard1, consumer.LeaseAcquired, nil)
	fetch(shard0, consumer.OpGetShardIterator, 0, 0, false)
	fetch(shard0, consumer.OpGetRecords, 0, consumer.ErrorThrottled, false)
	fetch(shard0, consumer.OpGetRecords, 0, consumer.ErrorExpiredIterator, false)
	fetch(shard0, consumer.OpGetRecords, 4*time.Second, 0, false)
	fetch(shard1, consumer.OpGetRecords, 1500*time.Millisecond, 0, false)
	fetch(shard1, consumer.OpSubscribeToShard, 0, 0, true)
	batch(shard0, 100, 10_000, 10, false)
	batch(shard0, 50, 5_000, 0, false)
	batch(shard1, 7, 700, 0, false)
	batch(shard1, 3, 300, 0, true)
	m.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: stream, WorkerID: wid, ShardID: shard1, Method: consumer.MethodProcessRecords, Attempts: 1, Retry: true})
	m.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: stream, WorkerID: wid, ShardID: shard1, Method: consumer.MethodProcessRecords, Attempts: 2, Panicked: true})
	m.Checkpointed(consumer.CheckpointInfo{StreamName: stream, WorkerID: wid, ShardID: shard0, Duration: 5 * time.Millisecond})
	m.Checkpointed(consumer.CheckpointInfo{StreamName: stream, WorkerID: wid, ShardID: shard0, Duration: 5 * time.Millisecond, Err: errors.New("conflict")})
	m.ShardSynced(consumer.ShardSyncInfo{StreamName: stream, WorkerID: wid, Duration: 80 * time.Millisecond, Shards: 2})
	m.AggregateFailed(consumer.AggregateInfo{StreamName: stream, WorkerID: wid, ShardID: shard0})
	m.AggregateFailed(consumer.AggregateInfo{StreamName: stream, WorkerID: wid, ShardID: shard0, Dropped: true})
	lease(shard1, consumer.LeaseReleased, consumer.ErrHandoffRequested)
}

// fakeStore is a LeaseStore with fixed stats.
type fakeStore struct{}

func (fakeStore) Table() string { return "orders-app" }
func (fakeStore) Stats() dynamolease.Stats {
	return dynamolease.Stats{
		Calls:    dynamolease.Calls{UpdateItem: 40, Scan: 3},
		Capacity: dynamolease.Capacity{UpdateItem: 40, Scan: 1.5},
	}
}

func TestTheExpositionCountsWhatTheHooksReported(t *testing.T) {
	m := kprom.New(kprom.WithLeaseStore(fakeStore{}))
	feed(m)
	f, text := scrapeHandler(t, handler(t, m))
	w := map[string]string{"stream": stream, "worker": wid}
	s0 := map[string]string{"stream": stream, "worker": wid, "shard": shard0}
	s1 := map[string]string{"stream": stream, "worker": wid, "shard": shard1}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kcl_records_processed_total", s0, 150},
		{"kcl_records_processed_total", s1, 7},
		{"kcl_bytes_processed_total", w, 15_700},
		{"kcl_kpl_aggregates_total", s0, 10},
		{"kcl_batches_skipped_total", s1, 1},
		{"kcl_behind_latest_seconds", s0, 4},
		{"kcl_max_behind_latest_seconds", w, 4}, // shard 1 (1.5 s) was released
		{"kcl_batch_records", w, 4},
		{"kcl_processing_seconds", w, 4},
		{"kcl_processor_errors_total", map[string]string{"method": "ProcessRecords"}, 2},
		{"kcl_processor_panics_total", map[string]string{"method": "ProcessRecords"}, 1},
		{"kcl_processor_retries_total", map[string]string{"method": "ProcessRecords"}, 1},
		{"kcl_kinesis_calls_total", map[string]string{"op": "GetRecords"}, 4},
		{"kcl_kinesis_calls_total", map[string]string{"op": "GetShardIterator"}, 1},
		{"kcl_kinesis_errors_total", map[string]string{"op": "GetRecords", "kind": "throttled"}, 1},
		{"kcl_kinesis_errors_total", map[string]string{"op": "GetRecords", "kind": "expired_iterator"}, 1},
		{"kcl_kinesis_call_seconds", map[string]string{"op": "GetRecords"}, 4},
		{"kcl_subscription_renewals_total", w, 1},
		{"kcl_leases_held", w, 1},
		{"kcl_leases_acquired_total", w, 2},
		{"kcl_leases_released_total", map[string]string{"reason": "handoff"}, 1},
		{"kcl_leases_released_total", map[string]string{"reason": "stopping"}, 0},
		{"kcl_leases_lost_total", w, 0},
		{"kcl_checkpoints_total", w, 2},
		{"kcl_checkpoint_failures_total", w, 1},
		{"kcl_shard_syncs_total", w, 1},
		{"kcl_kpl_malformed_total", w, 1},
		{"kcl_kpl_dropped_total", w, 1},
		{"kcl_dynamodb_calls_total", map[string]string{"table": "orders-app", "operation": "UpdateItem"}, 40},
		{"kcl_dynamodb_consumed_capacity_total", map[string]string{"table": "orders-app", "operation": "Scan"}, 1.5},
	} {
		if got := f.sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := f.series("kcl_behind_latest_seconds"); len(got) != 1 {
		t.Errorf("kcl_behind_latest_seconds series %v, want shard 0's only (shard 1 is no longer held)", got)
	}
	if h := f["kcl_processing_seconds"].Metric[0].Histogram; h.GetSampleSum() < 0.079 || h.GetSampleSum() > 0.081 {
		t.Errorf("kcl_processing_seconds sum %v, want 4 × 20 ms", h.GetSampleSum())
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestWithoutShardLabelCountsPerWorker(t *testing.T) {
	m := kprom.New(kprom.WithoutShardLabel())
	feed(m)
	f, _ := scrapeHandler(t, handler(t, m))
	if got := f.series("kcl_records_processed_total"); !slices.Equal(got, []string{"stream=orders,worker=w1"}) {
		t.Errorf("kcl_records_processed_total series %v, want one per worker", got)
	}
	if got := f.sum("kcl_records_processed_total", nil); got != 157 {
		t.Errorf("records %v, want 157", got)
	}
	if _, ok := f["kcl_behind_latest_seconds"]; ok {
		t.Error("kcl_behind_latest_seconds exported without the shard label")
	}
	if got := f.sum("kcl_max_behind_latest_seconds", nil); got != 4 {
		t.Errorf("kcl_max_behind_latest_seconds %v, want 4", got)
	}
}

func TestAReleasedShardsCountersGoAfterTheRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := kprom.New(kprom.WithShardRetention(time.Minute))
		feed(m)
		h := handler(t, m)
		f, _ := scrapeHandler(t, h)
		if got := len(f.series("kcl_records_processed_total")); got != 2 {
			t.Fatalf("%d records series right after the release, want 2", got)
		}
		time.Sleep(61 * time.Second)
		f, _ = scrapeHandler(t, h)
		if got := f.series("kcl_records_processed_total"); len(got) != 1 || !strings.Contains(got[0], shard0) {
			t.Errorf("records series %v a minute after shard 1 was released, want shard 0's only", got)
		}
		// The shard comes back: its series with it, from zero.
		m.LeaseChanged(consumer.LeaseEvent{StreamName: stream, WorkerID: wid, ShardID: shard1, Kind: consumer.LeaseAcquired})
		m.BatchProcessed(consumer.BatchInfo{StreamName: stream, WorkerID: wid, ShardID: shard1, Records: 5})
		f, _ = scrapeHandler(t, h)
		if got := f.sum("kcl_records_processed_total", map[string]string{"shard": shard1}); got != 5 {
			t.Errorf("shard 1 records %v after it came back, want 5", got)
		}
		if got := f.sum("kcl_leases_held", nil); got != 2 {
			t.Errorf("leases held %v, want 2", got)
		}
	})
}

func TestSeveralWorkersAreSeparateSeries(t *testing.T) {
	m := kprom.New()
	for _, w := range []string{"a", "b"} {
		m.LeaseChanged(consumer.LeaseEvent{StreamName: stream, WorkerID: w, ShardID: shard0, Kind: consumer.LeaseAcquired})
		m.BatchProcessed(consumer.BatchInfo{StreamName: stream, WorkerID: w, ShardID: shard0, Records: len(w) * 10})
	}
	f, _ := scrapeHandler(t, handler(t, m))
	if a, b := f.sum("kcl_records_processed_total", map[string]string{"worker": "a"}), f.sum("kcl_leases_held", map[string]string{"worker": "b"}); a != 10 || b != 1 {
		t.Errorf("worker a records %v, worker b leases %v; want 10 and 1", a, b)
	}
}
