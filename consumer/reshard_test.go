package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// reshardSteps reshapes a 2-shard stream three ways, putting a wave of
// records after each: split shard 0 (children 2 and 3), merge 3 with 1
// (child 4), then UpdateShardCount to 3 (splits and merges of 2 and 4).
// Between steps it calls between, which may wait for processing.
func reshardSteps(t *testing.T, f *fakekinesis.Fake, keys int, between func(step, putSoFar int)) (total int) {
	t.Helper()
	ctx := t.Context()
	const wave = 50
	putRange(f, 0, wave, keys)
	between(0, wave)
	if _, err := f.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(streamName), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("85070591730234615865843651857942052864"), // 2^126
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	putRange(f, wave, 2*wave, keys)
	between(1, 2*wave)
	if _, err := f.MergeShards(ctx, &kinesis.MergeShardsInput{
		StreamName: aws.String(streamName), ShardToMerge: aws.String("shardId-000000000003"),
		AdjacentShardToMerge: aws.String("shardId-000000000001"),
	}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	putRange(f, 2*wave, 3*wave, keys)
	between(2, 3*wave)
	if _, err := f.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
		StreamName: aws.String(streamName), TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling,
	}); err != nil {
		t.Fatalf("UpdateShardCount: %v", err)
	}
	putRange(f, 3*wave, 4*wave, keys)
	between(3, 4*wave)
	return 4 * wave
}

// lineage returns the parents and the children of every shard of the
// stream, as the fake knows them.
func lineage(f *fakekinesis.Fake) (parents, children map[string][]string, closed []string) {
	parents, children = map[string][]string{}, map[string][]string{}
	for _, s := range f.Shards(streamName) {
		id := *s.ShardId
		for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
			if p != nil {
				parents[id] = append(parents[id], *p)
				children[*p] = append(children[*p], id)
			}
		}
		if s.SequenceNumberRange.EndingSequenceNumber != nil {
			closed = append(closed, id)
		}
	}
	for _, m := range []map[string][]string{parents, children} {
		for k := range m {
			slices.Sort(m[k])
		}
	}
	return parents, children, closed
}

// checkChildrenAfterParents checks, in delivery order, that no record of a
// child shard was processed before the last record of each of its parents.
func checkChildrenAfterParents(t *testing.T, f *fakekinesis.Fake, recs []delivered) {
	t.Helper()
	first, last := map[string]int{}, map[string]int{}
	for i, r := range recs {
		if _, ok := first[r.shard]; !ok {
			first[r.shard] = i
		}
		last[r.shard] = i
	}
	parents, _, _ := lineage(f)
	for child, ps := range parents {
		c, ok := first[child]
		if !ok {
			continue
		}
		for _, p := range ps {
			if l, ok := last[p]; ok && l > c {
				t.Errorf("child %s processed record %d before parent %s finished (its last record is %d)", child, c, p, l)
			}
		}
	}
}

func TestResharding(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		running bool // reshard while the workers run, rather than before
		fake    []fakekinesis.Option
		// selfCheckpoint: the processor checkpoints every batch itself,
		// under the manual policy, SHARD_END batches included.
		selfCheckpoint bool
		efo            bool // read through enhanced fan-out
	}{
		{name: "a lineage made before the worker starts is processed parents first", workers: 1},
		{name: "a lineage made before two workers start is processed parents first", workers: 2},
		{name: "shard ends reported in an empty response are handled", workers: 1, fake: []fakekinesis.Option{fakekinesis.WithEmptyShardEnd()}},
		{name: "resharding while one worker runs", workers: 1, running: true},
		{name: "resharding while two workers run", workers: 2, running: true},
		{name: "resharding while two workers run, shard ends in empty responses", workers: 2, running: true, fake: []fakekinesis.Option{fakekinesis.WithEmptyShardEnd()}},
		{name: "processors that checkpoint every batch themselves", workers: 2, selfCheckpoint: true},
		{name: "processors that checkpoint every batch themselves while resharding", workers: 2, running: true, selfCheckpoint: true},
		{name: "enhanced fan-out: a lineage made before two workers start", workers: 2, efo: true},
		{name: "enhanced fan-out: resharding while two workers run", workers: 2, running: true, efo: true},
		{name: "enhanced fan-out: closed shards that never end their subscriptions (kinesis-mock)", workers: 2, running: true, efo: true,
			fake: []fakekinesis.Option{fakekinesis.WithEndlessClosedShards()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := fakekinesis.New(append([]fakekinesis.Option{fakekinesis.WithStream(streamName, 2)}, tt.fake...)...)
				store := newRecordingStore()
				store.parentsOf = func(shard string) []string {
					parents, _, _ := lineage(f)
					return parents[shard]
				}
				j := &journal{}
				var rs []*running
				startAll := func() {
					policy, setup := consumer.CheckpointAfterEachBatch(), func(*proc) {}
					if tt.selfCheckpoint {
						policy, setup = consumer.CheckpointManual(), func(p *proc) {
							p.batch = func(ctx context.Context, b *consumer.Batch) error {
								return b.Checkpointer.Checkpoint(ctx)
							}
						}
					}
					newW := newWorker
					if tt.efo {
						newW = newEFOWorker
					}
					for i := range tt.workers {
						w := newW(t, f, store, factory(j, store, setup), fmt.Sprintf("w%d", i+1),
							consumer.WithCheckpointPolicy(policy),
							consumer.WithParentPollInterval(500*time.Millisecond),
							consumer.WithShardSyncInterval(5*time.Second))
						rs = append(rs, start(t, w))
					}
				}
				if tt.running {
					startAll()
				}
				total := reshardSteps(t, f, 16, func(step, n int) {
					if tt.running {
						// Reshard while part of the wave is still unread.
						time.Sleep(300 * time.Millisecond)
					}
				})
				if !tt.running {
					startAll()
				}
				waitFor(t, "every record", 2*time.Minute, func() bool { return j.count() >= total })
				time.Sleep(20 * time.Second)
				for _, r := range rs {
					if err := r.stop(); err != nil {
						t.Errorf("Run: %v", err)
					}
				}
				checkNoWorkerGoroutines(t)

				if calls := f.Stats().Calls; tt.efo && (calls["SubscribeToShard"] == 0 || calls["GetRecords"] > 0 && tt.fake == nil) {
					t.Errorf("enhanced fan-out made %d SubscribeToShard and %d GetRecords calls, want subscriptions only",
						calls["SubscribeToShard"], calls["GetRecords"])
				}
				recs := j.records()
				checkExactlyOnce(t, recs, 0, total)
				checkOrder(t, recs)
				checkChildrenAfterParents(t, f, recs)
				j.checkNoViolations(t)

				parents, children, closed := lineage(f)
				store.mu.Lock()
				defer store.mu.Unlock()
				for _, e := range store.errs {
					t.Error(e)
				}
				for _, id := range closed {
					got, ok := store.shardEnd[id]
					if !ok {
						t.Errorf("closed shard %s: SHARD_END never written", id)
						continue
					}
					if !slices.Equal(got, children[id]) {
						t.Errorf("closed shard %s: SHARD_END written with children %v, want %v", id, got, children[id])
					}
				}
				for id, ps := range parents {
					l, ok := store.created[id]
					if !ok {
						t.Errorf("child shard %s: no lease created", id)
						continue
					}
					if got := slices.Sorted(slices.Values(l.ParentShardIDs)); !slices.Equal(got, ps) {
						t.Errorf("child shard %s: lease created with parents %v, want %v", id, got, ps)
					}
					if l.Checkpoint != checkpoint.TrimHorizon {
						t.Errorf("child shard %s: lease created at %v, want TRIM_HORIZON", id, l.Checkpoint)
					}
				}
				ended := j.eventsOf("ended")
				slices.Sort(ended)
				if !slices.Equal(ended, closed) {
					t.Errorf("ShardEnded called for %v, want once for every closed shard %v", ended, closed)
				}
			})
		})
	}
}

func TestParentLeasesAreDeletedOnceTheirChildrenStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		j := &journal{}
		w := newWorker(t, f, store, factory(j, store, nil), "w1",
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch()),
			consumer.WithShardSyncInterval(3*time.Second))
		r := start(t, w)
		total := reshardSteps(t, f, 64, func(step, n int) {
			waitFor(t, "the wave", time.Minute, func() bool { return j.count() >= n })
		})
		_, _, closed := lineage(f)
		waitFor(t, "parent leases deleted", time.Minute, func() bool {
			leases := leaseMap(store)
			for _, id := range closed {
				if _, ok := leases[id]; ok {
					return false
				}
			}
			return true
		})
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		recs := j.records()
		checkExactlyOnce(t, recs, 0, total)
		checkOrder(t, recs)
		j.checkNoViolations(t)

		// What is left is one lease per open shard, each checkpointed at its
		// last record.
		var open []string
		for _, s := range f.Shards(streamName) {
			if s.SequenceNumberRange.EndingSequenceNumber == nil {
				open = append(open, *s.ShardId)
			}
		}
		leases := leaseMap(store)
		var keys []string
		for k, l := range leases {
			keys = append(keys, k)
			rs := f.Records(streamName, k)
			if len(rs) == 0 {
				t.Errorf("open shard %s got no records; the test needs some in each", k)
				continue
			}
			if want, _ := checkpoint.At(*rs[len(rs)-1].SequenceNumber, 0); l.Checkpoint != want {
				t.Errorf("lease %s at %v, want %v", k, l.Checkpoint, want)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, open) {
			t.Errorf("leases left %v, want those of the open shards %v", keys, open)
		}
	})
}

// Leases written by KCL 1.x have no hash range, so the coverage audit
// cannot use them (shardsync.Coverage): a table holding one must not be
// reported as a hole and re-synced every few seconds.
func TestLeasesWithoutAHashRangeDoNotTriggerEarlySyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 2))
		store := memlease.New()
		for _, s := range f.Shards(streamName) {
			store.Put(lease.Lease{Key: *s.ShardId, Checkpoint: checkpoint.TrimHorizon}) // no HashRange
		}
		j := &journal{}
		putRange(f, 0, 20, 4)
		w := newWorker(t, f, store, factory(j, store, nil), "w1")
		r := start(t, w)
		time.Sleep(150 * time.Second) // two and a half shard-sync intervals
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkExactlyOnce(t, j.records(), 0, 20)
		if n := f.Stats().Calls["ListShards"]; n > 3 {
			t.Errorf("%d ListShards calls in 150s, want at most 3 (the first sync and two periodic ones)", n)
		}
	})
}

func TestALeaseWithoutAHashRangeFollowsASplit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
		store := memlease.New()
		store.Put(lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.TrimHorizon}) // as KCL 1.x wrote it
		putRange(f, 0, 10, 4)
		if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
			StreamName: aws.String(streamName), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
		}); err != nil {
			t.Fatal(err)
		}
		putRange(f, 10, 30, 4)
		j := &journal{}
		r := start(t, newWorker(t, f, store, factory(j, store, nil), "w1"))
		waitFor(t, "every record", time.Minute, func() bool { return j.hasAll(0, 30) })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		recs := j.records()
		checkExactlyOnce(t, recs, 0, 30)
		checkOrder(t, recs)
		checkChildrenAfterParents(t, f, recs)
		j.checkNoViolations(t)
		if l := leaseMap(store)["shardId-000000000000"]; !l.Finished() || len(l.ChildShardIDs) != 2 {
			t.Errorf("parent lease %+v, want SHARD_END with two children", l)
		}
	})
}
