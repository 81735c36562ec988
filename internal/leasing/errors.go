package leasing

// wrapSentinel is a sentinel error that also matches a broader sentinel.
type wrapSentinel struct {
	msg    string
	parent error
}

func (e *wrapSentinel) Error() string { return e.msg }
func (e *wrapSentinel) Unwrap() error { return e.parent }
