package awserr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("operation GetRecords: %w", err) }
	serverError := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("boom")}
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"a cancelled context is Canceled", wrap(context.Canceled), Canceled},
		{"a deadline is Canceled", wrap(context.DeadlineExceeded), Canceled},
		{"read throughput exceeded is Throttled", wrap(&types.ProvisionedThroughputExceededException{}), Throttled},
		{"a control-plane limit is Throttled", wrap(&types.LimitExceededException{}), Throttled},
		{"KMS throttling is Throttled", wrap(&types.KMSThrottlingException{}), Throttled},
		{"a generic throttling code is Throttled", wrap(&smithy.GenericAPIError{Code: "ThrottlingException"}), Throttled},
		{"an expired iterator is ExpiredIterator", wrap(&types.ExpiredIteratorException{}), ExpiredIterator},
		{"a missing stream or shard is NotFound", wrap(&types.ResourceNotFoundException{}), NotFound},
		{"a busy resource is InUse", wrap(&types.ResourceInUseException{}), InUse},
		{"access denied is Denied", wrap(&types.AccessDeniedException{}), Denied},
		{"a KMS permission problem by code is Denied", wrap(&smithy.GenericAPIError{Code: "KMSAccessDeniedException"}), Denied},
		{"an invalid argument is Invalid", wrap(&types.InvalidArgumentException{}), Invalid},
		{"an HTTP 500 is Transient", wrap(serverError), Transient},
		{"a server fault API error is Transient", wrap(&smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}), Transient},
		{"a connection reset is Transient", wrap(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), Transient},
		{"a refused connection is Transient", wrap(syscall.ECONNREFUSED), Transient},
		{"a response body cut short is Transient", wrap(&smithy.DeserializationError{Err: fmt.Errorf("decode: %w", io.ErrUnexpectedEOF)}), Transient},
		{"a 200 whose body read hit a connection net/http closed is Transient", wrap(&smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed})}), Transient},
		{"a response that does not parse is Other", wrap(&smithy.DeserializationError{Err: errors.New("invalid character 'x'")}), Other},
		{"anything else is Other", wrap(errors.New("mystery")), Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if Classify(nil) != 0 {
		t.Error("Classify(nil) has a kind")
	}
}

func TestRetryable(t *testing.T) {
	for k := Other; k <= Transient; k++ {
		want := k == Throttled || k == Transient || k == InUse
		if k.Retryable() != want {
			t.Errorf("%v.Retryable() = %v, want %v", k, k.Retryable(), want)
		}
		if k.String() == "Kind(?)" {
			t.Errorf("kind %d has no name", k)
		}
	}
}
