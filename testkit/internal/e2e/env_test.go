package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

// Timings shared by every test: a short lease so that failover fits the CI
// budget, and the intervals derived from it as the worker binary derives
// them (take interval a quarter of the lease, assignment poll 200 ms).
const (
	leaseDuration  = 3 * time.Second
	takeInterval   = leaseDuration / 4
	assignmentPoll = 200 * time.Millisecond
	idleTime       = 200 * time.Millisecond
	parentPoll     = 200 * time.Millisecond
	shardSync      = 2 * time.Second
	stopTimeout    = 10 * time.Second
)

// fixture is one test's stream and lease table on the emulators.
type fixture struct {
	kc     *kinesis.Client
	ddb    *dynamodb.Client
	stream string
	table  string
}

// newFixture creates a stream with shards shards and an empty lease table
// (with the owner index, as EnsureTable creates it, so that graceful stops
// assign leases to peers), both deleted in t.Cleanup.
func newFixture(t *testing.T, shards int32) *fixture {
	t.Helper()
	f := &fixture{kc: testenv.Kinesis(t), ddb: testenv.DynamoDB(t)}
	f.stream = testenv.CreateStream(t, f.kc, shards)
	f.table = testenv.UniqueName(t, "leases")
	store := f.newStore(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := f.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(f.table)})
		var nf *ddbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("delete table %s: %v", f.table, err)
		}
	})
	if err := store.EnsureTable(t.Context()); err != nil {
		t.Fatalf("EnsureTable %s: %v", f.table, err)
	}
	return f
}

// newStore returns a lease store on the fixture's table.
func (f *fixture) newStore(t *testing.T) *dynamolease.Store {
	t.Helper()
	s, err := dynamolease.New(f.ddb, f.table)
	if err != nil {
		t.Fatalf("dynamolease.New: %v", err)
	}
	return s
}

// spreadKeys returns 2·buckets partition keys whose hash keys fall two into
// each of buckets equal slices of the hash key space (buckets a power of two,
// at most 256), so that every shard at least 1/buckets wide receives records.
func spreadKeys(buckets int) []string {
	perBucket := make([]int, buckets)
	var keys []string
	for i := 0; len(keys) < 2*buckets; i++ {
		k := fmt.Sprintf("key-%d", i)
		b := int((hashkey.FromPartitionKey(k).Hi >> 56) * uint64(buckets) >> 8)
		if perBucket[b] < 2 {
			perBucket[b]++
			keys = append(keys, k)
		}
	}
	return keys
}

// listShards returns every shard of the stream, open and closed.
func (f *fixture) listShards(t *testing.T) []types.Shard {
	t.Helper()
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(f.stream)}
	for {
		var out *kinesis.ListShardsOutput
		f.control(t, "ListShards", func(ctx context.Context) error {
			var err error
			out, err = f.kc.ListShards(ctx, in)
			return err
		})
		all = append(all, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return all
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// openShards returns the open shards, ordered by the start of their hash
// key range.
func (f *fixture) openShards(t *testing.T) []types.Shard {
	t.Helper()
	var open []types.Shard
	for _, s := range f.listShards(t) {
		if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b types.Shard) int {
		return bigKey(a.HashKeyRange.StartingHashKey).Cmp(bigKey(b.HashKeyRange.StartingHashKey))
	})
	return open
}

func shardIDs(shards []types.Shard) []string {
	ids := make([]string, len(shards))
	for i, s := range shards {
		ids[i] = aws.ToString(s.ShardId)
	}
	return ids
}

// split splits shard at the middle of its hash key range and waits until the
// stream is ACTIVE again.
func (f *fixture) split(t *testing.T, shard types.Shard) {
	t.Helper()
	lo, hi := bigKey(shard.HashKeyRange.StartingHashKey), bigKey(shard.HashKeyRange.EndingHashKey)
	mid := new(big.Int).Add(lo, hi)
	mid.Rsh(mid, 1)
	f.control(t, "SplitShard", func(ctx context.Context) error {
		_, err := f.kc.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName:         aws.String(f.stream),
			ShardToSplit:       shard.ShardId,
			NewStartingHashKey: aws.String(mid.String()),
		})
		return err
	})
	f.waitActive(t)
}

// merge merges two adjacent shards and waits until the stream is ACTIVE again.
func (f *fixture) merge(t *testing.T, a, b types.Shard) {
	t.Helper()
	f.control(t, "MergeShards", func(ctx context.Context) error {
		_, err := f.kc.MergeShards(ctx, &kinesis.MergeShardsInput{
			StreamName:           aws.String(f.stream),
			ShardToMerge:         a.ShardId,
			AdjacentShardToMerge: b.ShardId,
		})
		return err
	})
	f.waitActive(t)
}

// scale sets the number of open shards with UpdateShardCount and waits until
// the stream is ACTIVE again.
func (f *fixture) scale(t *testing.T, n int32) {
	t.Helper()
	f.control(t, "UpdateShardCount", func(ctx context.Context) error {
		_, err := f.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName:       aws.String(f.stream),
			TargetShardCount: aws.Int32(n),
			ScalingType:      types.ScalingTypeUniformScaling,
		})
		return err
	})
	f.waitActive(t)
}

// reshard splits the first open shard, merges the two halves back, then
// doubles the shard count: every kind of reshard, each leaving children whose
// parents are still being read. It returns the open shard count at the end.
func (f *fixture) reshard(t *testing.T, settle func(step string)) int {
	t.Helper()
	f.split(t, f.openShards(t)[0])
	settle("split")
	open := f.openShards(t)
	f.merge(t, open[0], open[1]) // the two children of the split
	settle("merge")
	n := len(f.openShards(t))
	f.scale(t, int32(2*n))
	settle("update shard count")
	open = f.openShards(t)
	if len(open) != 2*n {
		t.Fatalf("after UpdateShardCount(%d) the stream has %d open shards", 2*n, len(open))
	}
	return len(open)
}

func (f *fixture) waitActive(t *testing.T) {
	t.Helper()
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 2*time.Second {
			t.Logf("stream %s became ACTIVE after %v", f.stream, d.Round(100*time.Millisecond))
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := testenv.WaitStreamActive(ctx, f.kc, f.stream); err != nil {
		t.Fatal(err)
	}
}

// control calls a Kinesis control-plane operation, retrying the
// LimitExceeded and ResourceInUse answers kinesis-mock gives while another
// operation is in flight or the stream is still updating (EMULATORS.md,
// quirks 8 and 13), for at most a minute.
func (f *fixture) control(t *testing.T, op string, call func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	backoff := 50 * time.Millisecond
	for retries := 0; ; retries++ {
		err := call(ctx)
		var le *types.LimitExceededException
		var iu *types.ResourceInUseException
		if err == nil {
			if retries > 0 {
				t.Logf("%s: succeeded after %d retries over %v", op, retries, time.Since(start).Round(10*time.Millisecond))
			}
			return
		}
		if !errors.As(err, &le) && !errors.As(err, &iu) || ctx.Err() != nil {
			t.Fatalf("%s on %s: %v", op, f.stream, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func bigKey(s *string) *big.Int {
	n, ok := new(big.Int).SetString(aws.ToString(s), 10)
	if !ok {
		panic(fmt.Sprintf("e2e: hash key %q is not a decimal number", aws.ToString(s)))
	}
	return n
}

// lazy formats as the result of calling it, so that a failure message built
// before a wait shows the state at the time of the failure.
type lazy func() string

func (l lazy) String() string { return l() }
