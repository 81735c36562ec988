package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// opError wraps err the way the SDK returns service errors.
func opError(op string, err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op, Err: err}
}

func TestClassify(t *testing.T) {
	ccf := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	tests := []struct {
		name     string
		err      error
		conflict error
		want     []error // errors the result must match
		notWant  []error // errors it must not match
	}{
		{name: "no error stays no error", err: nil},
		{name: "a failed condition of a holder's write means the lease is lost",
			err: opError("UpdateItem", ccf), conflict: lease.ErrLeaseLost,
			want: []error{lease.ErrLeaseLost, lease.ErrConflict}, notWant: []error{lease.ErrThrottled}},
		{name: "a failed condition of a create means the lease exists",
			err: opError("PutItem", ccf), conflict: lease.ErrAlreadyExists,
			want: []error{lease.ErrAlreadyExists, lease.ErrConflict}, notWant: []error{lease.ErrLeaseLost}},
		{name: "a failed condition of a take is a conflict",
			err: opError("UpdateItem", ccf), conflict: lease.ErrConflict,
			want: []error{lease.ErrConflict}, notWant: []error{lease.ErrLeaseLost, lease.ErrAlreadyExists}},
		{name: "exceeded provisioned throughput is throttling",
			err:  opError("UpdateItem", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}),
			want: []error{lease.ErrThrottled}, notWant: []error{lease.ErrConflict}},
		{name: "an exceeded account request limit is throttling",
			err:  opError("Scan", &types.RequestLimitExceeded{Message: aws.String("slow down")}),
			want: []error{lease.ErrThrottled}},
		{name: "a throttling exception is throttling",
			err:  opError("GetItem", &types.ThrottlingException{Message: aws.String("slow down")}),
			want: []error{lease.ErrThrottled}},
		{name: "too many concurrent control-plane calls is throttling",
			err:  opError("CreateTable", &types.LimitExceededException{Message: aws.String("too many tables")}),
			want: []error{lease.ErrThrottled}},
		{name: "throttling that outlasted the retries is throttling",
			err:  opError("UpdateItem", &retry.MaxAttemptsError{Attempt: 3, Err: &types.ProvisionedThroughputExceededException{}}),
			want: []error{lease.ErrThrottled}},
		{name: "a missing table is reported as such",
			err:  opError("GetItem", &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}),
			want: []error{ErrTableNotFound}, notWant: []error{lease.ErrNotFound}},
		{name: "a cancelled context passes through",
			err:  opError("UpdateItem", fmt.Errorf("send request: %w", context.Canceled)),
			want: []error{context.Canceled}, notWant: []error{lease.ErrConflict}},
		{name: "an expired deadline passes through even around a throttle",
			err:  opError("UpdateItem", fmt.Errorf("%w after %w", context.DeadlineExceeded, &types.ThrottlingException{})),
			want: []error{context.DeadlineExceeded}, notWant: []error{lease.ErrThrottled}},
		{name: "other errors pass through",
			err:     opError("UpdateItem", errors.New("ValidationException: bad expression")),
			notWant: []error{lease.ErrConflict, lease.ErrThrottled, ErrTableNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, tc.conflict)
			if (got == nil) != (tc.err == nil) {
				t.Fatalf("classify(%v) = %v", tc.err, got)
			}
			for _, w := range tc.want {
				if !errors.Is(got, w) {
					t.Errorf("classify = %v; want a match for %v", got, w)
				}
			}
			for _, w := range tc.notWant {
				if errors.Is(got, w) {
					t.Errorf("classify = %v; want no match for %v", got, w)
				}
			}
			if tc.err != nil && !errors.Is(got, tc.err) {
				t.Errorf("classify = %v; the SDK error left the chain", got)
			}
		})
	}
}

// cannedTransport answers every request with one DynamoDB error response, as
// the service sends it, and counts the requests.
type cannedTransport struct {
	status    int
	errorType string
	calls     int
}

func (c *cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls++
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}`, c.errorType)
	return &http.Response{
		StatusCode: c.status,
		Header: http.Header{
			"Content-Type":     {"application/x-amz-json-1.0"},
			"X-Amzn-Errortype": {c.errorType},
		},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: req,
	}, nil
}

// fakeEndpointClient returns a DynamoDB client whose requests all go to rt.
func fakeEndpointClient(rt http.RoundTripper, attempts int) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://dynamodb.invalid"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		HTTPClient:   &http.Client{Transport: rt},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = 0
		}),
	})
}

func TestThrottledResponsesBecomeErrThrottled(t *testing.T) {
	rt := &cannedTransport{status: http.StatusBadRequest, errorType: "ProvisionedThroughputExceededException"}
	s, err := New(fakeEndpointClient(rt, 2), "leases")
	if err != nil {
		t.Fatal(err)
	}
	l := lease.Lease{Key: "shardId-000000000000", Owner: "worker-a", Counter: 3, Checkpoint: checkpoint.Latest}
	_, err = s.Renew(t.Context(), l)
	if !errors.Is(err, lease.ErrThrottled) || errors.Is(err, lease.ErrConflict) {
		t.Errorf("Renew = %v; want an error matching lease.ErrThrottled only", err)
	}
	var sdkErr *types.ProvisionedThroughputExceededException
	if !errors.As(err, &sdkErr) {
		t.Errorf("Renew = %v; want the SDK error in the chain", err)
	}
	if rt.calls != 2 {
		t.Errorf("%d requests; want 2 (the SDK retries throttling)", rt.calls)
	}
	st := s.Stats()
	if st.Throttled != 1 || st.Calls.UpdateItem != 1 {
		t.Errorf("Stats = %+v; want one throttled UpdateItem", st)
	}
}

func TestMissingTableIsReportedAsSuch(t *testing.T) {
	rt := &cannedTransport{status: http.StatusBadRequest, errorType: "ResourceNotFoundException"}
	s, err := New(fakeEndpointClient(rt, 1), "leases")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "shardId-000000000000"); !errors.Is(err, ErrTableNotFound) || errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Get = %v; want an error matching ErrTableNotFound and not lease.ErrNotFound", err)
	}
	if _, err := s.List(t.Context()); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("List = %v; want an error matching ErrTableNotFound", err)
	}
}
