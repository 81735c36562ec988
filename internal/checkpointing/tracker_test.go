package checkpointing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// write is one call to a Writer.
type write struct {
	cp, pending Position
	state       string
}

func (w write) String() string {
	return fmt.Sprintf("{cp %v, pending %v, state %q}", w.cp, w.pending, w.state)
}

// recorder is a fake Writer that records every write it accepts. It fails
// with err when err is set, blocks until unblock is closed when it is set, and
// notes overlapping calls, which a Tracker must never make.
type recorder struct {
	unblock chan struct{}

	inFlight atomic.Int32
	overlap  atomic.Bool

	mu     sync.Mutex
	err    error
	writes []write
}

func (r *recorder) WriteCheckpoint(ctx context.Context, cp, pending Position, pendingState []byte) error {
	if r.inFlight.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.inFlight.Add(-1)
	if r.unblock != nil {
		<-r.unblock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.writes = append(r.writes, write{cp: cp, pending: pending, state: string(pendingState)})
	return nil
}

func (r *recorder) failWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *recorder) recorded() []write {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

func TestCheckpointValidation(t *testing.T) {
	p := func(seq string, sub uint64) Position { return mustAt(t, seq, sub) }
	at := func(seq string, sub uint64) func(context.Context, *Tracker) error {
		return func(ctx context.Context, c *Tracker) error { return c.CheckpointAt(ctx, seq, sub) }
	}
	position := func(q Position) func(context.Context, *Tracker) error {
		return func(ctx context.Context, c *Tracker) error { return c.CheckpointPosition(ctx, q) }
	}
	delivered := func(ctx context.Context, c *Tracker) error { return c.Checkpoint(ctx) }

	tests := []struct {
		name       string
		last       Position
		pending    Position
		delivered  []Position
		atShardEnd bool
		call       func(context.Context, *Tracker) error
		wantErr    error // nil: success
		wantWrites []write
		wantLast   Position // zero: the initial last
	}{
		{
			name: "Checkpoint writes the largest delivered position",
			last: TrimHorizon, delivered: []Position{p("100", 0), p("100", 3)},
			call:       delivered,
			wantWrites: []write{{cp: p("100", 3)}}, wantLast: p("100", 3),
		},
		{
			name: "Checkpoint with nothing delivered writes nothing",
			last: p("50", 0),
			call: delivered,
		},
		{
			name: "Checkpoint at TRIM_HORIZON with nothing delivered writes nothing",
			last: TrimHorizon,
			call: delivered,
		},
		{
			name: "Delivered ignores a position below the largest so far",
			last: p("50", 0), delivered: []Position{p("100", 0), p("90", 0)},
			call:       delivered,
			wantWrites: []write{{cp: p("100", 0)}}, wantLast: p("100", 0),
		},
		{
			name: "Delivered ignores sentinels",
			last: p("50", 0), delivered: []Position{Latest, ShardEnd},
			call: at("SHARD_END", 0), wantErr: ErrBeyondDelivered,
		},
		{
			name: "a position between the last checkpoint and the largest delivered is written",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call:       at("75", 0),
			wantWrites: []write{{cp: p("75", 0)}}, wantLast: p("75", 0),
		},
		{
			name: "a position equal to the last checkpoint succeeds without writing",
			last: p("50", 2), delivered: []Position{p("100", 0)},
			call: at("50", 2),
		},
		{
			name: "a position below the last checkpoint fails with ErrBeforeLast",
			last: p("50", 2), delivered: []Position{p("100", 0)},
			call: at("50", 1), wantErr: ErrBeforeLast,
		},
		{
			name: "a position above the largest delivered fails with ErrBeyondDelivered",
			last: p("50", 0), delivered: []Position{p("100", 5)},
			call: at("100", 6), wantErr: ErrBeyondDelivered,
		},
		{
			name: "the largest delivered position itself is allowed",
			last: p("50", 0), delivered: []Position{p("100", 5)},
			call:       at("100", 5),
			wantWrites: []write{{cp: p("100", 5)}}, wantLast: p("100", 5),
		},
		{
			name: "sequence numbers compare as numbers, not strings",
			last: p("9", 0), delivered: []Position{p("10", 0)},
			call:       at("10", 0),
			wantWrites: []write{{cp: p("10", 0)}}, wantLast: p("10", 0),
		},
		{
			name: "a shorter sequence number is below a longer last checkpoint",
			last: p("10", 0), delivered: []Position{p("20", 0)},
			call: at("9", 0), wantErr: ErrBeforeLast,
		},
		{
			name: "a garbage sequence number fails with a ParseError",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: at("abc", 0), wantErr: new(ParseError),
		},
		{
			name: "a sequence number with a leading zero fails with a ParseError",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: at("075", 0), wantErr: new(ParseError),
		},
		{
			name: "TRIM_HORIZON cannot be checkpointed",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: at("TRIM_HORIZON", 0), wantErr: ErrInvalid,
		},
		{
			name: "LATEST cannot be checkpointed",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: position(Latest), wantErr: ErrInvalid,
		},
		{
			name: "AT_TIMESTAMP cannot be checkpointed",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: position(AtTimestamp), wantErr: ErrInvalid,
		},
		{
			name: "the zero Position cannot be checkpointed",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: position(Position{}), wantErr: ErrInvalid,
		},
		{
			name: "SHARD_END before the shard ends is beyond the delivered records",
			last: p("50", 0), delivered: []Position{p("100", 0)},
			call: at("SHARD_END", 0), wantErr: ErrBeyondDelivered,
		},
		{
			name: "SHARD_END with a sub-sequence number fails with a ParseError",
			last: p("50", 0), delivered: []Position{p("100", 0)}, atShardEnd: true,
			call: at("SHARD_END", 1), wantErr: new(ParseError),
		},
		{
			name: "SHARD_END is allowed once the worker says the shard ended",
			last: p("50", 0), delivered: []Position{p("100", 0)}, atShardEnd: true,
			call:       position(ShardEnd),
			wantWrites: []write{{cp: ShardEnd}}, wantLast: ShardEnd,
		},
		{
			name: "users may checkpoint SHARD_END by name at shard end",
			last: p("50", 0), delivered: []Position{p("100", 0)}, atShardEnd: true,
			call:       at("SHARD_END", 0),
			wantWrites: []write{{cp: ShardEnd}}, wantLast: ShardEnd,
		},
		{
			name: "SHARD_END is allowed at the end of a shard that delivered no records",
			last: TrimHorizon, atShardEnd: true,
			call:       position(ShardEnd),
			wantWrites: []write{{cp: ShardEnd}}, wantLast: ShardEnd,
		},
		{
			name: "Checkpoint at shard end writes SHARD_END",
			last: p("50", 0), delivered: []Position{p("100", 0)}, atShardEnd: true,
			call:       delivered,
			wantWrites: []write{{cp: ShardEnd}}, wantLast: ShardEnd,
		},
		{
			name: "a checkpoint at the last record of a closed shard is written as SHARD_END",
			last: p("50", 0), delivered: []Position{p("100", 2)}, atShardEnd: true,
			call:       at("100", 2),
			wantWrites: []write{{cp: ShardEnd}}, wantLast: ShardEnd,
		},
		{
			name: "a checkpoint before the last record of a closed shard is written as given",
			last: p("50", 0), delivered: []Position{p("100", 2)}, atShardEnd: true,
			call:       at("100", 1),
			wantWrites: []write{{cp: p("100", 1)}}, wantLast: p("100", 1),
		},
		{
			name: "nothing can be checkpointed after SHARD_END",
			last: ShardEnd,
			call: at("5", 0), wantErr: ErrBeforeLast,
		},
		{
			name: "SHARD_END after SHARD_END writes nothing",
			last: ShardEnd,
			call: position(ShardEnd),
		},
		{
			name: "a checkpoint removes a prepared checkpoint, as in KCL",
			last: p("50", 0), pending: p("80", 0), delivered: []Position{p("100", 0)},
			call:       at("60", 0),
			wantWrites: []write{{cp: p("60", 0)}}, wantLast: p("60", 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recorder{}
			c := New(w, tt.last, tt.pending, nil)
			for _, d := range tt.delivered {
				c.Delivered(d)
			}
			if tt.atShardEnd {
				c.AtShardEnd()
			}
			err := tt.call(t.Context(), c)
			checkErr(t, err, tt.wantErr)
			if got := w.recorded(); !slices.Equal(got, tt.wantWrites) {
				t.Errorf("writes = %v, want %v", got, tt.wantWrites)
			}
			wantLast := tt.wantLast
			if wantLast.IsZero() {
				wantLast = tt.last
			}
			if got := c.Last(); got != wantLast {
				t.Errorf("Last() = %v, want %v", got, wantLast)
			}
		})
	}
}

// checkErr checks err against want: nil means success, a *ParseError value
// means any *ParseError, and any other error is matched with errors.Is. Every
// validation failure must also match ErrInvalid.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil:
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	case err == nil:
		t.Fatalf("got success, want %v", want)
	}
	if _, ok := want.(*ParseError); ok {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("got %v, want a *ParseError", err)
		}
	} else if !errors.Is(err, want) {
		t.Fatalf("got %v, want an error matching %v", err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("validation error %v does not match ErrInvalid", err)
	}
}

func TestPrepareAndCommit(t *testing.T) {
	ctx := t.Context()
	p := func(seq string, sub uint64) Position { return mustAt(t, seq, sub) }

	t.Run("prepare stores a pending checkpoint and commit makes it the checkpoint", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		pr, err := c.Prepare(ctx, "80", 1, []byte("txn-7"))
		if err != nil {
			t.Fatal(err)
		}
		if pr.Position() != p("80", 1) {
			t.Errorf("Prepared.Position() = %v", pr.Position())
		}
		if got, state := c.Pending(); got != p("80", 1) || string(state) != "txn-7" {
			t.Errorf("Pending() = %v, %q", got, state)
		}
		if c.Last() != p("50", 0) {
			t.Errorf("Prepare moved the checkpoint to %v", c.Last())
		}
		if err := pr.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got, state := c.Pending(); !got.IsZero() || state != nil {
			t.Errorf("Pending() after Commit = %v, %q; want none", got, state)
		}
		want := []write{
			{cp: p("50", 0), pending: p("80", 1), state: "txn-7"},
			{cp: p("80", 1)},
		}
		if got := w.recorded(); !slices.Equal(got, want) {
			t.Errorf("writes = %v, want %v", got, want)
		}
		if err := pr.Commit(ctx); err != nil || len(w.recorded()) != 2 {
			t.Errorf("a second Commit = %v with %d writes, want a no-op", err, len(w.recorded()))
		}
	})

	t.Run("commit fails with ErrBeforeLast once a later checkpoint passed it", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		pr, err := c.Prepare(ctx, "80", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckpointAt(ctx, "90", 0); err != nil {
			t.Fatal(err)
		}
		checkErr(t, pr.Commit(ctx), ErrBeforeLast)
		if c.Last() != p("90", 0) || len(w.recorded()) != 2 {
			t.Errorf("Last() = %v after %d writes", c.Last(), len(w.recorded()))
		}
	})

	t.Run("commit after a checkpoint at the same position writes nothing", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		pr, _ := c.Prepare(ctx, "80", 0, nil)
		if err := c.CheckpointAt(ctx, "80", 0); err != nil {
			t.Fatal(err)
		}
		if err := pr.Commit(ctx); err != nil || len(w.recorded()) != 2 {
			t.Errorf("Commit = %v with %d writes, want a no-op", err, len(w.recorded()))
		}
	})

	t.Run("prepare at the last checkpoint writes nothing, as in KCL", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		pr, err := c.Prepare(ctx, "50", 0, []byte("s"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := w.recorded(); len(got) != 0 {
			t.Errorf("writes = %v, want none", got)
		}
	})

	t.Run("a second prepare replaces the first", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		first, _ := c.Prepare(ctx, "70", 0, []byte("a"))
		second, err := c.Prepare(ctx, "80", 0, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		if got, state := c.Pending(); got != p("80", 0) || string(state) != "b" {
			t.Errorf("Pending() = %v, %q", got, state)
		}
		// Committing the older one still works (it is not below the
		// checkpoint) and, as any checkpoint, removes the pending one.
		if err := first.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := second.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want := []write{
			{cp: p("50", 0), pending: p("70", 0), state: "a"},
			{cp: p("50", 0), pending: p("80", 0), state: "b"},
			{cp: p("70", 0)},
			{cp: p("80", 0)},
		}
		if got := w.recorded(); !slices.Equal(got, want) {
			t.Errorf("writes = %v, want %v", got, want)
		}
	})

	t.Run("prepare validates like a checkpoint", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		for _, tc := range []struct {
			seq  string
			sub  uint64
			want error
		}{
			{"40", 0, ErrBeforeLast},
			{"100", 1, ErrBeyondDelivered},
			{"1e3", 0, new(ParseError)},
			{"LATEST", 0, ErrInvalid},
			{"SHARD_END", 0, ErrBeyondDelivered},
		} {
			pr, err := c.Prepare(ctx, tc.seq, tc.sub, nil)
			checkErr(t, err, tc.want)
			if pr != nil {
				t.Errorf("Prepare(%q) returned a Prepared with its error", tc.seq)
			}
		}
		if got := w.recorded(); len(got) != 0 {
			t.Errorf("writes = %v, want none", got)
		}
	})

	t.Run("prepare at the last record of a closed shard prepares SHARD_END", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		c.AtShardEnd()
		pr, err := c.Prepare(ctx, "100", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Position() != ShardEnd {
			t.Errorf("Prepared.Position() = %v, want SHARD_END", pr.Position())
		}
	})

	t.Run("state is copied in and out", func(t *testing.T) {
		initial := []byte("old")
		c := New(&recorder{}, p("50", 0), p("60", 0), initial)
		initial[0] = 'X'
		if _, state := c.Pending(); string(state) != "old" {
			t.Errorf("New kept the caller's slice: %q", state)
		}
		c.Delivered(p("100", 0))
		state := []byte("new")
		if _, err := c.Prepare(ctx, "70", 0, state); err != nil {
			t.Fatal(err)
		}
		state[0] = 'X'
		got, s := c.Pending()
		s[0] = 'Y'
		if _, s2 := c.Pending(); got != p("70", 0) || string(s2) != "new" {
			t.Errorf("Pending() = %v, %q; want 70/0, \"new\"", got, s2)
		}
	})

	t.Run("the pending checkpoint from the previous owner is reported", func(t *testing.T) {
		c := New(&recorder{}, p("50", 0), p("80", 0), []byte("prev"))
		if got, state := c.Pending(); got != p("80", 0) || !bytes.Equal(state, []byte("prev")) {
			t.Errorf("Pending() = %v, %q", got, state)
		}
		if c.LargestDelivered() != p("50", 0) {
			t.Errorf("LargestDelivered() = %v, want the last checkpoint", c.LargestDelivered())
		}
	})
}

// errFenced stands for the lease package's ErrLeaseLost, which this leaf
// package cannot import.
var errFenced = errors.New("lease: lease lost")

func TestWriterErrorPassesThrough(t *testing.T) {
	ctx := t.Context()
	p := func(seq string, sub uint64) Position { return mustAt(t, seq, sub) }
	w := &recorder{}
	c := New(w, p("50", 0), Position{}, nil)
	c.Delivered(p("100", 0))
	w.failWith(fmt.Errorf("store: conditional check failed: %w", errFenced))

	err := c.CheckpointAt(ctx, "60", 0)
	if !errors.Is(err, errFenced) {
		t.Fatalf("CheckpointAt = %v, want an error matching the Writer's", err)
	}
	if errors.Is(err, ErrInvalid) {
		t.Errorf("a Writer error %v matches ErrInvalid", err)
	}
	if c.Last() != p("50", 0) {
		t.Errorf("Last() = %v after a failed write, want it unchanged", c.Last())
	}

	if _, err := c.Prepare(ctx, "70", 0, []byte("s")); !errors.Is(err, errFenced) {
		t.Fatalf("Prepare = %v, want an error matching the Writer's", err)
	}
	if got, state := c.Pending(); !got.IsZero() || state != nil {
		t.Errorf("Pending() = %v, %q after a failed prepare, want none", got, state)
	}
	if err := c.Checkpoint(ctx); !errors.Is(err, errFenced) {
		t.Fatalf("Checkpoint = %v, want an error matching the Writer's", err)
	}

	// Once the Writer recovers the same checkpoint goes through.
	w.failWith(nil)
	if err := c.CheckpointAt(ctx, "60", 0); err != nil {
		t.Fatal(err)
	}
	if c.Last() != p("60", 0) {
		t.Errorf("Last() = %v, want 60/0", c.Last())
	}
}

func TestDoneContext(t *testing.T) {
	p := func(seq string, sub uint64) Position { return mustAt(t, seq, sub) }

	t.Run("a cancelled context fails before writing", func(t *testing.T) {
		w := &recorder{}
		c := New(w, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.Checkpoint(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Checkpoint = %v, want context.Canceled", err)
		}
		if _, err := c.Prepare(ctx, "60", 0, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Prepare = %v, want context.Canceled", err)
		}
		if got := w.recorded(); len(got) != 0 {
			t.Errorf("writes = %v, want none", got)
		}
	})

	t.Run("the cancellation cause is reported too", func(t *testing.T) {
		c := New(&recorder{}, p("50", 0), Position{}, nil)
		c.Delivered(p("100", 0))
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(errFenced)
		err := c.Checkpoint(ctx)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errFenced) {
			t.Fatalf("Checkpoint = %v, want context.Canceled and the cause", err)
		}
	})

	t.Run("a no-op checkpoint succeeds even with a cancelled context", func(t *testing.T) {
		c := New(&recorder{}, p("50", 0), Position{}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := c.Checkpoint(ctx); err != nil {
			t.Fatalf("Checkpoint = %v, want nil", err)
		}
	})
}

// TestWaitingBehindAWrite uses synctest to hold a write in flight and look at
// what other calls do meanwhile.
func TestWaitingBehindAWrite(t *testing.T) {
	p := func(seq string, sub uint64) Position { return mustAt(t, seq, sub) }

	t.Run("readers and Delivered do not wait for a write in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := &recorder{unblock: make(chan struct{})}
			c := New(w, p("50", 0), Position{}, nil)
			c.Delivered(p("100", 0))
			done := make(chan error)
			go func() { done <- c.CheckpointAt(t.Context(), "80", 0) }()
			synctest.Wait() // the write is blocked in the Writer

			c.Delivered(p("120", 0))
			if c.Last() != p("50", 0) || c.LargestDelivered() != p("120", 0) {
				t.Errorf("during the write: Last() = %v, LargestDelivered() = %v", c.Last(), c.LargestDelivered())
			}
			if err := c.CheckpointAt(t.Context(), "40", 0); !errors.Is(err, ErrBeforeLast) {
				t.Errorf("an invalid checkpoint waited or passed: %v", err)
			}
			close(w.unblock)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if c.Last() != p("80", 0) {
				t.Errorf("Last() = %v, want 80/0", c.Last())
			}
		})
	})

	t.Run("a checkpoint waiting behind a write gives up when its context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := &recorder{unblock: make(chan struct{})}
			c := New(w, p("50", 0), Position{}, nil)
			c.Delivered(p("100", 0))
			done := make(chan error)
			go func() { done <- c.CheckpointAt(t.Context(), "80", 0) }()
			synctest.Wait()

			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := c.CheckpointAt(ctx, "90", 0); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("waiting checkpoint = %v, want context.DeadlineExceeded", err)
			}
			close(w.unblock)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got, want := w.recorded(), []write{{cp: p("80", 0)}}; !slices.Equal(got, want) {
				t.Errorf("writes = %v, want %v", got, want)
			}
		})
	})

	t.Run("a checkpoint overtaken while it waited is re-validated and refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := &recorder{unblock: make(chan struct{})}
			c := New(w, p("50", 0), Position{}, nil)
			c.Delivered(p("100", 0))
			first := make(chan error)
			go func() { first <- c.CheckpointAt(t.Context(), "80", 0) }()
			synctest.Wait()
			second := make(chan error)
			go func() { second <- c.CheckpointAt(t.Context(), "70", 0) }() // valid now: 70 > 50
			synctest.Wait()

			close(w.unblock)
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := <-second; !errors.Is(err, ErrBeforeLast) {
				t.Errorf("overtaken checkpoint = %v, want ErrBeforeLast", err)
			}
			if got, want := w.recorded(), []write{{cp: p("80", 0)}}; !slices.Equal(got, want) {
				t.Errorf("writes = %v, want %v", got, want)
			}
		})
	})
}

// TestConcurrentCheckpoints has many goroutines checkpoint increasing
// positions while others prepare, commit, deliver and read. The stored
// checkpoint must never decrease, the Writer must never see two calls at
// once, and the final checkpoint must be the largest position requested.
func TestConcurrentCheckpoints(t *testing.T) {
	const (
		goroutines = 32
		perRoutine = 200
	)
	base, _ := new(big.Int).SetString(kinesisSeq, 10)
	seqAt := func(i int) string { return new(big.Int).Add(base, big.NewInt(int64(i))).String() }
	maxPos := mustAt(t, seqAt(goroutines*perRoutine-1), 0)

	w := &recorder{}
	c := New(w, TrimHorizon, Position{}, nil)
	c.Delivered(maxPos)
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perRoutine)
	for g := range goroutines {
		wg.Go(func() {
			for k := range perRoutine {
				seq := seqAt(k*goroutines + g)
				var err error
				switch {
				case g%8 == 1:
					var pr *Prepared
					if pr, err = c.Prepare(ctx, seq, 0, []byte(seq)); err == nil {
						err = pr.Commit(ctx)
					}
				case g%8 == 2 && k%2 == 0:
					err = c.Checkpoint(ctx) // at the largest delivered
				default:
					err = c.CheckpointAt(ctx, seq, 0)
				}
				if err != nil && !errors.Is(err, ErrBeforeLast) {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() { // the worker delivering again and readers polling
		for range perRoutine {
			c.Delivered(maxPos)
			_ = c.Last()
			_, _ = c.Pending()
			_ = c.LargestDelivered()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}

	if w.overlap.Load() {
		t.Error("the Writer was called concurrently")
	}
	writes := w.recorded()
	if len(writes) == 0 {
		t.Fatal("no writes")
	}
	prev := TrimHorizon
	for i, wr := range writes {
		if wr.cp.Compare(prev) < 0 {
			t.Fatalf("write %d moved the checkpoint back from %v to %v", i, prev, wr.cp)
		}
		if !wr.pending.IsZero() && wr.pending.Compare(wr.cp) <= 0 {
			t.Fatalf("write %d prepared %v, not above its checkpoint %v", i, wr.pending, wr.cp)
		}
		prev = wr.cp
	}
	if last := writes[len(writes)-1]; last.cp != maxPos || !last.pending.IsZero() {
		t.Errorf("final write = %v, want checkpoint %v and no pending", last, maxPos)
	}
	if c.Last() != maxPos {
		t.Errorf("Last() = %v, want %v", c.Last(), maxPos)
	}
	t.Logf("%d writes for %d calls", len(writes), goroutines*perRoutine)
}

func TestAtShardEndTwiceKeepsTheLastRecord(t *testing.T) {
	w := &recorder{}
	c := New(w, mustAt(t, "50", 0), Position{}, nil)
	c.Delivered(mustAt(t, "100", 2))
	c.AtShardEnd()
	c.AtShardEnd()
	if c.LargestDelivered() != ShardEnd {
		t.Errorf("LargestDelivered() = %v, want SHARD_END", c.LargestDelivered())
	}
	if err := c.CheckpointAt(t.Context(), "100", 2); err != nil {
		t.Fatal(err)
	}
	if c.Last() != ShardEnd {
		t.Errorf("Last() = %v, want the last record written as SHARD_END", c.Last())
	}
}
