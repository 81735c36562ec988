package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelay(t *testing.T) {
	p := New(100*time.Millisecond, 5*time.Second, rand.New(rand.NewPCG(1, 2)))
	tests := []struct {
		name     string
		attempt  int
		min, max time.Duration
	}{
		{"the first retry waits between half the base and the base", 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{"each retry doubles the nominal delay", 3, 400 * time.Millisecond, 800 * time.Millisecond},
		{"the delay is capped at max", 10, 2500 * time.Millisecond, 5 * time.Second},
		{"huge attempt numbers do not overflow", 1000, 2500 * time.Millisecond, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 1000 {
				d := p.Delay(tt.attempt)
				if d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.attempt, d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 100 {
				t.Fatalf("Delay(%d) took only %d distinct values in 1000 draws: not jittered", tt.attempt, len(seen))
			}
		})
	}
}

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(time.Second, time.Second, nil)
		start := time.Now()
		if err := p.Wait(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("waited %v, want within [500ms, 1s]", d)
		}

		cause := errors.New("shard lost")
		ctx, cancel := context.WithCancelCause(t.Context())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel(cause)
		}()
		start = time.Now()
		if err := New(time.Hour, time.Hour, nil).Wait(ctx, 0); !errors.Is(err, cause) {
			t.Fatalf("Wait = %v, want the context's cause", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("Wait returned after %v, want as soon as the context ended (100ms)", d)
		}
	})
}
