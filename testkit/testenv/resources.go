package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const (
	// setupTimeout bounds creating a stream, table or consumer and waiting for it.
	setupTimeout = 60 * time.Second
	// cleanupTimeout bounds each deletion registered with t.Cleanup.
	cleanupTimeout = 30 * time.Second
	pollInterval   = 100 * time.Millisecond
)

var nameSeq atomic.Uint64

// UniqueName returns a name valid for a Kinesis stream, a stream consumer and
// a DynamoDB table (letters, digits, '-', '_', '.'; at most 128 characters),
// built from prefix, the test's name and a random suffix, so that parallel
// tests and repeated runs against the same emulator never collide.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	suffix := fmt.Sprintf("%d-%s", nameSeq.Add(1), hex.EncodeToString(rnd[:]))
	p := sanitize(prefix, 24)
	if p == "" {
		p = "kcl"
	}
	test := sanitize(t.Name(), 128-len(p)-len(suffix)-2)
	if test == "" {
		return p + "-" + suffix
	}
	return p + "-" + test + "-" + suffix
}

// sanitize keeps the characters valid in stream and table names, replacing
// others by '_', and cuts the result to max characters.
func sanitize(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// CreateStream creates a provisioned stream with shardCount shards and a
// unique name, waits until it is ACTIVE (at most a minute), and deletes it in
// t.Cleanup. It returns the stream's name. Failures end the test.
func CreateStream(t testing.TB, client *kinesis.Client, shardCount int32) string {
	t.Helper()
	name := UniqueName(t, "stream")
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()

	err := retryLimitExceeded(ctx, func() error {
		_, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName:        aws.String(name),
			ShardCount:        aws.Int32(shardCount),
			StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
		})
		return err
	})
	if err != nil {
		t.Fatalf("testenv: create stream %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		// A stream still resharding or updating refuses deletion with ResourceInUse.
		err := retryWhile(ctx, func() error {
			_, err := client.DeleteStream(ctx, &kinesis.DeleteStreamInput{
				StreamName:              aws.String(name),
				EnforceConsumerDeletion: aws.Bool(true),
			})
			return err
		}, func(err error) bool { return isLimitExceeded(err) || isInUse(err) })
		if err != nil && !isNotFound(err) {
			t.Errorf("testenv: delete stream %s: %v", name, err)
		}
	})
	if err := WaitStreamActive(ctx, client, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return name
}

// WaitStreamActive polls DescribeStreamSummary until the stream is ACTIVE or
// ctx ends, retrying kinesis-mock's LimitExceededException. Streams, reshards
// and consumers change state only after a delay on kinesis-mock, as on AWS.
func WaitStreamActive(ctx context.Context, client *kinesis.Client, name string) error {
	return poll(ctx, func() (bool, error) {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return false, err
		}
		return out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive, nil
	}, "stream %s did not become ACTIVE", name)
}

// RegisterConsumer registers an enhanced fan-out consumer with a unique name
// on the stream, waits until it is ACTIVE (at most a minute), and deregisters
// it in t.Cleanup. It returns the consumer's ARN. Failures end the test.
func RegisterConsumer(t testing.TB, client *kinesis.Client, streamARN string) string {
	t.Helper()
	name := UniqueName(t, "consumer")
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()

	var arn string
	err := retryLimitExceeded(ctx, func() error {
		out, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
			StreamARN:    aws.String(streamARN),
			ConsumerName: aws.String(name),
		})
		if err == nil {
			arn = aws.ToString(out.Consumer.ConsumerARN)
		}
		return err
	})
	if err != nil {
		t.Fatalf("testenv: register consumer %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := retryWhile(ctx, func() error {
			_, err := client.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)})
			return err
		}, func(err error) bool { return isLimitExceeded(err) || isInUse(err) })
		if err != nil && !isNotFound(err) {
			t.Errorf("testenv: deregister consumer %s: %v", name, err)
		}
	})
	err = poll(ctx, func() (bool, error) {
		out, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if err != nil {
			return false, err
		}
		return out.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive, nil
	}, "consumer %s did not become ACTIVE", name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return arn
}

// CreateTable creates a DynamoDB table shaped like a lease table (hash key
// "leaseKey" of type S, on-demand billing), waits until it is ACTIVE (at most
// a minute), and deletes it in t.Cleanup. Use UniqueName for name. Failures
// end the test.
func CreateTable(t testing.TB, client *dynamodb.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
	defer cancel()

	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("testenv: create table %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var nf *ddbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("testenv: delete table %s: %v", name, err)
		}
	})
	err = poll(ctx, func() (bool, error) {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return false, err
		}
		return out.Table.TableStatus == ddbtypes.TableStatusActive, nil
	}, "table %s did not become ACTIVE", name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// poll calls check every pollInterval until it reports done, returns an error
// other than LimitExceededException, or ctx ends.
func poll(ctx context.Context, check func() (bool, error), format string, args ...any) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		done, err := check()
		if err != nil && !isLimitExceeded(err) {
			return fmt.Errorf(format+": %w", append(args, err)...)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf(format+": %w", append(args, context.Cause(ctx))...)
		case <-ticker.C:
		}
	}
}

// retryLimitExceeded calls fn until it returns anything but
// LimitExceededException, or ctx ends. kinesis-mock limits concurrent
// control-plane calls (EMULATORS.md, quirk 8); parallel tests hit that limit
// more often than the SDK's retryer absorbs.
func retryLimitExceeded(ctx context.Context, fn func() error) error {
	return retryWhile(ctx, fn, isLimitExceeded)
}

// retryWhile calls fn, backing off from 50 ms to 1 s, while its error is retryable and ctx lasts.
func retryWhile(ctx context.Context, fn func() error, retryable func(error) bool) error {
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func isLimitExceeded(err error) bool {
	var le *types.LimitExceededException
	return errors.As(err, &le)
}

func isInUse(err error) bool {
	var iu *types.ResourceInUseException
	return errors.As(err, &iu)
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
