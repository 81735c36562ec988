package consumer_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// The methods a processor may call on what the Worker gives it: exactly
// those of KCL's RecordProcessorCheckpointer and PreparedCheckpointer.
var (
	wantCheckpointerMethods = []string{
		"Checkpoint func(*consumer.Checkpointer, context.Context) error",
		"CheckpointAt func(*consumer.Checkpointer, context.Context, string, uint64) error",
		"Last func(*consumer.Checkpointer) checkpoint.Position",
		"Pending func(*consumer.Checkpointer) (checkpoint.Position, []uint8)",
		"Prepare func(*consumer.Checkpointer, context.Context, string, uint64, []uint8) (*consumer.PreparedCheckpoint, error)",
	}
	wantPreparedMethods = []string{
		"Commit func(*consumer.PreparedCheckpoint, context.Context) error",
		"Position func(*consumer.PreparedCheckpoint) checkpoint.Position",
	}
)

// boundRaisers are the names of the Worker-side calls that move a
// checkpoint's upper bound or write what only the Worker may write.
var boundRaisers = []string{"Delivered", "AtShardEnd", "CheckpointPosition", "LargestDelivered"}

func methodSet(t reflect.Type) []string {
	var out []string
	for m := range t.Methods() {
		out = append(out, m.Name+" "+m.Type.String())
	}
	return out
}

func TestCheckpointerOffersOnlyKCLsCalls(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[*consumer.Checkpointer](), wantCheckpointerMethods},
		{reflect.TypeFor[*consumer.PreparedCheckpoint](), wantPreparedMethods},
		// Values have no methods at all: every method needs the pointer.
		{reflect.TypeFor[consumer.Checkpointer](), nil},
		{reflect.TypeFor[consumer.PreparedCheckpoint](), nil},
	} {
		if got := methodSet(tt.typ); !slices.Equal(got, tt.want) {
			t.Errorf("methods of %v:\n got %q\nwant %q", tt.typ, got, tt.want)
		}
		if e := tt.typ; e.Kind() == reflect.Pointer {
			for f := range e.Elem().Fields() {
				if f.IsExported() || f.Anonymous {
					t.Errorf("%v has field %s: a processor could reach what is behind it", e.Elem(), f.Name)
				}
			}
		}
	}
}

// TestNoExportedPathRaisesTheBound walks every type a processor can reach
// from what the Worker gives it (exported fields, methods, parameters and
// results, element types) and fails if any of them offers a way to move the
// checkpoint's upper bound, or is the internal tracker itself (whose exported
// methods a processor could call without naming its type).
func TestNoExportedPathRaisesTheBound(t *testing.T) {
	roots := []reflect.Type{
		reflect.TypeFor[consumer.Processor](),
		reflect.TypeFor[consumer.Initializer](),
		reflect.TypeFor[consumer.ShardEnder](),
		reflect.TypeFor[consumer.LeaseLoser](),
		reflect.TypeFor[consumer.ShutdownRequester](),
		reflect.TypeFor[consumer.Factory](),
		reflect.TypeFor[*consumer.Batch](),
		reflect.TypeFor[*consumer.Checkpointer](),
		reflect.TypeFor[*consumer.PreparedCheckpoint](),
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		if typ.Name() != "" && !strings.HasPrefix(typ.PkgPath(), "github.com/kclgo/kcl") {
			return // a standard library or SDK type
		}
		if strings.Contains(typ.PkgPath(), "/internal/") {
			t.Errorf("a processor can reach %v (package %s)", typ, typ.PkgPath())
		}
		for _, mt := range []reflect.Type{typ, reflect.PointerTo(typ)} {
			for m := range mt.Methods() {
				if slices.Contains(boundRaisers, m.Name) {
					t.Errorf("a processor can call %v.%s", mt, m.Name)
				}
				walk(m.Type)
			}
		}
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
			walk(typ.Elem())
		case reflect.Map:
			walk(typ.Key())
			walk(typ.Elem())
		case reflect.Func:
			for p := range typ.Ins() {
				walk(p)
			}
			for p := range typ.Outs() {
				walk(p)
			}
		case reflect.Struct:
			for f := range typ.Fields() {
				if f.IsExported() || f.Anonymous {
					walk(f.Type)
				}
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	if !seen[reflect.TypeFor[checkpoint.Position]()] {
		t.Error("the walk never reached checkpoint.Position; it does not follow methods")
	}
}

// TestZeroCheckpointerFails checks that a Checkpointer or PreparedCheckpoint
// that no Worker created (a processor's own, or nil in a test) returns an
// error from every call that would write and never panics.
func TestZeroCheckpointerFails(t *testing.T) {
	ctx := t.Context()
	for name, cp := range map[string]*consumer.Checkpointer{"zero": {}, "nil": nil} {
		t.Run(name+" Checkpointer", func(t *testing.T) {
			if err := cp.Checkpoint(ctx); err == nil {
				t.Error("Checkpoint succeeded")
			}
			if err := cp.CheckpointAt(ctx, "100", 0); err == nil {
				t.Error("CheckpointAt succeeded")
			}
			if p, err := cp.Prepare(ctx, "100", 0, []byte("s")); err == nil || p != nil {
				t.Errorf("Prepare = %v, %v; want an error", p, err)
			}
			if got := cp.Last(); !got.IsZero() {
				t.Errorf("Last() = %v, want the zero Position", got)
			}
			if got, state := cp.Pending(); !got.IsZero() || state != nil {
				t.Errorf("Pending() = %v, %q; want the zero Position and nil", got, state)
			}
		})
	}
	for name, p := range map[string]*consumer.PreparedCheckpoint{"zero": {}, "nil": nil} {
		t.Run(name+" PreparedCheckpoint", func(t *testing.T) {
			if err := p.Commit(ctx); err == nil {
				t.Error("Commit succeeded")
			}
			if got := p.Position(); !got.IsZero() {
				t.Errorf("Position() = %v, want the zero Position", got)
			}
		})
	}
}

// TestProcessorCannotCheckpointUndeliveredRecords runs a Worker that
// delivers four records at a time and has the processor of the first batch
// try to checkpoint records of the shard it was not given yet. Each attempt
// fails with ErrBeyondDelivered and writes nothing; the same records can be
// checkpointed once they have been delivered.
func TestProcessorCannotCheckpointUndeliveredRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		var seqs []string
		for i := range 8 {
			_, seq := f.Put(streamName, "k", []byte(strconv.Itoa(i)))
			seqs = append(seqs, seq)
		}

		type attempt struct {
			what string
			err  error
		}
		var (
			mu       sync.Mutex
			attempts []attempt
			writes   []int // checkpoint writes seen before each attempt's result was taken
			batches  int
			done     = make(chan struct{})
		)
		hooks := &eventRecorder{}
		checkpointWrites := func() int {
			hooks.mu.Lock()
			defer hooks.mu.Unlock()
			return len(hooks.checkpoints)
		}
		j := &journal{}
		w := newWorker(t, f, store, factory(j, store, func(p *proc) {
			p.batch = func(ctx context.Context, b *consumer.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				batches++
				cp := b.Checkpointer
				try := func(what string, err error) {
					attempts = append(attempts, attempt{what, err})
					writes = append(writes, checkpointWrites())
				}
				switch batches {
				case 1:
					if len(b.Records) != 4 || b.Records[3].SequenceNumber != seqs[3] {
						t.Errorf("first batch has %d records, want records 0-3", len(b.Records))
					}
					try("CheckpointAt a record of the next batch", cp.CheckpointAt(ctx, seqs[7], 0))
					try("CheckpointAt a later sub-record of the last record", cp.CheckpointAt(ctx, seqs[3], 1))
					try("CheckpointAt SHARD_END of an open shard", cp.CheckpointAt(ctx, "SHARD_END", 0))
					_, err := cp.Prepare(ctx, seqs[7], 0, []byte("state"))
					try("Prepare at a record of the next batch", err)
				case 2:
					if err := cp.CheckpointAt(ctx, seqs[7], 0); err != nil {
						t.Errorf("checkpoint at a delivered record: %v", err)
					}
					close(done)
				}
				return nil
			}
		}), "w1", consumer.WithMaxRecords(4), consumer.WithHooks(hooks))
		r := start(t, w)
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("the second batch never came")
		}
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}

		if len(attempts) != 4 {
			t.Fatalf("%d attempts, want 4", len(attempts))
		}
		for i, a := range attempts {
			if !errors.Is(a.err, checkpoint.ErrBeyondDelivered) {
				t.Errorf("%s: got %v, want ErrBeyondDelivered", a.what, a.err)
			}
			if writes[i] != 0 {
				t.Errorf("%s: %d checkpoint writes, want none", a.what, writes[i])
			}
		}
		want, _ := checkpoint.At(seqs[7], 0)
		hooks.mu.Lock()
		cps := slices.Clone(hooks.checkpoints)
		hooks.mu.Unlock()
		if len(cps) != 1 || cps[0].Position != want || cps[0].Err != nil {
			t.Errorf("checkpoint writes %+v, want one at %v", cps, want)
		}
		l := leaseMap(store)["shardId-000000000000"]
		if l.Checkpoint != want || !l.PendingCheckpoint.IsZero() {
			t.Errorf("stored checkpoint %v (pending %v), want %v and none pending", l.Checkpoint, l.PendingCheckpoint, want)
		}
	})
}
