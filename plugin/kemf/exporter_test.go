package kemf_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/plugin/kemf"
	"github.com/kclgo/kcl/testkit/testenv"
)

// run starts e.Run and returns a function that stops it and waits for it.
func run(t testing.TB, e *kemf.Exporter) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// feed calls the hooks as worker w1 of stream orders holding shards s1 and
// s2 would.
func feed(e *kemf.Exporter) {
	const stream, worker = "orders", "w1"
	leaseEv := func(shard string, kind consumer.LeaseEventKind, cause error) {
		e.LeaseChanged(consumer.LeaseEvent{StreamName: stream, WorkerID: worker, ShardID: shard, Kind: kind, Cause: cause})
	}
	batch := func(b consumer.BatchInfo) { b.StreamName, b.WorkerID = stream, worker; e.BatchProcessed(b) }
	fetch := func(f consumer.FetchInfo) { f.StreamName, f.WorkerID = stream, worker; e.Fetched(f) }
	leaseEv("s1", consumer.LeaseAcquired, nil)
	leaseEv("s2", consumer.LeaseAcquired, nil)
	leaseEv("s3", consumer.LeaseAcquired, nil)
	leaseEv("s3", consumer.LeaseLost, lease.ErrLeaseLost)
	batch(consumer.BatchInfo{ShardID: "s1", Records: 10, Bytes: 1000, Aggregates: 3, MillisBehindLatest: 3 * time.Second, Latency: 20 * time.Millisecond, Attempts: 1})
	batch(consumer.BatchInfo{ShardID: "s1", Records: 5, Bytes: 500, MillisBehindLatest: 2 * time.Second, Latency: 10 * time.Millisecond, Attempts: 3})
	batch(consumer.BatchInfo{ShardID: "s2", Records: 7, Bytes: 70, MillisBehindLatest: 9 * time.Second, Latency: time.Millisecond, Attempts: 2,
		Skipped: &consumer.SkippedBatch{Records: 7, Attempts: 2}})
	fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetShardIterator, Duration: 4 * time.Millisecond})
	fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, Records: 15})
	fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 30 * time.Millisecond, Err: errors.New("expired"), Kind: consumer.ErrorExpiredIterator})
	fetch(consumer.FetchInfo{ShardID: "s1", Op: consumer.OpGetRecords, Duration: 20 * time.Millisecond, Throttled: true, Err: errors.New("throttled"), Kind: consumer.ErrorThrottled})
	fetch(consumer.FetchInfo{ShardID: "s2", Op: consumer.OpGetRecords, Duration: 10 * time.Millisecond, MillisBehindLatest: 500 * time.Millisecond}) // empty: a lag sample
	fetch(consumer.FetchInfo{ShardID: "s2", Op: consumer.OpSubscribeToShard, Duration: 50 * time.Millisecond})
	fetch(consumer.FetchInfo{ShardID: "s2", Op: consumer.OpSubscribeToShard, Duration: 50 * time.Millisecond, Renewal: true})
	e.Checkpointed(consumer.CheckpointInfo{StreamName: stream, WorkerID: worker, ShardID: "s1", Duration: 6 * time.Millisecond})
	e.Checkpointed(consumer.CheckpointInfo{StreamName: stream, WorkerID: worker, ShardID: "s1", Duration: 8 * time.Millisecond, Err: lease.ErrLeaseLost})
	e.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: stream, WorkerID: worker, ShardID: "s1", Method: consumer.MethodProcessRecords, Retry: true})
	e.ProcessorFailed(consumer.ProcessorErrorInfo{StreamName: stream, WorkerID: worker, ShardID: "s1", Method: consumer.MethodProcessRecords, Panicked: true, Retry: true})
	e.AggregateFailed(consumer.AggregateInfo{StreamName: stream, WorkerID: worker, ShardID: "s2"})
	e.AggregateFailed(consumer.AggregateInfo{StreamName: stream, WorkerID: worker, ShardID: "s2", Dropped: true})
	e.ShardSynced(consumer.ShardSyncInfo{StreamName: stream, WorkerID: worker, Duration: 40 * time.Millisecond, Shards: 3})
	e.ShardSynced(consumer.ShardSyncInfo{StreamName: stream, WorkerID: worker, Duration: 60 * time.Millisecond, Err: errors.New("throttled")})
}

func TestLinesFollowTheSpecificationWithKCLNames(t *testing.T) {
	var out syncBuffer
	e, err := kemf.New(&out, "orders-app", kemf.WithWorkerDimension(), kemf.WithStreamDimension(), kemf.WithDimension("Service", "billing"))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	feed(e)
	stop()
	lines := parseEMF(t, out.Bytes())

	for _, l := range lines {
		if l.namespace != "orders-app" {
			t.Errorf("namespace %q, want orders-app", l.namespace)
		}
		if l.dims["Service"] != "billing" {
			t.Errorf("a line without Service=billing: %v", l.dims)
		}
		if l.dims["Operation"] != "LeaseTable" && l.dims["StreamName"] != "orders" {
			t.Errorf("a line without StreamName=orders: %v", l.dims)
		}
	}
	s1 := find(lines, "Operation", "ProcessTask", "ShardId", "s1")
	s2 := find(lines, "Operation", "ProcessTask", "ShardId", "s2")
	if len(s1) != 1 || len(s2) != 1 {
		t.Fatalf("%d lines for s1 and %d for s2, want 1 each", len(s1), len(s2))
	}
	if want := [][]string{{"Operation", "ShardId", "StreamName", "Service"}}; !slices.EqualFunc(s1[0].dimSets, want, slices.Equal) {
		t.Errorf("ProcessTask dimension sets %v, want %v", s1[0].dimSets, want)
	}
	for _, tc := range []struct {
		lines  []emfLine
		metric string
		unit   string
		want   []float64
	}{
		{s1, "RecordsProcessed", "Count", []float64{15}},
		{s1, "DataBytesProcessed", "Bytes", []float64{1500}},
		{s1, "MillisBehindLatest", "Milliseconds", []float64{3000, 2000}},
		{s1, "RecordProcessor.processRecords.Time", "Milliseconds", []float64{20, 10}},
		{s1, "BatchRetries", "Count", []float64{2}},
		{s1, "KPLAggregates", "Count", []float64{3}},
		{s1, "ProcessorErrors", "Count", []float64{2}},
		{s1, "ProcessorPanics", "Count", []float64{1}},
		{s1, "KinesisDataFetcher.getRecords.Success", "Count", []float64{1}},
		{s1, "KinesisDataFetcher.getRecords.Time", "Milliseconds", []float64{10, 30, 20}},
		{s1, "KinesisDataFetcher.getRecords.Throttled", "Count", []float64{1}},
		{s1, "KinesisDataFetcher.getRecords.Errors", "Count", []float64{2}},
		{s1, "KinesisDataFetcher.getShardIterator.Success", "Count", []float64{1}},
		{s1, "KinesisDataFetcher.getShardIterator.Time", "Milliseconds", []float64{4}},
		{s1, "ExpiredIterator", "Count", []float64{1}},
		{s1, "UpdateLease.Success", "Count", []float64{1}},
		{s1, "UpdateLease.Time", "Milliseconds", []float64{6, 8}},
		{s1, "UpdateLease.Errors", "Count", []float64{1}},
		{s2, "RecordsProcessed", "Count", []float64{0}},
		{s2, "BatchesSkipped", "Count", []float64{1}},
		{s2, "RecordsSkipped", "Count", []float64{7}},
		{s2, "MillisBehindLatest", "Milliseconds", []float64{9000, 500}},
		{s2, "SubscribeToShard.Success", "Count", []float64{2}},
		{s2, "SubscriptionRenewals", "Count", []float64{1}},
		{s2, "KPLMalformed", "Count", []float64{1}},
		{s2, "KPLDropped", "Count", []float64{1}},
	} {
		l := tc.lines[0]
		if got := l.metrics[tc.metric]; !slices.Equal(got, tc.want) {
			t.Errorf("shard %s: %s = %v, want %v", l.dims["ShardId"], tc.metric, got, tc.want)
		}
		if got := l.units[tc.metric]; got != tc.unit {
			t.Errorf("shard %s: %s unit %q, want %q", l.dims["ShardId"], tc.metric, got, tc.unit)
		}
	}
	for _, absent := range []string{"BatchesSkipped", "KinesisDataFetcher.getShardIterator.Errors"} {
		if _, ok := s1[0].metrics[absent]; ok {
			t.Errorf("shard s1 reports %s, which stayed 0", absent)
		}
	}
	if got := find(lines, "Operation", "ProcessTask", "ShardId", "s3"); len(got) != 0 {
		t.Errorf("shard s3, lost with nothing reported, has a line: %v", got[0].metrics)
	}

	tracker := find(lines, "Operation", "ApplicationTracker")
	if len(tracker) != 1 || maxOf(tracker[0].metrics["MillisBehindLatest"]) != 9000 || len(tracker[0].metrics["MillisBehindLatest"]) != 4 {
		t.Errorf("ApplicationTracker lines %v, want one with the 4 MillisBehindLatest values of every shard, max 9000", tracker)
	}
	if _, ok := tracker[0].dims["ShardId"]; ok {
		t.Error("the ApplicationTracker line has a ShardId")
	}
	renew := find(lines, "Operation", "RenewAllLeases", "WorkerIdentifier", "w1")
	take := find(lines, "Operation", "TakeLeases", "WorkerIdentifier", "w1")
	if len(renew) != 1 || len(take) != 1 {
		t.Fatalf("%d RenewAllLeases and %d TakeLeases lines for worker w1, want 1 each", len(renew), len(take))
	}
	if want := [][]string{{"Operation", "WorkerIdentifier", "StreamName", "Service"}}; !slices.EqualFunc(renew[0].dimSets, want, slices.Equal) {
		t.Errorf("RenewAllLeases dimension sets %v, want %v", renew[0].dimSets, want)
	}
	for metric, want := range map[string]float64{"CurrentLeases": 2, "LostLeases": 1} {
		if got := total(renew, metric); got != want {
			t.Errorf("RenewAllLeases %s = %v, want %v", metric, got, want)
		}
	}
	if got := total(take, "TakenLeases"); got != 3 {
		t.Errorf("TakeLeases TakenLeases = %v, want 3", got)
	}
	sync := find(lines, "Operation", "ShardSyncTask")
	if len(sync) != 1 || total(sync, "Success") != 1 || total(sync, "Errors") != 1 || len(sync[0].metrics["Time"]) != 2 {
		t.Errorf("ShardSyncTask lines %v, want one with Success 1, Errors 1 and two times", sync)
	}
	if st := e.Stats(); st.Lines != int64(len(lines)) || st.Flushes != 1 || st.DroppedFlushes != 0 || st.WriteErrors != 0 {
		t.Errorf("Stats %+v, want %d lines in 1 flush, nothing dropped or failed", st, len(lines))
	}
}

func TestWithoutShardDimensionAggregatesTheShards(t *testing.T) {
	var out syncBuffer
	e, err := kemf.New(&out, "app", kemf.WithoutShardDimension())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	feed(e)
	stop()
	lines := parseEMF(t, out.Bytes())
	for _, l := range lines {
		if _, ok := l.dims["ShardId"]; ok {
			t.Errorf("a line has a ShardId: %v", l.dims)
		}
		if _, ok := l.dims["WorkerIdentifier"]; ok {
			t.Errorf("a line has a WorkerIdentifier without WithWorkerDimension: %v", l.dims)
		}
		if _, ok := l.dims["StreamName"]; ok {
			t.Errorf("a line has a StreamName without WithStreamDimension: %v", l.dims)
		}
	}
	pt := find(lines, "Operation", "ProcessTask")
	if len(pt) != 1 {
		t.Fatalf("%d ProcessTask lines, want 1", len(pt))
	}
	if want := [][]string{{"Operation"}}; !slices.EqualFunc(pt[0].dimSets, want, slices.Equal) {
		t.Errorf("dimension sets %v, want %v", pt[0].dimSets, want)
	}
	for metric, want := range map[string]float64{"RecordsProcessed": 15, "DataBytesProcessed": 1500, "RecordsSkipped": 7, "KinesisDataFetcher.getRecords.Success": 2, "SubscribeToShard.Success": 2} {
		if got := total(pt, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if got := values(pt, "MillisBehindLatest"); len(got) != 4 || maxOf(got) != 9000 {
		t.Errorf("MillisBehindLatest %v, want the 4 values of both shards", got)
	}
}

func TestManyValuesAreSampledKeepingTheExtremes(t *testing.T) {
	var out syncBuffer
	e, err := kemf.New(&out, "app")
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	e.LeaseChanged(consumer.LeaseEvent{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Kind: consumer.LeaseAcquired})
	const n = 5000
	for i := range n {
		lag := time.Duration(1000+i%3000) * time.Millisecond
		if i == 1234 {
			lag = time.Hour
		}
		if i == 4321 {
			lag = 0
		}
		e.BatchProcessed(consumer.BatchInfo{ShardID: "s1", Records: 1, MillisBehindLatest: lag, Attempts: 1})
	}
	stop()
	lines := parseEMF(t, out.Bytes()) // at most 100 values per metric
	s1 := find(lines, "ShardId", "s1")
	lags := values(s1, "MillisBehindLatest")
	if len(lags) != 100 || slices.Max(lags) != float64(time.Hour/time.Millisecond) || slices.Min(lags) != 0 {
		t.Errorf("MillisBehindLatest: %d values, max %v, min %v; want 100 holding max 3600000 and min 0", len(lags), slices.Max(lags), slices.Min(lags))
	}
	if got := total(s1, "RecordsProcessed"); got != n {
		t.Errorf("RecordsProcessed = %v, want %d: counts are exact", got, n)
	}
	tracker := values(find(lines, "Operation", "ApplicationTracker"), "MillisBehindLatest")
	if len(tracker) != 100 || slices.Max(tracker) != float64(time.Hour/time.Millisecond) {
		t.Errorf("ApplicationTracker MillisBehindLatest: %d values, max %v", len(tracker), slices.Max(tracker))
	}
}

func TestFlushesEveryIntervalAndOnRequest(t *testing.T) {
	var out syncBuffer
	e, err := kemf.New(&out, "app", kemf.WithFlushInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	e.LeaseChanged(consumer.LeaseEvent{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Kind: consumer.LeaseAcquired})
	e.BatchProcessed(consumer.BatchInfo{ShardID: "s1", Records: 3, Attempts: 1})
	e.Flush()
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return e.Stats().Flushes >= 1 && e.Stats().Lines >= 4 },
		"no flush after Flush: %+v", e.Stats())
	e.BatchProcessed(consumer.BatchInfo{ShardID: "s1", Records: 4, Attempts: 1})
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return e.Stats().Flushes >= 2 },
		"no flush after the interval: %+v", e.Stats())
	stop()
	lines := parseEMF(t, out.Bytes())
	s1 := find(lines, "ShardId", "s1")
	if len(s1) < 3 {
		t.Fatalf("%d lines for s1, want one per flush (at least 3)", len(s1))
	}
	if got := total(s1, "RecordsProcessed"); got != 7 {
		t.Errorf("RecordsProcessed summed over the flushes = %v, want 7", got)
	}
	// A held shard reports every interval, idle or not.
	for _, l := range s1 {
		if _, ok := l.metrics["RecordsProcessed"]; !ok {
			t.Errorf("a flush of held shard s1 without RecordsProcessed: %v", l.metrics)
		}
	}
	if st := e.Stats(); int64(len(lines)) != st.Lines {
		t.Errorf("%d lines written, Stats says %d", len(lines), st.Lines)
	}
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	writes  atomic.Int64
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	<-w.release
	return len(p), nil
}

func TestBlockedWriterNeverStallsTheHooks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	defer close(w.release)
	e, err := kemf.New(w, "app", kemf.WithBuffer(2), kemf.WithDrainTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	e.LeaseChanged(consumer.LeaseEvent{StreamName: "orders", WorkerID: "w1", ShardID: "s1", Kind: consumer.LeaseAcquired})
	testenv.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		e.Flush()
		return e.Stats().DroppedFlushes >= 5
	}, "flushes were not dropped while the writer is blocked: %+v", e.Stats())

	// The writer is stuck in its first Write, and the buffer is full: the
	// hooks still return at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100_000 {
			e.BatchProcessed(consumer.BatchInfo{ShardID: fmt.Sprintf("s%d", i%64), Records: 1, Attempts: 1})
			e.Fetched(consumer.FetchInfo{ShardID: "s1", Op: "GetRecords"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("100,000 hook calls did not return within 10 s while the writer is blocked")
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after its context ended, want about the drain timeout (100ms)", d)
	}
	if got := w.writes.Load(); got != 1 {
		t.Errorf("%d Write calls, want 1 (the one blocked)", got)
	}
}

// failingWriter fails (or panics on) every other Write.
type failingWriter struct {
	panics bool
	calls  int
	out    syncBuffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls%2 == 1 {
		if w.panics {
			panic("sink broken")
		}
		return 0, errors.New("sink broken")
	}
	return w.out.Write(p)
}

func TestFailingWriterLosesLinesOnly(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panics=%v", panics), func(t *testing.T) {
			w := &failingWriter{panics: panics}
			e, err := kemf.New(w, "app")
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, e)
			feed(e)
			stop()
			st := e.Stats()
			if st.WriteErrors == 0 || st.Lines == 0 || st.WriteErrors+st.Lines != int64(w.calls) {
				t.Errorf("Stats %+v after %d Write calls, want both failures and lines, adding up", st, w.calls)
			}
			if got := parseEMF(t, w.out.Bytes()); int64(len(got)) != st.Lines {
				t.Errorf("%d lines written, Stats says %d", len(got), st.Lines)
			}
		})
	}
}

func TestRunTwiceIsAnError(t *testing.T) {
	e, err := kemf.New(io.Discard, "app")
	if err != nil {
		t.Fatal(err)
	}
	run(t, e)
	testenv.Eventually(t, 5*time.Second, time.Millisecond, func() bool {
		e.Flush()
		return e.Stats().Flushes > 0
	}, "Run did not start")
	if err := e.Run(context.Background()); err == nil {
		t.Error("a second Run returned nil")
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	many := make([]kemf.Option, 28)
	for i := range many {
		many[i] = kemf.WithDimension(fmt.Sprintf("D%d", i), "v")
	}
	for _, tc := range []struct {
		name      string
		w         io.Writer
		namespace string
		opts      []kemf.Option
		want      string
	}{
		{"a nil writer", nil, "app", nil, "writer"},
		{"an empty namespace", io.Discard, "", nil, "namespace"},
		{"an AWS/ namespace", io.Discard, "AWS/Kinesis", nil, "namespace"},
		{"a namespace over 255 characters", io.Discard, strings.Repeat("n", 256), nil, "namespace"},
		{"a flush interval under a second", io.Discard, "app", []kemf.Option{kemf.WithFlushInterval(time.Millisecond)}, "WithFlushInterval"},
		{"an empty buffer", io.Discard, "app", []kemf.Option{kemf.WithBuffer(0)}, "WithBuffer"},
		{"a negative drain timeout", io.Discard, "app", []kemf.Option{kemf.WithDrainTimeout(-1)}, "WithDrainTimeout"},
		{"a dimension named as kcl's", io.Discard, "app", []kemf.Option{kemf.WithDimension("ShardId", "x")}, "WithDimension"},
		{"a dimension named StreamName", io.Discard, "app", []kemf.Option{kemf.WithDimension("StreamName", "x")}, "WithDimension"},
		{"a dimension named as a metric", io.Discard, "app", []kemf.Option{kemf.WithDimension("RecordsProcessed", "x")}, "WithDimension"},
		{"a dimension without a value", io.Discard, "app", []kemf.Option{kemf.WithDimension("Stream", "")}, "WithDimension"},
		{"a dimension given twice", io.Discard, "app", []kemf.Option{kemf.WithDimension("Stream", "a"), kemf.WithDimension("Stream", "b")}, "twice"},
		{"more dimensions than EMF allows", io.Discard, "app", many, "WithDimension"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kemf.New(tc.w, tc.namespace, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// TestOverAHundredMetricsAreSplitIntoDirectives feeds a shard calls of 30
// operations, four metrics each: the line's metrics are split into
// directives of at most 100, as EMF requires.
func TestOverAHundredMetricsAreSplitIntoDirectives(t *testing.T) {
	var out syncBuffer
	e, err := kemf.New(&out, "app")
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	for i := range 30 {
		op := fmt.Sprintf("Op%d", i)
		e.Fetched(consumer.FetchInfo{StreamName: "s", WorkerID: "w", ShardID: "s1", Op: op, Duration: time.Millisecond})
		e.Fetched(consumer.FetchInfo{StreamName: "s", WorkerID: "w", ShardID: "s1", Op: op, Err: errors.New("x"), Throttled: true, Kind: consumer.ErrorThrottled})
	}
	stop()
	lines := parseEMF(t, out.Bytes()) // fails on a directive of more than 100 metrics
	s1 := find(lines, "ShardId", "s1")
	if len(s1) != 1 {
		t.Fatalf("%d lines for s1, want 1", len(s1))
	}
	if got := len(s1[0].metrics); got < 120 {
		t.Errorf("%d metrics on the line, want the 120 of the 30 operations and more", got)
	}
	for i := range 30 {
		if got := total(s1, fmt.Sprintf("Op%d.Throttled", i)); got != 1 {
			t.Errorf("Op%d.Throttled = %v, want 1", i, got)
		}
	}
}
