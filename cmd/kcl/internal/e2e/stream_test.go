package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/aggregate"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/checker"
)

// keys returns n partition keys.
func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("key-%02d", i)
	}
	return ks
}

// producer puts checker payloads: rounds of one PutRecords call holding the
// next record of every key, so that each key has one put in flight at a
// time and a failed record is retried before the key's next one.
type producer struct {
	kc     *kinesis.Client
	stream string

	// perAggregate, when above 1, makes each round put, for each key, one
	// KPL aggregate of that many consecutive records of the key.
	perAggregate int

	// mu guards the fields below.
	mu      sync.Mutex
	next    map[string]int // next ordinal of each key: ordinals below it are acknowledged
	lastErr error
}

func newProducer(kc *kinesis.Client, stream string) *producer {
	return &producer{kc: kc, stream: stream, next: make(map[string]int)}
}

// put puts rounds records of each key, failing the test if a round cannot
// be put within a minute.
func (p *producer) put(t *testing.T, ks []string, rounds int) {
	t.Helper()
	for range rounds {
		deadline := time.Now().Add(time.Minute)
		for !p.round(ks) {
			if time.Now().After(deadline) {
				t.Fatalf("producer: %v", p.err())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// flow puts one round every tick in the background until the returned stop
// is called (at the latest in t.Cleanup); stop waits for the last call.
func (p *producer) flow(t *testing.T, ks []string, tick time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for {
			p.round(ks)
			select {
			case <-quit:
				return
			case <-ticker.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// round makes one PutRecords call and reports whether every record of it
// was acknowledged. The call is never cancelled: a record put but not
// acknowledged would be processed without counting as produced.
func (p *producer) round(ks []string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.mu.Lock()
	entries := make([]types.PutRecordsRequestEntry, len(ks))
	per := max(p.perAggregate, 1)
	for i, k := range ks {
		data := checker.Payload(k, p.next[k])
		if per > 1 {
			urs := make([]aggregate.UserRecord, per)
			for j := range urs {
				urs[j] = aggregate.UserRecord{PartitionKey: k, Data: checker.Payload(k, p.next[k]+j)}
			}
			var err error
			if data, err = aggregate.Marshal(urs); err != nil {
				p.lastErr = err
				p.mu.Unlock()
				return false
			}
		}
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: data}
	}
	p.mu.Unlock()
	out, err := p.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.lastErr = err
		return false
	}
	ok := true
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			p.lastErr = fmt.Errorf("%s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
			ok = false
			continue
		}
		p.next[ks[i]] += per
	}
	return ok
}

// counts returns how many records of each key were acknowledged.
func (p *producer) counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.next)
}

func (p *producer) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// openShards lists the stream's open shards by starting hash key.
func openShards(ctx context.Context, kc *kinesis.Client, stream string) ([]types.Shard, error) {
	var open []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := kc.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		for _, sh := range out.Shards {
			if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
				open = append(open, sh)
			}
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	start := func(sh types.Shard) *big.Int {
		n, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
		return n
	}
	slices.SortFunc(open, func(a, b types.Shard) int { return start(a).Cmp(start(b)) })
	return open, nil
}

// split splits the first open shard in the middle of its hash range and
// waits until the stream is ACTIVE with one more open shard.
func split(t *testing.T, kc *kinesis.Client, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	open, err := openShards(ctx, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	sh := open[0]
	lo, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	err = retryBusy(ctx, func() error {
		_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName: aws.String(stream), ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String()),
		})
		return err
	})
	if err != nil {
		t.Fatalf("split %s: %v", aws.ToString(sh.ShardId), err)
	}
	waitOpen(t, ctx, kc, stream, len(open)+1)
	t.Logf("split %s", aws.ToString(sh.ShardId))
}

// merge merges the first two open shards and waits until the stream is
// ACTIVE with one open shard fewer.
func merge(t *testing.T, kc *kinesis.Client, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	open, err := openShards(ctx, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) < 2 {
		t.Fatalf("merge: %d open shards", len(open))
	}
	a, b := open[0].ShardId, open[1].ShardId
	err = retryBusy(ctx, func() error {
		_, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: a, AdjacentShardToMerge: b})
		return err
	})
	if err != nil {
		t.Fatalf("merge %s and %s: %v", aws.ToString(a), aws.ToString(b), err)
	}
	waitOpen(t, ctx, kc, stream, len(open)-1)
	t.Logf("merged %s and %s", aws.ToString(a), aws.ToString(b))
}

// waitOpen waits until the stream is ACTIVE with n open shards.
func waitOpen(t *testing.T, ctx context.Context, kc *kinesis.Client, stream string, n int) {
	t.Helper()
	for {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive &&
			int(aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount)) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s not ACTIVE with %d open shards: %v (last error %v)", stream, n, context.Cause(ctx), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryBusy calls fn while kinesis-mock answers LimitExceeded or
// ResourceInUse (its control-plane concurrency limits, or a stream still
// updating).
func retryBusy(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		var le *types.LimitExceededException
		var iu *types.ResourceInUseException
		if err == nil || !(errors.As(err, &le) || errors.As(err, &iu)) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leases reads the run's lease table.
func (r *run) leases() []lease.Lease {
	r.t.Helper()
	store, err := dynamolease.New(r.ddb, r.app)
	if err != nil {
		r.t.Fatal(err)
	}
	ls, err := store.List(r.t.Context())
	if err != nil {
		r.t.Fatalf("list leases of %s: %v", r.app, err)
	}
	return ls
}

// deleteTable deletes the lease table kcl created, if it did.
func deleteTable(t *testing.T, ddb *dynamodb.Client, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	var nf *ddbtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("delete lease table %s: %v", table, err)
	}
}
