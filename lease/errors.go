package lease

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on with errors.Is.
var (
	// ErrConflict means a conditional write failed: the lease changed since
	// it was read.
	ErrConflict = errors.New("lease: conflict")
	// ErrLeaseLost means the caller no longer holds the lease: its renew,
	// checkpoint or release was fenced off. It matches ErrConflict too.
	ErrLeaseLost error = &wrapSentinel{msg: "lease: lease lost", parent: ErrConflict}
	// ErrAlreadyExists is returned by Create for an existing key. It matches
	// ErrConflict too.
	ErrAlreadyExists error = &wrapSentinel{msg: "lease: already exists", parent: ErrConflict}
	// ErrNotFound means no lease has the key.
	ErrNotFound = errors.New("lease: not found")
	// ErrThrottled means the table refused the request for capacity reasons;
	// the operation may be retried after a backoff.
	ErrThrottled = errors.New("lease: throttled")
	// ErrMalformed is matched by every *ItemError.
	ErrMalformed = errors.New("lease: malformed lease item")
)

// wrapSentinel is a sentinel error that also matches a broader sentinel.
type wrapSentinel struct {
	msg    string
	parent error
}

func (e *wrapSentinel) Error() string { return e.msg }
func (e *wrapSentinel) Unwrap() error { return e.parent }

// ItemError reports a lease-table item that cannot be read as a lease: a
// missing or mistyped attribute, or a value KCL would not write. It names the
// item and the attribute, and matches ErrMalformed.
type ItemError struct {
	Key       string // the item's leaseKey, or "" if that is what is wrong
	Attribute string
	Reason    string
	Err       error // the underlying parse error, if any
}

func (e *ItemError) Error() string {
	msg := fmt.Sprintf("lease: malformed lease item %q: attribute %s: %s", e.Key, e.Attribute, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrMalformed.
func (e *ItemError) Is(target error) bool { return target == ErrMalformed }

// Unwrap returns the underlying parse error.
func (e *ItemError) Unwrap() error { return e.Err }

// MalformedError is returned by Store.List alongside the well-formed leases
// when some items could not be read. It matches ErrMalformed.
type MalformedError struct {
	Items []*ItemError
}

func (e *MalformedError) Error() string {
	parts := make([]string, len(e.Items))
	for i, it := range e.Items {
		parts[i] = it.Error()
	}
	return fmt.Sprintf("lease: %d malformed lease item(s): %s", len(e.Items), strings.Join(parts, "; "))
}

// Is reports whether target is ErrMalformed.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }
