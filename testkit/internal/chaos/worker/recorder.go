package worker

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// recorder is the processor of every shard and the Worker's LeaseHook and
// CheckpointHook: it appends history lines to w. Its mutex keeps lines of
// concurrent shards whole; hooks write one short line each, to a local
// file, which does not block for long.
type recorder struct {
	worker string

	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	writeErr error // the first failed write
}

var (
	_ consumer.LeaseHook      = (*recorder)(nil)
	_ consumer.CheckpointHook = (*recorder)(nil)
)

// process logs a batch, one Processed line per user record, in one write.
// It returns only once the lines are written, so that the batch is
// checkpointed only after it was logged; a failed write fails the batch,
// which is then delivered again.
func (r *recorder) process(_ context.Context, b *consumer.Batch) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = r.buf[:0]
	for _, rec := range b.Records {
		key, n, err := checker.ParsePayload(rec.Data)
		if err != nil || key != rec.PartitionKey {
			// Not the producer's record: log it under its partition key with
			// an ordinal no run reaches, so that the checker counts it as
			// unexpected rather than the worker hiding it.
			key, n = rec.PartitionKey, foreignOrdinal
		}
		r.buf, err = history.AppendLine(r.buf, history.Processed{T: now, Worker: r.worker, Shard: b.ShardID,
			Seq: rec.SequenceNumber, Sub: rec.SubSequenceNumber, Key: key, N: n})
		if err != nil {
			return err
		}
	}
	return r.writeLocked()
}

// foreignOrdinal is the ordinal logged for a record whose payload is not
// checker.Payload(key, n) of its partition key. It is kept small enough for
// the checker's per-key slices.
const foreignOrdinal = 1_000_000

// LeaseChanged implements consumer.LeaseHook.
func (r *recorder) LeaseChanged(ev consumer.LeaseEvent) {
	now := time.Now()
	start := ev.Since
	if start.After(now) { // clocks agree on one host; be safe anyway
		start = now
	}
	r.line(history.LeaseEvent{T: now, Start: start, Worker: r.worker, Shard: ev.ShardID, Kind: history.LeaseKind(ev.Kind.String())})
}

// Checkpointed implements consumer.CheckpointHook.
func (r *recorder) Checkpointed(i consumer.CheckpointInfo) {
	if i.Position.IsZero() { // never written: stores reject it
		return
	}
	now := time.Now()
	pos, err := i.Position.MarshalText()
	if err != nil {
		pos = fmt.Appendf(nil, "%v", i.Position)
	}
	c := history.Checkpoint{T: now, Start: now.Add(-i.Duration), Worker: r.worker, Shard: i.ShardID, Position: string(pos)}
	if i.Err != nil {
		c.Err = i.Err.Error()
	}
	r.line(c)
}

func (r *recorder) line(l history.Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	r.buf, err = history.AppendLine(r.buf[:0], l)
	if err != nil {
		r.fail(err)
		return
	}
	_ = r.writeLocked() // recorded in writeErr
}

func (r *recorder) writeLocked() error {
	if len(r.buf) == 0 {
		return nil
	}
	if _, err := r.w.Write(r.buf); err != nil {
		r.fail(err)
		return err
	}
	return nil
}

func (r *recorder) fail(err error) {
	if r.writeErr == nil {
		r.writeErr = err
	}
}

// err returns the first write error.
func (r *recorder) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeErr
}
