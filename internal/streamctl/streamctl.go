// Package streamctl drives the control plane of a Kinesis stream: create,
// describe, reshard (split, merge, UpdateShardCount) and wait until the
// stream is ACTIVE again, retrying the LimitExceeded and ResourceInUse that
// a busy stream or account (and kinesis-mock's concurrency limits) produce.
// The kcl command's streams commands, the demo and the chaos harness share
// it.
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
	"github.com/kclgo/kcl/internal/awserr"
)

// Stream is one stream's control plane.
type Stream struct {
	Client *kinesis.Client
	Name   string
	// Timeout bounds each wait for the stream to settle; zero means
	// DefaultTimeout.
	Timeout time.Duration
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

// Scale asks for n open shards with UpdateShardCount (uniform scaling),
// waits until the stream is ACTIVE again with new shards, and returns the
// number of open shards it ended with. That is n on AWS; kinesis-mock's
// uniform scaling sometimes ends elsewhere (7 -> 3 gives 4), so the caller
// must use the count returned, not n.
func (s *Stream) Scale(ctx context.Context, n int) (int, error) {
	before, err := s.shardIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("update shard count to %d: %w", n, err)
	}
	if err := s.updateShardCount(ctx, n); err != nil {
		return 0, err
	}
	var open int
	err = s.wait(ctx, fmt.Sprintf("ACTIVE with new shards after UpdateShardCount to %d", n), func(ctx context.Context, d *types.StreamDescriptionSummary) (bool, error) {
		if d.StreamStatus != types.StreamStatusActive {
			return false, nil
		}
		// ACTIVE alone may still be the state from before the update
		// began; new shard ids show it happened.
		after, err := s.shardIDs(ctx)
		if err != nil || len(after) == len(before) {
			return false, err
		}
		open = int(aws.ToInt32(d.OpenShardCount))
		return true, nil
	})
	return open, err
}

// shardIDs returns the ids of every shard of the stream, open or closed.
func (s *Stream) shardIDs(ctx context.Context) (map[string]bool, error) {
	ids := make(map[string]bool)
	err := s.eachShard(ctx, func(sh types.Shard) { ids[aws.ToString(sh.ShardId)] = true })
	return ids, err
}

// eachShard calls f with every shard of the stream, page by page.
func (s *Stream) eachShard(ctx context.Context, f func(types.Shard)) error {
	in := &kinesis.ListShardsInput{StreamName: &s.Name}
	for {
		out, err := s.Client.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("list shards: %w", err)
		}
		for _, sh := range out.Shards {
			f(sh)
		}
		if out.NextToken == nil {
			return nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
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
	err := s.eachShard(ctx, func(sh types.Shard) {
		if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, sh)
		}
	})
	if err != nil {
		return nil, err
	}
	start := func(sh types.Shard) hashkey.Key {
		k, _ := hashkey.Parse(aws.ToString(sh.HashKeyRange.StartingHashKey))
		return k
	}
	slices.SortFunc(open, func(x, y types.Shard) int { return start(x).Compare(start(y)) })
	return open, nil
}

// DefaultTimeout bounds each wait and each RetryBusy loop when
// Stream.Timeout is zero. kinesis-mock's reshards slow down as closed
// shards accumulate (tens of seconds past 300 shards), so it is generous.
const DefaultTimeout = 3 * time.Minute

// callTimeout bounds one DescribeStreamSummary or ListShards call in a
// wait, so that one slow answer is retried rather than eating the wait.
const callTimeout = 10 * time.Second

// WaitActive waits until the stream is ACTIVE with open open shards.
func (s *Stream) WaitActive(ctx context.Context, open int) error {
	return s.wait(ctx, fmt.Sprintf("ACTIVE with %d open shards", open), func(_ context.Context, d *types.StreamDescriptionSummary) (bool, error) {
		return d.StreamStatus == types.StreamStatusActive && int(aws.ToInt32(d.OpenShardCount)) == open, nil
	})
}

// wait polls DescribeStreamSummary every 100 ms until done says so, for
// at most the stream's timeout. A busy, missing (not yet created) or
// transient answer, or a call that timed out on its own, is polled again.
func (s *Stream) wait(ctx context.Context, what string, done func(context.Context, *types.StreamDescriptionSummary) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	var last error
	for {
		ok, err := s.poll(ctx, done)
		switch {
		case ok:
			return nil
		case err != nil && !retryable(err):
			return fmt.Errorf("stream %s: %w", s.Name, err)
		case err != nil:
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("stream %s not %s after %v (last error: %v): %w", s.Name, what, s.timeout(), last, ctx.Err())
			}
			return fmt.Errorf("stream %s not %s after %v: %w", s.Name, what, s.timeout(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Stream) poll(ctx context.Context, done func(context.Context, *types.StreamDescriptionSummary) (bool, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := s.Client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.Name})
	if err != nil {
		return false, fmt.Errorf("describe stream: %w", err)
	}
	return done(ctx, out.StreamDescriptionSummary)
}

// retryable reports whether a wait polls again after err: the stream or
// account is busy, the stream is not there yet, or the call failed in
// transit or timed out on its own (callTimeout) while the wait goes on.
func retryable(err error) bool {
	var nf *types.ResourceNotFoundException
	if Busy(err) || errors.As(err, &nf) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	k := awserr.Classify(err)
	return k == awserr.Transient || k == awserr.Throttled
}

func (s *Stream) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// RetryBusy calls f until it does not fail with LimitExceeded or
// ResourceInUse (another control-plane operation in progress), for at most
// DefaultTimeout.
func RetryBusy(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
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
