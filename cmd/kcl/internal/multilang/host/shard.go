package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/child"
	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/protocol"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// maxKeptBytes bounds, per shard, the records a shard keeps for a
// replacement child: those delivered since the last checkpoint. A child
// that checkpoints less often than this loses its replay: when it fails,
// the lease is given up and the records are read again from the checkpoint
// (by this worker or another), which costs a lease handover instead of a
// restart in place but loses nothing.
const maxKeptBytes = 32 << 20

// errCannotReplay is returned when a child failed and the records since the
// last checkpoint are no longer all kept (see maxKeptBytes).
var errCannotReplay = errors.New("host: the records since the last checkpoint are no longer kept; giving the lease up to read them again")

// shard is the Processor of one shard lease: it drives the shard's child
// process. The Worker calls it from the shard's goroutine only.
//
// A child that fails a call costs this shard only: it is killed, the call's
// batch fails, and when the Worker delivers the batch again (after its retry
// backoff) a new child is started with initialize at the last checkpoint and
// given the records delivered since that checkpoint before the batch.
type shard struct {
	h    *Host
	info consumer.ShardInfo
	log  *zap.Logger

	// c is the running child, nil when none runs (not started yet, or
	// killed after a failure).
	c *child.Child
	// final reports that c got its final call (leaseLost or shardEnded).
	final bool
	// start is the checkpoint Initialize was given.
	start checkpoint.Position
	// cp is the lease's Checkpointer, known from the first batch on.
	cp *consumer.Checkpointer
	// sent is the last record written to c: a checkpoint request without a
	// sequence number checkpoints up to here. Zero before the first.
	sent checkpoint.Position
	// from is the checkpoint c was initialized at: c is never sent a record
	// at or before it. After a child died between its checkpoint and the
	// end of its call, the Worker delivers the same batch again, part of
	// which the new child's initialize position already covers.
	from checkpoint.Position

	// kept are the batches delivered since the last checkpoint, oldest
	// first, for a replacement child; keptBytes is their size. droppedTo
	// is the last record dropped from kept for lack of room: a new child
	// can be given every record it needs only once the checkpoint is at or
	// beyond it.
	kept      []keptBatch
	keptBytes int
	droppedTo checkpoint.Position

	buf []byte
}

type keptBatch struct {
	records []consumer.Record
	behind  time.Duration
	last    checkpoint.Position
	bytes   int
}

var (
	_ consumer.Processor         = (*shard)(nil)
	_ consumer.Initializer       = (*shard)(nil)
	_ consumer.ShardEnder        = (*shard)(nil)
	_ consumer.ShutdownRequester = (*shard)(nil)
	_ consumer.LeaseLoser        = (*shard)(nil)
	_ consumer.Closer            = (*shard)(nil)
)

// newShard is the Worker's Factory. It starts nothing: the child is started
// by Initialize, which has a context.
func (h *Host) newShard(info consumer.ShardInfo) (consumer.Processor, error) {
	return &shard{h: h, info: info, log: h.shardLog.With(zap.String("shard_id", info.ShardID))}, nil
}

// Initialize starts the shard's child and sends it initialize with the
// lease's checkpoint. On an error the Worker calls it again after a
// backoff.
func (s *shard) Initialize(ctx context.Context, in consumer.InitInput) error {
	s.start = in.Checkpoint
	return s.spawn(ctx, in.Checkpoint)
}

// spawn starts a child and initializes it at checkpoint at.
func (s *shard) spawn(ctx context.Context, at checkpoint.Position) error {
	c, err := s.h.startChild(ctx, s.info.ShardID, s.h.log)
	if err != nil {
		s.log.Error("cannot start the record processor", zap.Strings("executable", s.h.props.Executable), zap.Error(err))
		return fmt.Errorf("host: starting the child of %s: %w", s.info.ShardID, err)
	}
	seq, sub := at.SequenceNumber(), at.SubSequenceNumber()
	s.buf = protocol.AppendInitialize(s.buf[:0], protocol.Initialize{
		ShardID: s.info.ShardID, SequenceNumber: &seq, SubSequenceNumber: &sub,
	})
	if err := c.Call(ctx, s.buf, "initialize", noCheckpointer); err != nil {
		s.kill(c, err)
		return err
	}
	s.c, s.final, s.sent, s.from = c, false, checkpoint.Position{}, at
	s.log.Debug("record processor started", zap.Int("pid", c.PID()), zap.Stringer("checkpoint", at))
	return nil
}

// respawn replaces a failed child: a new one initialized at the last
// checkpoint and given the kept records after it.
func (s *shard) respawn(ctx context.Context) error {
	at := s.start
	if s.cp != nil {
		at = s.cp.Last()
	}
	if !s.droppedTo.IsZero() && at.Compare(s.droppedTo) < 0 {
		return errCannotReplay
	}
	if err := s.spawn(ctx, at); err != nil {
		return err
	}
	replayed := 0
	for _, k := range s.kept {
		recs := s.after(k.records)
		if len(recs) == 0 {
			continue
		}
		if err := s.send(ctx, recs, k.behind); err != nil {
			return err
		}
		replayed += len(recs)
	}
	s.trim() // not during the loop, which ranges over s.kept
	s.h.replayed.Add(int64(replayed))
	s.log.Info("record processor replaced", zap.Int("pid", s.c.PID()), zap.Stringer("checkpoint", at),
		zap.Int("records_replayed", replayed))
	return nil
}

// ProcessRecords sends the batch to the child and answers its checkpoint
// requests until it replies. If the child fails, it is killed and the error
// returned, so that the Worker delivers the batch again to a new child.
func (s *shard) ProcessRecords(ctx context.Context, b *consumer.Batch) error {
	s.cp = b.Checkpointer
	if len(b.Records) == 0 && !s.h.props.CallProcessRecordsEvenForEmptyRecordList {
		return nil
	}
	if s.c == nil {
		if err := s.respawn(ctx); err != nil {
			return err
		}
	}
	if recs := s.after(b.Records); len(recs) > 0 || len(b.Records) == 0 {
		if err := s.send(ctx, recs, b.MillisBehindLatest); err != nil {
			return err
		}
	}
	s.keep(b)
	return nil
}

// after returns the records of recs after the current child's initialize
// position (all of them unless it is a record's).
func (s *shard) after(recs []consumer.Record) []consumer.Record {
	if !s.from.IsSequence() {
		return recs
	}
	i := 0
	for i < len(recs) && position(&recs[i]).Compare(s.from) <= 0 {
		i++
	}
	return recs[i:]
}

// send makes one processRecords call on the child. The message is encoded
// and written in pieces of about chunkSize, so a shard never holds a large
// batch encoded: its buffer stays at one piece (plus one record) for the
// life of the lease.
func (s *shard) send(ctx context.Context, recs []consumer.Record, behind time.Duration) error {
	if n := len(recs); n > 0 {
		s.sent = position(&recs[n-1])
	}
	ms := behind.Milliseconds()
	write := func(w io.Writer) error {
		s.buf = protocol.AppendProcessRecordsStart(s.buf[:0])
		for i := range recs {
			r := &recs[i]
			s.buf = protocol.AppendRecord(s.buf, &protocol.Record{
				Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: r.SequenceNumber,
				SubSequenceNumber: r.SubSequenceNumber, ArrivalTime: r.ApproximateArrivalTimestamp,
			}, i == 0)
			if len(s.buf) >= chunkSize {
				if _, err := w.Write(s.buf); err != nil {
					return err
				}
				s.buf = s.buf[:0]
			}
		}
		s.buf = protocol.AppendProcessRecordsEnd(s.buf, &ms)
		_, err := w.Write(s.buf)
		return err
	}
	c := s.c
	err := c.CallWith(ctx, "processRecords", write, s.answer(ctx, false))
	if cap(s.buf) > 4*chunkSize {
		s.buf = nil // one huge record grew it: do not keep that for the lease's life
	}
	if err != nil {
		s.kill(c, err)
		return err
	}
	return nil
}

// chunkSize is how much of a processRecords message a shard encodes before
// writing it to the child: the size of a Linux pipe's buffer.
const chunkSize = 64 << 10

// keep remembers b for a replacement child, dropping the oldest kept
// batches beyond maxKeptBytes.
func (s *shard) keep(b *consumer.Batch) {
	if len(b.Records) == 0 {
		return
	}
	k := keptBatch{records: b.Records, behind: b.MillisBehindLatest, last: position(&b.Records[len(b.Records)-1])}
	for i := range b.Records {
		r := &b.Records[i]
		k.bytes += len(r.Data) + len(r.PartitionKey) + len(r.SequenceNumber)
	}
	s.kept = append(s.kept, k)
	s.keptBytes += k.bytes
	s.trim()
	for s.keptBytes > maxKeptBytes && len(s.kept) > 0 {
		s.droppedTo = s.kept[0].last
		s.keptBytes -= s.kept[0].bytes
		s.kept[0] = keptBatch{}
		s.kept = s.kept[1:]
	}
}

// trim drops the kept batches the last checkpoint covers.
func (s *shard) trim() {
	if s.cp == nil {
		return
	}
	last := s.cp.Last()
	n := 0
	for n < len(s.kept) && s.kept[n].last.Compare(last) <= 0 {
		s.keptBytes -= s.kept[n].bytes
		s.kept[n] = keptBatch{}
		n++
	}
	s.kept = s.kept[n:]
	if len(s.kept) == 0 {
		s.kept = nil // let the backing array go
	}
}

// ShardEnded sends shardEnded and answers the child's checkpoint requests.
// When it returns nil the Worker writes SHARD_END, also when the child did
// not checkpoint (the Java host would retry the shard's shutdown forever,
// leaving its children unprocessed).
func (s *shard) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	s.cp = cp
	if s.c == nil {
		if err := s.respawn(ctx); err != nil {
			return err
		}
	}
	c := s.c
	s.buf = protocol.AppendShardEnded(s.buf[:0])
	if err := c.Call(ctx, s.buf, "shardEnded", s.answer(ctx, true)); err != nil {
		s.kill(c, err)
		return err
	}
	s.final = true
	if cp.Last().Kind() != checkpoint.KindShardEnd {
		s.log.Warn("the record processor did not checkpoint at shardEnded; writing SHARD_END for it")
	}
	return nil
}

// ShutdownRequested sends shutdownRequested (graceful stop or handoff) and
// answers the child's checkpoint requests. leaseLost follows in Close,
// once the lease is given up.
func (s *shard) ShutdownRequested(ctx context.Context, cp *consumer.Checkpointer) error {
	s.cp = cp
	if s.c == nil {
		// Not worth a new child while stopping: the records since the last
		// checkpoint go to the next owner.
		return errors.New("host: no record processor running to ask for a final checkpoint")
	}
	c := s.c
	s.buf = protocol.AppendShutdownRequested(s.buf[:0])
	if err := c.Call(ctx, s.buf, "shutdownRequested", s.answer(ctx, false)); err != nil {
		s.kill(c, err)
		return err
	}
	return nil
}

// LeaseLost sends leaseLost, unless the child had its final call already:
// the child can no longer checkpoint.
func (s *shard) LeaseLost(ctx context.Context) {
	if s.c == nil || s.final {
		return
	}
	c := s.c
	s.buf = protocol.AppendLeaseLost(s.buf[:0])
	if err := c.Call(ctx, s.buf, "leaseLost", noCheckpointer); err != nil {
		s.kill(c, err)
		return
	}
	s.final = true
}

// Close ends the child, last: leaseLost if it has not had a final call yet
// (after shutdownRequested, or when processing ended otherwise), then end
// of input, and waits for it to exit (killing it when ctx ends first).
func (s *shard) Close(ctx context.Context, _ consumer.LeaseEvent) {
	s.LeaseLost(ctx)
	c := s.c
	if c == nil {
		return
	}
	s.c = nil
	if err := c.Close(ctx); err != nil {
		s.log.Warn("record processor did not exit cleanly", zap.Int("pid", c.PID()), zap.Error(err))
	}
	s.h.forget(c)
	s.kept, s.keptBytes = nil, 0
}

// kill kills a child that failed a call. A call cancelled by its context
// (the lease was lost, or the stop's deadline passed) is not the child's
// failure: it is killed because its shard must stop now.
func (s *shard) kill(c *child.Child, err error) {
	if ce := (*child.CallError)(nil); errors.As(err, &ce) && ce.Reason == child.ReasonCanceled {
		s.log.Info("lease lost or stop deadline passed during a call; killing the record processor",
			zap.Int("pid", c.PID()), zap.Error(err))
	} else {
		s.h.failed.Add(1)
		s.log.Error("record processor failed; killing it (a new one gets the records again from the last checkpoint)",
			zap.Int("pid", c.PID()), zap.Error(err))
	}
	_ = c.Kill()
	s.h.forget(c)
	if s.c == c {
		s.c = nil
	}
}

// answer returns the checkpoint callback of a call: it checkpoints through
// the lease's Checkpointer and names failures as the Java host does. A
// request without a sequence number checkpoints the last record sent to
// this child or, during shardEnded, the shard's end.
func (s *shard) answer(ctx context.Context, shardEnded bool) func(protocol.CheckpointRequest) protocol.CheckpointError {
	return func(req protocol.CheckpointRequest) protocol.CheckpointError {
		cp := s.cp
		if cp == nil {
			return protocol.InvalidStateException
		}
		var err error
		switch {
		case req.SubSequenceNumber != nil && *req.SubSequenceNumber < 0:
			return protocol.IllegalArgumentException
		case req.SequenceNumber != nil:
			var sub uint64
			if req.SubSequenceNumber != nil {
				sub = uint64(*req.SubSequenceNumber)
			}
			err = cp.CheckpointAt(ctx, *req.SequenceNumber, sub)
		case shardEnded:
			err = cp.Checkpoint(ctx)
		case s.sent.IsZero():
			return "" // nothing sent to this child yet: nothing to checkpoint
		default:
			err = cp.CheckpointAt(ctx, s.sent.SequenceNumber(), s.sent.SubSequenceNumber())
		}
		name := checkpointError(err)
		if name != "" {
			s.log.Warn("checkpoint refused", zap.Stringp("sequence_number", req.SequenceNumber),
				zap.String("error", string(name)), zap.Error(err))
		}
		return name
	}
}

// noCheckpointer answers a checkpoint request during initialize and
// leaseLost, which have no checkpointer, as the Java host does.
func noCheckpointer(protocol.CheckpointRequest) protocol.CheckpointError {
	return protocol.InvalidStateException
}

// checkpointError names err as the Java host's checkpointer would.
func checkpointError(err error) protocol.CheckpointError {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, checkpoint.ErrInvalid):
		return protocol.IllegalArgumentException
	case errors.Is(err, lease.ErrLeaseLost), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return protocol.ShutdownException
	case errors.Is(err, lease.ErrThrottled):
		return protocol.ThrottlingException
	case errors.Is(err, dynamolease.ErrTableNotFound):
		return protocol.InvalidStateException
	default:
		return protocol.KinesisClientLibDependencyException
	}
}

// position is r's position; records from the Worker always have a valid one.
func position(r *consumer.Record) checkpoint.Position {
	p, err := checkpoint.At(r.SequenceNumber, r.SubSequenceNumber)
	if err != nil {
		return checkpoint.Position{}
	}
	return p
}
