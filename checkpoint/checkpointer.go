package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// Errors a checkpoint call returns when the requested position is out of
// range. Both match ErrInvalid as well.
var (
	// ErrBeforeLast means the position is below the last checkpoint: a
	// checkpoint never moves backwards. A Prepared whose Commit returns it
	// was overtaken by a later checkpoint. Processors that checkpoint from
	// several goroutines may see it when an older position loses a race and
	// can safely ignore it.
	ErrBeforeLast error = &wrapSentinel{msg: "checkpoint: position before the last checkpoint", parent: ErrInvalid}
	// ErrBeyondDelivered means the position is above the last record
	// delivered to the processor: a checkpoint may only cover records the
	// processor has seen.
	ErrBeyondDelivered error = &wrapSentinel{msg: "checkpoint: position beyond the last delivered record", parent: ErrInvalid}
)

// wrapSentinel is a sentinel error that also matches a broader sentinel.
type wrapSentinel struct {
	msg    string
	parent error
}

func (e *wrapSentinel) Error() string { return e.msg }
func (e *wrapSentinel) Unwrap() error { return e.parent }

// Writer persists the checkpoint of one shard. The lease holder implements
// it, fencing every write with the lease counter, so that a worker that lost
// the lease cannot overwrite its successor's progress.
//
// A Checkpointer calls WriteCheckpoint on the goroutine of the checkpoint
// call it serves, with that call's ctx, and never has more than one call in
// flight. cp is the checkpoint to store; pending is the prepared checkpoint
// to store with pendingState, or the zero Position to remove both. The
// Writer must not modify pendingState.
//
// A nil error means the write is durable. An error means it did not take
// effect, and the Checkpointer keeps its previous state. A Writer that cannot
// tell (a timeout) must make every later write fail if this one landed after
// all, or a later, smaller checkpoint could overwrite it; the lease counter
// does that, provided the holder does not reconcile a fenced checkpoint by
// re-reading the lease. A fence failure is returned as an error matching the
// lease package's ErrLeaseLost; the Checkpointer passes every Writer error
// through, wrapped with %w.
type Writer interface {
	WriteCheckpoint(ctx context.Context, cp Position, pending Position, pendingState []byte) error
}

// Checkpointer records how far a record processor has got in one shard, for
// the time this worker holds the shard's lease. The worker creates one per
// lease, reports each batch with Delivered before handing it over, and passes
// the Checkpointer to the processor, which calls Checkpoint, CheckpointAt or
// Prepare when it has finished with records.
//
// Validation follows KCL: a checkpoint may not move below the last one (a
// checkpoint equal to it is a successful no-op) nor beyond the last delivered
// record, and users may not checkpoint at TRIM_HORIZON, LATEST or
// AT_TIMESTAMP. SHARD_END becomes allowed once the worker calls AtShardEnd.
//
// A Checkpointer is safe for concurrent use. Writes are serialized and each
// is validated against the state left by the previous one, so concurrent
// calls can never move the stored checkpoint backwards. No lock is held while
// the Writer runs: Last, Pending, LargestDelivered and Delivered never wait
// for I/O.
type Checkpointer struct {
	w Writer
	// sem holds one token while a write is in flight. last, pending and
	// pendingState change only while it is held, so a value validated after
	// taking it stays valid until the write completes.
	sem chan struct{}

	mu           sync.Mutex
	last         Position // stored checkpoint
	pending      Position // stored prepared checkpoint; zero when none
	pendingState []byte   // stored with pending; never modified in place
	delivered    Position // largest position delivered, or ShardEnd after AtShardEnd
	endRecord    Position // the last record of a closed shard, set by AtShardEnd
}

// NewCheckpointer returns a Checkpointer for a lease whose stored checkpoint
// is last and whose stored prepared checkpoint is pending with pendingState
// (the zero Position and nil when the lease has none; a previous owner may
// have left one). last must not be the zero Position: every lease has a
// checkpoint. Until Delivered is called the largest delivered position is
// last, so only a no-op checkpoint succeeds. NewCheckpointer copies
// pendingState and starts no goroutines.
func NewCheckpointer(w Writer, last, pending Position, pendingState []byte) *Checkpointer {
	return &Checkpointer{
		w:            w,
		sem:          make(chan struct{}, 1),
		last:         last,
		pending:      pending,
		pendingState: bytes.Clone(pendingState),
		delivered:    last,
	}
}

// Delivered records that the worker is about to hand the processor records
// up to and including p, the position of the last user record of the batch.
// The worker calls it on the shard's goroutine before each batch; it never
// blocks. Positions not above the largest delivered so far are ignored, so
// the bound only grows, and so are sentinels: the end of a shard is reported
// with AtShardEnd.
func (c *Checkpointer) Delivered(p Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.IsSequence() && p.Compare(c.delivered) > 0 {
		c.delivered = p
	}
}

// AtShardEnd records that the last batch of a closed shard has been
// delivered. From then on the largest delivered position is SHARD_END, so
// Checkpoint writes SHARD_END, and a checkpoint at the shard's last record is
// written as SHARD_END too (as KCL does): the shard is finished either way.
// The worker calls it on the shard's goroutine; it never blocks. Calls after
// the first have no effect.
func (c *Checkpointer) AtShardEnd() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.delivered.Kind() == KindShardEnd {
		return
	}
	if c.delivered.IsSequence() {
		c.endRecord = c.delivered
	}
	c.delivered = ShardEnd
}

// Checkpoint records that the processor has finished with every record
// delivered so far: it writes the largest delivered position (SHARD_END
// after AtShardEnd). If that equals the last checkpoint it returns nil
// without writing.
//
// Processors call it from any goroutine. It blocks while an earlier write of
// this Checkpointer is in flight and while the Writer runs, and returns early
// with ctx's error (and its cause, if any) when ctx is done before the write
// starts. A Writer error is returned wrapped: branch on the lease package's
// ErrLeaseLost to stop processing the shard. The checkpoint does not advance
// when an error is returned.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	p := c.delivered
	c.mu.Unlock()
	return c.checkpoint(ctx, p)
}

// CheckpointAt records that the processor has finished with every record up
// to and including the user record with the given sequence number and
// sub-sequence number (the index of a user record inside a KPL aggregate; 0
// for records that were not aggregated). A checkpoint equal to the last one
// returns nil without writing. The sequence number "SHARD_END" (with
// sub-sequence number 0) is accepted after AtShardEnd.
//
// It returns a *ParseError for a malformed sequence number, ErrBeforeLast
// or ErrBeyondDelivered for a position out of range, and an error matching
// ErrInvalid for another sentinel; all of these match ErrInvalid. Otherwise
// it behaves as Checkpoint: it may be called from any goroutine, blocks for
// the write, and returns Writer and ctx errors.
func (c *Checkpointer) CheckpointAt(ctx context.Context, sequenceNumber string, subSequenceNumber uint64) error {
	p, err := Parse(sequenceNumber, subSequenceNumber)
	if err != nil {
		return err
	}
	return c.checkpoint(ctx, p)
}

// CheckpointPosition is CheckpointAt for a Position. The worker uses it to
// write SHARD_END after the last batch of a closed shard (after AtShardEnd),
// so that users cannot forget to; a processor that already checkpointed
// there makes it a no-op.
func (c *Checkpointer) CheckpointPosition(ctx context.Context, p Position) error {
	return c.checkpoint(ctx, p)
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
func (c *Checkpointer) Prepare(ctx context.Context, sequenceNumber string, subSequenceNumber uint64, state []byte) (*Prepared, error) {
	p, err := Parse(sequenceNumber, subSequenceNumber)
	if err != nil {
		return nil, err
	}
	state = bytes.Clone(state)

	c.mu.Lock()
	target, noop, err := c.resolveLocked(p)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if noop {
		return &Prepared{c: c, pos: target}, nil
	}

	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	c.mu.Lock()
	target, noop, err = c.resolveLocked(p)
	last := c.last
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if noop {
		return &Prepared{c: c, pos: target}, nil
	}
	if err := c.w.WriteCheckpoint(ctx, last, target, state); err != nil {
		return nil, fmt.Errorf("checkpoint: prepare %s: %w", target, err)
	}
	c.mu.Lock()
	c.pending, c.pendingState = target, state
	c.mu.Unlock()
	return &Prepared{c: c, pos: target}, nil
}

// Prepared is a checkpoint stored by Prepare and not yet committed.
type Prepared struct {
	c   *Checkpointer
	pos Position
}

// Position returns the prepared position (SHARD_END if it was the last record
// of a closed shard).
func (p *Prepared) Position() Position { return p.pos }

// Commit writes the prepared position as the checkpoint and removes the
// stored prepared checkpoint. It returns nil without writing if the
// checkpoint is already there, and ErrBeforeLast if a later checkpoint has
// passed it. It may be called from any goroutine, more than once, and
// otherwise behaves as Checkpointer.Checkpoint.
func (p *Prepared) Commit(ctx context.Context) error {
	return p.c.checkpoint(ctx, p.pos)
}

// Last returns the stored checkpoint: the one at lease acquisition or the
// last one written successfully. A write in flight is not reflected until it
// succeeds.
func (c *Checkpointer) Last() Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Pending returns the stored prepared checkpoint and a copy of its state, or
// the zero Position and nil when there is none.
func (c *Checkpointer) Pending() (Position, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending, bytes.Clone(c.pendingState)
}

// LargestDelivered returns the upper bound for checkpoints: the largest
// position reported to Delivered, the checkpoint at lease acquisition if that
// is larger, or SHARD_END after AtShardEnd.
func (c *Checkpointer) LargestDelivered() Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered
}

// checkpoint validates p, waits for its turn, validates again against the
// state the previous write left, and writes.
func (c *Checkpointer) checkpoint(ctx context.Context, p Position) error {
	c.mu.Lock()
	_, noop, err := c.resolveLocked(p)
	c.mu.Unlock()
	if err != nil || noop {
		return err
	}

	if err := c.acquire(ctx); err != nil {
		return err
	}
	defer c.release()
	c.mu.Lock()
	target, noop, err := c.resolveLocked(p)
	c.mu.Unlock()
	if err != nil || noop {
		return err
	}
	if err := c.w.WriteCheckpoint(ctx, target, Position{}, nil); err != nil {
		return fmt.Errorf("checkpoint: write %s: %w", target, err)
	}
	c.mu.Lock()
	c.last, c.pending, c.pendingState = target, Position{}, nil
	c.mu.Unlock()
	return nil
}

// resolveLocked decides where a checkpoint requested at p goes: target is
// the position to write, noop reports that it is already the last
// checkpoint. c.mu must be held.
func (c *Checkpointer) resolveLocked(p Position) (target Position, noop bool, err error) {
	return resolve(p, c.last, c.delivered, c.endRecord)
}

// resolve is the validation rule, a pure function of the requested position,
// the last checkpoint, the largest delivered position and the last record of
// a closed shard (zero unless at shard end).
func resolve(p, last, delivered, endRecord Position) (target Position, noop bool, err error) {
	if !endRecord.IsZero() && p == endRecord {
		p = ShardEnd
	}
	if p == last {
		return p, true, nil
	}
	switch p.Kind() {
	case KindSequence, KindShardEnd:
	case 0:
		return Position{}, false, fmt.Errorf("%w: the zero Position is not a checkpoint", ErrInvalid)
	default:
		return Position{}, false, fmt.Errorf("%w: %s is an initial position, not a checkpoint", ErrInvalid, p)
	}
	if p.Compare(last) < 0 {
		return Position{}, false, fmt.Errorf("%w: %s (last checkpoint %s)", ErrBeforeLast, p, last)
	}
	if p.Compare(delivered) > 0 {
		return Position{}, false, fmt.Errorf("%w: %s (last delivered %s)", ErrBeyondDelivered, p, delivered)
	}
	return p, false, nil
}

// acquire waits for the write token or for ctx to be done.
func (c *Checkpointer) acquire(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

func (c *Checkpointer) release() { <-c.sem }

// ctxError returns ctx's error together with its cause when that says more
// (for example the lease package's ErrLeaseLost when the worker cancelled the
// shard because the lease was lost), so callers can branch on either.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if errors.Is(cause, err) {
		return fmt.Errorf("checkpoint: %w", cause)
	}
	return fmt.Errorf("checkpoint: %w: %w", err, cause)
}
