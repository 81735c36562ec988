package consumer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// A finished lease is deleted only once this worker has seen it finished for
// twice the shard-sync interval, so that no sync pass still running (each is
// bounded by the interval) can have planned to create it from an older read
// of the table. Seen in a 20-minute chaos run before the grace existed: a
// pass slowed by throttled calls created a lease again for a shard that had
// meanwhile been processed to its end and cleaned up, and the shard was
// processed a second time, after its children.
func TestCleanupWaitsTwoSyncIntervalsAfterAFinishedLeaseIsSeen(t *testing.T) {
	w := &Worker{cfg: config{shardSync: time.Second}, finishedSince: make(map[string]time.Time)}
	full := hashkey.Range{End: hashkey.Max}
	started, _ := checkpoint.At("100", 0)
	leases := []lease.Lease{
		{Key: "p", Checkpoint: checkpoint.ShardEnd, ChildShardIDs: []string{"c"}, HashRange: &full},
		{Key: "c", Checkpoint: started, ParentShardIDs: []string{"p"}, HashRange: &full},
	}
	t0 := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 0}, {time.Second, 0}, {2*time.Second - time.Millisecond, 0}, {2 * time.Second, 1}} {
		if got := w.cleanable(t0.Add(tc.at), leases); len(got) != tc.want {
			t.Fatalf("%v after the finished lease was first seen: %d leases to delete, want %d", tc.at, len(got), tc.want)
		}
	}
}

// blockingList is a lease store whose List never returns before ctx ends.
type blockingList struct{ *memlease.Store }

func (b blockingList) List(ctx context.Context) ([]lease.Lease, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestASyncPassIsBoundedByTheSyncInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &Worker{cfg: config{shardSync: 3 * time.Second}, store: blockingList{memlease.New()},
			log: zap.NewNop(), finishedSince: make(map[string]time.Time)}
		start := time.Now()
		_, err := w.syncPass(t.Context())
		if !errors.Is(err, errSyncPassTimeout) {
			t.Fatalf("syncPass: %v, want errSyncPassTimeout", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("syncPass returned after %v, want the 3s interval", d)
		}
	})
}
