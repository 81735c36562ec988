package consumer

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNewConfigDefaults(t *testing.T) {
	c, err := newConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.retryLimit != 0 || c.retryBase != 100*time.Millisecond || c.retryMax != 30*time.Second ||
		c.errorHandler != nil || c.checkpointPolicy != CheckpointManual() {
		t.Fatalf("defaults %+v, want retry forever, 100ms..30s backoff, no handler, manual checkpoints", c)
	}
}

func TestNewConfigAppliesValidOptions(t *testing.T) {
	skip := func(context.Context, *Batch, error) Decision { return Skip }
	c, err := newConfig(
		WithRetryLimit(3),
		WithErrorHandler(skip),
		WithRetryBackoff(time.Second, time.Minute),
		WithCheckpointPolicy(CheckpointEvery(5*time.Second)),
		nil, // ignored
	)
	if err != nil {
		t.Fatal(err)
	}
	if c.retryLimit != 3 || c.errorHandler == nil || c.retryBase != time.Second || c.retryMax != time.Minute ||
		c.checkpointPolicy != CheckpointEvery(5*time.Second) {
		t.Fatalf("config %+v does not reflect the options", c)
	}
	pol := c.dispatchPolicy(nil)
	if pol.retryLimit != 3 || pol.handler == nil {
		t.Fatalf("dispatch policy %+v does not reflect the config", pol)
	}
	if d := pol.backoff.Delay(0); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("first retry delay %v, want within [500ms, 1s]", d)
	}
}

func TestNewConfigRejectsInvalidOptions(t *testing.T) {
	skip := func(context.Context, *Batch, error) Decision { return Skip }
	tests := []struct {
		name string
		opts []Option
		want string // the error names the option and value
	}{
		{name: "a negative retry limit is rejected", opts: []Option{WithRetryLimit(-1)}, want: "WithRetryLimit(-1)"},
		{name: "a zero backoff base is rejected", opts: []Option{WithRetryBackoff(0, time.Second)}, want: "WithRetryBackoff(0s, 1s)"},
		{name: "a negative backoff base is rejected", opts: []Option{WithRetryBackoff(-time.Second, time.Second)}, want: "WithRetryBackoff(-1s, 1s)"},
		{name: "a backoff max below base is rejected", opts: []Option{WithRetryBackoff(time.Second, time.Millisecond)}, want: "WithRetryBackoff(1s, 1ms)"},
		{name: "a nil error handler is rejected", opts: []Option{WithRetryLimit(1), WithErrorHandler(nil)}, want: "WithErrorHandler(nil)"},
		{name: "an error handler without a retry limit is rejected", opts: []Option{WithErrorHandler(skip)}, want: "WithErrorHandler needs WithRetryLimit"},
		{name: "a non-positive checkpoint interval is rejected", opts: []Option{WithCheckpointPolicy(CheckpointEvery(0))}, want: "WithCheckpointPolicy(CheckpointEvery(0s))"},
		{name: "a negative checkpoint interval is rejected", opts: []Option{WithCheckpointPolicy(CheckpointEvery(-time.Second))}, want: "CheckpointEvery(-1s)"},
		{name: "the zero checkpoint policy is rejected", opts: []Option{WithCheckpointPolicy(CheckpointPolicy{})}, want: "WithCheckpointPolicy(CheckpointPolicy{})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig(tt.opts...)
			if err == nil {
				t.Fatal("newConfig succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "consumer: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it prefixed by the package and naming %q", err, tt.want)
			}
		})
	}
}

func TestCheckpointPolicyString(t *testing.T) {
	tests := []struct {
		p    CheckpointPolicy
		want string
	}{
		{CheckpointManual(), "CheckpointManual()"},
		{CheckpointAfterEachBatch(), "CheckpointAfterEachBatch()"},
		{CheckpointEvery(90 * time.Second), "CheckpointEvery(1m30s)"},
		{CheckpointPolicy{}, "CheckpointPolicy{}"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
