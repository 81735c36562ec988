package ops

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/internal/awserr"
)

// UsageError is a mistake on the command line or in the configuration,
// found before anything was changed: exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Failure is a failure of a command whose command line was valid: exit
// status 1. Its message is one line, with AWS errors shortened to their
// code and message.
type Failure struct{ Err error }

func (e *Failure) Error() string { return Explain(e.Err) }
func (e *Failure) Unwrap() error { return e.Err }

// Fail marks err as a failure (exit status 1), unless it is already a
// *UsageError or a *Failure, which it returns as they are; nil stays nil.
func Fail(err error) error {
	if err == nil {
		return nil
	}
	var u *UsageError
	var f *Failure
	if errors.As(err, &u) || errors.As(err, &f) {
		return err
	}
	return &Failure{Err: err}
}

// Failf returns a *Failure with a formatted message; %w wraps as usual.
func Failf(format string, args ...any) error {
	return &Failure{Err: fmt.Errorf(format, args...)}
}

// Throttled reports whether err is AWS throttling (after the SDK's own
// retries).
func Throttled(err error) bool {
	return awserr.Classify(err) == awserr.Throttled
}

// Explain returns err's message on one line, with each AWS API error
// reduced from the SDK's "operation error Kinesis: ListShards, https
// response error StatusCode: 400, RequestID: …, Code: message" to
// "ListShards: Code: message", and throttling said as such.
func Explain(err error) string {
	msg := err.Error()
	var op *smithy.OperationError
	var api smithy.APIError
	if errors.As(err, &op) {
		short := op.Operation() + ": "
		if errors.As(err, &api) {
			short += api.ErrorCode()
			if m := api.ErrorMessage(); m != "" {
				short += ": " + m
			}
		} else {
			short += innermost(op.Err)
		}
		if Throttled(err) {
			short = "throttled by AWS, try again later (" + short + ")"
		}
		msg = strings.Replace(msg, op.Error(), short, 1)
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

// innermost returns the message of the error at the bottom of err's
// chain, skipping the SDK's retry wrapper.
func innermost(err error) string {
	var me *retry.MaxAttemptsError
	if errors.As(err, &me) {
		err = me.Err
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
