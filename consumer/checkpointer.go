package consumer

import (
	"context"
	"errors"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer/internal/testlink"
	"github.com/kclgo/kcl/internal/checkpointing"
)

// consumertest creates Checkpointers through testlink, over Trackers whose
// writes go to an in-memory recorder, never to a lease.
func init() {
	testlink.NewCheckpointer = func(t *checkpointing.Tracker) any { return &Checkpointer{t: t} }
}

// Checkpointer records how far a Processor has got in its shard, for the time
// the Worker holds the shard's lease. It offers what KCL's
// RecordProcessorCheckpointer offers: checkpoint at the last delivered record
// (Checkpoint) or at a given record (CheckpointAt), a two-phase checkpoint
// (Prepare, then PreparedCheckpoint.Commit), and the stored checkpoints (Last,
// Pending).
//
// The Worker creates one Checkpointer per lease and gives the same one with
// every Batch (Batch.Checkpointer) and to ShardEnded and ShutdownRequested.
// Only the Worker moves its upper bound, the last record delivered to the
// processor, before it hands over each batch; nothing a processor calls
// raises it. The zero Checkpointer (or nil) holds no lease: every checkpoint
// call returns an error. To unit-test a processor that checkpoints, package
// consumer/consumertest creates Checkpointers that write to memory.
//
// Validation follows KCL: a checkpoint may not move below the last one (one
// equal to it is a successful no-op that writes nothing) nor beyond the last
// delivered record, and may not be at TRIM_HORIZON, LATEST or AT_TIMESTAMP.
// After the last batch of a closed shard (Batch.AtShardEnd) the last
// delivered position is SHARD_END: Checkpoint writes SHARD_END, and so does a
// checkpoint at the shard's last record, as in KCL. The Worker writes
// SHARD_END itself after ShardEnded returns nil, so processors need not.
//
// Errors to branch on: checkpoint.ErrInvalid (matched by
// checkpoint.ErrBeforeLast, checkpoint.ErrBeyondDelivered and every
// *checkpoint.ParseError) for a checkpoint that is the caller's mistake,
// which fails the same way if retried; and lease.ErrLeaseLost when the lease
// was lost, after which no checkpoint of this Checkpointer can succeed and
// the processor should stop working on the shard. A failed call leaves the
// stored checkpoint unchanged.
//
// A Checkpointer is safe for concurrent use and may be kept after
// ProcessRecords returns (it stops working when the lease ends). Writes are
// serialized and each is validated against the state the previous one left,
// so concurrent calls never move the stored checkpoint backwards; a call
// that lost such a race returns checkpoint.ErrBeforeLast. The checkpoint
// calls block while an earlier write is in flight and while the write runs,
// and return early with ctx's error (and its cause) when ctx is done before
// their write starts. Last and Pending never wait for I/O.
type Checkpointer struct {
	t *checkpointing.Tracker
}

// errNoLease is returned by a Checkpointer (or PreparedCheckpoint) that a
// Worker did not create.
var errNoLease = errors.New("consumer: Checkpointer not created by a Worker; it holds no lease")

// tracker returns the Tracker behind c, or errNoLease for a nil or zero c.
func (c *Checkpointer) tracker() (*checkpointing.Tracker, error) {
	if c == nil || c.t == nil {
		return nil, errNoLease
	}
	return c.t, nil
}

// Checkpoint records that the processor has finished with every record
// delivered to it so far: it writes the last delivered record's position
// (SHARD_END after the last batch of a closed shard). It returns nil without
// writing if that is already the stored checkpoint.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	t, err := c.tracker()
	if err != nil {
		return err
	}
	return t.Checkpoint(ctx)
}

// CheckpointAt records that the processor has finished with every record up
// to and including the user record with the given sequence number and
// sub-sequence number (Record.SequenceNumber and Record.SubSequenceNumber:
// the index of a user record inside a KPL aggregate, 0 for records that were
// not aggregated). The sequence number "SHARD_END" (sub-sequence number 0) is
// accepted after the last batch of a closed shard.
//
// It returns a *checkpoint.ParseError for a malformed sequence number,
// checkpoint.ErrBeforeLast or checkpoint.ErrBeyondDelivered for a position
// out of range, and an error matching checkpoint.ErrInvalid for any other
// sentinel; nothing is written then.
func (c *Checkpointer) CheckpointAt(ctx context.Context, sequenceNumber string, subSequenceNumber uint64) error {
	t, err := c.tracker()
	if err != nil {
		return err
	}
	return t.CheckpointAt(ctx, sequenceNumber, subSequenceNumber)
}

// Prepare stores a prepared checkpoint at the given record together with
// application state, leaving the checkpoint itself unchanged, and returns
// the PreparedCheckpoint to commit later. If the lease moves before the
// commit, the next owner's processor finds the prepared position and state
// in InitInput. The position is validated as by CheckpointAt and state is
// copied. A position equal to the stored checkpoint writes nothing and
// returns a PreparedCheckpoint whose Commit is a no-op (as in KCL).
//
// Only one prepared checkpoint is stored: preparing again replaces it, and
// any checkpoint removes it.
func (c *Checkpointer) Prepare(ctx context.Context, sequenceNumber string, subSequenceNumber uint64, state []byte) (*PreparedCheckpoint, error) {
	t, err := c.tracker()
	if err != nil {
		return nil, err
	}
	p, err := t.Prepare(ctx, sequenceNumber, subSequenceNumber, state)
	if err != nil {
		return nil, err
	}
	return &PreparedCheckpoint{p: p}, nil
}

// Last returns the stored checkpoint: the one the lease had when the Worker
// took it, or the last one written successfully since. A write in flight is
// not reflected until it succeeds. It returns the zero Position for a
// Checkpointer that a Worker did not create.
func (c *Checkpointer) Last() checkpoint.Position {
	t, err := c.tracker()
	if err != nil {
		return checkpoint.Position{}
	}
	return t.Last()
}

// Pending returns the stored prepared checkpoint and a copy of its state, or
// the zero Position and nil when there is none.
func (c *Checkpointer) Pending() (checkpoint.Position, []byte) {
	t, err := c.tracker()
	if err != nil {
		return checkpoint.Position{}, nil
	}
	return t.Pending()
}

// PreparedCheckpoint is a checkpoint stored by Checkpointer.Prepare and not
// yet committed.
type PreparedCheckpoint struct {
	p *checkpointing.Prepared
}

// Position returns the prepared position (SHARD_END if it was the last record
// of a closed shard), or the zero Position for a PreparedCheckpoint that
// Prepare did not return.
func (p *PreparedCheckpoint) Position() checkpoint.Position {
	if p == nil || p.p == nil {
		return checkpoint.Position{}
	}
	return p.p.Position()
}

// Commit writes the prepared position as the checkpoint and removes the
// stored prepared checkpoint. It returns nil without writing if the
// checkpoint is already there, and checkpoint.ErrBeforeLast if a later
// checkpoint has passed it. It may be called from any goroutine, more than
// once, and otherwise behaves as Checkpointer.Checkpoint.
func (p *PreparedCheckpoint) Commit(ctx context.Context) error {
	if p == nil || p.p == nil {
		return errNoLease
	}
	return p.p.Commit(ctx)
}
