package checkpoint

// Errors a checkpoint call returns when the requested position is out of
// range. Both match ErrInvalid as well.
var (
	// ErrBeforeLast means the position is below the last checkpoint: a
	// checkpoint never moves backwards. A prepared checkpoint whose Commit
	// returns it was overtaken by a later checkpoint. Processors that
	// checkpoint from several goroutines may see it when an older position
	// loses a race and can safely ignore it.
	ErrBeforeLast error = &wrapSentinel{msg: "checkpoint: position before the last checkpoint", parent: ErrInvalid}
	// ErrBeyondDelivered means the position is above the last record
	// delivered to the processor: a checkpoint may only cover records the
	// processor has seen.
	ErrBeyondDelivered error = &wrapSentinel{msg: "checkpoint: position beyond the last delivered record", parent: ErrInvalid}
)

// wrapSentinel is a sentinel error that also matches a broader sentinel.
type wrapSentinel struct {
	msg    string
	parent error
}

func (e *wrapSentinel) Error() string { return e.msg }
func (e *wrapSentinel) Unwrap() error { return e.parent }
