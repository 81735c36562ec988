package properties

import "fmt"

// A ValueError reports a value that cannot be used for its key.
type ValueError struct {
	Key    string
	Line   int
	Value  string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("properties: line %d: %s = %q: %s", e.Line, e.Key, e.Value, e.Reason)
}

// A MissingKeyError reports a required key that is absent or empty. Alt, if
// set, names a key that may be given instead.
type MissingKeyError struct {
	Key string
	Alt string
}

func (e *MissingKeyError) Error() string {
	if e.Alt != "" {
		return fmt.Sprintf("properties: missing required key %s (or %s)", e.Key, e.Alt)
	}
	return fmt.Sprintf("properties: missing required key %s", e.Key)
}

// A Warning reports a key that is accepted but has no effect: a key kcl does
// not know, or a value KCL's rules discard. The host logs it.
type Warning struct {
	Key     string
	Line    int
	Message string
}

func (w Warning) String() string {
	return fmt.Sprintf("properties: line %d: %s: %s", w.Line, w.Key, w.Message)
}
