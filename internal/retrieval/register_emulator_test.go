package retrieval_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/internal/retrieval"
	"github.com/kclgo/kcl/testkit/testenv"
)

// countingConsumerAPI counts RegisterStreamConsumer calls, and those that
// succeed.
type countingConsumerAPI struct {
	*kinesis.Client
	registerCalls, registrations atomic.Int32
}

func (c *countingConsumerAPI) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	c.registerCalls.Add(1)
	out, err := c.Client.RegisterStreamConsumer(ctx, in, optFns...)
	if err == nil {
		c.registrations.Add(1)
	}
	return out, err
}

// consumerStream creates a one-shard stream on kinesis-mock and returns the
// client and the stream's ARN.
func consumerStream(t *testing.T) (*countingConsumerAPI, string) {
	t.Helper()
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, 1)
	out, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("DescribeStreamSummary: %v", err)
	}
	return &countingConsumerAPI{Client: kc}, aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

// deregisterAtCleanup deregisters the consumer (streamARN, name) when the
// test ends, whatever its ARN is by then.
func deregisterAtCleanup(t *testing.T, kc *kinesis.Client, streamARN, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			_, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{
				StreamARN: aws.String(streamARN), ConsumerName: aws.String(name),
			})
			var le *types.LimitExceededException
			var nf *types.ResourceNotFoundException
			switch {
			case err == nil, errors.As(err, &nf):
				return
			case errors.As(err, &le) && ctx.Err() == nil:
				time.Sleep(200 * time.Millisecond)
			default:
				t.Errorf("deregister consumer %s: %v", name, err)
				return
			}
		}
	})
}

func describeConsumer(t *testing.T, kc *kinesis.Client, arn string) *types.ConsumerDescription {
	t.Helper()
	out, err := kc.DescribeStreamConsumer(t.Context(), &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	if err != nil {
		t.Fatalf("DescribeStreamConsumer %s: %v", arn, err)
	}
	return out.ConsumerDescription
}

func TestEnsureConsumerOnKinesisMock(t *testing.T) {
	t.Parallel()
	api, streamARN := consumerStream(t)
	name := testenv.UniqueName(t, "app")
	deregisterAtCleanup(t, api.Client, streamARN, name)
	spec := retrieval.ConsumerSpec{StreamARN: streamARN, Name: name, Timeout: 30 * time.Second}

	start := time.Now()
	arn, err := retrieval.EnsureConsumer(t.Context(), api, spec)
	if err != nil {
		t.Fatalf("EnsureConsumer registering: %v", err)
	}
	t.Logf("registered and ACTIVE after %v", time.Since(start))
	d := describeConsumer(t, api.Client, arn)
	if d.ConsumerStatus != types.ConsumerStatusActive || aws.ToString(d.ConsumerName) != name || aws.ToString(d.StreamARN) != streamARN {
		t.Fatalf("consumer %s is %s %s on %s, want ACTIVE %s on %s", arn, d.ConsumerStatus,
			aws.ToString(d.ConsumerName), aws.ToString(d.StreamARN), name, streamARN)
	}
	if n := api.registrations.Load(); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}

	start = time.Now()
	again, err := retrieval.EnsureConsumer(t.Context(), api, spec)
	if err != nil {
		t.Fatalf("EnsureConsumer again: %v", err)
	}
	t.Logf("existing consumer found after %v", time.Since(start))
	if again != arn || api.registrations.Load() != 1 {
		t.Fatalf("second call returned %s after %d registrations, want %s and still 1", again, api.registrations.Load(), arn)
	}

	byARN, err := retrieval.EnsureConsumer(t.Context(), api, retrieval.ConsumerSpec{StreamARN: streamARN, ARN: arn})
	if err != nil || byARN != arn {
		t.Fatalf("EnsureConsumer by ARN = %s, %v; want %s", byARN, err, arn)
	}

	var ce *retrieval.ConfigError
	_, err = retrieval.EnsureConsumer(t.Context(), api, retrieval.ConsumerSpec{StreamARN: streamARN + "-other", ARN: arn})
	if !errors.As(err, &ce) || ce.Field != "ConsumerSpec.ARN" {
		t.Fatalf("EnsureConsumer by ARN with another StreamARN: %v, want a *ConfigError for ConsumerSpec.ARN", err)
	}

	_, err = retrieval.EnsureConsumer(t.Context(), api, retrieval.ConsumerSpec{StreamARN: streamARN, ARN: streamARN + "/consumer/missing:1700000000"})
	if !errors.Is(err, retrieval.ErrConsumerNotFound) {
		t.Fatalf("EnsureConsumer by unknown ARN: %v, want ErrConsumerNotFound", err)
	}
}

func TestEnsureConsumerConcurrentCallsOnKinesisMock(t *testing.T) {
	t.Parallel()
	api, streamARN := consumerStream(t)
	name := testenv.UniqueName(t, "app")
	deregisterAtCleanup(t, api.Client, streamARN, name)

	const workers = 3
	arns := make([]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Go(func() {
			arns[i], errs[i] = retrieval.EnsureConsumer(t.Context(), api,
				retrieval.ConsumerSpec{StreamARN: streamARN, Name: name, Timeout: 30 * time.Second})
		})
	}
	wg.Wait()
	t.Logf("%d concurrent calls done after %v, with %d register calls", workers, time.Since(start), api.registerCalls.Load())
	for i := range workers {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		if arns[i] != arns[0] {
			t.Fatalf("ARNs = %q, want one consumer", arns)
		}
	}
	if n := api.registrations.Load(); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
	if d := describeConsumer(t, api.Client, arns[0]); d.ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("consumer is %s, want ACTIVE", d.ConsumerStatus)
	}
}

func TestEnsureConsumerAfterDeregistrationOnKinesisMock(t *testing.T) {
	t.Parallel()
	api, streamARN := consumerStream(t)
	name := testenv.UniqueName(t, "app")
	deregisterAtCleanup(t, api.Client, streamARN, name)
	spec := retrieval.ConsumerSpec{StreamARN: streamARN, Name: name, Timeout: 30 * time.Second}

	old, err := retrieval.EnsureConsumer(t.Context(), api, spec)
	if err != nil {
		t.Fatalf("EnsureConsumer: %v", err)
	}
	if _, err := api.DeregisterStreamConsumer(t.Context(), &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(old)}); err != nil {
		t.Fatalf("DeregisterStreamConsumer: %v", err)
	}

	// The old ARN is being deleted (or already gone): it can never become ACTIVE.
	_, err = retrieval.EnsureConsumer(t.Context(), api, retrieval.ConsumerSpec{StreamARN: streamARN, ARN: old})
	if !errors.Is(err, retrieval.ErrConsumerNotActive) && !errors.Is(err, retrieval.ErrConsumerNotFound) {
		t.Fatalf("EnsureConsumer by deregistered ARN: %v, want ErrConsumerNotActive or ErrConsumerNotFound", err)
	}
	t.Logf("by deregistered ARN: %v", err)

	// By name, the deregistration is waited out and the name registered again.
	start := time.Now()
	fresh, err := retrieval.EnsureConsumer(t.Context(), api, spec)
	if err != nil {
		t.Fatalf("EnsureConsumer after deregistration: %v", err)
	}
	t.Logf("re-registered after %v", time.Since(start))
	if fresh == old {
		t.Fatalf("EnsureConsumer returned the deregistered ARN %s", old)
	}
	if n := api.registrations.Load(); n != 2 {
		t.Fatalf("%d registrations, want 2", n)
	}
}
