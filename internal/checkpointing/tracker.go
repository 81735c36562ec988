// Package checkpointing tracks how far processing of one shard may be
// checkpointed, for the Worker that holds its lease.
//
// A Tracker holds the two bounds of a checkpoint, the stored checkpoint below
// and the last record delivered to the processor above, validates each
// requested checkpoint against them as KCL does, serializes the writes, and
// hands them to a Writer (the lease holder, which fences every write with the
// lease counter). Only the Worker raises the upper bound (Delivered,
// AtShardEnd); processors reach a Tracker through consumer.Checkpointer,
// which offers the checkpoint calls and none of those.
package checkpointing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kclgo/kcl/checkpoint"
)

// Writer persists the checkpoint of one shard. The lease holder implements
// it, fencing every write with the lease counter, so that a worker that lost
// the lease cannot overwrite its successor's progress.
//
// A Tracker calls WriteCheckpoint on the goroutine of the checkpoint call it
// serves, with that call's ctx, and never has more than one call in flight.
// cp is the checkpoint to store; pending is the prepared checkpoint to store
// with pendingState, or the zero Position to remove both. The Writer must not
// modify pendingState.
//
// A nil error means the write is durable. An error means it did not take
// effect, and the Tracker keeps its previous state. A Writer that cannot tell
// (a timeout) must make every later write fail if this one landed after all,
// or a later, smaller checkpoint could overwrite it; the lease counter does
// that, provided the holder does not reconcile a fenced checkpoint by
// re-reading the lease. A fence failure is returned as an error matching the
// lease package's ErrLeaseLost; the Tracker passes every Writer error
// through, wrapped with %w.
type Writer interface {
	WriteCheckpoint(ctx context.Context, cp checkpoint.Position, pending checkpoint.Position, pendingState []byte) error
}

// Tracker records how far a record processor has got in one shard, for the
// time this worker holds the shard's lease. The Worker creates one per lease,
// reports each batch with Delivered before handing it over (and AtShardEnd
// before the last batch of a closed shard), and gives the processor a
// consumer.Checkpointer over it, through which the processor calls
// Checkpoint, CheckpointAt or Prepare when it has finished with records.
//
// Validation follows KCL: a checkpoint may not move below the last one (a
// checkpoint equal to it is a successful no-op) nor beyond the last delivered
// record, and users may not checkpoint at TRIM_HORIZON, LATEST or
// AT_TIMESTAMP. SHARD_END becomes allowed once the Worker calls AtShardEnd.
//
// A Tracker is safe for concurrent use. Writes are serialized and each is
// validated against the state left by the previous one, so concurrent calls
// can never move the stored checkpoint backwards. No lock is held while the
// Writer runs: Last, Pending, LargestDelivered and Delivered never wait for
// I/O.
type Tracker struct {
	w Writer
	// sem holds one token while a write is in flight. last, pending and
	// pendingState change only while it is held, so a value validated after
	// taking it stays valid until the write completes.
	sem chan struct{}

	mu           sync.Mutex
	last         checkpoint.Position // stored checkpoint
	pending      checkpoint.Position // stored prepared checkpoint; zero when none
	pendingState []byte              // stored with pending; never modified in place
	delivered    checkpoint.Position // largest position delivered, or SHARD_END after AtShardEnd
	endRecord    checkpoint.Position // the last record of a closed shard, set by AtShardEnd
}

// New returns a Tracker for a lease whose stored checkpoint is last and whose
// stored prepared checkpoint is pending with pendingState (the zero Position
// and nil when the lease has none; a previous owner may have left one). last
// must not be the zero Position: every lease has a checkpoint. Until
// Delivered is called the largest delivered position is last, so only a
// no-op checkpoint succeeds. New copies pendingState and starts no
// goroutines.
func New(w Writer, last, pending checkpoint.Position, pendingState []byte) *Tracker {
	return &Tracker{
		w:            w,
		sem:          make(chan struct{}, 1),
		last:         last,
		pending:      pending,
		pendingState: bytes.Clone(pendingState),
		delivered:    last,
	}
}

// Delivered records that the Worker is about to hand the processor records
// up to and including p, the position of the last user record of the batch.
// The Worker calls it on the shard's goroutine before each batch; it never
// blocks. Positions not above the largest delivered so far are ignored, so
// the bound only grows, and so are sentinels: the end of a shard is reported
// with AtShardEnd.
func (t *Tracker) Delivered(p checkpoint.Position) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.IsSequence() && p.Compare(t.delivered) > 0 {
		t.delivered = p
	}
}

// AtShardEnd records that the last batch of a closed shard has been
// delivered. From then on the largest delivered position is SHARD_END, so
// Checkpoint writes SHARD_END, and a checkpoint at the shard's last record is
// written as SHARD_END too (as KCL does): the shard is finished either way.
// The Worker calls it on the shard's goroutine; it never blocks. Calls after
// the first have no effect.
func (t *Tracker) AtShardEnd() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.delivered.Kind() == checkpoint.KindShardEnd {
		return
	}
	if t.delivered.IsSequence() {
		t.endRecord = t.delivered
	}
	t.delivered = checkpoint.ShardEnd
}

// Checkpoint records that the processor has finished with every record
// delivered so far: it writes the largest delivered position (SHARD_END
// after AtShardEnd). If that equals the last checkpoint it returns nil
// without writing.
//
// It may be called from any goroutine. It blocks while an earlier write of
// this Tracker is in flight and while the Writer runs, and returns early with
// ctx's error (and its cause, if any) when ctx is done before the write
// starts. A Writer error is returned wrapped. The checkpoint does not advance
// when an error is returned.
func (t *Tracker) Checkpoint(ctx context.Context) error {
	t.mu.Lock()
	p := t.delivered
	t.mu.Unlock()
	return t.write(ctx, p)
}

// CheckpointAt records that the processor has finished with every record up
// to and including the user record with the given sequence number and
// sub-sequence number. A checkpoint equal to the last one returns nil without
// writing. The sequence number "SHARD_END" (with sub-sequence number 0) is
// accepted after AtShardEnd.
//
// It returns a *checkpoint.ParseError for a malformed sequence number,
// checkpoint.ErrBeforeLast or checkpoint.ErrBeyondDelivered for a position
// out of range, and an error matching checkpoint.ErrInvalid for another
// sentinel; all of these match checkpoint.ErrInvalid. Otherwise it behaves as
// Checkpoint.
func (t *Tracker) CheckpointAt(ctx context.Context, sequenceNumber string, subSequenceNumber uint64) error {
	p, err := checkpoint.Parse(sequenceNumber, subSequenceNumber)
	if err != nil {
		return err
	}
	return t.write(ctx, p)
}

// CheckpointPosition is CheckpointAt for a Position, validated the same way.
func (t *Tracker) CheckpointPosition(ctx context.Context, p checkpoint.Position) error {
	return t.write(ctx, p)
}

// Prepare stores a prepared checkpoint at the given position together with
// application state, leaving the checkpoint itself unchanged, and returns the
// Prepared to commit later. If the worker fails over before the commit, the
// next owner's processor finds the prepared position and state in its
// initialization. The position is validated as by CheckpointAt and state is
// copied. A position equal to the last checkpoint writes nothing and returns
// a Prepared whose Commit is a no-op (as in KCL).
//
// Only one prepared checkpoint is stored: preparing again replaces it, and
// any checkpoint removes it. Prepare may be called from any goroutine,
// blocks for the write and returns the errors CheckpointAt returns.
func (t *Tracker) Prepare(ctx context.Context, sequenceNumber string, subSequenceNumber uint64, state []byte) (*Prepared, error) {
	p, err := checkpoint.Parse(sequenceNumber, subSequenceNumber)
	if err != nil {
		return nil, err
	}
	state = bytes.Clone(state)

	t.mu.Lock()
	target, noop, err := t.resolveLocked(p)
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if noop {
		return &Prepared{t: t, pos: target}, nil
	}

	if err := t.acquire(ctx); err != nil {
		return nil, err
	}
	defer t.release()
	t.mu.Lock()
	target, noop, err = t.resolveLocked(p)
	last := t.last
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if noop {
		return &Prepared{t: t, pos: target}, nil
	}
	if err := t.w.WriteCheckpoint(ctx, last, target, state); err != nil {
		return nil, fmt.Errorf("checkpoint: prepare %s: %w", target, err)
	}
	t.mu.Lock()
	t.pending, t.pendingState = target, state
	t.mu.Unlock()
	return &Prepared{t: t, pos: target}, nil
}

// Prepared is a checkpoint stored by Prepare and not yet committed.
type Prepared struct {
	t   *Tracker
	pos checkpoint.Position
}

// Position returns the prepared position (SHARD_END if it was the last
// record of a closed shard).
func (p *Prepared) Position() checkpoint.Position { return p.pos }

// Commit writes the prepared position as the checkpoint and removes the
// stored prepared checkpoint. It returns nil without writing if the
// checkpoint is already there, and checkpoint.ErrBeforeLast if a later
// checkpoint has passed it. It may be called from any goroutine, more than
// once, and otherwise behaves as Tracker.Checkpoint.
func (p *Prepared) Commit(ctx context.Context) error {
	return p.t.write(ctx, p.pos)
}

// Last returns the stored checkpoint: the one at lease acquisition or the
// last one written successfully. A write in flight is not reflected until it
// succeeds.
func (t *Tracker) Last() checkpoint.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Pending returns the stored prepared checkpoint and a copy of its state, or
// the zero Position and nil when there is none.
func (t *Tracker) Pending() (checkpoint.Position, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending, bytes.Clone(t.pendingState)
}

// LargestDelivered returns the upper bound for checkpoints: the largest
// position reported to Delivered, the checkpoint at lease acquisition if that
// is larger, or SHARD_END after AtShardEnd.
func (t *Tracker) LargestDelivered() checkpoint.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delivered
}

// write validates p, waits for its turn, validates again against the state
// the previous write left, and writes.
func (t *Tracker) write(ctx context.Context, p checkpoint.Position) error {
	t.mu.Lock()
	_, noop, err := t.resolveLocked(p)
	t.mu.Unlock()
	if err != nil || noop {
		return err
	}

	if err := t.acquire(ctx); err != nil {
		return err
	}
	defer t.release()
	t.mu.Lock()
	target, noop, err := t.resolveLocked(p)
	t.mu.Unlock()
	if err != nil || noop {
		return err
	}
	if err := t.w.WriteCheckpoint(ctx, target, checkpoint.Position{}, nil); err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", target, err)
	}
	t.mu.Lock()
	t.last, t.pending, t.pendingState = target, checkpoint.Position{}, nil
	t.mu.Unlock()
	return nil
}

// resolveLocked decides where a checkpoint requested at p goes: target is
// the position to write, noop reports that it is already the last
// checkpoint. t.mu must be held.
func (t *Tracker) resolveLocked(p checkpoint.Position) (target checkpoint.Position, noop bool, err error) {
	return resolve(p, t.last, t.delivered, t.endRecord)
}

// resolve is the validation rule, a pure function of the requested position,
// the last checkpoint, the largest delivered position and the last record of
// a closed shard (zero unless at shard end).
func resolve(p, last, delivered, endRecord checkpoint.Position) (target checkpoint.Position, noop bool, err error) {
	if !endRecord.IsZero() && p == endRecord {
		p = checkpoint.ShardEnd
	}
	if p == last {
		return p, true, nil
	}
	switch p.Kind() {
	case checkpoint.KindSequence, checkpoint.KindShardEnd:
	case 0:
		return checkpoint.Position{}, false, fmt.Errorf("%w: the zero Position is not a checkpoint", checkpoint.ErrInvalid)
	default:
		return checkpoint.Position{}, false, fmt.Errorf("%w: %s is an initial position, not a checkpoint", checkpoint.ErrInvalid, p)
	}
	if p.Compare(last) < 0 {
		return checkpoint.Position{}, false, fmt.Errorf("%w: %s (last checkpoint %s)", checkpoint.ErrBeforeLast, p, last)
	}
	if p.Compare(delivered) > 0 {
		return checkpoint.Position{}, false, fmt.Errorf("%w: %s (last delivered %s)", checkpoint.ErrBeyondDelivered, p, delivered)
	}
	return p, false, nil
}

// acquire waits for the write token or for ctx to be done.
func (t *Tracker) acquire(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

func (t *Tracker) release() { <-t.sem }

// ctxError returns ctx's error together with its cause when that says more
// (for example the lease package's ErrLeaseLost when the Worker cancelled the
// shard because the lease was lost), so callers can branch on either.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if errors.Is(cause, err) {
		return fmt.Errorf("checkpoint: %w", cause)
	}
	return fmt.Errorf("checkpoint: %w: %w", err, cause)
}
