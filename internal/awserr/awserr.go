// Package awserr classifies errors from Kinesis calls in one place, so that
// retrieval, shard sync and the Worker branch on a Kind instead of on SDK
// types or error strings.
package awserr

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind is what a caller should do about an error.
type Kind uint8

const (
	// Other is an error this package does not recognise: treat it as fatal
	// for the operation.
	Other Kind = iota + 1
	// Canceled means the caller's context ended.
	Canceled
	// Throttled means the service refused for rate reasons: back off and
	// retry (ProvisionedThroughputExceeded, LimitExceeded, KMS throttling).
	Throttled
	// ExpiredIterator means a shard iterator is too old: get a new one from
	// the last delivered position.
	ExpiredIterator
	// NotFound means the stream, shard or consumer does not exist.
	NotFound
	// InUse means the resource is busy (a stream being created or
	// resharded, a SubscribeToShard within 5 s of another).
	InUse
	// Denied means credentials or KMS permissions are missing: not
	// retryable.
	Denied
	// Invalid means the request was wrong (InvalidArgument): a bug or a bad
	// configuration, not retryable.
	Invalid
	// Transient means a network failure or a server error (5xx): retry
	// without losing the position.
	Transient
)

var kindNames = [...]string{
	Other: "other", Canceled: "canceled", Throttled: "throttled", ExpiredIterator: "expired iterator",
	NotFound: "not found", InUse: "in use", Denied: "denied", Invalid: "invalid", Transient: "transient",
}

// String returns a short lowercase name.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Retryable reports whether an operation failing with this kind may be
// retried as it is (after a backoff).
func (k Kind) Retryable() bool {
	return k == Throttled || k == Transient || k == InUse
}

// Classify returns the Kind of err; nil has no kind and returns 0.
func Classify(err error) Kind {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Canceled
	}
	var (
		throttled *types.ProvisionedThroughputExceededException
		limit     *types.LimitExceededException
		kmsThr    *types.KMSThrottlingException
		expired   *types.ExpiredIteratorException
		notFound  *types.ResourceNotFoundException
		inUse     *types.ResourceInUseException
		denied    *types.AccessDeniedException
		invalid   *types.InvalidArgumentException
	)
	switch {
	case errors.As(err, &throttled), errors.As(err, &limit), errors.As(err, &kmsThr):
		return Throttled
	case errors.As(err, &expired):
		return ExpiredIterator
	case errors.As(err, &notFound):
		return NotFound
	case errors.As(err, &inUse):
		return InUse
	case errors.As(err, &denied):
		return Denied
	case errors.As(err, &invalid):
		return Invalid
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException", "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException":
			return Throttled
		case "ExpiredIteratorException":
			return ExpiredIterator
		case "ResourceNotFoundException":
			return NotFound
		case "AccessDeniedException", "UnrecognizedClientException", "KMSAccessDeniedException", "KMSDisabledException",
			"KMSInvalidStateException", "KMSNotFoundException", "KMSOptInRequired", "ExpiredTokenException":
			return Denied
		case "InvalidArgumentException", "ValidationException":
			return Invalid
		case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException":
			return Transient
		}
		if api.ErrorFault() == smithy.FaultServer {
			return Transient
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return Transient
	}
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &maxAttempts) {
		if k := Classify(errors.Unwrap(maxAttempts)); k != Other {
			return k
		}
	}
	// A response body cut short (a connection dropped mid-response) fails
	// deserialization with an unexpected EOF: the request may be retried.
	var deser *smithy.DeserializationError
	if errors.As(err, &deser) && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return Transient
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) {
		return Transient
	}
	return Other
}
