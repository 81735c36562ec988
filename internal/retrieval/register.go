package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/backoff"
)

// ConsumerAPI is the part of the Kinesis client EnsureConsumer calls, with
// the aws-sdk-go-v2 signatures: *kinesis.Client satisfies it.
type ConsumerAPI interface {
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
}

// DefaultConsumerTimeout is the default ConsumerSpec.Timeout.
const DefaultConsumerTimeout = 2 * time.Minute

// Pacing of EnsureConsumer's calls. DescribeStreamConsumer is limited to 20
// calls per second per stream and RegisterStreamConsumer to 5 per second per
// account, shared by every worker of every application: polls start at
// 250–500 ms and back off to at most 5 s, with jitter, so that a fleet
// starting together spreads out.
const (
	consumerPollBase = 500 * time.Millisecond
	consumerPollMax  = 5 * time.Second
)

var (
	// ErrConsumerNotFound means the consumer given by ConsumerSpec.ARN does
	// not exist. EnsureConsumer never registers a consumer given by ARN.
	ErrConsumerNotFound = errors.New("retrieval: stream consumer not found")
	// ErrConsumerNotActive means the consumer did not become ACTIVE within
	// ConsumerSpec.Timeout, or (given by ARN) is being deregistered and so
	// never will. The error wrapping it names the last status seen and wraps
	// the last retried error, if any (LimitExceeded when the stream already
	// has its maximum number of consumers, for instance).
	ErrConsumerNotActive = errors.New("retrieval: stream consumer not active")
)

// ConsumerSpec names the enhanced fan-out consumer EnsureConsumer returns:
// either by Name (with StreamARN), or by ARN.
type ConsumerSpec struct {
	// StreamARN is the stream the consumer reads. Required with Name; with
	// ARN it is optional, and when set the consumer must belong to it.
	StreamARN string
	// Name is the consumer's name, unique per stream: 1 to 128 letters,
	// digits, '_', '.' or '-'. EnsureConsumer registers it if it is
	// missing. Exactly one of Name and ARN is required.
	Name string
	// ARN is an existing consumer's ARN, registered by someone else (an
	// operator, infrastructure code). EnsureConsumer only describes it.
	ARN string
	// Timeout bounds the whole of EnsureConsumer: registering, retrying
	// throttled calls and waiting for ACTIVE. Default 2 min.
	Timeout time.Duration
}

// EnsureConsumer returns the ARN of an ACTIVE enhanced fan-out consumer
// described by spec. The Worker calls it once at start-up, before reading
// any shard; it blocks until the consumer is ACTIVE, spec.Timeout passes or
// ctx ends. It never deregisters anything.
//
// With spec.Name it describes the consumer (spec.StreamARN, spec.Name) and
// registers it when it does not exist. Many workers may call it at once for
// the same name: a ResourceInUse answer to the registration means another
// worker registered the name first, and this call goes on to wait for that
// consumer, so every caller returns the same ARN. A consumer found in
// DELETING (deregistered by an operator or a previous deployment) can never
// become ACTIVE again; EnsureConsumer waits until it is gone and registers
// the name afresh, which gives a new ARN.
//
// With spec.ARN it describes that consumer and waits for it to be ACTIVE. A
// missing consumer gives an error wrapping ErrConsumerNotFound; one being
// deleted, ErrConsumerNotActive at once; one registered on a stream other
// than spec.StreamARN (when set), a *ConfigError for the field ARN.
//
// Throttling (LimitExceeded: more than 5 consumers CREATING at once, or the
// stream's consumer limit reached), ResourceInUse and transient failures
// are retried with exponential backoff and jitter until spec.Timeout, after
// which the error wraps ErrConsumerNotActive and the last such failure.
// Denied, Invalid and unrecognised errors are returned at once, wrapped;
// so is ResourceNotFound from the registration (the stream does not
// exist). When ctx ends first, the error wraps context.Cause(ctx).
//
// An invalid spec gives a *ConfigError, before any call.
func EnsureConsumer(ctx context.Context, api ConsumerAPI, spec ConsumerSpec) (string, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return "", err
	}
	e := &ensurer{api: api, spec: spec, policy: backoff.New(consumerPollBase, consumerPollMax, nil)}
	tctx, cancel := context.WithTimeoutCause(ctx, spec.Timeout, errConsumerTimeout)
	defer cancel()
	arn, err := e.run(tctx)
	if err != nil {
		return "", err
	}
	return arn, nil
}

// errConsumerTimeout is the cause of EnsureConsumer's own deadline, to tell
// it from the caller's.
var errConsumerTimeout = errors.New("retrieval: consumer timeout")

// withDefaults returns spec with defaults applied, or the first problem.
func (spec ConsumerSpec) withDefaults() (ConsumerSpec, error) {
	bad := func(field string, v any, reason string) (ConsumerSpec, error) {
		return ConsumerSpec{}, &ConfigError{Field: "ConsumerSpec." + field, Value: v, Reason: reason}
	}
	switch {
	case spec.Name == "" && spec.ARN == "":
		return bad("Name", `""`, "Name or ARN is required")
	case spec.Name != "" && spec.ARN != "":
		return bad("ARN", spec.ARN, "set together with Name "+spec.Name+"; give one")
	case spec.Name != "":
		if spec.StreamARN == "" {
			return bad("StreamARN", `""`, "required with Name")
		}
		if reason := checkConsumerName(spec.Name); reason != "" {
			return bad("Name", spec.Name, reason)
		}
	}
	if spec.Timeout == 0 {
		spec.Timeout = DefaultConsumerTimeout
	}
	if spec.Timeout < 0 {
		return bad("Timeout", spec.Timeout, "must be positive")
	}
	return spec, nil
}

// checkConsumerName returns why name is not a valid consumer name, or "".
func checkConsumerName(name string) string {
	if len(name) > 128 {
		return "longer than 128 characters"
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return fmt.Sprintf("character %q not allowed (letters, digits, '_', '.', '-')", r)
		}
	}
	return ""
}

// ensurer is the state of one EnsureConsumer call.
type ensurer struct {
	api    ConsumerAPI
	spec   ConsumerSpec
	policy backoff.Policy

	// status is the last status described, and lastErr the last retried
	// failure: they explain a timeout.
	status  types.ConsumerStatus
	lastErr error
}

// run describes the consumer, registers it when it is missing (by name) and
// polls until it is ACTIVE, waiting before every round but the first.
func (e *ensurer) run(ctx context.Context) (string, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := e.policy.Wait(ctx, attempt-1); err != nil {
				return "", e.stopped(ctx)
			}
		}
		arn, done, err := e.round(ctx)
		if done || err != nil {
			return arn, err
		}
	}
}

// round makes one DescribeStreamConsumer call, and a RegisterStreamConsumer
// call when it is due. It returns the ARN and done when the consumer is
// ACTIVE, an error when EnsureConsumer must give up, and neither when it
// should poll again.
func (e *ensurer) round(ctx context.Context) (arn string, done bool, _ error) {
	out, err := e.api.DescribeStreamConsumer(ctx, e.describeInput())
	if err != nil {
		return e.describeFailed(ctx, err)
	}
	d := out.ConsumerDescription
	if d == nil || d.ConsumerARN == nil {
		e.lastErr = errors.New("retrieval: DescribeStreamConsumer returned no consumer")
		return "", false, nil
	}
	e.status = d.ConsumerStatus
	if e.spec.ARN != "" && e.spec.StreamARN != "" && d.StreamARN != nil && *d.StreamARN != e.spec.StreamARN {
		return "", false, &ConfigError{Field: "ConsumerSpec.ARN", Value: e.spec.ARN,
			Reason: "the consumer belongs to stream " + *d.StreamARN + ", not StreamARN " + e.spec.StreamARN}
	}
	switch d.ConsumerStatus {
	case types.ConsumerStatusActive:
		return *d.ConsumerARN, true, nil
	case types.ConsumerStatusDeleting:
		if e.spec.ARN != "" {
			return "", false, fmt.Errorf("%w: %s is being deregistered", ErrConsumerNotActive, e.spec.ARN)
		}
		// Wait for it to go, then register the name again.
	}
	// CREATING, DELETING by name, or a status this code does not know:
	// look again later.
	return "", false, nil
}

// describeFailed decides what to do about a DescribeStreamConsumer error.
func (e *ensurer) describeFailed(ctx context.Context, err error) (string, bool, error) {
	if ctx.Err() != nil {
		return "", false, e.stopped(ctx)
	}
	switch kind := awserr.Classify(err); {
	case kind == awserr.NotFound && e.spec.ARN != "":
		return "", false, fmt.Errorf("%w: %s: %w", ErrConsumerNotFound, e.spec.ARN, err)
	case kind == awserr.NotFound:
		e.status = ""
		return e.register(ctx)
	case kind.Retryable():
		e.lastErr = err
		return "", false, nil
	default:
		return "", false, fmt.Errorf("retrieval: describe consumer %s: %w", e.label(), err)
	}
}

// register registers spec.Name on spec.StreamARN.
func (e *ensurer) register(ctx context.Context) (string, bool, error) {
	out, err := e.api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN:    &e.spec.StreamARN,
		ConsumerName: &e.spec.Name,
	})
	if err == nil {
		if c := out.Consumer; c != nil && c.ConsumerARN != nil {
			e.status = c.ConsumerStatus
			if c.ConsumerStatus == types.ConsumerStatusActive {
				return *c.ConsumerARN, true, nil
			}
		}
		// CREATING: describe it after the next wait.
		return "", false, nil
	}
	if ctx.Err() != nil {
		return "", false, e.stopped(ctx)
	}
	switch kind := awserr.Classify(err); {
	case kind == awserr.InUse:
		// Another worker registered the name since we described it (or the
		// stream is being updated): describe again after the next wait.
		e.lastErr = err
		return "", false, nil
	case kind.Retryable():
		e.lastErr = err
		return "", false, nil
	default:
		// NotFound here is about the stream.
		return "", false, fmt.Errorf("retrieval: register consumer %s: %w", e.label(), err)
	}
}

func (e *ensurer) describeInput() *kinesis.DescribeStreamConsumerInput {
	if e.spec.ARN != "" {
		return &kinesis.DescribeStreamConsumerInput{ConsumerARN: &e.spec.ARN}
	}
	return &kinesis.DescribeStreamConsumerInput{StreamARN: &e.spec.StreamARN, ConsumerName: &e.spec.Name}
}

// stopped returns the error for ctx having ended: ErrConsumerNotActive when
// EnsureConsumer's own timeout passed, the caller's cause otherwise.
func (e *ensurer) stopped(ctx context.Context) error {
	cause := context.Cause(ctx)
	if !errors.Is(cause, errConsumerTimeout) {
		return fmt.Errorf("retrieval: ensure consumer %s: %w", e.label(), cause)
	}
	status := string(e.status)
	if status == "" {
		status = "none"
	}
	if e.lastErr != nil {
		return fmt.Errorf("%w: %s after %v (last status %s, last error: %w)",
			ErrConsumerNotActive, e.label(), e.spec.Timeout, status, e.lastErr)
	}
	return fmt.Errorf("%w: %s after %v (last status %s)", ErrConsumerNotActive, e.label(), e.spec.Timeout, status)
}

// label names the consumer in errors.
func (e *ensurer) label() string {
	if e.spec.ARN != "" {
		return e.spec.ARN
	}
	return e.spec.Name + " on " + e.spec.StreamARN
}
