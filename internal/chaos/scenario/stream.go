package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// stream drives the scenario stream's control plane, directly against the
// emulator (never through a proxy).
type stream struct {
	kc   *kinesis.Client
	name string
}

func (s *stream) create(ctx context.Context, shards int) error {
	err := retryBusy(ctx, func() error {
		_, err := s.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &s.name, ShardCount: aws.Int32(int32(shards))})
		return err
	})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return s.waitActive(ctx, shards)
}

func (s *stream) delete(ctx context.Context) error {
	_, err := s.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &s.name, EnforceConsumerDeletion: aws.Bool(true)})
	return err
}

// scale sets the number of open shards to n with UpdateShardCount and waits
// for it.
func (s *stream) scale(ctx context.Context, n int) error {
	err := retryBusy(ctx, func() error {
		_, err := s.kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName: &s.name, TargetShardCount: aws.Int32(int32(n)), ScalingType: types.ScalingTypeUniformScaling,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("update shard count to %d: %w", n, err)
	}
	return s.waitActive(ctx, n)
}

// split splits the open shard at index i (by hash key order) in the middle
// of its hash range, and returns it.
func (s *stream) split(ctx context.Context, open []types.Shard, i int) (string, error) {
	sh := open[i]
	id := aws.ToString(sh.ShardId)
	lo, ok1 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
	hi, ok2 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
	if !ok1 || !ok2 || new(big.Int).Sub(hi, lo).Cmp(big.NewInt(2)) < 0 {
		return id, fmt.Errorf("split %s: hash range %v..%v cannot be split", id, aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
	}
	mid := new(big.Int).Add(lo, hi)
	mid.Rsh(mid, 1)
	err := retryBusy(ctx, func() error {
		_, err := s.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &s.name, ShardToSplit: &id, NewStartingHashKey: aws.String(mid.String())})
		return err
	})
	if err != nil {
		return id, fmt.Errorf("split %s: %w", id, err)
	}
	return id, s.waitActive(ctx, len(open)+1)
}

// merge merges the open shards at indexes i and i+1 (adjacent by hash key
// order) and returns them.
func (s *stream) merge(ctx context.Context, open []types.Shard, i int) (string, string, error) {
	a, b := aws.ToString(open[i].ShardId), aws.ToString(open[i+1].ShardId)
	err := retryBusy(ctx, func() error {
		_, err := s.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &s.name, ShardToMerge: &a, AdjacentShardToMerge: &b})
		return err
	})
	if err != nil {
		return a, b, fmt.Errorf("merge %s and %s: %w", a, b, err)
	}
	return a, b, s.waitActive(ctx, len(open)-1)
}

// openShards lists the open shards, ordered by starting hash key.
func (s *stream) openShards(ctx context.Context) ([]types.Shard, error) {
	var open []types.Shard
	in := &kinesis.ListShardsInput{StreamName: &s.name}
	for {
		out, err := s.kc.ListShards(ctx, in)
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
	start := func(sh types.Shard) hashkey.Key {
		k, _ := hashkey.Parse(aws.ToString(sh.HashKeyRange.StartingHashKey))
		return k
	}
	slices.SortFunc(open, func(x, y types.Shard) int { return start(x).Compare(start(y)) })
	return open, nil
}

// waitActive waits until the stream is ACTIVE with open open shards.
func (s *stream) waitActive(ctx context.Context, open int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		out, err := s.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.name})
		if err == nil {
			d := out.StreamDescriptionSummary
			if d.StreamStatus == types.StreamStatusActive && int(aws.ToInt32(d.OpenShardCount)) == open {
				return nil
			}
		} else if !busy(err) {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("describe stream: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s not ACTIVE with %d open shards: %w", s.name, open, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryBusy calls f until it does not fail with LimitExceeded or
// ResourceInUse (another control-plane operation in progress).
func retryBusy(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil || !busy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func busy(err error) bool {
	var le *types.LimitExceededException
	var iu *types.ResourceInUseException
	return errors.As(err, &le) || errors.As(err, &iu)
}
