package proxy

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kclgo/kcl/internal/awserr"
)

// retryable reports whether the SDK's standard retryer would retry err.
func retryable(err error) bool {
	return retry.NewStandard().IsErrorRetryable(err)
}

func apiCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// TestSDKClassifiesKinesisFaults sends real GetRecords calls, retries off,
// through the proxy over HTTP/1.1 and h2c, and checks the error the SDK
// returns for each fault and how the SDK's retryer and awserr classify it.
func TestSDKClassifiesKinesisFaults(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		// forwarded is whether the upstream sees the request.
		forwarded bool
		check     func(t *testing.T, err error, elapsed time.Duration)
	}{
		{
			name: "a throttle is a ProvisionedThroughputExceededException",
			rule: Rule{Op: "GetRecords", Kind: Throttle, Probability: 1},
			check: func(t *testing.T, err error, _ time.Duration) {
				var pte *types.ProvisionedThroughputExceededException
				if !errors.As(err, &pte) {
					t.Fatalf("err = %v (%T), want *types.ProvisionedThroughputExceededException", err, err)
				}
				if httpStatus(err) != 400 || !retryable(err) || awserr.Classify(err) != awserr.Throttled {
					t.Errorf("status %d, retryable %v, awserr %v; want 400, true, throttled",
						httpStatus(err), retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name: "an expired iterator is an ExpiredIteratorException",
			rule: Rule{Op: "GetRecords", Kind: ExpiredIterator, Probability: 1},
			check: func(t *testing.T, err error, _ time.Duration) {
				var eie *types.ExpiredIteratorException
				if !errors.As(err, &eie) {
					t.Fatalf("err = %v (%T), want *types.ExpiredIteratorException", err, err)
				}
				if retryable(err) || awserr.Classify(err) != awserr.ExpiredIterator {
					t.Errorf("retryable %v, awserr %v; want false, expired iterator", retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name: "an error 500 is an InternalFailure the SDK retries",
			rule: Rule{Kind: Error500, Probability: 1},
			check: func(t *testing.T, err error, _ time.Duration) {
				if httpStatus(err) != 500 || apiCode(err) != "InternalFailure" {
					t.Fatalf("err = %v, want HTTP 500 InternalFailure", err)
				}
				if !retryable(err) || awserr.Classify(err) != awserr.Transient {
					t.Errorf("retryable %v, awserr %v; want true, transient", retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name: "a reset is a connection error the SDK retries",
			rule: Rule{Kind: Reset, Probability: 1},
			check: func(t *testing.T, err error, _ time.Duration) {
				if err == nil || apiCode(err) != "" || httpStatus(err) != 0 {
					t.Fatalf("err = %v, want a transport error without a response", err)
				}
				if !retryable(err) || awserr.Classify(err) != awserr.Transient {
					t.Errorf("err %v: retryable %v, awserr %v; want true, transient", err, retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name:      "a dropped response is a connection error after the upstream saw the request",
			rule:      Rule{Kind: DropResponse, Probability: 1},
			forwarded: true,
			check: func(t *testing.T, err error, _ time.Duration) {
				if err == nil || apiCode(err) != "" || httpStatus(err) != 0 {
					t.Fatalf("err = %v, want a transport error without a response", err)
				}
				if !retryable(err) || awserr.Classify(err) != awserr.Transient {
					t.Errorf("err %v: retryable %v, awserr %v; want true, transient", err, retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name: "a blackhole holds the call until the caller's deadline",
			rule: Rule{Kind: Blackhole, Probability: 1},
			check: func(t *testing.T, err error, elapsed time.Duration) {
				if !errors.Is(err, context.DeadlineExceeded) || elapsed < 200*time.Millisecond {
					t.Fatalf("err = %v after %v, want the 200ms deadline", err, elapsed)
				}
			},
		},
		{
			name: "a blackhole with a hold ends as a reset",
			rule: Rule{Kind: Blackhole, Probability: 1, Latency: 50 * time.Millisecond},
			check: func(t *testing.T, err error, elapsed time.Duration) {
				if err == nil || errors.Is(err, context.DeadlineExceeded) || elapsed < 50*time.Millisecond {
					t.Fatalf("err = %v after %v, want a connection error after 50ms", err, elapsed)
				}
				if !retryable(err) || awserr.Classify(err) != awserr.Transient {
					t.Errorf("err %v: retryable %v, awserr %v; want true, transient", err, retryable(err), awserr.Classify(err))
				}
			},
		},
		{
			name:      "latency delays a call that then succeeds",
			rule:      Rule{Kind: Latency, Probability: 1, Latency: 60 * time.Millisecond},
			forwarded: true,
			check: func(t *testing.T, err error, elapsed time.Duration) {
				if err != nil || elapsed < 60*time.Millisecond {
					t.Fatalf("err = %v after %v, want success after 60ms", err, elapsed)
				}
			},
		},
		{
			name:      "a slow body delays a call that then succeeds",
			rule:      Rule{Kind: SlowBody, Probability: 1, Latency: 10 * time.Millisecond},
			forwarded: true,
			check: func(t *testing.T, err error, elapsed time.Duration) {
				// The 133-byte body in 32-byte chunks takes 5 pauses.
				if err != nil || elapsed < 50*time.Millisecond {
					t.Fatalf("err = %v after %v, want success after 50ms", err, elapsed)
				}
			},
		},
	}
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				var (
					up  *upstream
					p   *Proxy
					out *kinesis.GetRecordsOutput
					err error
				)
				// A fresh proxy for each attempt; a second one only after
				// net/http closed the connection under the response (the
				// race getItem below describes), never for the fault's own
				// errors.
				for attempt := 1; ; attempt++ {
					var addr string
					up = newUpstream(t)
					p, addr = startProxy(t, up, WithSlowBodyChunk(32))
					if err := p.SetRules([]Rule{tt.rule}); err != nil {
						t.Fatal(err)
					}
					client := kinesisClient(t, addr, proto == "h2c", 1)
					ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
					start := time.Now()
					out, err = client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("iterator")})
					elapsed := time.Since(start)
					cancel()
					t.Logf("err: %v", err)
					if errors.Is(err, net.ErrClosed) && attempt < 3 {
						continue
					}
					tt.check(t, err, elapsed)
					break
				}
				if err == nil && (len(out.Records) != 1 || aws.ToString(out.NextShardIterator) != "next-iterator") {
					t.Errorf("GetRecords = %+v, want the upstream's answer", out)
				}
				if got := up.count("GetRecords"); (got == 1) != tt.forwarded {
					t.Errorf("upstream saw %d requests, want forwarded=%v", got, tt.forwarded)
				}
				st := p.Stats()
				if st.Injected[Key{Op: "GetRecords", Kind: tt.rule.Kind}] != 1 || st.Requests["GetRecords"] != 1 {
					t.Errorf("stats = %+v, want one request with one %v", st, tt.rule.Kind)
				}
			})
		}
	}
}

// TestSDKClassifiesDynamoDBFaults checks the DynamoDB client's view of the
// faults that answer with an error.
func TestSDKClassifiesDynamoDBFaults(t *testing.T) {
	up := newUpstream(t)
	p, addr := startProxy(t, up)
	client := dynamoClient(t, addr, false, 1)
	// getItem calls GetItem once, or again (up to 3 calls) when the
	// response body read fails on a connection net/http closed under it:
	// a race in the standard library's read and write loops
	// (aws/aws-sdk-go-v2#1825, #2737), seen here once in CI on a
	// fault-free call, and not what this test is about.
	getItem := func() error {
		var err error
		for range 3 {
			_, err = client.GetItem(t.Context(), &dynamodb.GetItemInput{
				TableName: aws.String("leases"),
				Key:       map[string]ddbtypes.AttributeValue{"k": &ddbtypes.AttributeValueMemberS{Value: "v"}},
			})
			if !errors.Is(err, net.ErrClosed) {
				return err
			}
			t.Logf("GetItem: %v (the net/http race; calling again)", err)
		}
		return err
	}
	if err := getItem(); err != nil {
		t.Fatalf("GetItem without faults: %v", err)
	}

	if err := p.SetRules([]Rule{{Op: "GetItem", Kind: Throttle, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	err := getItem()
	var pte *ddbtypes.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || !retryable(err) {
		t.Errorf("throttle: err = %v (%T), retryable %v; want a retryable *types.ProvisionedThroughputExceededException", err, err, retryable(err))
	}

	if err := p.SetRules([]Rule{{Op: "DynamoDB_20120810.GetItem", Kind: Error500, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := getItem(); httpStatus(err) != 500 || apiCode(err) != "InternalFailure" || !retryable(err) {
		t.Errorf("error 500: err = %v, retryable %v; want a retryable HTTP 500 InternalFailure", err, retryable(err))
	}

	if err := p.SetRules([]Rule{{Kind: Reset, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := getItem(); err == nil || apiCode(err) != "" || !retryable(err) {
		t.Errorf("reset: err = %v, retryable %v; want a retryable connection error", err, retryable(err))
	}

	if err := p.SetRules([]Rule{{Kind: ExpiredIterator, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := getItem(); err != nil {
		t.Errorf("expired iterator rules must not touch GetItem: %v", err)
	}
}

// TestSDKRetriesError500 lets the SDK retry: one injected 500, then the
// call succeeds on its second attempt.
func TestSDKRetriesError500(t *testing.T) {
	up := newUpstream(t)
	var p *Proxy
	p, addr := startProxy(t, up, WithOnFault(func(Event) {
		// The fault window is one request long.
		if err := p.SetRules(nil); err != nil {
			t.Error(err)
		}
	}))
	if err := p.SetRules([]Rule{{Op: "GetRecords", Kind: Error500, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	client := kinesisClient(t, addr, false, 3)
	if _, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}); err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	st := p.Stats()
	if st.Requests["GetRecords"] != 2 || st.Forwarded["GetRecords"] != 1 || st.ByKind()[Error500] != 1 {
		t.Errorf("stats = %+v, want 2 requests, 1 forwarded, 1 error500", st)
	}
}

// TestSDKSubscribeToShardFaults subscribes over h2c through the proxy to an
// AWS-shaped event stream: a throttle is a typed error, and a cut stream
// ends the subscription with an error after events flowed.
func TestSDKSubscribeToShardFaults(t *testing.T) {
	up := newUpstream(t)
	p, addr := startProxy(t, up)
	client := kinesisClient(t, addr, true, 1)
	in := &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1"),
		ShardId:          aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest},
	}

	if err := p.SetRules([]Rule{{Op: "SubscribeToShard", Kind: Throttle, Probability: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := client.SubscribeToShard(t.Context(), in)
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("throttled SubscribeToShard: %v (%T), want ProvisionedThroughputExceededException", err, err)
	}

	if err := p.SetRules([]Rule{{Op: "SubscribeToShard", Kind: CutStream, Probability: 1, Latency: 100 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	out, err := client.SubscribeToShard(ctx, in)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	sub := out.GetStream()
	defer sub.Close()
	events := 0
	for range sub.Events() {
		events++
	}
	if ctx.Err() != nil || sub.Err() == nil || events == 0 {
		t.Fatalf("after %d events: stream error %v, context %v; want events, then a stream error before the deadline",
			events, sub.Err(), ctx.Err())
	}
	t.Logf("cut after %d events: %v", events, sub.Err())
}
