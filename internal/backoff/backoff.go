// Package backoff computes retry delays: exponential growth with full jitter,
// capped, and a context-aware wait. Loops that retry AWS calls (GetRecords
// throttling, ListShards LimitExceeded, lease-table throttling) use it so that
// many workers retrying together spread out instead of retrying in lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy describes a backoff. The zero Policy is not valid; use New.
type Policy struct {
	base, max time.Duration
	rand      *rand.Rand
}

// New returns a policy whose n-th delay (n from 0) is drawn uniformly from
// [base·2^n / 2, base·2^n], capped at max ("equal jitter": never less than half
// the nominal delay, so a retry is never immediate). r supplies randomness;
// nil means a randomly seeded source. A Policy with its own r is not safe for
// concurrent use.
func New(base, max time.Duration, r *rand.Rand) Policy {
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if base <= 0 {
		base = time.Millisecond
	}
	if max < base {
		max = base
	}
	return Policy{base: base, max: max, rand: r}
}

// Delay returns the delay before retry number attempt (0 for the first
// retry).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.max
	if attempt < 62 {
		if nominal := p.base << attempt; nominal > 0 && nominal < p.max {
			d = nominal
		}
	}
	half := d / 2
	return half + time.Duration(p.rand.Int64N(int64(d-half)+1))
}

// Wait sleeps for the delay of attempt, or until ctx is done, in which case it
// returns context.Cause(ctx).
func (p Policy) Wait(ctx context.Context, attempt int) error {
	t := time.NewTimer(p.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
