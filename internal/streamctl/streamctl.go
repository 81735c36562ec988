// Package streamctl drives the control plane of a test stream on the Kinesis
// emulator for the demo and the chaos harness: create, reshard (split,
// merge, UpdateShardCount) and wait until the stream is ACTIVE again,
// retrying the LimitExceeded and ResourceInUse that kinesis-mock's
// concurrency limits produce.
package streamctl

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

// Stream is one stream's control plane.
type Stream struct {
	Client *kinesis.Client
	Name   string
}

// Create creates the stream with the given number of shards and waits
// until it is ACTIVE.
func (s *Stream) Create(ctx context.Context, shards int) error {
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &s.Name, ShardCount: aws.Int32(int32(shards))})
		return err
	})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return s.WaitActive(ctx, shards)
}

// Delete deletes the stream and its consumers.
func (s *Stream) Delete(ctx context.Context) error {
	_, err := s.Client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &s.Name, EnforceConsumerDeletion: aws.Bool(true)})
	return err
}

// Scale sets the number of open shards to n with UpdateShardCount and waits
// for it.
func (s *Stream) Scale(ctx context.Context, n int) error {
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName: &s.Name, TargetShardCount: aws.Int32(int32(n)), ScalingType: types.ScalingTypeUniformScaling,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("update shard count to %d: %w", n, err)
	}
	return s.WaitActive(ctx, n)
}

// Split splits the open shard at index i (by hash key order) in the middle
// of its hash range, and returns it.
func (s *Stream) Split(ctx context.Context, open []types.Shard, i int) (string, error) {
	sh := open[i]
	id := aws.ToString(sh.ShardId)
	lo, ok1 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
	hi, ok2 := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
	if !ok1 || !ok2 || new(big.Int).Sub(hi, lo).Cmp(big.NewInt(2)) < 0 {
		return id, fmt.Errorf("split %s: hash range %v..%v cannot be split", id, aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey))
	}
	mid := new(big.Int).Add(lo, hi)
	mid.Rsh(mid, 1)
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &s.Name, ShardToSplit: &id, NewStartingHashKey: aws.String(mid.String())})
		return err
	})
	if err != nil {
		return id, fmt.Errorf("split %s: %w", id, err)
	}
	return id, s.WaitActive(ctx, len(open)+1)
}

// Merge merges the open shards at indexes i and i+1 (adjacent by hash key
// order) and returns them.
func (s *Stream) Merge(ctx context.Context, open []types.Shard, i int) (string, string, error) {
	a, b := aws.ToString(open[i].ShardId), aws.ToString(open[i+1].ShardId)
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &s.Name, ShardToMerge: &a, AdjacentShardToMerge: &b})
		return err
	})
	if err != nil {
		return a, b, fmt.Errorf("merge %s and %s: %w", a, b, err)
	}
	return a, b, s.WaitActive(ctx, len(open)-1)
}

// OpenShards lists the open shards, ordered by starting hash key.
func (s *Stream) OpenShards(ctx context.Context) ([]types.Shard, error) {
	var open []types.Shard
	in := &kinesis.ListShardsInput{StreamName: &s.Name}
	for {
		out, err := s.Client.ListShards(ctx, in)
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

// WaitActive waits until the stream is ACTIVE with open open shards.
func (s *Stream) WaitActive(ctx context.Context, open int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		out, err := s.Client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.Name})
		if err == nil {
			d := out.StreamDescriptionSummary
			if d.StreamStatus == types.StreamStatusActive && int(aws.ToInt32(d.OpenShardCount)) == open {
				return nil
			}
		} else if !Busy(err) {
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				return fmt.Errorf("describe stream: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s not ACTIVE with %d open shards: %w", s.Name, open, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RetryBusy calls f until it does not fail with LimitExceeded or
// ResourceInUse (another control-plane operation in progress).
func RetryBusy(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := f()
		if err == nil || !Busy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Busy reports whether err is LimitExceeded or ResourceInUse: the stream
// or the account is busy with another control-plane operation.
func Busy(err error) bool {
	var le *types.LimitExceededException
	var iu *types.ResourceInUseException
	return errors.As(err, &le) || errors.As(err, &iu)
}
