package checkpoint

import (
	"errors"
	"testing"
)

func TestOutOfRangeErrorsAreDistinct(t *testing.T) {
	if errors.Is(ErrBeforeLast, ErrBeyondDelivered) || errors.Is(ErrBeyondDelivered, ErrBeforeLast) {
		t.Error("ErrBeforeLast and ErrBeyondDelivered match each other")
	}
	for _, err := range []error{ErrBeforeLast, ErrBeyondDelivered} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v does not match ErrInvalid", err)
		}
	}
}
