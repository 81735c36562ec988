package consumer_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// pagingKinesis returns one shard per ListShards page, and fails the first
// continuation with ExpiredNextTokenException, so that a shard sync must
// follow NextToken across pages and restart a listing whose token expired.
type pagingKinesis struct {
	*fakekinesis.Fake
	mu      sync.Mutex
	calls   []*kinesis.ListShardsInput
	expired bool // the one expired-token failure has been returned
}

func (p *pagingKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	p.mu.Lock()
	cp := *in
	p.calls = append(p.calls, &cp)
	expire := in.NextToken != nil && !p.expired
	if expire {
		p.expired = true
	}
	p.mu.Unlock()
	if expire {
		return nil, &types.ExpiredNextTokenException{Message: aws.String("token expired")}
	}
	paged := *in
	paged.MaxResults = aws.Int32(1)
	return p.Fake.ListShards(ctx, &paged, optFns...)
}

func (p *pagingKinesis) listCalls() []*kinesis.ListShardsInput {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*kinesis.ListShardsInput(nil), p.calls...)
}

func TestShardSyncFollowsEveryListShardsPageAndRestartsAfterAnExpiredToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := fakekinesis.New(fakekinesis.WithStream(streamName, 5))
		api := &pagingKinesis{Fake: f}
		store := memlease.New()
		j := &journal{}
		putRange(f, 0, 100, 16)
		r := start(t, newWorker(t, api, store, factory(j, store, nil), "w1",
			consumer.WithCheckpointPolicy(consumer.CheckpointAfterEachBatch())))
		waitFor(t, "100 records from 5 shards listed one per page", time.Minute, func() bool { return j.count() >= 100 })
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if n := len(store.Leases()); n != 5 {
			t.Errorf("%d leases, want one per shard (5)", n)
		}
		checkExactlyOnce(t, j.records(), 0, 100)

		calls := api.listCalls()
		first := calls[0]
		if first.StreamName == nil || *first.StreamName != streamName || first.NextToken != nil {
			t.Errorf("first ListShards call %+v, want the stream name and no token", first)
		}
		if first.ShardFilter == nil || first.ShardFilter.Type != types.ShardFilterTypeAtTrimHorizon {
			t.Errorf("first ListShards call on an empty table has filter %+v, want AT_TRIM_HORIZON (the initial position)", first.ShardFilter)
		}
		restarted := false
		for i, c := range calls[1:] {
			if c.NextToken != nil && (c.StreamName != nil || c.ShardFilter != nil) {
				t.Errorf("call %d sends NextToken with StreamName or ShardFilter, which Kinesis rejects", i+1)
			}
			if c.NextToken == nil && calls[i].NextToken != nil {
				restarted = true
			}
		}
		if !restarted {
			t.Error("the listing was not restarted from the beginning after ExpiredNextTokenException")
		}
		// The first page, the expired continuation, then all 5 pages.
		if len(calls) < 7 {
			t.Errorf("%d ListShards calls, want at least 7", len(calls))
		}
	})
}
