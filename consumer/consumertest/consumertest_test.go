package consumertest_test

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/consumer/consumertest"
	"github.com/kclgo/kcl/lease"
)

const shardID = "shardId-000000000007"

func mustAt(t *testing.T, seq string, sub uint64) checkpoint.Position {
	t.Helper()
	p, err := checkpoint.At(seq, sub)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// records returns one plain record per sequence number.
func records(seqs ...string) []consumer.Record {
	var rs []consumer.Record
	for _, s := range seqs {
		rs = append(rs, consumer.Record{SequenceNumber: s, Data: []byte("d" + s)})
	}
	return rs
}

func TestNewBatch(t *testing.T) {
	rs := records("100", "101")
	b, cps := consumertest.NewBatch(shardID, rs)
	if b.ShardID != shardID || !slices.Equal(positions(b.Records), positions(rs)) || b.AtShardEnd || b.Checkpointer == nil {
		t.Fatalf("NewBatch = %+v", b)
	}
	if b.Checkpointer != cps.Checkpointer() {
		t.Error("the batch's Checkpointer is not Checkpoints.Checkpointer()")
	}
	if got := cps.Last(); got != checkpoint.TrimHorizon {
		t.Errorf("Last() = %v, want TRIM_HORIZON by default", got)
	}
	if got, state := cps.Pending(); !got.IsZero() || state != nil {
		t.Errorf("Pending() = %v, %q; want none by default", got, state)
	}
	if got := cps.All(); len(got) != 0 {
		t.Errorf("All() = %v before any checkpoint", got)
	}

	// A second NewBatch is a lease of its own.
	b2, cps2 := consumertest.NewBatch(shardID, rs)
	if b2.Checkpointer == b.Checkpointer {
		t.Fatal("two NewBatch calls share a Checkpointer")
	}
	if err := b2.Checkpointer.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := cps.All(); len(got) != 0 {
		t.Errorf("a checkpoint of another NewBatch was recorded here: %v", got)
	}
	if got, want := cps2.Last(), mustAt(t, "101", 0); got != want {
		t.Errorf("Last() = %v, want %v", got, want)
	}
}

func positions(rs []consumer.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.SequenceNumber+"/"+strconv.FormatUint(r.SubSequenceNumber, 10))
	}
	return out
}

// TestValidation checks that the Checkpointer of a test batch accepts and
// rejects what a Worker's does: the bound is the last record of the batch,
// the floor the stored checkpoint, SHARD_END only at shard end; a rejected
// call writes nothing.
func TestValidation(t *testing.T) {
	aggregate := []consumer.Record{
		{SequenceNumber: "100"},
		{SequenceNumber: "200", SubSequenceNumber: 0, Aggregated: true},
		{SequenceNumber: "200", SubSequenceNumber: 1, Aggregated: true},
	}
	type call func(ctx context.Context, cp *consumer.Checkpointer) error
	at := func(seq string, sub uint64) call {
		return func(ctx context.Context, cp *consumer.Checkpointer) error { return cp.CheckpointAt(ctx, seq, sub) }
	}
	prepare := func(seq string, sub uint64) call {
		return func(ctx context.Context, cp *consumer.Checkpointer) error {
			_, err := cp.Prepare(ctx, seq, sub, []byte("state"))
			return err
		}
	}
	checkpointAll := func(ctx context.Context, cp *consumer.Checkpointer) error { return cp.Checkpoint(ctx) }

	for _, tt := range []struct {
		name    string
		opts    []consumertest.Option
		call    call
		wantErr error // nil: the call succeeds
		want    []string
	}{
		{name: "a checkpoint at a delivered record is written", call: at("100", 0), want: []string{"100/0"}},
		{name: "Checkpoint writes the last record of the batch", call: checkpointAll, want: []string{"200/1"}},
		{name: "a checkpoint inside an aggregate is written", call: at("200", 0), want: []string{"200/0"}},
		{name: "a record after the batch is beyond the bound", call: at("201", 0), wantErr: checkpoint.ErrBeyondDelivered},
		{name: "a sub-record after the last one is beyond the bound", call: at("200", 2), wantErr: checkpoint.ErrBeyondDelivered},
		{name: "Prepare beyond the bound fails too", call: prepare("300", 0), wantErr: checkpoint.ErrBeyondDelivered},
		{name: "SHARD_END of an open shard is beyond the bound", call: at("SHARD_END", 0), wantErr: checkpoint.ErrBeyondDelivered},
		{
			name: "a checkpoint below the stored one is refused",
			opts: []consumertest.Option{consumertest.WithCheckpoint(mustAt(t, "150", 0))},
			call: at("100", 0), wantErr: checkpoint.ErrBeforeLast,
		},
		{
			name: "a checkpoint equal to the stored one writes nothing",
			opts: []consumertest.Option{consumertest.WithCheckpoint(mustAt(t, "100", 0))},
			call: at("100", 0),
		},
		{name: "an initial position is not a checkpoint", call: at("LATEST", 0), wantErr: checkpoint.ErrInvalid},
		{name: "a malformed sequence number is refused", call: at("0100", 0), wantErr: checkpoint.ErrInvalid},
		{
			name: "SHARD_END is allowed after the last batch",
			opts: []consumertest.Option{consumertest.AtShardEnd()},
			call: at("SHARD_END", 0), want: []string{"SHARD_END"},
		},
		{
			name: "Checkpoint after the last batch writes SHARD_END",
			opts: []consumertest.Option{consumertest.AtShardEnd()},
			call: checkpointAll, want: []string{"SHARD_END"},
		},
		{
			name: "the shard's last record after the last batch is written as SHARD_END",
			opts: []consumertest.Option{consumertest.AtShardEnd()},
			call: at("200", 1), want: []string{"SHARD_END"},
		},
		{
			name: "a record before the last one is still written as itself at shard end",
			opts: []consumertest.Option{consumertest.AtShardEnd()},
			call: at("100", 0), want: []string{"100/0"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, cps := consumertest.NewBatch(shardID, aggregate, tt.opts...)
			before := cps.Last()
			err := tt.call(t.Context(), b.Checkpointer)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("error %v, want success", err)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, checkpoint.ErrInvalid) {
					t.Fatalf("error %v, want one matching %v and checkpoint.ErrInvalid", err, tt.wantErr)
				}
				if got := cps.Last(); got != before {
					t.Errorf("Last() = %v after a refused call, want %v", got, before)
				}
				if p, _ := cps.Pending(); !p.IsZero() {
					t.Errorf("Pending() = %v after a refused call", p)
				}
			}
			var got []string
			for _, p := range cps.All() {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("All() = %q, want %q", got, tt.want)
			}
			if n := len(tt.want); n > 0 && cps.Last().String() != tt.want[n-1] {
				t.Errorf("Last() = %v, want %s", cps.Last(), tt.want[n-1])
			}
		})
	}
}

// TestNextBatch checks that the next batch has the same Checkpointer and
// raises its bound, and only NextBatch does: the records of a batch not yet
// delivered cannot be checkpointed.
func TestNextBatch(t *testing.T) {
	ctx := t.Context()
	b1, cps := consumertest.NewBatch(shardID, records("100", "101"))
	if err := b1.Checkpointer.CheckpointAt(ctx, "103", 0); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("checkpoint at a record of the next batch: %v, want ErrBeyondDelivered", err)
	}
	if err := b1.Checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	b2 := cps.NextBatch(records("102", "103"))
	if b2.Checkpointer != b1.Checkpointer || b2.ShardID != shardID || b2.AtShardEnd {
		t.Fatalf("NextBatch = %+v; want the same Checkpointer and shard, not at shard end", b2)
	}
	if err := b1.Checkpointer.CheckpointAt(ctx, "SHARD_END", 0); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("SHARD_END before the last batch: %v, want ErrBeyondDelivered", err)
	}
	if err := b1.Checkpointer.CheckpointAt(ctx, "103", 0); err != nil {
		t.Fatalf("checkpoint at a delivered record through the first batch's Checkpointer: %v", err)
	}

	// An empty last batch, as a Worker delivers for a shard that closed
	// after the records it already handed over.
	b3 := cps.NextBatch(nil, consumertest.AtShardEnd())
	if !b3.AtShardEnd || len(b3.Records) != 0 {
		t.Fatalf("NextBatch(nil, AtShardEnd()) = %+v", b3)
	}
	if err := b3.Checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	want := []checkpoint.Position{mustAt(t, "101", 0), mustAt(t, "103", 0), checkpoint.ShardEnd}
	if got := cps.All(); !slices.Equal(got, want) {
		t.Errorf("All() = %v, want %v", got, want)
	}
}

// TestFailWrites checks that injected failures surface from every writing
// call, matching the injected error, and store nothing, until they are
// switched off.
func TestFailWrites(t *testing.T) {
	errDisk := errors.New("disk on fire")
	for _, injected := range []error{lease.ErrLeaseLost, errDisk} {
		t.Run(injected.Error(), func(t *testing.T) {
			ctx := t.Context()
			b, cps := consumertest.NewBatch(shardID, records("100", "101"))
			cp := b.Checkpointer
			prepared, err := cp.Prepare(ctx, "100", 0, []byte("s"))
			if err != nil {
				t.Fatal(err)
			}

			cps.FailWrites(injected)
			if err := cp.Checkpoint(ctx); !errors.Is(err, injected) {
				t.Errorf("Checkpoint: %v, want an error matching %v", err, injected)
			}
			if err := cp.CheckpointAt(ctx, "100", 0); !errors.Is(err, injected) {
				t.Errorf("CheckpointAt: %v, want an error matching %v", err, injected)
			}
			if _, err := cp.Prepare(ctx, "101", 0, []byte("t")); !errors.Is(err, injected) {
				t.Errorf("Prepare: %v, want an error matching %v", err, injected)
			}
			if err := prepared.Commit(ctx); !errors.Is(err, injected) {
				t.Errorf("Commit: %v, want an error matching %v", err, injected)
			}
			if errors.Is(injected, lease.ErrLeaseLost) != errors.Is(cp.Checkpoint(ctx), lease.ErrLeaseLost) {
				t.Error("the error matches lease.ErrLeaseLost when the injected one does not, or the reverse")
			}
			if got := cps.Last(); got != checkpoint.TrimHorizon {
				t.Errorf("Last() = %v after failed writes, want TRIM_HORIZON", got)
			}
			if got := cps.All(); len(got) != 0 {
				t.Errorf("All() = %v after failed writes", got)
			}
			if p, state := cps.Pending(); p != mustAt(t, "100", 0) || string(state) != "s" {
				t.Errorf("Pending() = %v, %q after failed writes; want the first prepare, 100/0 \"s\"", p, state)
			}

			cps.FailWrites(nil)
			if err := prepared.Commit(ctx); err != nil {
				t.Fatalf("Commit after FailWrites(nil): %v", err)
			}
			if got, want := cps.All(), []checkpoint.Position{mustAt(t, "100", 0)}; !slices.Equal(got, want) {
				t.Errorf("All() = %v, want %v", got, want)
			}
		})
	}
}

// TestPending checks a pending checkpoint left by a previous owner, and that
// Prepare stores one without writing a checkpoint and Commit writes it.
func TestPending(t *testing.T) {
	ctx := t.Context()
	state := []byte("txn-1")
	b, cps := consumertest.NewBatch(shardID, records("100", "101", "102"),
		consumertest.WithCheckpoint(mustAt(t, "99", 0)),
		consumertest.WithPending(mustAt(t, "101", 0), state))
	state[0] = 'X' // WithPending copied it
	if p, s := cps.Pending(); p != mustAt(t, "101", 0) || string(s) != "txn-1" {
		t.Fatalf("Pending() = %v, %q; want 101/0 \"txn-1\"", p, s)
	}
	if p, _ := b.Checkpointer.Pending(); p != mustAt(t, "101", 0) {
		t.Errorf("Checkpointer.Pending() = %v, want 101/0", p)
	}
	if got := cps.Last(); got != mustAt(t, "99", 0) {
		t.Errorf("Last() = %v, want 99/0", got)
	}

	prepared, err := b.Checkpointer.Prepare(ctx, "102", 0, []byte("txn-2"))
	if err != nil {
		t.Fatal(err)
	}
	if p, s := cps.Pending(); p != mustAt(t, "102", 0) || !bytes.Equal(s, []byte("txn-2")) {
		t.Errorf("Pending() = %v, %q after Prepare; want 102/0 \"txn-2\"", p, s)
	}
	if got := cps.All(); len(got) != 0 {
		t.Errorf("All() = %v after Prepare, want no checkpoint", got)
	}
	if err := prepared.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p, s := cps.Pending(); !p.IsZero() || s != nil {
		t.Errorf("Pending() = %v, %q after Commit; want none", p, s)
	}
	if got, want := cps.All(), []checkpoint.Position{mustAt(t, "102", 0)}; !slices.Equal(got, want) {
		t.Errorf("All() = %v, want %v", got, want)
	}
}

// TestConcurrentCheckpoints checks, under -race, that checkpoints from many
// goroutines are recorded in the order they were stored, which never goes
// backwards, and end at the largest.
func TestConcurrentCheckpoints(t *testing.T) {
	var seqs []string
	for i := range 64 {
		seqs = append(seqs, strconv.Itoa(1000+i))
	}
	b, cps := consumertest.NewBatch(shardID, records(seqs...))
	var wg sync.WaitGroup
	for _, s := range seqs {
		wg.Go(func() {
			err := b.Checkpointer.CheckpointAt(t.Context(), s, 0)
			if err != nil && !errors.Is(err, checkpoint.ErrBeforeLast) {
				t.Errorf("CheckpointAt(%s): %v", s, err)
			}
		})
	}
	wg.Wait()
	all := cps.All()
	if len(all) == 0 || !slices.IsSortedFunc(all, checkpoint.Position.Compare) {
		t.Errorf("All() = %v, want a non-empty increasing list", all)
	}
	if got, want := cps.Last(), mustAt(t, seqs[len(seqs)-1], 0); got != want || all[len(all)-1] != want {
		t.Errorf("Last() = %v, last of All() = %v; want %v", got, all[len(all)-1], want)
	}
}

// TestTakesNothingFromAWorker guards the package's safety claim: no exported
// function or method accepts a Checkpointer, a PreparedCheckpoint or a Batch,
// so nothing here can raise the bound of a Checkpointer that a Worker
// created. It reads the package's source.
func TestTakesNothingFromAWorker(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	funcs := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			funcs++
			for _, p := range fd.Type.Params.List {
				typ := types.ExprString(p.Type)
				for _, forbidden := range []string{"consumer.Checkpointer", "consumer.PreparedCheckpoint", "consumer.Batch", "checkpointing."} {
					if strings.Contains(typ, forbidden) {
						t.Errorf("%s takes a %s", fd.Name.Name, typ)
					}
				}
			}
		}
	}
	if funcs < 5 {
		t.Errorf("found %d exported functions; the test does not read the package", funcs)
	}
}
