package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func TestEveryHookEventCarriesTheStreamAndTheWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 20, 4)
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		waitFor(t, "20 records", time.Minute, func() bool { return j.count() >= 20 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		type tagged struct{ stream, worker string }
		var all []tagged
		for _, e := range h.batches {
			all = append(all, tagged{e.StreamName, e.WorkerID})
		}
		for _, e := range h.fetches {
			all = append(all, tagged{e.StreamName, e.WorkerID})
		}
		for _, e := range h.leases {
			all = append(all, tagged{e.StreamName, e.WorkerID})
		}
		for _, e := range h.checkpoints {
			all = append(all, tagged{e.StreamName, e.WorkerID})
		}
		for _, e := range h.syncs {
			all = append(all, tagged{e.StreamName, e.WorkerID})
		}
		if len(h.batches) == 0 || len(h.fetches) == 0 || len(h.leases) == 0 || len(h.checkpoints) == 0 || len(h.syncs) == 0 {
			t.Fatalf("events: %d batches, %d fetches, %d leases, %d checkpoints, %d syncs; want some of each",
				len(h.batches), len(h.fetches), len(h.leases), len(h.checkpoints), len(h.syncs))
		}
		for _, e := range all {
			if e != (tagged{streamName, "w1"}) {
				t.Fatalf("an event carries stream %q worker %q, want %q %q", e.stream, e.worker, streamName, "w1")
			}
		}
		if s := h.syncs[0]; s.Shards != 2 || s.LeasesCreated != 2 || s.LeasesDeleted != 0 || s.Err != nil || s.Holes {
			t.Errorf("first shard sync %+v, want 2 shards, 2 leases created, no error", s)
		}
	})
}

func TestProcessorErrorHookSeesErrorsPanicsRetriesAndTheSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 3, 1)
		calls := 0
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				calls++
				switch calls {
				case 1:
					return errors.New("first failure")
				case 2:
					panic("second failure")
				}
				return errors.New("always failing")
			}
		}), "w1", consumer.WithHooks(h), consumer.WithRetryLimit(2),
			consumer.WithErrorHandler(func(context.Context, *consumer.Batch, error) consumer.Decision { return consumer.Skip }))
		r := start(t, w)
		waitFor(t, "a skipped batch", time.Minute, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.batches) > 0
		})
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.procErrs) != 3 {
			t.Fatalf("ProcessorFailed called %d times, want 3 (error, panic, then the failure the handler skipped): %+v", len(h.procErrs), h.procErrs)
		}
		for i, want := range []struct {
			panicked, retry bool
		}{{false, true}, {true, true}, {false, false}} {
			e := h.procErrs[i]
			if e.Method != consumer.MethodProcessRecords || e.Attempts != i+1 || e.Panicked != want.panicked || e.Retry != want.retry ||
				e.ShardID != "shardId-000000000000" || e.StreamName != streamName || e.WorkerID != "w1" || e.Err == nil {
				t.Errorf("failure %d: %+v, want ProcessRecords attempt %d, panicked %v, retry %v", i+1, e, i+1, want.panicked, want.retry)
			}
			if want.retry && e.Delay <= 0 {
				t.Errorf("failure %d is retried with no delay", i+1)
			}
		}
		var pe *consumer.PanicError
		if !errors.As(h.procErrs[1].Err, &pe) {
			t.Errorf("the panic is reported as %T, want *consumer.PanicError", h.procErrs[1].Err)
		}
		if b := h.batches[0]; b.Skipped == nil || b.Attempts != 3 {
			t.Errorf("BatchInfo %+v, want the batch skipped after 3 attempts", b)
		}
	})
}

func TestBatchesCountAggregatesAndTheAggregateHookSeesAMalformedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		for a := range 3 {
			var urs []aggregate.UserRecord
			for i := range 4 {
				urs = append(urs, aggregate.UserRecord{PartitionKey: "p" + strconv.Itoa(i), Data: []byte{byte(a), byte(i)}})
			}
			data, err := aggregate.Marshal(urs)
			if err != nil {
				t.Fatal(err)
			}
			f.Put(streamName, "p", data)
		}
		f.Put(streamName, "p", []byte("plain"))
		// KPL's magic bytes, then garbage: passed through as one record.
		_, badSeq := f.Put(streamName, "p", append([]byte{0xF3, 0x89, 0x9A, 0xC2}, make([]byte, 40)...))
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h))
		r := start(t, w)
		waitFor(t, "14 records", time.Minute, func() bool { return j.count() >= 14 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		aggregates, records := 0, 0
		for _, b := range h.batches {
			aggregates += b.Aggregates
			records += b.Records
		}
		if aggregates != 3 || records != 14 {
			t.Errorf("batches hold %d records from %d aggregates, want 14 from 3", records, aggregates)
		}
		if len(h.aggregates) != 1 {
			t.Fatalf("AggregateFailed called %d times, want once: %+v", len(h.aggregates), h.aggregates)
		}
		if a := h.aggregates[0]; a.SequenceNumber != badSeq || a.Dropped || !errors.Is(a.Err, deaggregate.ErrMalformed) || a.ShardID != "shardId-000000000000" {
			t.Errorf("AggregateInfo %+v, want the malformed record %s, passed through", a, badSeq)
		}
	})
}

func TestFetchHookClassifiesErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n callCounter
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1), fakekinesis.WithFault(func(op string, in any) error {
			if op == "GetRecords" {
				switch n.next() {
				case 1:
					return fakekinesis.Throttled()
				case 2:
					return fakekinesis.ExpiredIterator()
				case 3:
					return fakekinesis.InternalError()
				}
			}
			return nil
		}))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 5, 1)
		w := newWorker(t, f, store, factory(j, store, nil), "w1", consumer.WithHooks(h))
		r := start(t, w)
		waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		var kinds []consumer.ErrorKind
		for _, fi := range h.fetches {
			if fi.Op == consumer.OpGetRecords && fi.Err != nil {
				kinds = append(kinds, fi.Kind)
				if fi.Throttled != (fi.Kind == consumer.ErrorThrottled) {
					t.Errorf("%+v: Throttled and Kind disagree", fi)
				}
			}
			if fi.Err == nil && fi.Kind != 0 {
				t.Errorf("%+v: a successful call has a Kind", fi)
			}
		}
		want := []consumer.ErrorKind{consumer.ErrorThrottled, consumer.ErrorExpiredIterator, consumer.ErrorTransient}
		if len(kinds) < 3 || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] {
			t.Errorf("GetRecords error kinds %v, want %v", kinds, want)
		}
	})
}

// panickingHook panics in every hook method.
type panickingHook struct{}

func (panickingHook) BatchProcessed(consumer.BatchInfo)           { panic("batch") }
func (panickingHook) Fetched(consumer.FetchInfo)                  { panic("fetch") }
func (panickingHook) LeaseChanged(consumer.LeaseEvent)            { panic("lease") }
func (panickingHook) Checkpointed(consumer.CheckpointInfo)        { panic("checkpoint") }
func (panickingHook) ShardSynced(consumer.ShardSyncInfo)          { panic("sync") }
func (panickingHook) ProcessorFailed(consumer.ProcessorErrorInfo) { panic("processor") }
func (panickingHook) AggregateFailed(consumer.AggregateInfo)      { panic("aggregate") }

func TestAPanickingHookDoesNotStopProcessingAndIsLoggedOncePerMethod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		h := &eventRecorder{}
		putRange(f, 0, 40, 4)
		core, logs := observer.New(zap.ErrorLevel)
		w := newWorker(t, f, store, factory(j, store, nil), "w1",
			consumer.WithLogger(zap.New(core)), consumer.WithMaxRecords(5),
			// The recorder comes after the panicking hook: it still hears
			// every event.
			consumer.WithHooks(panickingHook{}, h),
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()))
		r := start(t, w)
		waitFor(t, "40 records", time.Minute, func() bool { return j.count() >= 40 })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		checkExactlyOnce(t, j.records(), 0, 40)
		h.mu.Lock()
		batches := len(h.batches)
		h.mu.Unlock()
		if batches < 8 {
			t.Errorf("the recorder after the panicking hook saw %d batches, want at least 8", batches)
		}
		if got := w.Health().HookPanics; got < int64(batches) {
			t.Errorf("Health().HookPanics = %d, want at least the %d batches", got, batches)
		}
		logged := map[string]int{}
		for _, e := range logs.FilterMessageSnippet("metric hook panicked").All() {
			logged[e.ContextMap()["hook"].(string)]++
		}
		for _, m := range []string{"BatchHook.BatchProcessed", "FetchHook.Fetched", "LeaseHook.LeaseChanged",
			"CheckpointHook.Checkpointed", "ShardSyncHook.ShardSynced"} {
			if logged[m] != 1 {
				t.Errorf("%s panics logged %d times, want once: %v", m, logged[m], logged)
			}
		}
	})
}

func TestLeaseEventReason(t *testing.T) {
	tests := []struct {
		name string
		ev   consumer.LeaseEvent
		want string
	}{
		{"a graceful stop releases with reason stopping", consumer.LeaseEvent{Kind: consumer.LeaseReleased, Cause: consumer.ErrStopping}, "stopping"},
		{"a requested handoff releases with reason handoff", consumer.LeaseEvent{Kind: consumer.LeaseReleased, Cause: consumer.ErrHandoffRequested}, "handoff"},
		{"StopShard releases with reason shard_stopped", consumer.LeaseEvent{Kind: consumer.LeaseReleased, Cause: errors.Join(consumer.ErrShardStopped, errors.New("x"))}, "shard_stopped"},
		{"any other release is an error", consumer.LeaseEvent{Kind: consumer.LeaseReleased, Cause: errors.New("factory failed")}, "error"},
		{"an expiry loses with reason expired", consumer.LeaseEvent{Kind: consumer.LeaseLost, Cause: consumer.ErrLeaseExpired}, "expired"},
		{"a conflict loses with reason taken", consumer.LeaseEvent{Kind: consumer.LeaseLost, Cause: lease.ErrLeaseLost}, "taken"},
		{"an acquisition has no reason", consumer.LeaseEvent{Kind: consumer.LeaseAcquired}, ""},
		{"a shard end has no reason", consumer.LeaseEvent{Kind: consumer.LeaseShardEnded}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Reason(); got != tt.want {
				t.Errorf("Reason() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorKindNamesAreMetricLabels(t *testing.T) {
	want := map[consumer.ErrorKind]string{
		consumer.ErrorOther: "other", consumer.ErrorCanceled: "canceled", consumer.ErrorThrottled: "throttled",
		consumer.ErrorExpiredIterator: "expired_iterator", consumer.ErrorNotFound: "not_found", consumer.ErrorInUse: "in_use",
		consumer.ErrorDenied: "denied", consumer.ErrorInvalid: "invalid", consumer.ErrorTransient: "transient",
		consumer.ErrorKind(0): "ErrorKind(0)", consumer.ErrorKind(200): "ErrorKind(200)",
	}
	for k, name := range want {
		if got := k.String(); got != name {
			t.Errorf("ErrorKind(%d).String() = %q, want %q", uint8(k), got, name)
		}
	}
}
