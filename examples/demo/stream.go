package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/hashkey"
)

// clients builds SDK clients for the local emulators, literally: the
// library never loads AWS configuration, and config.LoadDefaultConfig
// would trip over this machine's AWS_CA_BUNDLE.
func clients() (*kinesis.Client, *dynamodb.Client, error) {
	kEndpoint, dEndpoint := os.Getenv("KCL_KINESIS_ENDPOINT"), os.Getenv("KCL_DYNAMODB_ENDPOINT")
	if kEndpoint == "" || dEndpoint == "" {
		return nil, nil, errors.New(`KCL_KINESIS_ENDPOINT and KCL_DYNAMODB_ENDPOINT must be set: run "make demo", or start the emulators with "scripts/emulators.sh start" and eval "$(scripts/emulators.sh env)"`)
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kEndpoint) })
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dEndpoint) })
	return kc, ddb, nil
}

// stream drives the demo stream's control plane.
type stream struct {
	kc   *kinesis.Client
	name string
}

// create creates the stream and waits until it is ACTIVE.
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

// delete deletes the stream, best effort.
func (s *stream) delete(ctx context.Context) error {
	_, err := s.kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &s.name, EnforceConsumerDeletion: aws.Bool(true)})
	return err
}

// scale changes the number of open shards to n with UpdateShardCount
// (uniform scaling: Kinesis splits or merges shards) and waits until the
// stream is ACTIVE again with n open shards.
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

// mergeFirstPair merges the two open shards with the lowest hash keys, which
// are adjacent, and waits for the merge to complete. It returns the merged
// shards.
func (s *stream) mergeFirstPair(ctx context.Context) (a, b string, err error) {
	open, err := s.openShards(ctx)
	if err != nil {
		return "", "", err
	}
	if len(open) < 2 {
		return "", "", fmt.Errorf("merge: %d open shards, need 2", len(open))
	}
	a, b = aws.ToString(open[0].ShardId), aws.ToString(open[1].ShardId)
	err = retryBusy(ctx, func() error {
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

// waitActive waits until the stream is ACTIVE with open shards open.
func (s *stream) waitActive(ctx context.Context, open int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
			if !errors.As(err, &nf) { // a stream just created may not be visible yet
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
// ResourceInUse, which the emulator (like Kinesis) returns while another
// control-plane operation is in progress.
func retryBusy(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
