package retrieval

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

const (
	regStream      = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
	regOtherStream = "arn:aws:kinesis:us-east-1:123456789012:stream/payments"
	regName        = "billing"
	// regNever is a delay that does not end within any test.
	regNever = 1000 * time.Hour
)

// consumerFake is an in-memory ConsumerAPI with Kinesis's rules: a name is
// unique per stream, a registered consumer is CREATING for createDelay,
// a deregistered one DELETING for deleteDelay, and then gone. Safe for
// concurrent use; times come from the (synctest) clock.
type consumerFake struct {
	mu          sync.Mutex
	streams     map[string]bool
	consumers   []*regConsumer
	createDelay time.Duration
	deleteDelay time.Duration
	seq         int
	// Counters of calls and of successful registrations.
	describeCalls, registerCalls, registrations int
	// fault, when set, may fail a call before the fake looks at it; op is
	// "Describe" or "Register", n the call's number for that op (from 1).
	fault func(op string, n int) error
	// beforeRegister, when set, runs at the start of every
	// RegisterStreamConsumer call, outside the lock.
	beforeRegister func()
}

type regConsumer struct {
	arn, name, stream string
	activeAt          time.Time
	deleting          bool
	goneAt            time.Time
}

func newConsumerFake(createDelay time.Duration, streams ...string) *consumerFake {
	f := &consumerFake{streams: map[string]bool{}, createDelay: createDelay, deleteDelay: 3 * time.Second}
	for _, s := range streams {
		f.streams[s] = true
	}
	return f
}

var _ ConsumerAPI = (*consumerFake)(nil)

// status returns c's status now, and false when it is gone. Call with mu held.
func (c *regConsumer) status(now time.Time) (types.ConsumerStatus, bool) {
	switch {
	case c.deleting && !now.Before(c.goneAt):
		return "", false
	case c.deleting:
		return types.ConsumerStatusDeleting, true
	case now.Before(c.activeAt):
		return types.ConsumerStatusCreating, true
	}
	return types.ConsumerStatusActive, true
}

// find returns the live consumer matching (arn) or (stream, name). Call
// with mu held.
func (f *consumerFake) find(arn, stream, name string) (*regConsumer, types.ConsumerStatus) {
	now := time.Now()
	for _, c := range f.consumers {
		if (arn != "" && c.arn == arn) || (arn == "" && c.stream == stream && c.name == name) {
			if st, ok := c.status(now); ok {
				return c, st
			}
		}
	}
	return nil, ""
}

// add registers a consumer directly, ACTIVE after ready (0: at once), and
// returns its ARN.
func (f *consumerFake) add(stream, name string, ready time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(stream, name, ready)
}

func (f *consumerFake) addLocked(stream, name string, ready time.Duration) string {
	f.seq++
	c := &regConsumer{
		arn:      fmt.Sprintf("%s/consumer/%s:%d", stream, name, time.Now().Unix()+int64(f.seq)),
		name:     name,
		stream:   stream,
		activeAt: time.Now().Add(ready),
	}
	f.consumers = append(f.consumers, c)
	return c.arn
}

// deregister starts deleting the consumer arn.
func (f *consumerFake) deregister(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, _ := f.find(arn, "", ""); c != nil {
		c.deleting, c.goneAt = true, time.Now().Add(f.deleteDelay)
	}
}

func (f *consumerFake) counts() (describes, registers, registrations int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.describeCalls, f.registerCalls, f.registrations
}

func (f *consumerFake) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describeCalls++
	if f.fault != nil {
		if err := f.fault("Describe", f.describeCalls); err != nil {
			return nil, err
		}
	}
	arn, stream, name := aws.ToString(in.ConsumerARN), aws.ToString(in.StreamARN), aws.ToString(in.ConsumerName)
	c, st := f.find(arn, stream, name)
	if c == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("consumer not found")}
	}
	return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{
		ConsumerARN:    aws.String(c.arn),
		ConsumerName:   aws.String(c.name),
		StreamARN:      aws.String(c.stream),
		ConsumerStatus: st,
	}}, nil
}

func (f *consumerFake) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	if f.beforeRegister != nil {
		f.beforeRegister()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registerCalls++
	if f.fault != nil {
		if err := f.fault("Register", f.registerCalls); err != nil {
			return nil, err
		}
	}
	stream, name := aws.ToString(in.StreamARN), aws.ToString(in.ConsumerName)
	if !f.streams[stream] {
		return nil, &types.ResourceNotFoundException{Message: aws.String("stream not found")}
	}
	if c, _ := f.find("", stream, name); c != nil {
		return nil, &types.ResourceInUseException{Message: aws.String("consumer " + name + " exists")}
	}
	arn := f.addLocked(stream, name, f.createDelay)
	f.registrations++
	return &kinesis.RegisterStreamConsumerOutput{Consumer: &types.Consumer{
		ConsumerARN:    aws.String(arn),
		ConsumerName:   aws.String(name),
		ConsumerStatus: types.ConsumerStatusCreating,
	}}, nil
}

// failFirst fails the first n calls of op with the error mk returns.
func failFirst(op string, n int, mk func() error) func(string, int) error {
	return func(o string, i int) error {
		if o == op && i <= n {
			return mk()
		}
		return nil
	}
}

func limitExceeded() error {
	return &types.LimitExceededException{Message: aws.String("too many consumers CREATING")}
}

func internalFailure() error {
	return &smithy.GenericAPIError{Code: "InternalFailure", Message: "boom", Fault: smithy.FaultServer}
}

func TestEnsureConsumer(t *testing.T) {
	type result struct {
		arn string
		err error
		// elapsed is the (synctest) time EnsureConsumer took.
		elapsed time.Duration
	}
	tests := []struct {
		name  string
		setup func(f *consumerFake) ConsumerSpec
		check func(t *testing.T, f *consumerFake, r result)
	}{
		{
			name: "a missing consumer is registered and returned once ACTIVE",
			setup: func(f *consumerFake) ConsumerSpec {
				f.createDelay = 10 * time.Second
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 1, 1)
				if !strings.HasPrefix(r.arn, regStream+"/consumer/"+regName+":") {
					t.Errorf("ARN = %s, want the registered consumer's", r.arn)
				}
				// Polls back off to at most 5 s, so ACTIVE is seen at most 5 s late.
				if r.elapsed < 10*time.Second || r.elapsed > 15*time.Second {
					t.Errorf("returned after %v, want within 5s of ACTIVE at 10s", r.elapsed)
				}
			},
		},
		{
			name: "an ACTIVE consumer is reused without registering",
			setup: func(f *consumerFake) ConsumerSpec {
				f.add(regStream, regName, 0)
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, 1, 0, 0)
				if r.elapsed != 0 {
					t.Errorf("returned after %v, want at once", r.elapsed)
				}
			},
		},
		{
			name: "a consumer another worker is creating is waited for, not registered",
			setup: func(f *consumerFake) ConsumerSpec {
				f.add(regStream, regName, 4*time.Second)
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 0, 0)
				if r.elapsed < 4*time.Second {
					t.Errorf("returned after %v, before the consumer was ACTIVE", r.elapsed)
				}
			},
		},
		{
			name: "ResourceInUse on register means another worker won: its consumer is returned",
			setup: func(f *consumerFake) ConsumerSpec {
				// Between our describe and our register, another worker registers the name.
				f.beforeRegister = sync.OnceFunc(func() { f.add(regStream, regName, 2*time.Second) })
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 1, 0)
			},
		},
		{
			name: "LimitExceeded on register is retried with backoff",
			setup: func(f *consumerFake) ConsumerSpec {
				f.fault = failFirst("Register", 3, limitExceeded)
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 4, 1)
				// Waits of at least 250 ms, 500 ms and 1 s before the 2nd, 3rd and 4th attempts.
				if r.elapsed < 1750*time.Millisecond {
					t.Errorf("returned after %v, want backoff between the retries", r.elapsed)
				}
			},
		},
		{
			name: "throttled and failing describes are retried",
			setup: func(f *consumerFake) ConsumerSpec {
				n := 0
				f.fault = failFirst("Describe", 3, func() error {
					n++
					if n%2 == 0 {
						return internalFailure()
					}
					return limitExceeded()
				})
				f.add(regStream, regName, 0)
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, 4, 0, 0)
			},
		},
		{
			name: "a consumer that never becomes ACTIVE gives ErrConsumerNotActive at the timeout",
			setup: func(f *consumerFake) ConsumerSpec {
				f.createDelay = regNever
				return ConsumerSpec{StreamARN: regStream, Name: regName, Timeout: 30 * time.Second}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				if !errors.Is(r.err, ErrConsumerNotActive) {
					t.Fatalf("err = %v, want ErrConsumerNotActive", r.err)
				}
				if !strings.Contains(r.err.Error(), "CREATING") {
					t.Errorf("err = %v, want the last status named", r.err)
				}
				if r.elapsed != 30*time.Second {
					t.Errorf("returned after %v, want at the 30s timeout", r.elapsed)
				}
			},
		},
		{
			name: "LimitExceeded until the timeout wraps the last LimitExceeded",
			setup: func(f *consumerFake) ConsumerSpec {
				f.fault = failFirst("Register", 1<<30, limitExceeded)
				return ConsumerSpec{StreamARN: regStream, Name: regName, Timeout: 20 * time.Second}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				var le *types.LimitExceededException
				if !errors.Is(r.err, ErrConsumerNotActive) || !errors.As(r.err, &le) {
					t.Fatalf("err = %v, want ErrConsumerNotActive wrapping LimitExceededException", r.err)
				}
				_, registers, _ := f.counts()
				// Backoff grows to 5 s: about 8 attempts in 20 s, never a tight loop.
				if registers < 4 || registers > 12 {
					t.Errorf("%d register calls in 20s, want backoff between them", registers)
				}
			},
		},
		{
			name: "by name, a DELETING consumer is waited out and registered again with a new ARN",
			setup: func(f *consumerFake) ConsumerSpec {
				old := f.add(regStream, regName, 0)
				f.deregister(old)
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 1, 1)
				if r.elapsed < f.deleteDelay {
					t.Errorf("returned after %v, before the old consumer was gone", r.elapsed)
				}
				if f.consumers[0].arn == r.arn {
					t.Errorf("returned the deleted consumer's ARN %s", r.arn)
				}
			},
		},
		{
			name: "by ARN, an ACTIVE consumer is returned",
			setup: func(f *consumerFake) ConsumerSpec {
				return ConsumerSpec{StreamARN: regStream, ARN: f.add(regStream, regName, 0)}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, 1, 0, 0)
			},
		},
		{
			name: "by ARN without StreamARN, a CREATING consumer is waited for",
			setup: func(f *consumerFake) ConsumerSpec {
				return ConsumerSpec{ARN: f.add(regStream, regName, 3*time.Second)}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				wantActive(t, f, r.arn, r.err)
				wantCounts(t, f, -1, 0, 0)
			},
		},
		{
			name: "by ARN, a missing consumer is ErrConsumerNotFound and nothing is registered",
			setup: func(f *consumerFake) ConsumerSpec {
				return ConsumerSpec{StreamARN: regStream, ARN: regStream + "/consumer/" + regName + ":1700000000"}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				if !errors.Is(r.err, ErrConsumerNotFound) {
					t.Fatalf("err = %v, want ErrConsumerNotFound", r.err)
				}
				wantCounts(t, f, 1, 0, 0)
			},
		},
		{
			name: "by ARN, a consumer of another stream is a ConfigError",
			setup: func(f *consumerFake) ConsumerSpec {
				return ConsumerSpec{StreamARN: regStream, ARN: f.add(regOtherStream, regName, 0)}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				var ce *ConfigError
				if !errors.As(r.err, &ce) || ce.Field != "ConsumerSpec.ARN" {
					t.Fatalf("err = %v, want a *ConfigError for ConsumerSpec.ARN", r.err)
				}
			},
		},
		{
			name: "by ARN, a DELETING consumer is ErrConsumerNotActive at once",
			setup: func(f *consumerFake) ConsumerSpec {
				arn := f.add(regStream, regName, 0)
				f.deregister(arn)
				return ConsumerSpec{StreamARN: regStream, ARN: arn}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				if !errors.Is(r.err, ErrConsumerNotActive) {
					t.Fatalf("err = %v, want ErrConsumerNotActive", r.err)
				}
				if r.elapsed != 0 {
					t.Errorf("returned after %v, want at once", r.elapsed)
				}
				wantCounts(t, f, 1, 0, 0)
			},
		},
		{
			name: "access denied is returned at once",
			setup: func(f *consumerFake) ConsumerSpec {
				f.fault = failFirst("Describe", 1, func() error {
					return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
				})
				return ConsumerSpec{StreamARN: regStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				var api smithy.APIError
				if !errors.As(r.err, &api) || api.ErrorCode() != "AccessDeniedException" {
					t.Fatalf("err = %v, want the AccessDeniedException", r.err)
				}
				wantCounts(t, f, 1, 0, 0)
			},
		},
		{
			name: "registering on a missing stream fails at once, not as ErrConsumerNotFound",
			setup: func(f *consumerFake) ConsumerSpec {
				return ConsumerSpec{StreamARN: regOtherStream, Name: regName}
			},
			check: func(t *testing.T, f *consumerFake, r result) {
				var nf *types.ResourceNotFoundException
				if !errors.As(r.err, &nf) || errors.Is(r.err, ErrConsumerNotFound) {
					t.Fatalf("err = %v, want the stream's ResourceNotFoundException", r.err)
				}
				wantCounts(t, f, 1, 1, 0)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newConsumerFake(time.Second, regStream)
				spec := tt.setup(f)
				start := time.Now()
				arn, err := EnsureConsumer(t.Context(), f, spec)
				tt.check(t, f, result{arn: arn, err: err, elapsed: time.Since(start)})
				if err != nil && arn != "" {
					t.Errorf("EnsureConsumer returned ARN %q with error %v", arn, err)
				}
			})
		})
	}
}

// wantActive fails the test unless err is nil and arn is an ACTIVE
// consumer of f.
func wantActive(t *testing.T, f *consumerFake, arn string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("EnsureConsumer: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, st := f.find(arn, "", ""); c == nil || st != types.ConsumerStatusActive {
		t.Fatalf("EnsureConsumer returned %q, which is not an ACTIVE consumer (status %q)", arn, st)
	}
}

// wantCounts checks the calls f saw; -1 skips a count.
func wantCounts(t *testing.T, f *consumerFake, describes, registers, registrations int) {
	t.Helper()
	d, r, n := f.counts()
	for _, c := range []struct {
		what      string
		got, want int
	}{{"DescribeStreamConsumer calls", d, describes}, {"RegisterStreamConsumer calls", r, registers}, {"registrations", n, registrations}} {
		if c.want >= 0 && c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
}

func TestEnsureConsumerConcurrentCallsConvergeOnOneConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers = 3
		f := newConsumerFake(2*time.Second, regStream)
		// Hold every register call until all workers have described the
		// consumer as missing and tried to register it: the worst race.
		var arrived sync.WaitGroup
		arrived.Add(workers)
		f.beforeRegister = func() {
			arrived.Done()
			arrived.Wait()
		}
		arns := make([]string, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				arns[i], errs[i] = EnsureConsumer(t.Context(), f, ConsumerSpec{StreamARN: regStream, Name: regName})
			})
		}
		wg.Wait()
		for i := range workers {
			if errs[i] != nil {
				t.Fatalf("worker %d: %v", i, errs[i])
			}
			if arns[i] != arns[0] {
				t.Fatalf("ARNs = %q, want one consumer", arns)
			}
		}
		wantActive(t, f, arns[0], nil)
		wantCounts(t, f, -1, workers, 1)
	})
}

func TestEnsureConsumerRejectsBadSpecs(t *testing.T) {
	tests := []struct {
		name  string
		spec  ConsumerSpec
		field string
	}{
		{"neither a name nor an ARN", ConsumerSpec{StreamARN: regStream}, "ConsumerSpec.Name"},
		{"both a name and an ARN", ConsumerSpec{StreamARN: regStream, Name: regName, ARN: regStream + "/consumer/x:1"}, "ConsumerSpec.ARN"},
		{"a name without a stream", ConsumerSpec{Name: regName}, "ConsumerSpec.StreamARN"},
		{"a name with a space", ConsumerSpec{StreamARN: regStream, Name: "my app"}, "ConsumerSpec.Name"},
		{"a name with a slash", ConsumerSpec{StreamARN: regStream, Name: "a/b"}, "ConsumerSpec.Name"},
		{"a name of 129 characters", ConsumerSpec{StreamARN: regStream, Name: strings.Repeat("a", 129)}, "ConsumerSpec.Name"},
		{"a negative timeout", ConsumerSpec{StreamARN: regStream, Name: regName, Timeout: -time.Second}, "ConsumerSpec.Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newConsumerFake(0, regStream)
			_, err := EnsureConsumer(t.Context(), f, tt.spec)
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("ConfigError.Field = %s, want %s", ce.Field, tt.field)
			}
			wantCounts(t, f, 0, 0, 0)
		})
	}
	t.Run("a name of 128 valid characters is accepted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			name := strings.Repeat("aZ09_.-", 19)[:128]
			f := newConsumerFake(0, regStream)
			if _, err := EnsureConsumer(t.Context(), f, ConsumerSpec{StreamARN: regStream, Name: name}); err != nil {
				t.Fatalf("EnsureConsumer: %v", err)
			}
		})
	})
}

// blockingDescribe is a ConsumerAPI whose DescribeStreamConsumer hangs until
// its context ends.
type blockingDescribe struct{ *consumerFake }

func (blockingDescribe) DescribeStreamConsumer(ctx context.Context, _ *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestEnsureConsumerReturnsPromptlyWhenCancelled(t *testing.T) {
	tests := []struct {
		name string
		api  func(f *consumerFake) ConsumerAPI
	}{
		{"while waiting for ACTIVE", func(f *consumerFake) ConsumerAPI { return f }},
		{"during a call", func(f *consumerFake) ConsumerAPI { return blockingDescribe{f} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newConsumerFake(regNever, regStream)
				cause := errors.New("worker stopping")
				ctx, cancel := context.WithCancelCause(t.Context())
				time.AfterFunc(5*time.Second, func() { cancel(cause) })
				start := time.Now()
				_, err := EnsureConsumer(ctx, tt.api(f), ConsumerSpec{StreamARN: regStream, Name: regName})
				if !errors.Is(err, cause) || errors.Is(err, ErrConsumerNotActive) {
					t.Fatalf("err = %v, want the context's cause", err)
				}
				if d := time.Since(start); d != 5*time.Second {
					t.Fatalf("returned %v after the start, want as soon as ctx ended (5s)", d)
				}
			})
		})
	}
	t.Run("a timeout during a call is ErrConsumerNotActive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newConsumerFake(regNever, regStream)
			start := time.Now()
			_, err := EnsureConsumer(t.Context(), blockingDescribe{f}, ConsumerSpec{StreamARN: regStream, Name: regName, Timeout: 7 * time.Second})
			if !errors.Is(err, ErrConsumerNotActive) {
				t.Fatalf("err = %v, want ErrConsumerNotActive", err)
			}
			if d := time.Since(start); d != 7*time.Second {
				t.Fatalf("returned after %v, want at the 7s timeout", d)
			}
		})
	})
}
