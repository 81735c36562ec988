package consumer

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/shardsync"
	"github.com/kclgo/kcl/lease"
)

// leaseKey is the lease key of a shard of the Worker's stream. Single-stream
// applications key leases by shard id, as KCL does; multi-stream keys will
// be built here.
func (w *Worker) leaseKey(shardID string) string { return shardID }

// holeResync is how soon the shard-sync loop looks again after the
// coverage audit found a hole in the hash key space.
const holeResync = 5 * time.Second

// firstSync runs the shard sync Run starts with. Errors that retrying
// cannot fix — the stream or the lease table is missing, access is denied —
// are returned; Run then returns them without starting.
func (w *Worker) firstSync(ctx context.Context) error {
	for {
		_, err := w.syncPass(ctx)
		if !errors.Is(err, errSyncPassTimeout) {
			return err
		}
		w.log.Warn("shard sync took too long; trying again", zap.Duration("limit", w.cfg.shardSync))
	}
}

// errSyncPassTimeout ends a shard sync pass that ran longer than the
// shard-sync interval (see syncPass).
var errSyncPassTimeout = errors.New("consumer: shard sync pass timed out")

// syncPass is one syncShards bounded by the shard-sync interval, so that it
// never writes leases planned from a table read long ago. Together with the
// grace period of cleanup (see syncShards) this keeps a pass from creating
// again the lease of a shard that, after the pass read the table, was
// leased, processed to its end and cleaned up: a slow pass (throttled
// ListShards calls) would otherwise recreate it at TRIM_HORIZON, and the
// shard would be processed a second time after its children.
//
// Every pass is reported to ShardSyncHooks, except one that ctx cut short.
func (w *Worker) syncPass(ctx context.Context) (holes bool, err error) {
	pctx, cancel := context.WithTimeoutCause(ctx, w.cfg.shardSync, errSyncPassTimeout)
	defer cancel()
	info := ShardSyncInfo{StreamName: w.streamName, WorkerID: w.cfg.workerID}
	start := time.Now()
	holes, err = w.syncShards(pctx, &info)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), errSyncPassTimeout) {
		holes, err = true, errSyncPassTimeout
	}
	if err == nil {
		w.lastSync.Store(time.Now().UnixNano())
	}
	if ctx.Err() == nil && len(w.cfg.hooks.sync) > 0 {
		info.Duration, info.Holes, info.Err = time.Since(start), holes, err
		w.cfg.hooks.shardSynced(info)
	}
	return holes, err
}

// syncLoop runs a shard sync every shard-sync interval (with jitter), when
// a shard ends, and soon after the coverage audit found a hole, until ctx
// is done. A fatal error stops the Worker.
func (w *Worker) syncLoop(ctx context.Context) {
	t := time.NewTimer(jitter(w.cfg.shardSync))
	defer t.Stop()
	retry := false // the timer runs for a retry: a hole, or a pass that took too long
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.coord.Fleet() && !w.coord.Leading() && !retry {
				// kcl fleet: the leader alone syncs on the interval; a
				// follower syncs when a shard it processes ends, and
				// again soon while that sync leaves a hole (a merge's or
				// split's children are listed a moment after their
				// parents end).
				t.Reset(jitter(w.cfg.shardSync))
				continue
			}
		case <-w.syncNow:
			t.Stop()
		}
		holes, err := w.syncPass(ctx)
		retry = false
		switch {
		case errors.Is(err, errSyncPassTimeout):
			w.log.Warn("shard sync took too long; trying again soon", zap.Duration("limit", w.cfg.shardSync))
			t.Reset(holeResync)
			retry = true
		case err != nil && ctx.Err() == nil:
			w.fail(err)
			return
		case holes:
			t.Reset(holeResync)
			retry = true
		default:
			t.Reset(jitter(w.cfg.shardSync))
		}
	}
}

// jitter spreads d over [0.9d, 1.1d] so that a fleet started together does
// not list shards in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// syncShards lists the shards and the leases, creates the leases
// shardsync.NewLeases asks for, deletes those shardsync.Cleanup allows,
// and audits hash-key coverage. It reports whether a hole remains, and
// counts shards and leases in info. Failures that retrying fixes are
// retried; others are returned.
func (w *Worker) syncShards(ctx context.Context, info *ShardSyncInfo) (holes bool, err error) {
	var existing []lease.Lease
	read := time.Now() // when the table was read; see cleanable
	err = w.retry(ctx, leaseTable, "lease table List", func() error {
		var err error
		existing, err = w.store.List(ctx)
		var bad *lease.MalformedError
		if errors.As(err, &bad) {
			w.log.Error("lease table has items that are not leases; ignoring them", zap.Error(err))
			return nil
		}
		return err
	})
	if err != nil {
		return false, err
	}
	if err := checkSingleStream(existing); err != nil {
		return false, err // before any write: see checkSingleStream
	}
	var filter *types.ShardFilter
	if len(existing) == 0 {
		filter = w.initialFilter()
	}
	listed, err := w.listShards(ctx, filter)
	if err != nil {
		return false, err
	}
	info.Shards = len(listed)
	shards, err := shardsync.FromTypes(listed)
	if err != nil {
		// A malformed listing is Kinesis's problem, and may pass: keep the
		// leases as they are and try again at the next sync.
		w.log.Error("ListShards returned a malformed shard; skipping this sync", zap.Error(err))
		return true, nil
	}
	created := 0
	for _, l := range shardsync.NewLeases(shards, existing, w.cfg.initial) {
		err := w.retry(ctx, leaseTable, "lease table Create", func() error { return w.store.Create(ctx, l) })
		switch {
		case err == nil:
			created++
			existing = append(existing, l)
		case errors.Is(err, lease.ErrAlreadyExists):
			// Another worker created it a moment ago: it exists, and
			// covers its range for the audit below.
			existing = append(existing, l)
		default:
			return false, err
		}
	}
	deleted := 0
	for _, l := range w.cleanable(read, existing) {
		err := w.retry(ctx, leaseTable, "lease table Delete", func() error { return w.store.Delete(ctx, l) })
		switch {
		case err == nil:
			deleted++
			delete(w.finishedSince, l.Key)
		case errors.Is(err, lease.ErrConflict), errors.Is(err, lease.ErrNotFound):
		default:
			return false, err
		}
	}
	info.LeasesCreated, info.LeasesDeleted = created, deleted
	if created > 0 || deleted > 0 {
		w.log.Info("shard sync", zap.Int("shards", len(shards)), zap.Int("leases_created", created), zap.Int("leases_deleted", deleted))
		if created > 0 && w.coord != nil {
			w.coord.TableChanged(ctx) // kcl fleet: the leader assigns them in its next round
		}
	}
	if slices.ContainsFunc(existing, func(l lease.Lease) bool { return l.HashRange == nil }) {
		// Leases written by KCL 1.x have no hash range and cannot show
		// coverage: the audit would report the whole space (see
		// shardsync.Coverage).
		return false, nil
	}
	if gaps := shardsync.Coverage(existing); len(gaps) > 0 {
		strs := make([]string, len(gaps))
		for i, g := range gaps {
			strs[i] = g.Start.String() + "-" + g.End.String()
		}
		w.log.Warn("leases do not cover the whole hash key space; syncing again soon", zap.Strings("holes", strs))
		return true, nil
	}
	return false, nil
}

// initialFilter is the ListShards filter for an empty lease table: the
// shards open at the initial position, as KCL lists them.
func (w *Worker) initialFilter() *types.ShardFilter {
	switch w.cfg.initial.Kind() {
	case checkpoint.KindTrimHorizon:
		return &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}
	case checkpoint.KindAtTimestamp:
		ts := w.cfg.initialTimestamp
		return &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: &ts}
	default:
		return &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}
	}
}

// listShards reads every page of ListShards. Throttling (LimitExceeded) and
// transient failures are retried; an expired pagination token restarts the
// listing.
func (w *Worker) listShards(ctx context.Context, filter *types.ShardFilter) ([]types.Shard, error) {
	var all []types.Shard
	var token *string
	for {
		in := &kinesis.ListShardsInput{}
		if token != nil {
			in.NextToken = token
		} else {
			if w.byARN {
				in.StreamARN = &w.streamARN
			} else {
				in.StreamName = &w.streamName
			}
			in.ShardFilter = filter
		}
		var out *kinesis.ListShardsOutput
		err := w.retry(ctx, kinesisStream, "ListShards", func() error {
			var err error
			out, err = w.api.ListShards(ctx, in)
			return err
		})
		var expired *types.ExpiredNextTokenException
		switch {
		case errors.As(err, &expired):
			all, token = nil, nil
			continue
		case err != nil:
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil || *out.NextToken == "" {
			return all, nil
		}
		token = out.NextToken
	}
}

// cleanable returns the leases shardsync.Cleanup allows to delete that this
// worker has seen finished for at least twice the shard-sync interval. A
// pass is bounded by the interval (syncPass), so a pass that read the table
// before such a lease was created has ended before the lease can be
// deleted, and cannot create it again. read is when existing was read.
// Only the shard-sync goroutine calls it.
func (w *Worker) cleanable(read time.Time, existing []lease.Lease) []lease.Lease {
	seen := make(map[string]bool, len(existing))
	for _, l := range existing {
		if l.Finished() {
			seen[l.Key] = true
			if _, ok := w.finishedSince[l.Key]; !ok {
				w.finishedSince[l.Key] = read
			}
		}
	}
	for k := range w.finishedSince {
		if !seen[k] {
			delete(w.finishedSince, k) // deleted by another worker
		}
	}
	grace := 2 * w.cfg.shardSync
	var out []lease.Lease
	for _, l := range shardsync.Cleanup(existing) {
		if read.Sub(w.finishedSince[l.Key]) >= grace {
			out = append(out, l)
		}
	}
	return out
}
