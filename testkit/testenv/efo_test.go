package testenv

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// protoRecorder records the HTTP major version of the last response.
type protoRecorder struct {
	next       aws.HTTPClient
	protoMajor atomic.Int32
}

func (r *protoRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err == nil {
		r.protoMajor.Store(int32(resp.ProtoMajor))
	}
	return resp, err
}

func TestEnhancedFanOutDeliversRecordsThroughAdapter(t *testing.T) {
	t.Parallel()
	for _, mode := range EFOModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			control := Kinesis(t)
			efo := KinesisEFO(t, mode)
			stream := CreateStream(t, control, 1)
			summary, err := control.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatalf("DescribeStreamSummary: %v", err)
			}
			consumerARN := RegisterConsumer(t, control, aws.ToString(summary.StreamDescriptionSummary.StreamARN))
			shards, err := control.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatalf("ListShards: %v", err)
			}
			shardID := shards.Shards[0].ShardId
			want := putRecords(t, control, stream, 3)

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			rec := new(protoRecorder)
			out, err := efo.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
				ConsumerARN:      aws.String(consumerARN),
				ShardId:          shardID,
				StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
			}, func(o *kinesis.Options) {
				rec.next = o.HTTPClient
				o.HTTPClient = rec
			})
			if err != nil {
				t.Fatalf("SubscribeToShard: %v", err)
			}
			sub := out.GetStream()
			defer sub.Close()
			if got := rec.protoMajor.Load(); got != 2 {
				t.Errorf("SubscribeToShard answered over HTTP/%d, want HTTP/2", got)
			}

			var got []string
			for len(got) < len(want) {
				select {
				case ev, ok := <-sub.Events():
					if !ok {
						t.Fatalf("event stream ended after %d of %d records: %v", len(got), len(want), sub.Err())
					}
					if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
						for _, r := range e.Value.Records {
							got = append(got, string(r.Data))
						}
					}
				case <-ctx.Done():
					t.Fatalf("got %d of %d records before %v", len(got), len(want), context.Cause(ctx))
				}
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("records = %q, want %q", got, want)
				}
			}

			// A second subscription to the same consumer and shard while the first is open
			// is rejected in-stream by kinesis-mock; the adapter makes it a typed error.
			_, err = efo.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
				ConsumerARN:      aws.String(consumerARN),
				ShardId:          shardID,
				StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
			})
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				t.Errorf("second SubscribeToShard error = %v (%T), want ResourceInUseException", err, err)
			}
			if err := sub.Close(); err != nil {
				t.Errorf("close subscription: %v", err)
			}
		})
	}
}

func TestEnhancedFanOutUnknownConsumerIsResourceNotFound(t *testing.T) {
	t.Parallel()
	control := Kinesis(t)
	stream := CreateStream(t, control, 1)
	summary, err := control.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("DescribeStreamSummary: %v", err)
	}
	streamARN := aws.ToString(summary.StreamDescriptionSummary.StreamARN)

	_, err = KinesisEFO(t, EFOH2C).SubscribeToShard(t.Context(), &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(streamARN + "/consumer/missing:1700000000"),
		ShardId:          aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
	})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("SubscribeToShard error = %v (%T), want ResourceNotFoundException", err, err)
	}
}
