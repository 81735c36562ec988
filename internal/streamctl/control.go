package streamctl

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// CreateOptions are the choices of CreateWith.
type CreateOptions struct {
	// Shards is the number of shards of a provisioned stream; ignored when
	// OnDemand.
	Shards int
	// OnDemand creates an on-demand stream, which Kinesis scales itself.
	OnDemand bool
	// NoWait returns once Kinesis accepted the request, without waiting
	// for the stream to be ACTIVE.
	NoWait bool
}

// CreateWith creates the stream and, unless o.NoWait, waits until it is
// ACTIVE.
func (s *Stream) CreateWith(ctx context.Context, o CreateOptions) error {
	in := &kinesis.CreateStreamInput{StreamName: &s.Name}
	if o.OnDemand {
		in.StreamModeDetails = &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}
	} else {
		in.ShardCount = aws.Int32(int32(o.Shards))
	}
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.CreateStream(ctx, in)
		return err
	})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if o.NoWait {
		return nil
	}
	return s.WaitStatus(ctx, types.StreamStatusActive)
}

// WaitStatus waits until the stream's status is status.
func (s *Stream) WaitStatus(ctx context.Context, status types.StreamStatus) error {
	return s.wait(ctx, string(status), func(_ context.Context, d *types.StreamDescriptionSummary) (bool, error) {
		return d.StreamStatus == status, nil
	})
}

// Summary returns DescribeStreamSummary's description of the stream.
func (s *Stream) Summary(ctx context.Context) (*types.StreamDescriptionSummary, error) {
	out, err := s.Client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.Name})
	if err != nil {
		return nil, err
	}
	return out.StreamDescriptionSummary, nil
}

// Shards returns every shard of the stream, open and closed, in
// ListShards order.
func (s *Stream) Shards(ctx context.Context) ([]types.Shard, error) {
	var all []types.Shard
	err := s.eachShard(ctx, func(sh types.Shard) { all = append(all, sh) })
	return all, err
}

// Lineage returns the stream's shards with their parents and children.
func (s *Stream) Lineage(ctx context.Context) (*Lineage, error) {
	shards, err := s.Shards(ctx)
	if err != nil {
		return nil, err
	}
	return NewLineage(shards)
}

// Consumers returns the stream's enhanced fan-out consumers; arn is the
// stream's ARN (from Summary).
func (s *Stream) Consumers(ctx context.Context, arn string) ([]types.Consumer, error) {
	var all []types.Consumer
	in := &kinesis.ListStreamConsumersInput{StreamARN: &arn}
	for {
		out, err := s.Client.ListStreamConsumers(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list stream consumers: %w", err)
		}
		all = append(all, out.Consumers...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListStreamConsumersInput{StreamARN: &arn, NextToken: out.NextToken}
	}
}

// ListStreams returns the names of the account's streams in the region.
func ListStreams(ctx context.Context, client *kinesis.Client) ([]string, error) {
	var names []string
	in := &kinesis.ListStreamsInput{}
	for {
		out, err := client.ListStreams(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		names = append(names, out.StreamNames...)
		if !aws.ToBool(out.HasMoreStreams) || len(out.StreamNames) == 0 {
			return names, nil
		}
		if out.NextToken != nil {
			in = &kinesis.ListStreamsInput{NextToken: out.NextToken}
		} else {
			in = &kinesis.ListStreamsInput{ExclusiveStartStreamName: &names[len(names)-1]}
		}
	}
}

// SplitShard splits the open shard id at at (nil: the middle of its
// range), after checking both with Lineage.SplitPoint, and waits until
// the stream is ACTIVE with the two children.
func (s *Stream) SplitShard(ctx context.Context, id string, at *hashkey.Key) error {
	l, err := s.Lineage(ctx)
	if err != nil {
		return err
	}
	k, err := l.SplitPoint(id, at)
	if err != nil {
		return err
	}
	err = RetryBusy(ctx, func() error {
		_, err := s.Client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &s.Name, ShardToSplit: &id, NewStartingHashKey: aws.String(k.String())})
		return err
	})
	if err != nil {
		return fmt.Errorf("split %s: %w", id, err)
	}
	return s.WaitActive(ctx, len(l.Open())+1)
}

// MergeShards merges the open, adjacent shards a and b (in either order),
// after checking them with Lineage.CheckMerge, and waits until the stream
// is ACTIVE with their child.
func (s *Stream) MergeShards(ctx context.Context, a, b string) error {
	l, err := s.Lineage(ctx)
	if err != nil {
		return err
	}
	lo, hi, err := l.CheckMerge(a, b)
	if err != nil {
		return err
	}
	err = RetryBusy(ctx, func() error {
		_, err := s.Client.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: &s.Name, ShardToMerge: &lo.ID, AdjacentShardToMerge: &hi.ID})
		return err
	})
	if err != nil {
		return fmt.Errorf("merge %s and %s: %w", lo.ID, hi.ID, err)
	}
	return s.WaitActive(ctx, len(l.Open())-1)
}

// UpdateShardCount asks for n open shards with uniform scaling, after
// checking the 2×/½ rule with CheckScale against the open shards, and
// returns without waiting. Scale waits.
func (s *Stream) UpdateShardCount(ctx context.Context, n int) error {
	d, err := s.Summary(ctx)
	if err != nil {
		return fmt.Errorf("describe stream: %w", err)
	}
	if err := CheckScale(int(aws.ToInt32(d.OpenShardCount)), n); err != nil {
		return err
	}
	return s.updateShardCount(ctx, n)
}

func (s *Stream) updateShardCount(ctx context.Context, n int) error {
	err := RetryBusy(ctx, func() error {
		_, err := s.Client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName: &s.Name, TargetShardCount: aws.Int32(int32(n)), ScalingType: types.ScalingTypeUniformScaling,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("update shard count to %d: %w", n, err)
	}
	return nil
}
