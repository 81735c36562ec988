package consumer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kclgo/kcl/checkpoint"
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

func TestNewConfigDefaultsOfWorkerOptions(t *testing.T) {
	c, err := newConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.initial != checkpoint.Latest || c.shardSync != time.Minute || c.parentPoll != time.Second ||
		c.maxRecords != 10000 || c.idleTime != time.Second || c.prefetchBatches != 3 || c.prefetchBytes != 8<<20 ||
		c.shutdownTimeout != 20*time.Second || c.workerID != "" || c.logger == nil {
		t.Fatalf("defaults %+v, want LATEST, 1m sync, 1s parent poll, 10000 records, 1s idle, 3 batches / 8 MiB prefetch, 20s shutdown", c)
	}
}

func TestNewConfigAppliesValidWorkerOptions(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := newConfig(
		WithWorkerID("w"),
		WithInitialTimestamp(ts),
		WithShardSyncInterval(time.Second),
		WithParentPollInterval(time.Millisecond),
		WithMaxRecords(1),
		WithIdleTime(200*time.Millisecond),
		WithPrefetch(1, 1),
		WithShutdownTimeout(time.Nanosecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	if c.workerID != "w" || c.initial != checkpoint.AtTimestamp || !c.initialTimestamp.Equal(ts) ||
		c.shardSync != time.Second || c.parentPoll != time.Millisecond || c.maxRecords != 1 ||
		c.idleTime != 200*time.Millisecond || c.prefetchBatches != 1 || c.prefetchBytes != 1 || c.shutdownTimeout != time.Nanosecond {
		t.Fatalf("config %+v does not reflect the options", c)
	}
	// A later WithInitialPosition replaces the timestamp.
	c, err = newConfig(WithInitialTimestamp(ts), WithInitialPosition(checkpoint.TrimHorizon))
	if err != nil || c.initial != checkpoint.TrimHorizon || !c.initialTimestamp.IsZero() {
		t.Fatalf("WithInitialPosition after WithInitialTimestamp: %+v, %v", c, err)
	}
}

func TestNewConfigRejectsInvalidWorkerOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{name: "a nil logger is rejected", opts: []Option{WithLogger(nil)}, want: "WithLogger(nil)"},
		{name: "SHARD_END as initial position is rejected", opts: []Option{WithInitialPosition(checkpoint.ShardEnd)}, want: "WithInitialPosition(SHARD_END)"},
		{name: "AT_TIMESTAMP without a timestamp is rejected", opts: []Option{WithInitialPosition(checkpoint.AtTimestamp)}, want: "WithInitialTimestamp"},
		{name: "a zero shard sync interval is rejected", opts: []Option{WithShardSyncInterval(0)}, want: "WithShardSyncInterval(0s)"},
		{name: "a negative parent poll interval is rejected", opts: []Option{WithParentPollInterval(-time.Second)}, want: "WithParentPollInterval(-1s)"},
		{name: "zero max records is rejected", opts: []Option{WithMaxRecords(0)}, want: "WithMaxRecords(0)"},
		{name: "max records above the GetRecords limit is rejected", opts: []Option{WithMaxRecords(10001)}, want: "WithMaxRecords(10001)"},
		{name: "an idle time below 200ms is rejected", opts: []Option{WithIdleTime(100 * time.Millisecond)}, want: "WithIdleTime(100ms)"},
		{name: "zero prefetch batches are rejected", opts: []Option{WithPrefetch(0, 1)}, want: "WithPrefetch(0, 1)"},
		{name: "zero prefetch bytes are rejected", opts: []Option{WithPrefetch(1, 0)}, want: "WithPrefetch(1, 0)"},
		{name: "a zero shutdown timeout is rejected", opts: []Option{WithShutdownTimeout(0)}, want: "WithShutdownTimeout(0s)"},
		{name: "a negative fleet failover time is rejected", opts: []Option{WithFleetFailoverTime(-time.Second)}, want: "WithFleetFailoverTime(-1s)"},
		{name: "a fleet failover time below 100ms is rejected", opts: []Option{WithFleetFailoverTime(time.Millisecond)}, want: "WithFleetFailoverTime(1ms)"},
		{name: "a hook implementing no hook interface is rejected", opts: []Option{WithHooks("not a hook")}, want: "WithHooks(argument 0: string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig(tt.opts...)
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("newConfig: %v, want a *ConfigError", err)
			}
			if !strings.HasPrefix(err.Error(), "consumer: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it prefixed by the package and naming %q", err, tt.want)
			}
		})
	}
}
