package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/deaggregate"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/checkpointing"
	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/internal/retrieval"
	"github.com/kclgo/kcl/internal/shardsync"
	"github.com/kclgo/kcl/lease"
)

// shardRun is the state of one shard goroutine: one acquired lease from the
// wait for its parents to the last batch.
type shardRun struct {
	w       *Worker
	h       *leasing.Held
	l       lease.Lease // as acquired
	shardID string
	log     *zap.Logger
	tr      *checkpointing.Tracker // checkpoint bounds; only the Worker raises them
	cp      *Checkpointer          // the processor's view of tr
	proc    Processor
	pol     dispatchPolicy
	// stop is the held lease's context: done when the shard must stop
	// (graceful stop, handoff, lease lost).
	stop context.Context
	// lastAuto is when the Worker last checkpointed for CheckpointEvery.
	lastAuto time.Time
	// children are the child shard ids of a closed shard, set before its
	// last batch is delivered, so that a SHARD_END the processor writes
	// itself carries them (see shardWriter).
	children atomic.Pointer[[]string]
	// drain is Run's drain context, ended at the shutdown deadline (see
	// Worker.Run).
	drain context.Context
	// st is the shard's state for Worker.Health.
	st *shardStatus
}

func newShardRun(w *Worker, h *leasing.Held) *shardRun {
	l := h.Lease()
	id := l.Key
	if l.ShardID != "" {
		id = l.ShardID
	}
	s := &shardRun{w: w, h: h, l: l, shardID: id, stop: h.Context(), st: w.status.add(id)}
	s.log = w.log.With(zap.String("shard_id", id))
	s.pol = w.cfg.dispatchPolicy(nil)
	s.pol.stop = s.stop
	s.pol.onRetry = func(attempts int, err error, delay time.Duration) {
		s.st.failed(err)
		s.log.Warn("batch failed; delivering it again", zap.Int("attempts", attempts), zap.Duration("backoff", delay), zap.Error(err))
		s.processorFailed(MethodProcessRecords, attempts, err, delay, true)
	}
	s.pol.onGiveUp = func(attempts int, err error) {
		s.st.failed(err)
		s.processorFailed(MethodProcessRecords, attempts, err, 0, false)
	}
	return s
}

// processorFailed reports a failed processor call to ProcessorErrorHooks.
func (s *shardRun) processorFailed(method string, attempts int, err error, delay time.Duration, retry bool) {
	if len(s.w.cfg.hooks.procErr) == 0 {
		return
	}
	var pe *PanicError
	s.w.cfg.hooks.processorFailed(ProcessorErrorInfo{
		StreamName: s.w.streamName, WorkerID: s.w.cfg.workerID, ShardID: s.shardID,
		Method: method, Attempts: attempts, Err: err, Panicked: errors.As(err, &pe), Retry: retry, Delay: delay,
	})
}

// run processes the shard until it ends, the lease is lost or given up, and
// returns the lease event that describes why it stopped. drain is Run's
// drain context, cancelled at the shutdown deadline.
func (s *shardRun) run(drain context.Context) LeaseEvent {
	s.drain = drain
	// pctx is the processor's context: cancelled only when the lease is lost
	// (or at the shutdown deadline), so that a graceful stop or handoff
	// lets the in-flight batch finish.
	pctx, cancel := context.WithCancelCause(drain)
	defer cancel(nil)
	unwatch := context.AfterFunc(s.stop, func() {
		if cause := context.Cause(s.stop); errors.Is(cause, lease.ErrLeaseLost) {
			cancel(cause)
		}
	})
	defer unwatch()

	if s.l.Finished() {
		return LeaseEvent{Kind: LeaseReleased, Cause: errors.New("shard already finished")}
	}
	if err := s.waitForParents(); err != nil {
		s.st.set(ShardStopping)
		return s.stopped(err)
	}
	s.st.set(ShardInitializing)
	if err := s.start(pctx); err != nil {
		s.st.set(ShardStopping)
		return s.stopped(err)
	}
	s.st.set(ShardProcessing)
	ev := s.loop(pctx)
	s.st.set(ShardStopping)
	return ev
}

// stopped turns the reason processing ended before the first batch into a
// lease event.
func (s *shardRun) stopped(err error) LeaseEvent {
	if errors.Is(err, lease.ErrLeaseLost) {
		return LeaseEvent{Kind: LeaseLost, Cause: err}
	}
	return LeaseEvent{Kind: LeaseReleased, Cause: err}
}

// waitForParents blocks until every parent shard's lease is at SHARD_END or
// gone (shardsync.Ready), or the lease must stop.
func (s *shardRun) waitForParents() error {
	if len(s.l.ParentShardIDs) == 0 {
		return nil
	}
	logged := false
	for {
		byKey := make(map[string]lease.Lease, len(s.l.ParentShardIDs))
		var readErr error
		for _, p := range s.l.ParentShardIDs {
			pl, err := s.w.store.Get(s.stop, s.w.leaseKey(p))
			switch {
			case err == nil:
				byKey[p] = pl
			case errors.Is(err, lease.ErrNotFound):
			default:
				readErr = err
			}
		}
		if readErr == nil {
			ready, waiting := shardsync.Ready(s.l, byKey)
			if ready {
				return nil
			}
			if !logged {
				s.log.Info("waiting for parent shards to finish", zap.Strings("parents", waiting))
				logged = true
			}
		} else if s.stop.Err() == nil {
			s.log.Warn("reading parent leases failed", zap.Error(readErr))
		}
		if err := wait(s.stop, s.w.cfg.parentPoll); err != nil {
			return err
		}
	}
}

// start creates and initializes the processor and the checkpointer.
func (s *shardRun) start(pctx context.Context) error {
	info := ShardInfo{
		StreamName:     s.w.streamName,
		StreamARN:      s.w.streamARN,
		ShardID:        s.shardID,
		ParentShardIDs: slices.Clone(s.l.ParentShardIDs),
	}
	if s.l.HashRange != nil {
		info.HashRange = *s.l.HashRange
	}
	proc, err := newProcessor(s.w.factory, info)
	if err != nil {
		s.log.Error("the Factory failed; giving the lease up", zap.Error(err))
		s.processorFailed(MethodNewProcessor, 1, err, 0, false)
		return err
	}
	s.proc = proc

	last := s.l.Checkpoint
	if last.IsZero() {
		// Every lease has a checkpoint; a store that lost it must not lose
		// records: start at the oldest one.
		s.log.Warn("lease has no checkpoint; starting at TRIM_HORIZON")
		last = checkpoint.TrimHorizon
	}
	wr := &shardWriter{h: s.h, hooks: &s.w.cfg.hooks, stream: s.w.streamName, workerID: s.w.cfg.workerID, shardID: s.shardID, children: &s.children}
	s.tr = checkpointing.New(wr, last, s.l.PendingCheckpoint, s.l.PendingCheckpointState)
	s.cp = &Checkpointer{t: s.tr}
	s.l.Checkpoint = last

	init, ok := proc.(Initializer)
	if !ok {
		return nil
	}
	in := InitInput{Shard: info, Checkpoint: last, PendingCheckpoint: s.l.PendingCheckpoint}
	if s.l.PendingCheckpointState != nil {
		in.PendingState = append([]byte(nil), s.l.PendingCheckpointState...)
	}
	for attempt := 0; ; attempt++ {
		err := protect(func() error { return init.Initialize(pctx, in) })
		if err == nil {
			return nil
		}
		delay := s.pol.backoff.Delay(attempt)
		s.log.Warn("Initialize failed; trying again", zap.Int("attempts", attempt+1), zap.Duration("backoff", delay), zap.Error(err))
		s.processorFailed(MethodInitialize, attempt+1, err, delay, true)
		s.st.failed(err)
		if err := wait(s.stop, delay); err != nil {
			return err
		}
	}
}

// newProcessor calls f, turning a panic or a nil Processor into an error.
func newProcessor(f Factory, info ShardInfo) (p Processor, err error) {
	err = protect(func() error {
		var err error
		p, err = f.NewProcessor(info)
		return err
	})
	if err == nil && p == nil {
		err = errors.New("consumer: Factory returned a nil Processor")
	}
	return p, err
}

// protect calls f, turning a panic into a *PanicError.
func protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// newReader returns the shard's reader in the Worker's retrieval mode,
// starting at the lease's checkpoint.
func (s *shardRun) newReader() (retrieval.Reader, error) {
	shard := retrieval.Shard{ShardID: s.shardID, HashRange: s.l.HashRange, Start: s.l.Checkpoint}
	if s.w.byARN {
		shard.StreamARN = s.w.streamARN
	} else {
		shard.StreamName = s.w.streamName
	}
	if shard.Start.Kind() == checkpoint.KindAtTimestamp {
		if s.w.cfg.initialTimestamp.IsZero() {
			s.log.Warn("lease is at AT_TIMESTAMP but this worker has no WithInitialTimestamp; starting at TRIM_HORIZON")
			shard.Start = checkpoint.TrimHorizon
		} else {
			shard.Timestamp = s.w.cfg.initialTimestamp
		}
	}
	cfg := retrieval.Config{
		Shard: shard,
		Mode:  s.w.readMode(),
		OnError: func(e *deaggregate.RecordError) {
			s.log.Warn("KPL aggregate passed through or dropped", zap.Error(e))
			if len(s.w.cfg.hooks.aggregate) > 0 {
				s.w.cfg.hooks.aggregateFailed(AggregateInfo{
					StreamName: s.w.streamName, WorkerID: s.w.cfg.workerID, ShardID: s.shardID,
					SequenceNumber: e.SequenceNumber, Dropped: errors.Is(e, deaggregate.ErrOutOfRange), Err: e.Err,
				})
			}
		},
	}
	h := &s.w.cfg.hooks
	cfg.Hooks.Call = func(c retrieval.CallInfo) {
		s.st.fetched(c.Op, c.Err, c.MillisBehindLatest)
		if len(h.fetch) > 0 {
			h.fetched(FetchInfo{
				StreamName: s.w.streamName, WorkerID: s.w.cfg.workerID, ShardID: s.shardID,
				Op: c.Op, Duration: c.Duration, Records: c.Records, Bytes: c.Bytes,
				MillisBehindLatest: c.MillisBehindLatest, Throttled: c.Kind == awserr.Throttled, Err: c.Err,
				Kind: errorKind(c.Kind), Renewal: c.Renewal,
			})
		}
	}
	return retrieval.NewReader(s.w.api, cfg)
}

// loop fetches and delivers batches until the shard ends or must stop.
func (s *shardRun) loop(pctx context.Context) LeaseEvent {
	f, err := s.newReader()
	if err != nil {
		s.log.Error("cannot read the shard", zap.Error(err))
		return LeaseEvent{Kind: LeaseReleased, Cause: err}
	}

	// The fetcher stops as soon as the lease must stop; batches already
	// fetched are not delivered.
	fctx, stopFetch := context.WithCancelCause(pctx)
	defer stopFetch(nil)
	unwatch := context.AfterFunc(s.stop, func() { stopFetch(context.Cause(s.stop)) })
	defer unwatch()
	batches := make(chan retrieval.Batch)
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- f.Run(fctx, batches) }()
	defer func() {
		stopFetch(errors.New("consumer: shard loop returned"))
		<-fetchErr
	}()

	for {
		var rb retrieval.Batch
		select {
		case <-s.stop.Done():
			return s.shutdown(pctx)
		case err := <-fetchErr:
			fetchErr <- nil // for the deferred receive
			return s.fetchFailed(pctx, err)
		case rb = <-batches:
		}
		if s.stop.Err() != nil {
			return s.shutdown(pctx)
		}
		ev, done := s.process(pctx, rb)
		if done {
			return ev
		}
	}
}

// fetchFailed handles the end of the fetcher before the shard's end.
func (s *shardRun) fetchFailed(pctx context.Context, err error) LeaseEvent {
	if s.stop.Err() != nil {
		return s.shutdown(pctx)
	}
	if pctx.Err() != nil {
		return LeaseEvent{Kind: LeaseLost, Cause: context.Cause(pctx)}
	}
	if errors.Is(err, retrieval.ErrStreamNotFound) {
		s.w.fail(fmt.Errorf("%w: %s: %w", ErrStreamNotFound, s.w.streamName, err))
		return s.shutdown(pctx)
	}
	if awserr.Classify(err) == awserr.Denied {
		s.w.fail(fmt.Errorf("consumer: reading shard %s: %w", s.shardID, err))
		return s.shutdown(pctx)
	}
	s.log.Error("reading the shard failed; giving the lease up", zap.Error(err))
	return LeaseEvent{Kind: LeaseReleased, Cause: err}
}

// process delivers one fetched batch and applies the checkpoint policy;
// done reports that the shard's processing is over.
func (s *shardRun) process(pctx context.Context, rb retrieval.Batch) (ev LeaseEvent, done bool) {
	b := &Batch{
		ShardID:            s.shardID,
		Records:            rb.Records,
		MillisBehindLatest: rb.MillisBehindLatest,
		Checkpointer:       s.cp,
	}
	var childIDs []string
	if rb.ShardEnd {
		// Children are leased before the parent's last batch is delivered:
		// whatever the processor checkpoints, SHARD_END is never written
		// before its children have leases.
		b.AtShardEnd = true
		b.ChildShards, childIDs = s.createChildren(pctx, rb.ChildShards)
		s.children.Store(&childIDs)
	}
	if n := len(b.Records); n > 0 {
		r := &b.Records[n-1]
		if p, err := checkpoint.At(r.SequenceNumber, r.SubSequenceNumber); err == nil {
			s.tr.Delivered(p)
		}
	}
	if rb.ShardEnd {
		s.tr.AtShardEnd()
	}
	start := time.Now()
	out, err := deliver(pctx, s.proc, b, s.pol)
	if err != nil {
		if errors.Is(err, errAbandoned) {
			// Neither ShutdownRequested nor the checkpoint policy: both
			// would checkpoint past the failed batch.
			s.log.Warn("giving the lease up with a failing batch unprocessed; the next owner delivers it again", zap.Error(err))
			return LeaseEvent{Kind: LeaseReleased, Cause: err}, true
		}
		if errors.Is(err, ErrShardStopped) {
			s.log.Error("error handler stopped the shard; giving the lease up", zap.Error(err))
			return LeaseEvent{Kind: LeaseReleased, Cause: err}, true
		}
		return s.lost(pctx, err), true
	}
	s.st.processed(time.Now())
	if out.skipped != nil {
		s.log.Error("batch skipped by the error handler", zap.String("first", out.skipped.First.String()),
			zap.String("last", out.skipped.Last.String()), zap.Int("records", out.skipped.Records),
			zap.Int("attempts", out.skipped.Attempts), zap.Error(out.skipped.Err))
	}
	if len(s.w.cfg.hooks.batch) > 0 {
		bytes, aggregates := 0, 0
		last := ""
		for i := range b.Records {
			r := &b.Records[i]
			bytes += len(r.Data)
			if r.Aggregated && r.SequenceNumber != last {
				aggregates++
				last = r.SequenceNumber
			}
		}
		s.w.cfg.hooks.batchProcessed(BatchInfo{
			StreamName: s.w.streamName, WorkerID: s.w.cfg.workerID, ShardID: s.shardID,
			Records: len(b.Records), Bytes: bytes, Aggregates: aggregates, MillisBehindLatest: b.MillisBehindLatest,
			Latency: time.Since(start), Attempts: out.attempts, Skipped: out.skipped,
		})
	}
	if rb.ShardEnd {
		return s.shardEnd(pctx, childIDs), true
	}
	if err := s.autoCheckpoint(pctx, false); errors.Is(err, lease.ErrLeaseLost) {
		return s.lost(pctx, err), true
	}
	return LeaseEvent{}, false
}

// autoCheckpoint applies the checkpoint policy after a processed batch or,
// with final set, before the lease is given up.
func (s *shardRun) autoCheckpoint(ctx context.Context, final bool) error {
	switch p := s.w.cfg.checkpointPolicy; p.kind {
	case checkpointAfterEachBatch:
	case checkpointEvery:
		now := time.Now()
		if s.lastAuto.IsZero() {
			s.lastAuto = now
		}
		if !final && now.Sub(s.lastAuto) < p.every {
			return nil
		}
		s.lastAuto = now
	default:
		return nil
	}
	err := s.tr.Checkpoint(ctx)
	if err != nil {
		s.log.Warn("checkpoint failed", zap.Error(err))
	}
	return err
}

// createChildren creates the leases of a closed shard's children, as
// shardsync.ChildLeases describes them, and returns the children and their
// ids for the parent's childShardIds. A merge child whose other parent has no
// lease is deferred (see shardsync.MissingParents); a child that cannot be
// created now is left to the next shard sync, which leases it at
// TRIM_HORIZON once its parents are finished.
func (s *shardRun) createChildren(ctx context.Context, children []types.ChildShard) ([]ChildShard, []string) {
	created := false
	if len(children) == 0 {
		return nil, nil
	}
	leases, err := shardsync.ChildLeases(s.l, children)
	if err != nil {
		s.log.Error("malformed child shards; leaving them to shard sync", zap.Error(err))
		s.w.requestSync()
		return nil, nil
	}
	out := make([]ChildShard, 0, len(leases))
	ids := make([]string, 0, len(leases))
	for _, c := range leases {
		out = append(out, ChildShard{ShardID: c.Key, ParentShardIDs: c.ParentShardIDs, HashRange: *c.HashRange})
		ids = append(ids, c.Key)
		byKey := map[string]lease.Lease{s.l.Key: s.l}
		for _, p := range c.ParentShardIDs {
			if p == s.l.Key {
				continue
			}
			if pl, err := s.w.store.Get(ctx, s.w.leaseKey(p)); err == nil {
				byKey[p] = pl
			}
		}
		if missing := shardsync.MissingParents(c, byKey); len(missing) > 0 {
			s.log.Info("child lease deferred until its other parent has a lease", zap.String("child", c.Key), zap.Strings("missing", missing))
			continue
		}
		err := s.w.retry(ctx, leaseTable, "lease table Create", func() error {
			err := s.w.store.Create(ctx, c)
			if errors.Is(err, lease.ErrAlreadyExists) {
				return nil
			}
			if err == nil {
				created = true
			}
			return err
		})
		if err != nil {
			s.log.Warn("creating a child lease failed; leaving it to shard sync", zap.String("child", c.Key), zap.Error(err))
			s.w.requestSync()
		}
	}
	if created {
		// kcl fleet: the leader assigns the children in its next round.
		s.w.coord.TableChanged(ctx)
	}
	return out, ids
}

// shardEnd finishes a closed shard after its last batch was processed.
func (s *shardRun) shardEnd(pctx context.Context, childIDs []string) LeaseEvent {
	if se, ok := s.proc.(ShardEnder); ok {
		if err := protect(func() error { return se.ShardEnded(pctx, s.cp) }); err != nil {
			s.log.Error("ShardEnded failed; not writing SHARD_END", zap.Error(err))
			s.processorFailed(MethodShardEnded, 1, err, 0, false)
			return LeaseEvent{Kind: LeaseReleased, Cause: err}
		}
	}
	if s.tr.Last().Kind() == checkpoint.KindShardEnd {
		// The processor wrote SHARD_END itself, with the children (see
		// shardWriter). The write may have completed a handoff: the lease
		// is no longer ours to write again.
		s.log.Info("shard finished", zap.Strings("children", childIDs))
		s.w.requestSync()
		return LeaseEvent{Kind: LeaseShardEnded}
	}
	err := s.w.retry(pctx, leaseTable, "lease table WriteShardEnd", func() error {
		start := time.Now()
		err := s.h.WriteShardEnd(pctx, childIDs)
		s.w.cfg.hooks.checkpointed(CheckpointInfo{
			StreamName: s.w.streamName, WorkerID: s.w.cfg.workerID, ShardID: s.shardID,
			Position: checkpoint.ShardEnd, Duration: time.Since(start), Err: err,
		})
		return err
	})
	if err != nil {
		if errors.Is(err, lease.ErrLeaseLost) {
			return s.lost(pctx, err)
		}
		s.log.Error("writing SHARD_END failed; the shard will be read again", zap.Error(err))
		return LeaseEvent{Kind: LeaseReleased, Cause: err}
	}
	s.log.Info("shard finished", zap.Strings("children", childIDs))
	s.w.requestSync()
	return LeaseEvent{Kind: LeaseShardEnded}
}

// shutdown ends processing of a lease the worker still holds (graceful
// stop or handoff): ShutdownRequested, then the checkpoint policy.
func (s *shardRun) shutdown(pctx context.Context) LeaseEvent {
	cause := context.Cause(s.stop)
	if errors.Is(cause, lease.ErrLeaseLost) || pctx.Err() != nil {
		return s.lost(pctx, cause)
	}
	if sr, ok := s.proc.(ShutdownRequester); ok {
		if err := protect(func() error { return sr.ShutdownRequested(pctx, s.cp) }); err != nil {
			s.log.Warn("ShutdownRequested failed", zap.Error(err))
			s.processorFailed(MethodShutdownRequested, 1, err, 0, false)
		}
	}
	_ = s.autoCheckpoint(pctx, true)
	return LeaseEvent{Kind: LeaseReleased, Cause: cause}
}

// lost ends processing of a lease the worker no longer holds.
func (s *shardRun) lost(pctx context.Context, err error) LeaseEvent {
	if cause := context.Cause(pctx); cause != nil {
		err = cause
	}
	s.log.Info("lease lost", zap.Error(err))
	if ll, ok := s.proc.(LeaseLoser); ok {
		// pctx is done; LeaseLost gets a context of its own, bounded by the
		// shutdown timeout and by the shutdown deadline.
		ctx, cancel := context.WithTimeout(s.drain, s.w.cfg.shutdownTimeout)
		defer cancel()
		if err := protect(func() error { ll.LeaseLost(ctx); return nil }); err != nil {
			s.processorFailed(MethodLeaseLost, 1, err, 0, false)
		}
	}
	return LeaseEvent{Kind: LeaseLost, Cause: err}
}

var _ checkpointing.Writer = (*shardWriter)(nil)

// shardWriter writes the processor's checkpoints through the held lease
// and reports them to CheckpointHooks. A SHARD_END is written with the
// shard's children, as the Worker writes it: it may be the last write this
// worker makes to the lease (a handoff completes with it).
type shardWriter struct {
	h        *leasing.Held
	hooks    *hooks
	stream   string
	workerID string
	shardID  string
	children *atomic.Pointer[[]string]
}

func (w *shardWriter) WriteCheckpoint(ctx context.Context, cp, pending checkpoint.Position, state []byte) error {
	start := time.Now()
	var err error
	if ids := w.children.Load(); ids != nil && cp.Kind() == checkpoint.KindShardEnd && pending.IsZero() {
		err = w.h.WriteShardEnd(ctx, *ids)
	} else {
		err = w.h.WriteCheckpoint(ctx, cp, pending, state)
	}
	w.hooks.checkpointed(CheckpointInfo{
		StreamName: w.stream, WorkerID: w.workerID, ShardID: w.shardID,
		Position: cp, Duration: time.Since(start), Err: err,
	})
	return err
}
