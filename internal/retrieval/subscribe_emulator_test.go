package retrieval_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/internal/retrieval"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestSubscriberOnKinesisMock reads a shard through enhanced fan-out on
// kinesis-mock, over each HTTP/2 transport, then splits it: kinesis-mock
// never sends ChildShards to a subscription (quirk 1 in EMULATORS.md), so
// the final batch comes from the shard-end check.
func TestSubscriberOnKinesisMock(t *testing.T) {
	t.Parallel()
	for _, mode := range testenv.EFOModes {
		// Not in parallel: the goroutine check below sees every stream of
		// the process.
		t.Run(mode.String(), func(t *testing.T) {
			control := testenv.Kinesis(t)
			efo := testenv.KinesisEFO(t, mode)
			stream := testenv.CreateStream(t, control, 1)
			summary, err := control.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatalf("DescribeStreamSummary: %v", err)
			}
			consumerARN := testenv.RegisterConsumer(t, control, aws.ToString(summary.StreamDescriptionSummary.StreamARN))
			shards, err := control.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
			if err != nil {
				t.Fatalf("ListShards: %v", err)
			}
			shard := shards.Shards[0]
			put := func(from, to int) {
				for i := from; i < to; i++ {
					if _, err := control.PutRecord(t.Context(), &kinesis.PutRecordInput{
						StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint("pk-", i)), Data: fmt.Appendf(nil, "r%d", i),
					}); err != nil {
						t.Fatalf("PutRecord: %v", err)
					}
				}
			}
			put(0, 5)

			var calls []retrieval.CallInfo
			callc := make(chan retrieval.CallInfo, 1000)
			s, err := retrieval.NewReader(efo, retrieval.Config{
				Shard: retrieval.Shard{StreamName: stream, ShardID: aws.ToString(shard.ShardId), Start: checkpoint.TrimHorizon},
				Mode:  retrieval.FanOut{ConsumerARN: consumerARN, EndCheck: 3 * time.Second},
				Hooks: retrieval.Hooks{Call: func(ci retrieval.CallInfo) { callc <- ci }},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			out := make(chan retrieval.Batch)
			errc := make(chan error, 1)
			go func() { errc <- s.Run(ctx, out) }()

			var got []string
			receive := func(n int) retrieval.Batch {
				t.Helper()
				for len(got) < n {
					select {
					case b := <-out:
						for _, r := range b.Records {
							got = append(got, string(r.Data))
						}
						if b.ShardEnd {
							return b
						}
					case err := <-errc:
						t.Fatalf("Run returned %v after %d records", err, len(got))
					case <-ctx.Done():
						t.Fatalf("%d of %d records before %v", len(got), n, context.Cause(ctx))
					}
				}
				return retrieval.Batch{}
			}
			receive(5)
			put(5, 8)
			receive(8)

			if _, err := control.SplitShard(ctx, &kinesis.SplitShardInput{
				StreamName:         aws.String(stream),
				ShardToSplit:       shard.ShardId,
				NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
			}); err != nil {
				t.Fatalf("SplitShard: %v", err)
			}
			if err := testenv.WaitStreamActive(ctx, control, stream); err != nil {
				t.Fatal(err)
			}
			end := receive(1 << 30)
			for i, r := range got {
				if want := fmt.Sprintf("r%d", i); r != want {
					t.Fatalf("records %q: want r0..r7 in order", got)
				}
			}
			if len(got) != 8 || !end.ShardEnd || len(end.ChildShards) != 2 {
				t.Fatalf("got %d records and a final batch with ShardEnd %v and %d children, want 8 and the shard end with 2", len(got), end.ShardEnd, len(end.ChildShards))
			}
			if err := <-errc; err != nil {
				t.Errorf("Run returned %v after the shard end, want nil", err)
			}
			// Run closed every event stream it opened, so the SDK's
			// goroutines reading them end, while ctx (the requests'
			// parent context) is still alive.
			var stacks string
			for range 50 {
				if stacks = sdkStreamGoroutines(); stacks == "" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if stacks != "" {
				t.Errorf("event stream goroutines still running 5 s after Run returned:\n%s", stacks)
			}
			close(callc)
			for ci := range callc {
				calls = append(calls, ci)
			}
			var subscribes, events, checks int
			for _, ci := range calls {
				switch {
				case ci.Op == "SubscribeToShard" && ci.Err == nil:
					subscribes++
				case ci.Op == "SubscribeToShardEvent" && ci.Err == nil:
					events++
				case ci.Op == "ListShards" && ci.Err == nil:
					checks++
				case ci.Err != nil && !errors.Is(ci.Err, context.Canceled):
					t.Logf("%s failed (%v): %v", ci.Op, ci.Kind, ci.Err)
				}
			}
			t.Logf("%d subscriptions, %d events, %d shard-end checks", subscribes, events, checks)
			if checks == 0 {
				t.Error("the shard end came without a ListShards check: did kinesis-mock send ChildShards?")
			}
		})
	}
}

// sdkStreamGoroutines returns the stacks of goroutines reading a
// SubscribeToShard event stream, or "".
func sdkStreamGoroutines() string {
	buf := make([]byte, 1<<20)
	var found []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "subscribeToShardEventStreamReader") || strings.Contains(g, "EventStreamReader") {
			found = append(found, g)
		}
	}
	return strings.Join(found, "\n\n")
}
