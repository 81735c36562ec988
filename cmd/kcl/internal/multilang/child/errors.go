package child

import (
	"errors"
	"fmt"
)

// ErrChildFailed is matched by every error of [Child.Call] that costs the
// child: after it the Child is unusable and the caller must [Child.Kill] it.
// The error is a [*CallError], which says why.
var ErrChildFailed = errors.New("child: child process failed")

// Reason says why a call failed.
type Reason int

// The reasons a call fails.
const (
	// ReasonExited: the child closed its stdout or exited (end of file), or
	// reading its stdout failed otherwise.
	ReasonExited Reason = iota + 1
	// ReasonWrongResponse: the child sent a status whose responseFor is not
	// the action of the call.
	ReasonWrongResponse
	// ReasonLineTooLong: the child wrote a line longer than Spec.MaxLine.
	ReasonLineTooLong
	// ReasonWriteFailed: writing to the child's stdin failed (typically
	// EPIPE: the child closed its stdin or exited).
	ReasonWriteFailed
	// ReasonTimeout: the call took longer than Spec.Timeout.
	ReasonTimeout
	// ReasonCanceled: the call's context ended first.
	ReasonCanceled
	// ReasonClosed: Close was called, or an earlier call failed. (A call
	// after Kill fails with ReasonWriteFailed or ReasonExited.)
	ReasonClosed
)

func (r Reason) String() string {
	switch r {
	case ReasonExited:
		return "exited"
	case ReasonWrongResponse:
		return "wrong responseFor"
	case ReasonLineTooLong:
		return "line too long"
	case ReasonWriteFailed:
		return "write failed"
	case ReasonTimeout:
		return "timeout"
	case ReasonCanceled:
		return "canceled"
	case ReasonClosed:
		return "closed"
	default:
		return fmt.Sprintf("Reason(%d)", int(r))
	}
}

// CallError is the error of a failed [Child.Call]. It matches
// [ErrChildFailed] and unwraps to Err.
type CallError struct {
	// Action is the action of the call that failed ("initialize",
	// "processRecords", ...).
	Action string
	// Reason says why it failed.
	Reason Reason
	// Err is the underlying error: io.EOF, protocol.ErrLineTooLong, the
	// write error, [ErrTimeout], the context's cause, or an error describing
	// the wrong status.
	Err error
}

// ErrTimeout is the Err of a [CallError] with [ReasonTimeout].
var ErrTimeout = errors.New("child: call timed out")

func (e *CallError) Error() string {
	return fmt.Sprintf("child: %s call failed (%s): %v", e.Action, e.Reason, e.Err)
}

// Unwrap returns [ErrChildFailed] and Err.
func (e *CallError) Unwrap() []error { return []error{ErrChildFailed, e.Err} }
