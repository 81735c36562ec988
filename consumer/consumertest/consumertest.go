// Package consumertest provides what a unit test of a record processor needs
// in place of a Worker: batches whose Checkpointer writes to memory.
//
// NewBatch returns a *consumer.Batch, as a Worker delivers the first batch
// after taking a shard's lease, and the *Checkpoints that record every
// checkpoint the processor writes through the batch's Checkpointer:
//
//	b, cps := consumertest.NewBatch("shardId-000000000000", records)
//	if err := p.ProcessRecords(ctx, b); err != nil {
//		t.Fatal(err)
//	}
//	if got := cps.Last(); got != want {
//		t.Errorf("checkpoint %v, want %v", got, want)
//	}
//
// The Checkpointer validates checkpoints exactly as a Worker's does, because
// it is one (the same type, over the same tracker): nothing beyond the last
// record delivered (checkpoint.ErrBeyondDelivered), nothing below the stored
// checkpoint (checkpoint.ErrBeforeLast), SHARD_END only after the last batch
// of a closed shard (AtShardEnd). NextBatch delivers the next batch of the
// same lease, with the same Checkpointer; WithCheckpoint and WithPending set
// what the lease held when it was taken; FailWrites makes writes fail, with
// lease.ErrLeaseLost for example, to test how a processor handles that.
//
// What this package creates is backed by its own in-memory recorder, never by
// a lease, and nothing in it accepts a Checkpointer or Batch that a Worker
// created: it cannot move the bound of a Worker's Checkpointer.
package consumertest

import (
	"bytes"
	"context"
	"sync"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/consumer/internal/testlink"
	"github.com/kclgo/kcl/internal/checkpointing"
)

// An Option configures NewBatch: what the lease held when it was taken, or,
// for a BatchOption, the batch.
type Option interface {
	apply(*config)
}

// A BatchOption configures one batch. NewBatch and Checkpoints.NextBatch
// take it.
type BatchOption interface {
	Option
	batchOption()
}

type config struct {
	last         checkpoint.Position
	pending      checkpoint.Position
	pendingState []byte
	atShardEnd   bool
}

type option func(*config)

func (o option) apply(c *config) { o(c) }

type batchOption func(*config)

func (o batchOption) apply(c *config) { o(c) }
func (batchOption) batchOption()      {}

// WithCheckpoint sets the checkpoint stored in the lease when it was taken:
// a record position, an initial position (TRIM_HORIZON, LATEST,
// AT_TIMESTAMP) for a shard no one has checkpointed, or SHARD_END. The
// default, also used for the zero Position, is checkpoint.TrimHorizon.
// Checkpoints below p fail with checkpoint.ErrBeforeLast.
func WithCheckpoint(p checkpoint.Position) Option {
	return option(func(c *config) { c.last = p })
}

// WithPending sets the prepared checkpoint and its state that a previous
// owner left in the lease (see consumer.Checkpointer.Prepare). By default
// there is none. state is copied.
func WithPending(p checkpoint.Position, state []byte) Option {
	state = bytes.Clone(state)
	return option(func(c *config) { c.pending, c.pendingState = p, state })
}

// AtShardEnd makes the batch the last one of a closed shard: its AtShardEnd
// field is true and, from then on, SHARD_END may be checkpointed (and
// Checkpoint writes it), as after a Worker's last batch of the shard.
func AtShardEnd() BatchOption {
	return batchOption(func(c *config) { c.atShardEnd = true })
}

// Checkpoints records the checkpoints written through the Checkpointer of the
// batches it delivers, and stands in for the lease behind it. It is safe for
// concurrent use.
type Checkpoints struct {
	shardID string
	tr      *checkpointing.Tracker
	cp      *consumer.Checkpointer

	mu      sync.Mutex
	failErr error                 // returned by every write while non-nil
	written []checkpoint.Position // every checkpoint written, in order
}

// NewBatch returns a Batch of records of shard shardID, as a Worker delivers
// the first batch after taking the shard's lease, and the Checkpoints that
// record what is written through its Checkpointer. The Checkpointer's upper
// bound is the last record's position (sequence number, sub-sequence
// number); records must be in shard order and carry sequence numbers as
// Kinesis writes them (decimal digits, such as "1000"). A last record whose
// sequence number does not parse leaves the bound at the stored checkpoint.
//
// Only ShardID, Records, AtShardEnd and Checkpointer are set; a test sets the
// other fields (MillisBehindLatest, ChildShards) itself. NewBatch does not
// copy records.
func NewBatch(shardID string, records []consumer.Record, opts ...Option) (*consumer.Batch, *Checkpoints) {
	cfg := config{last: checkpoint.TrimHorizon}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.last.IsZero() {
		cfg.last = checkpoint.TrimHorizon
	}
	c := &Checkpoints{shardID: shardID}
	c.tr = checkpointing.New(writer{c}, cfg.last, cfg.pending, cfg.pendingState)
	c.cp = testlink.NewCheckpointer(c.tr).(*consumer.Checkpointer)
	return c.deliver(records, cfg.atShardEnd), c
}

// NextBatch returns the next batch of the same lease: records follow those
// already delivered, and the Batch has the same Checkpointer, whose bound is
// now the last of records. It is what the Worker delivers after
// ProcessRecords returned nil for the previous batch.
func (c *Checkpoints) NextBatch(records []consumer.Record, opts ...BatchOption) *consumer.Batch {
	var cfg config
	for _, o := range opts {
		o.apply(&cfg)
	}
	return c.deliver(records, cfg.atShardEnd)
}

// deliver raises the bound, as the Worker does before handing over a batch,
// and returns the batch.
func (c *Checkpoints) deliver(records []consumer.Record, atShardEnd bool) *consumer.Batch {
	if n := len(records); n > 0 {
		if p, err := checkpoint.At(records[n-1].SequenceNumber, records[n-1].SubSequenceNumber); err == nil {
			c.tr.Delivered(p)
		}
	}
	if atShardEnd {
		c.tr.AtShardEnd()
	}
	return &consumer.Batch{
		ShardID:      c.shardID,
		Records:      records,
		AtShardEnd:   atShardEnd,
		Checkpointer: c.cp,
	}
}

// Checkpointer returns the Checkpointer of the batches, for testing
// ShardEnded and ShutdownRequested.
func (c *Checkpoints) Checkpointer() *consumer.Checkpointer { return c.cp }

// Last returns the stored checkpoint: the last one written, or the one the
// lease was taken with (WithCheckpoint).
func (c *Checkpoints) Last() checkpoint.Position { return c.tr.Last() }

// Pending returns the stored prepared checkpoint and a copy of its state, or
// the zero Position and nil when there is none.
func (c *Checkpoints) Pending() (checkpoint.Position, []byte) { return c.tr.Pending() }

// All returns every checkpoint written, in order. Preparing a checkpoint
// writes none (see Pending); committing it does. A checkpoint equal to the
// stored one is not written, nor is one that failed.
func (c *Checkpoints) All() []checkpoint.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]checkpoint.Position(nil), c.written...)
}

// FailWrites makes every later write (checkpoint or prepare) fail with err,
// until FailWrites(nil). The checkpoint calls return an error wrapping err,
// and nothing is stored, as when a Worker's lease write fails. Pass
// lease.ErrLeaseLost to test what a processor does when its lease is lost.
func (c *Checkpoints) FailWrites(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failErr = err
}

// writer is the Tracker's Writer: the recorder in place of the lease.
type writer struct{ c *Checkpoints }

func (w writer) WriteCheckpoint(_ context.Context, cp, pending checkpoint.Position, _ []byte) error {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.failErr != nil {
		return w.c.failErr
	}
	if pending.IsZero() {
		w.c.written = append(w.c.written, cp)
	}
	return nil
}
