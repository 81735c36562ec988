package fakekinesis

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Throttled returns the error Kinesis returns when a shard's read or write
// throughput is exceeded, for use with [WithFault].
func Throttled() error {
	return &types.ProvisionedThroughputExceededException{
		Message: aws.String("Rate exceeded for shard in stream under account " + account + "."),
	}
}

// ExpiredIterator returns the error GetRecords returns for an iterator older
// than [IteratorTTL], for use with [WithFault].
func ExpiredIterator() error {
	return &types.ExpiredIteratorException{Message: aws.String("Iterator expired.")}
}

// ConnectionReset returns the error an SDK client returns when the
// connection is reset while sending the request: a
// *smithyhttp.RequestSendError around a *url.Error around a *net.OpError
// whose cause is syscall.ECONNRESET. For use with [WithFault].
func ConnectionReset() error {
	return &smithyhttp.RequestSendError{Err: &url.Error{
		Op:  "Post",
		URL: "https://kinesis." + region + ".amazonaws.com/",
		Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)},
	}}
}

// InternalError returns an HTTP 500 InternalFailure as the SDK reports it: an
// *awshttp.ResponseError with status 500 around a *smithy.GenericAPIError
// whose fault is smithy.FaultServer. For use with [WithFault].
func InternalError() error {
	return responseError(http.StatusInternalServerError, &smithy.GenericAPIError{
		Code:    "InternalFailure",
		Message: "We encountered an internal error. Please try again.",
		Fault:   smithy.FaultServer,
	})
}

func responseError(status int, err error) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}},
			Err:      err,
		},
		RequestID: "fakekinesis-request",
	}
}

// wrap dresses err as the SDK would return it from operation op.
func wrap(op string, err error) error {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return err
	}
	var re *smithyhttp.ResponseError
	var api smithy.APIError
	if !errors.As(err, &re) && errors.As(err, &api) {
		status := http.StatusBadRequest
		if api.ErrorFault() == smithy.FaultServer {
			status = http.StatusInternalServerError
		}
		err = responseError(status, err)
	}
	return &smithy.OperationError{ServiceID: "Kinesis", OperationName: op, Err: err}
}

func invalidArg(format string, args ...any) error {
	return &types.InvalidArgumentException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func notFound(format string, args ...any) error {
	return &types.ResourceNotFoundException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func inUse(format string, args ...any) error {
	return &types.ResourceInUseException{Message: aws.String(fmt.Sprintf(format, args...))}
}

func limitExceeded(format string, args ...any) error {
	return &types.LimitExceededException{Message: aws.String(fmt.Sprintf(format, args...))}
}
