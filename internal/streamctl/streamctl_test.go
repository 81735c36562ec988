package streamctl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kclgo/kcl/internal/streamctl"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestScaleReportsWhereTheStreamEnded scales a kinesis-mock stream through
// counts that its uniform scaling does not always hit exactly, and checks
// that every Scale returns once the update has happened, with the number
// of open shards the stream really has.
func TestScaleReportsWhereTheStreamEnded(t *testing.T) {
	testenv.Require(t)
	client := testenv.Kinesis(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := &streamctl.Stream{Client: client, Name: testenv.UniqueName(t, "streamctl"), Timeout: time.Minute}
	if err := s.Create(ctx, 7); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background()) })
	prev := 7
	// 7 -> 3 ends at 4 shards on kinesis-mock 0.6.2; before Scale waited
	// for new shards instead of the target, it waited until it timed out.
	for _, to := range []int{3, 6, 3} {
		got, err := s.Scale(ctx, to)
		if err != nil {
			t.Fatalf("Scale %d -> %d: %v", prev, to, err)
		}
		open, err := s.OpenShards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != len(open) || got == prev {
			t.Fatalf("Scale %d -> %d returned %d; %d shards are open", prev, to, got, len(open))
		}
		t.Logf("Scale %d -> %d: %d open shards", prev, to, got)
		prev = got
	}
}

// TestWaitActiveTimesOut checks that a wait for a state the stream never
// reaches ends after Stream.Timeout with an error naming it.
func TestWaitActiveTimesOut(t *testing.T) {
	testenv.Require(t)
	ctx := t.Context()
	s := &streamctl.Stream{Client: testenv.Kinesis(t), Name: testenv.UniqueName(t, "streamctl"), Timeout: 500 * time.Millisecond}
	if err := s.Create(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Delete(context.Background()) })
	start := time.Now()
	err := s.WaitActive(ctx, 5)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 15*time.Second {
		t.Fatalf("WaitActive(5) on a 1-shard stream = %v after %v, want a deadline after about 500ms", err, time.Since(start))
	}
}
