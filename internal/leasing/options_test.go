package leasing

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExpiryMargin(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"the floor, 200 ms, at an 8 s lease", []Option{WithLeaseDuration(8 * time.Second)}, 200 * time.Millisecond},
		{"the floor at the default lease duration", nil, 200 * time.Millisecond},
		{"the floor at KCL's 10 s lease", []Option{WithLeaseDuration(10 * time.Second)}, 200 * time.Millisecond},
		{"1 % of a 60 s lease, above the floor", []Option{WithLeaseDuration(time.Minute)}, 600 * time.Millisecond},
		{"a tenth of a lease under 2 s", []Option{WithLeaseDuration(time.Second)}, 100 * time.Millisecond},
		{"set explicitly, even to 0", []Option{WithExpiryMargin(0)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			for _, opt := range tc.opts {
				opt(&o)
			}
			if err := o.validate(); err != nil {
				t.Fatal(err)
			}
			if o.expiryMargin != tc.want {
				t.Errorf("expiry margin %v, want %v", o.expiryMargin, tc.want)
			}
		})
	}
}

func TestExpiryMarginValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []Option
		option string
	}{
		{"a negative margin", []Option{WithExpiryMargin(-time.Millisecond)}, "WithExpiryMargin"},
		{"a margin above a quarter of the lease duration", []Option{WithLeaseDuration(8 * time.Second), WithExpiryMargin(2*time.Second + 1)}, "WithExpiryMargin"},
		{"a renew interval that leaves no retry before the holder's deadline", []Option{WithLeaseDuration(8 * time.Second), WithRenewInterval(3950 * time.Millisecond)}, "WithRenewInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			for _, opt := range tc.opts {
				opt(&o)
			}
			var oe *OptionError
			if err := o.validate(); !errors.As(err, &oe) || !strings.HasPrefix(oe.Option, tc.option+"(") {
				t.Errorf("validate() = %v, want an OptionError naming %s", err, tc.option)
			}
		})
	}
}
