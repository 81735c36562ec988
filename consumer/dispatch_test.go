package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/backoff"
	"github.com/kclgo/kcl/internal/checkpointing"
)

type nopWriter struct{}

func (nopWriter) WriteCheckpoint(context.Context, checkpoint.Position, checkpoint.Position, []byte) error {
	return nil
}

func testBatch() *Batch {
	return &Batch{
		ShardID: "shardId-000000000001",
		Records: []Record{
			{Data: []byte("a"), PartitionKey: "k1", SequenceNumber: "100", SubSequenceNumber: 0, Aggregated: true},
			{Data: []byte("b"), PartitionKey: "k2", SequenceNumber: "100", SubSequenceNumber: 1, Aggregated: true},
			{Data: []byte("c"), PartitionKey: "k1", SequenceNumber: "105"},
		},
		MillisBehindLatest: 3 * time.Second,
		Checkpointer:       &Checkpointer{t: checkpointing.New(nopWriter{}, checkpoint.TrimHorizon, checkpoint.Position{}, nil)},
	}
}

func testPolicy(limit int, h ErrorHandler) dispatchPolicy {
	return dispatchPolicy{
		retryLimit: limit,
		backoff:    backoff.New(time.Second, 4*time.Second, rand.New(rand.NewPCG(1, 2))),
		handler:    h,
	}
}

// panicWith makes scriptedProcessor panic with its value.
type panicWith struct{ v any }

// scriptedProcessor plays back results, one per call: nil succeeds, an
// error is returned, a panicWith panics. After the script it succeeds. On a
// failing call it tampers with the Batch, which deliver must undo.
type scriptedProcessor struct {
	t       *testing.T
	script  []any
	calls   int
	batch   *Batch   // the batch of the first call
	records []Record // a copy of its records
}

func (p *scriptedProcessor) ProcessRecords(_ context.Context, b *Batch) error {
	p.calls++
	if p.batch == nil {
		p.batch, p.records = b, slices.Clone(b.Records)
	} else {
		if b != p.batch {
			p.t.Errorf("call %d: got batch %p, want the same *Batch %p", p.calls, b, p.batch)
		}
		if !recordsEqual(b.Records, p.records) {
			p.t.Errorf("call %d: records %v, want the first delivery's %v", p.calls, b.Records, p.records)
		}
	}
	if p.calls > len(p.script) {
		return nil
	}
	r := p.script[p.calls-1]
	if r != nil {
		b.Records = b.Records[:1] // deliver must restore this before redelivery
		b.AtShardEnd = true
	}
	switch r := r.(type) {
	case nil:
		return nil
	case error:
		return r
	case panicWith:
		panic(r.v)
	}
	p.t.Fatalf("bad script entry %T", r)
	return nil
}

func recordsEqual(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return string(x.Data) == string(y.Data) && x.PartitionKey == y.PartitionKey &&
			x.SequenceNumber == y.SequenceNumber && x.SubSequenceNumber == y.SubSequenceNumber
	})
}

var errProc = errors.New("downstream unavailable")

func TestDeliver(t *testing.T) {
	fail := func(n int) []any {
		s := make([]any, n)
		for i := range s {
			s[i] = fmt.Errorf("attempt %d: %w", i+1, errProc)
		}
		return s
	}
	tests := []struct {
		name      string
		script    []any
		limit     int
		decisions []Decision // handler results in order; nil means no handler
		handler   ErrorHandler

		wantAttempts int
		wantHandled  int
		wantErr      error // matched with errors.Is; nil means success
		wantSkipped  bool
	}{
		{name: "a batch processed the first time is delivered once", wantAttempts: 1},
		{name: "a failed batch is redelivered until it succeeds", script: fail(1), wantAttempts: 2},
		{name: "without a limit a batch is retried as long as it fails", script: fail(25), wantAttempts: 26},
		{name: "a panic is recovered and the batch redelivered", script: []any{panicWith{"boom"}, panicWith{errProc}}, wantAttempts: 3},
		{name: "panic(nil) is recovered too", script: []any{panicWith{nil}}, wantAttempts: 2},
		{name: "a batch that succeeds within the limit never reaches the handler", script: fail(2), limit: 2, decisions: []Decision{Skip}, wantAttempts: 3},
		{
			name:   "at the limit the handler's Skip returns a skipped batch",
			script: fail(10), limit: 2, decisions: []Decision{Skip},
			wantAttempts: 3, wantHandled: 1, wantSkipped: true,
		},
		{
			name:   "at the limit the handler's StopShard returns ErrShardStopped",
			script: fail(10), limit: 2, decisions: []Decision{StopShard},
			wantAttempts: 3, wantHandled: 1, wantErr: ErrShardStopped,
		},
		{
			name:   "the StopShard error wraps the processor's error",
			script: fail(10), limit: 1, decisions: []Decision{StopShard},
			wantAttempts: 2, wantHandled: 1, wantErr: errProc,
		},
		{
			name:   "the handler's Retry continues delivering",
			script: fail(4), limit: 2, decisions: []Decision{Retry},
			wantAttempts: 5, wantHandled: 1,
		},
		{
			name:   "after Retry the handler is asked again after another limit of retries",
			script: fail(10), limit: 2, decisions: []Decision{Retry, Skip},
			wantAttempts: 5, wantHandled: 2, wantSkipped: true,
		},
		{
			name:   "with a limit and no handler the shard is stopped",
			script: fail(10), limit: 1,
			wantAttempts: 2, wantErr: ErrShardStopped,
		},
		{
			name:   "an unknown decision stops the shard rather than skipping",
			script: fail(10), limit: 1, decisions: []Decision{0},
			wantAttempts: 2, wantHandled: 1, wantErr: ErrShardStopped,
		},
		{
			name:   "a panicking handler stops the shard",
			script: fail(10), limit: 1,
			handler:      func(context.Context, *Batch, error) Decision { panic("handler bug") },
			wantAttempts: 2, wantErr: ErrShardStopped,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &scriptedProcessor{t: t, script: tt.script}
				var handled int
				h := tt.handler
				if tt.decisions != nil {
					h = func(_ context.Context, b *Batch, err error) Decision {
						handled++
						if b != p.batch || !recordsEqual(b.Records, p.records) {
							t.Errorf("handler got batch %p with %v, want %p with %v", b, b.Records, p.batch, p.records)
						}
						if !errors.Is(err, errProc) {
							t.Errorf("handler got error %v, want the processor's", err)
						}
						return tt.decisions[handled-1]
					}
				}
				b := testBatch()
				out, err := deliver(t.Context(), p, b, testPolicy(tt.limit, h))
				if tt.wantErr == nil && err != nil {
					t.Fatalf("deliver returned %v, want success", err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("deliver returned %v, want an error matching %v", err, tt.wantErr)
				}
				if out.attempts != tt.wantAttempts || p.calls != tt.wantAttempts {
					t.Errorf("attempts %d (processor called %d times), want %d", out.attempts, p.calls, tt.wantAttempts)
				}
				if handled != tt.wantHandled {
					t.Errorf("handler called %d times, want %d", handled, tt.wantHandled)
				}
				if (out.skipped != nil) != tt.wantSkipped {
					t.Errorf("skipped = %+v, want skipped %v", out.skipped, tt.wantSkipped)
				}
				if len(b.Records) != 3 || b.AtShardEnd {
					t.Errorf("after deliver the batch has %d records, AtShardEnd %v; want it as created", len(b.Records), b.AtShardEnd)
				}
			})
		})
	}
}

func TestDeliverReportsTheSkippedBatchPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := ProcessorFunc(func(context.Context, *Batch) error { return errProc })
		skip := func(context.Context, *Batch, error) Decision { return Skip }
		out, err := deliver(t.Context(), p, testBatch(), testPolicy(1, skip))
		if err != nil {
			t.Fatalf("deliver returned %v, want nil for a skipped batch", err)
		}
		first, _ := checkpoint.At("100", 0)
		last, _ := checkpoint.At("105", 0)
		s := out.skipped
		if s == nil || s.ShardID != "shardId-000000000001" || s.First != first || s.Last != last ||
			s.Records != 3 || s.Attempts != 2 || !errors.Is(s.Err, errProc) {
			t.Fatalf("skipped = %+v, want shard 1, %v..%v, 3 records, 2 attempts, the processor's error", s, first, last)
		}
	})
}

func TestDeliverSkippingAnEmptyBatchReportsZeroPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := ProcessorFunc(func(context.Context, *Batch) error { return errProc })
		skip := func(context.Context, *Batch, error) Decision { return Skip }
		b := &Batch{ShardID: "shardId-2", AtShardEnd: true}
		out, err := deliver(t.Context(), p, b, testPolicy(1, skip))
		if err != nil || out.skipped == nil || !out.skipped.First.IsZero() || !out.skipped.Last.IsZero() {
			t.Fatalf("deliver = %+v, %v; want a skipped batch with zero positions", out.skipped, err)
		}
	})
}

func TestDeliverWaitsABackoffBeforeEachRedelivery(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		min, max time.Duration
	}{
		{name: "no failure means no wait", failures: 0},
		{name: "one failure waits between half and all of the base", failures: 1, min: 500 * time.Millisecond, max: time.Second},
		{name: "two failures wait base then double", failures: 2, min: 1500 * time.Millisecond, max: 3 * time.Second},
		{name: "delays are capped at max", failures: 4, min: (500 + 1000 + 2000 + 2000) * time.Millisecond, max: (1000 + 2000 + 4000 + 4000) * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls []time.Time
				p := ProcessorFunc(func(context.Context, *Batch) error {
					calls = append(calls, time.Now())
					if len(calls) <= tt.failures {
						return errProc
					}
					return nil
				})
				var delays []time.Duration
				pol := testPolicy(0, nil)
				pol.onRetry = func(attempts int, err error, d time.Duration) {
					if attempts != len(calls) || !errors.Is(err, errProc) {
						t.Errorf("onRetry(%d, %v), want (%d, the processor's error)", attempts, err, len(calls))
					}
					delays = append(delays, d)
				}
				start := time.Now()
				if _, err := deliver(t.Context(), p, testBatch(), pol); err != nil {
					t.Fatal(err)
				}
				elapsed := time.Since(start)
				if elapsed < tt.min || elapsed > tt.max {
					t.Errorf("deliver took %v, want between %v and %v", elapsed, tt.min, tt.max)
				}
				if len(delays) != tt.failures {
					t.Fatalf("onRetry called %d times, want %d", len(delays), tt.failures)
				}
				for i, d := range delays {
					if got := calls[i+1].Sub(calls[i]); got != d {
						t.Errorf("gap before attempt %d is %v, want the reported delay %v", i+2, got, d)
					}
				}
			})
		})
	}
}

func TestDeliverRecoversAPanicAsAPanicErrorWithItsStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		p := ProcessorFunc(func(context.Context, *Batch) error {
			calls++
			if calls == 1 {
				explode()
			}
			return nil
		})
		var got error
		pol := testPolicy(0, nil)
		pol.onRetry = func(_ int, err error, _ time.Duration) { got = err }
		out, err := deliver(t.Context(), p, testBatch(), pol)
		if err != nil || out.attempts != 2 {
			t.Fatalf("deliver = %d attempts, %v; want the batch redelivered once and processed", out.attempts, err)
		}
		var pe *PanicError
		if !errors.As(got, &pe) {
			t.Fatalf("failure reported as %T %v, want *PanicError", got, got)
		}
		if pe.Value != "kaboom" || !strings.Contains(string(pe.Stack), "consumer.explode") {
			t.Errorf("PanicError value %v, stack:\n%s\nwant value kaboom and a stack naming explode", pe.Value, pe.Stack)
		}
		if want := "consumer: processor panicked: kaboom"; pe.Error() != want {
			t.Errorf("Error() = %q, want %q", pe.Error(), want)
		}
	})
}

func explode() { panic("kaboom") }

func TestPanicErrorUnwrapsAnErrorValue(t *testing.T) {
	if err := error(&PanicError{Value: errProc}); !errors.Is(err, errProc) {
		t.Errorf("errors.Is(%v, errProc) = false, want true", err)
	}
	if err := error(&PanicError{Value: "text"}); errors.Unwrap(err) != nil {
		t.Errorf("Unwrap of a non-error panic = %v, want nil", errors.Unwrap(err))
	}
}

func TestDeliverStopsPromptlyWhenTheContextIsCancelledDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("lease lost")
		ctx, cancel := context.WithCancelCause(t.Context())
		calls := 0
		p := ProcessorFunc(func(context.Context, *Batch) error { calls++; return errProc })
		pol := testPolicy(0, nil)
		pol.backoff = backoff.New(time.Hour, time.Hour, nil)

		type result struct {
			out outcome
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			out, err := deliver(ctx, p, testBatch(), pol)
			done <- result{out, err, time.Now()}
		}()
		time.Sleep(time.Minute) // well inside the first backoff
		synctest.Wait()
		cancelled := time.Now()
		cancel(cause)
		r := <-done
		if !errors.Is(r.err, cause) {
			t.Fatalf("deliver returned %v, want the context's cause", r.err)
		}
		if errors.Is(r.err, errProc) {
			t.Errorf("deliver's error %v matches the processor's error; only the cause should be branched on", r.err)
		}
		if r.out.attempts != 1 || calls != 1 || r.out.skipped != nil {
			t.Errorf("outcome %+v after %d calls, want 1 attempt and nothing skipped", r.out, calls)
		}
		if !r.at.Equal(cancelled) {
			t.Errorf("deliver returned %v after the cancellation, want at once", r.at.Sub(cancelled))
		}
	})
}

func TestDeliverDoesNotCallTheProcessorWithADoneContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("stopping")
	cancel(cause)
	called := false
	p := ProcessorFunc(func(context.Context, *Batch) error { called = true; return nil })
	out, err := deliver(ctx, p, testBatch(), testPolicy(0, nil))
	if !errors.Is(err, cause) || called || out.attempts != 0 {
		t.Fatalf("deliver = %+v, %v, called %v; want the cause and no call", out, err, called)
	}
}

func TestDeliverStopsWhenTheProcessorFailsBecauseTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("lease lost")
	p := ProcessorFunc(func(ctx context.Context, _ *Batch) error {
		cancel(cause)
		return context.Cause(ctx)
	})
	handler := func(context.Context, *Batch, error) Decision {
		t.Error("handler called for a batch interrupted by the context")
		return Skip
	}
	out, err := deliver(ctx, p, testBatch(), testPolicy(0, handler))
	if !errors.Is(err, cause) || out.attempts != 1 || out.skipped != nil {
		t.Fatalf("deliver = %+v, %v; want one attempt and the cause", out, err)
	}
}

func TestDeliverCountsABatchProcessedAsTheContextEndsAsProcessed(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p := ProcessorFunc(func(context.Context, *Batch) error { cancel(); return nil })
	if out, err := deliver(ctx, p, testBatch(), testPolicy(0, nil)); err != nil || out.attempts != 1 {
		t.Fatalf("deliver = %+v, %v; want the batch processed", out, err)
	}
}

func TestDecisionString(t *testing.T) {
	tests := []struct {
		d    Decision
		want string
	}{
		{Retry, "Retry"},
		{Skip, "Skip"},
		{StopShard, "StopShard"},
		{0, "Decision(0)"},
		{9, "Decision(9)"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("Decision(%d).String() = %q, want %q", int(tt.d), got, tt.want)
		}
	}
}
