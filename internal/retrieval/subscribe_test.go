package retrieval

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

const subConsumerARN = "arn:aws:kinesis:us-east-1:123456789012:stream/" + testStream + "/consumer/app:1"

var _ SubscribeAPI = (*fakekinesis.Fake)(nil)

// fanConfig is a FanOut Config as the tests write it: the Config and its
// mode's fields side by side (no names clash), joined by newSubscriber.
type fanConfig struct {
	Config
	FanOut
}

// newSubscriber builds the Subscriber of cfg with NewReader.
func newSubscriber(api SubscribeAPI, cfg fanConfig) (*Subscriber, error) {
	cfg.Mode = cfg.FanOut
	r, err := NewReader(api, cfg.Config)
	if err != nil {
		return nil, err
	}
	return r.(*Subscriber), nil
}

// subConfig returns a FanOut Config reading shard0 of testStream from
// TRIM_HORIZON, with c hooked.
func subConfig(c *calls) fanConfig {
	cfg := fanConfig{
		Config: Config{Shard: Shard{StreamName: testStream, ShardID: shard0, Start: checkpoint.TrimHorizon}},
		FanOut: FanOut{ConsumerARN: subConsumerARN},
	}
	if c != nil {
		cfg.Hooks.Call = c.hook
	}
	return cfg
}

func mustSubscriber(t *testing.T, api SubscribeAPI, cfg fanConfig) *Subscriber {
	t.Helper()
	s, err := newSubscriber(api, cfg)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return s
}

// startSub runs s in a goroutine and checks, when Run returns, that no
// goroutine of the Subscriber is left; subscriptionsClosed checks the
// fake's side.
func startSub(t *testing.T, s *Subscriber) *running {
	t.Helper()
	ctx, cancel := context.WithCancelCause(t.Context())
	r := &running{out: make(chan Batch), cancel: cancel, errc: make(chan error, 1)}
	go func() {
		err := s.Run(ctx, r.out)
		if stacks, ok := subscriberRunning(); ok {
			t.Errorf("a Subscriber goroutine is still there after Run returned:\n%s", stacks)
		}
		r.errc <- err
	}()
	t.Cleanup(func() {
		cancel(errTestDone)
		<-r.errc
		r.errc <- nil
	})
	return r
}

// subscriberRunning reports whether any goroutine is in a Subscriber's Run
// or its helpers, and returns all stacks.
func subscriberRunning() (string, bool) {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return stacks, strings.Contains(stacks, "retrieval.(*Subscriber).Run") || strings.Contains(stacks, "retrieval.(*subRun).")
}

// subscriptionsClosed checks, once the bubble has settled, that every
// subscription Run opened was closed and its event goroutine ended. It
// must be called from the bubble's main goroutine after Run returned.
func subscriptionsClosed(t *testing.T, fk *fakekinesis.Fake) {
	t.Helper()
	synctest.Wait()
	if started, open := fk.Subscriptions(); open != 0 {
		t.Errorf("%d of %d subscriptions still open after Run returned", open, started)
	}
}

// putEvery writes n plain records "r0".. one every d, in a goroutine; wait
// for it with the returned func.
func putEvery(fk *fakekinesis.Fake, n int, d time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			fk.Put(testStream, fmt.Sprintf("pk-%d", i), fmt.Appendf(nil, "r%d", i))
			time.Sleep(d)
		}
	}()
	return func() { <-done }
}

// subInputs records the input of every successful SubscribeToShard call.
type subInputs struct {
	mu  sync.Mutex
	ins []kinesis.SubscribeToShardInput
}

func (s *subInputs) plan(p func(n int) fakekinesis.SubscribePlan) fakekinesis.Option {
	return fakekinesis.WithSubscribePlan(func(n int, in *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
		s.mu.Lock()
		s.ins = append(s.ins, *in)
		s.mu.Unlock()
		return p(n)
	})
}

// positions returns the starting positions, "TYPE" or "TYPE seq".
func (s *subInputs) positions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, in := range s.ins {
		p := string(in.StartingPosition.Type)
		if in.StartingPosition.SequenceNumber != nil {
			p += " " + *in.StartingPosition.SequenceNumber
		}
		out = append(out, p)
	}
	return out
}

// failCall returns a fault hook failing the listed (1-based) calls of op
// with mk's error.
func failCall(op string, mk func() error, nth ...int) func(string, any) error {
	var mu sync.Mutex
	n := 0
	return func(o string, _ any) error {
		if o != op {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		for _, k := range nth {
			if n == k {
				return mk()
			}
		}
		return nil
	}
}

func TestSubscriberDeliversInOrderAcrossEarlyRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var subs subInputs
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1),
			subs.plan(func(int) fakekinesis.SubscribePlan {
				return fakekinesis.SubscribePlan{Events: 3, Then: fakekinesis.EndEarly}
			}))
		// Records already there and records arriving during the run;
		// compared by sequence number with what the shard holds.
		put(fk, 5)
		wait := putEvery(fk, 60, 700*time.Millisecond)
		var c calls
		r := startSub(t, mustSubscriber(t, fk, subConfig(&c)))
		recs, _ := r.receive(t, 65)
		wait()
		want := fk.Records(testStream, shard0)
		if len(recs) != len(want) {
			t.Fatalf("got %d records, want %d", len(recs), len(want))
		}
		for i := range recs {
			if recs[i].SequenceNumber != *want[i].SequenceNumber {
				t.Fatalf("record %d is %s, want %s (lost, repeated or reordered)", i, recs[i].SequenceNumber, *want[i].SequenceNumber)
			}
		}
		pos := subs.positions()
		if len(pos) < 10 {
			t.Fatalf("only %d subscriptions", len(pos))
		}
		if pos[0] != "TRIM_HORIZON" {
			t.Errorf("first subscription from %s, want TRIM_HORIZON", pos[0])
		}
		for _, p := range pos[1:] {
			if !strings.HasPrefix(p, "AFTER_SEQUENCE_NUMBER ") {
				t.Fatalf("renewal from %s, want AFTER_SEQUENCE_NUMBER of the continuation", p)
			}
		}
		if n, _ := c.count("SubscribeToShard"); n != len(pos) {
			t.Errorf("hook saw %d SubscribeToShard calls, the fake %d", n, len(pos))
		}
		if err := r.stop(); !errors.Is(err, errTestDone) {
			t.Errorf("Run returned %v, want the context's cause", err)
		}
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberRenewsAfterTheServiceEndsASubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		wait := putEvery(fk, 20, time.Minute)
		r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
		recs, _ := r.receive(t, 20)
		// 19 minutes of 5-minute subscriptions.
		if started, _ := fk.Subscriptions(); started != 4 {
			t.Errorf("%d subscriptions in 19 minutes, want 4", started)
		}
		wait()
		checkPlain(t, recs, 20)
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberHundredRenewalsLeaveNoGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1),
			fakekinesis.WithSubscribePlan(func(int, *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
				return fakekinesis.SubscribePlan{Events: 2, Then: fakekinesis.EndEarly}
			}))
		before := runtime.NumGoroutine()
		wait := putEvery(fk, 300, 700*time.Millisecond)
		r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
		recs, _ := r.receive(t, 300)
		wait()
		checkPlain(t, recs, 300)
		started, _ := fk.Subscriptions()
		if started < 100 {
			t.Fatalf("%d subscriptions, want at least 100", started)
		}
		synctest.Wait()
		during := runtime.NumGoroutine()
		if n := eventGoroutines(); n > 1 {
			t.Errorf("%d event goroutines of the fake after %d renewals, want at most 1", n, started)
		}
		if _, open := fk.Subscriptions(); open > 1 {
			t.Errorf("%d subscriptions open at once, want at most 1", open)
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
		if n := eventGoroutines(); n != 0 {
			t.Errorf("%d event goroutines of the fake after Run returned", n)
		}
		// runtime.NumGoroutine is process-wide (the runtime's own
		// goroutines come and go), so give those a moment to settle.
		after := runtime.NumGoroutine()
		for i := 0; i < 100 && after > before; i++ {
			runtime.Gosched()
			after = runtime.NumGoroutine()
		}
		t.Logf("%d renewals; goroutines: %d before Run, %d while running, %d after", started, before, during, after)
		if after > before {
			t.Errorf("goroutines: %d before Run, %d after: a leak", before, after)
		}
	})
}

// eventGoroutines counts the fake's subscription goroutines.
func eventGoroutines() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "fakekinesis.(*subscription).run(")
}

func TestSubscriberResumesInsideAggregate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 2)
		seq := putAggregate(t, fk, "agg", 10)
		later := putAggregate(t, fk, "later", 3)
		_, plain := fk.Put(testStream, "pk", []byte("plain"))
		cp, err := checkpoint.At(seq, 3)
		if err != nil {
			t.Fatal(err)
		}
		cfg := subConfig(nil)
		cfg.Start = cp
		cfg.HashRange = &hashkey.Range{Start: hashkey.Key{}, End: hashkey.Max}
		r := startSub(t, mustSubscriber(t, fk, cfg))
		recs, _ := r.receive(t, 10)
		var got []string
		for _, rec := range recs {
			got = append(got, fmt.Sprintf("%s/%d=%s", rec.SequenceNumber, rec.SubSequenceNumber, rec.Data))
		}
		var want []string
		for i := 4; i < 10; i++ {
			want = append(want, fmt.Sprintf("%s/%d=agg-%d", seq, i, i))
		}
		for i := range 3 {
			want = append(want, fmt.Sprintf("%s/%d=later-%d", later, i, i))
		}
		want = append(want, plain+"/0=plain")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("delivered\n%v\nwant\n%v", got, want)
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberStartsAtTheCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var subs subInputs
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1),
			subs.plan(func(int) fakekinesis.SubscribePlan { return fakekinesis.SubscribePlan{} }))
		seqs := put(fk, 5)
		cfg := subConfig(nil)
		cfg.Start, _ = checkpoint.At(seqs[1], 0)
		r := startSub(t, mustSubscriber(t, fk, cfg))
		recs, _ := r.receive(t, 3)
		if len(recs) != 3 || string(recs[0].Data) != "r2" || string(recs[2].Data) != "r4" {
			t.Errorf("got %d records starting %q, want r2..r4", len(recs), recs[0].Data)
		}
		if p := subs.positions(); p[0] != "AT_SEQUENCE_NUMBER "+seqs[1] {
			t.Errorf("subscribed from %s, want AT_SEQUENCE_NUMBER of the checkpoint", p[0])
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberRecoversFromFaultsWithoutLosingRecords(t *testing.T) {
	inUse := func() error { return &types.ResourceInUseException{Message: aws.String("in use")} }
	tests := []struct {
		name string
		// fault fails calls; plan scripts subscriptions.
		fault func(string, any) error
		plan  func(n int) fakekinesis.SubscribePlan
		// minGap is the least time between the failure and the next
		// SubscribeToShard call; check runs on the hooked calls.
		check func(t *testing.T, c *calls)
	}{
		{
			name:  "ResourceInUse on SubscribeToShard waits at least 5 s",
			fault: failCall("SubscribeToShard", inUse, 2, 3),
			check: func(t *testing.T, c *calls) {
				_, at := c.count("SubscribeToShard")
				for i := 2; i < 4; i++ {
					if d := at[i].Sub(at[i-1]); d < MinResubscribeInUse {
						t.Errorf("SubscribeToShard %d came %v after ResourceInUse, want >= %v", i+1, d, MinResubscribeInUse)
					}
				}
			},
		},
		{
			name:  "ResourceInUse in the event stream waits at least 5 s",
			plan:  planFor(2, fakekinesis.SubscribePlan{Events: 3, Then: fakekinesis.FailStream, Err: inUse()}),
			check: gapAfterSubscription(2, MinResubscribeInUse),
		},
		{
			name:  "a connection reset on SubscribeToShard is retried",
			fault: failCall("SubscribeToShard", fakekinesis.ConnectionReset, 2),
		},
		{
			name:  "a 500 on SubscribeToShard is retried",
			fault: failCall("SubscribeToShard", fakekinesis.InternalError, 2, 3, 4),
		},
		{
			name:  "throttling on SubscribeToShard is retried",
			fault: failCall("SubscribeToShard", func() error { return &types.LimitExceededException{} }, 2),
		},
		{
			name: "a connection reset mid-stream resubscribes from the continuation",
			plan: planFor(2, fakekinesis.SubscribePlan{Events: 4, Then: fakekinesis.FailStream, Err: fakekinesis.ConnectionReset()}),
		},
		{
			name: "an internal failure mid-stream resubscribes from the continuation",
			plan: planFor(1, fakekinesis.SubscribePlan{Events: 6, Then: fakekinesis.FailStream, Err: &types.InternalFailureException{}}),
		},
		{
			name:  "a silent subscription is cancelled by the watchdog",
			plan:  planFor(2, fakekinesis.SubscribePlan{Events: 3, Then: fakekinesis.GoSilent}),
			check: gapAfterSubscription(2, DefaultSilence),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := []fakekinesis.Option{
					fakekinesis.WithStream(testStream, 1),
					// Early ends make the renewals the faults hit.
					fakekinesis.WithSubscribePlan(func(n int, _ *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
						if tt.plan != nil {
							if p := tt.plan(n); p != (fakekinesis.SubscribePlan{}) {
								return p
							}
						}
						return fakekinesis.SubscribePlan{Events: 5, Then: fakekinesis.EndEarly}
					}),
				}
				if tt.fault != nil {
					opts = append(opts, fakekinesis.WithFault(tt.fault))
				}
				fk := fakekinesis.New(opts...)
				wait := putEvery(fk, 80, 500*time.Millisecond)
				var c calls
				r := startSub(t, mustSubscriber(t, fk, subConfig(&c)))
				recs, _ := r.receive(t, 80)
				wait()
				checkPlain(t, recs, 80)
				if tt.check != nil {
					tt.check(t, &c)
				}
				_ = r.stop()
				subscriptionsClosed(t, fk)
			})
		})
	}
}

// planFor returns a plan func giving p to subscription n only.
func planFor(n int, p fakekinesis.SubscribePlan) func(int) fakekinesis.SubscribePlan {
	return func(k int) fakekinesis.SubscribePlan {
		if k == n {
			return p
		}
		return fakekinesis.SubscribePlan{}
	}
}

// gapAfterSubscription checks that the subscription after the n-th began
// at least d after the n-th subscription's last event.
func gapAfterSubscription(n int, d time.Duration) func(*testing.T, *calls) {
	return func(t *testing.T, c *calls) {
		t.Helper()
		infos := c.snapshot()
		c.mu.Lock()
		at := append([]time.Time(nil), c.at...)
		c.mu.Unlock()
		subs := 0
		var lastEvent time.Time
		for i, info := range infos {
			switch {
			case info.Op == "SubscribeToShard" && info.Err == nil:
				subs++
				if subs == n+1 {
					if gap := at[i].Sub(lastEvent); gap < d {
						t.Errorf("subscription %d came %v after the last event of the failed one, want >= %v", n+1, gap, d)
					}
					return
				}
			case info.Op == "SubscribeToShardEvent" && info.Err == nil && subs == n:
				lastEvent = at[i]
			}
		}
		t.Errorf("fewer than %d subscriptions", n+1)
	}
}

func TestSubscriberWatchdogReportsSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1),
			fakekinesis.WithSubscribePlan(func(n int, _ *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
				if n == 1 {
					return fakekinesis.SubscribePlan{Events: 0, Then: fakekinesis.GoSilent}
				}
				return fakekinesis.SubscribePlan{}
			}))
		put(fk, 3)
		var c calls
		cfg := subConfig(&c)
		cfg.Silence = 10 * time.Second
		start := time.Now()
		r := startSub(t, mustSubscriber(t, fk, cfg))
		recs, _ := r.receive(t, 3)
		checkPlain(t, recs, 3)
		if d := time.Since(start); d < cfg.Silence {
			t.Errorf("records came after %v, before the watchdog could fire", d)
		}
		var silent int
		for _, info := range c.snapshot() {
			if errors.Is(info.Err, ErrSilentSubscription) {
				silent++
			}
		}
		if silent != 1 {
			t.Errorf("%d silent subscriptions reported, want 1", silent)
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberShardEndWithChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 5)
		split(t, fk)
		r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
		recs, end := r.receive(t, 1000)
		checkPlain(t, recs, 5)
		if !end.ShardEnd || len(end.ChildShards) != 2 {
			t.Fatalf("final batch: ShardEnd %v with %d children, want the shard end with 2", end.ShardEnd, len(end.ChildShards))
		}
		if err := r.wait(t); err != nil {
			t.Errorf("Run returned %v after the shard end, want nil", err)
		}
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberConfirmsTheEndOfAClosedShardWithEndlessEmptyEvents(t *testing.T) {
	for _, before := range []int{0, 5} {
		t.Run(fmt.Sprintf("%d records read before", before), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithEndlessClosedShards())
				put(fk, before)
				split(t, fk)
				var c calls
				start := time.Now()
				r := startSub(t, mustSubscriber(t, fk, subConfig(&c)))
				recs, end := r.receive(t, 1000)
				checkPlain(t, recs, before)
				if !end.ShardEnd || len(end.ChildShards) != 2 {
					t.Fatalf("final batch: ShardEnd %v with %d children, want the shard end with 2", end.ShardEnd, len(end.ChildShards))
				}
				if d := time.Since(start); d < DefaultEndCheck || d > 2*DefaultEndCheck {
					t.Errorf("shard end after %v, want about EndCheck (%v)", d, DefaultEndCheck)
				}
				for _, op := range []string{"ListShards", "GetShardIterator", "GetRecords"} {
					if n, _ := c.count(op); n == 0 {
						t.Errorf("no %s call confirmed the end", op)
					}
				}
				if err := r.wait(t); err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
				subscriptionsClosed(t, fk)
			})
		})
	}
}

func TestSubscriberEndCheckOfAnIdleOpenShardBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		var c calls
		r := startSub(t, mustSubscriber(t, fk, subConfig(&c)))
		time.Sleep(4 * time.Minute)
		// Checks at about 10 s, 30 s, 70 s, 150 s (intervals doubling).
		if n, _ := c.count("ListShards"); n != 4 {
			t.Errorf("%d ListShards calls in 4 idle minutes, want 4", n)
		}
		if n, _ := c.count("GetRecords"); n != 0 {
			t.Errorf("%d GetRecords calls on an open shard", n)
		}
		put(fk, 1)
		recs, _ := r.receive(t, 1)
		checkPlain(t, recs, 1)
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberNotFound(t *testing.T) {
	notFound := func() error { return &types.ResourceNotFoundException{Message: aws.String("not found")} }
	t.Run("a missing stream is ErrStreamNotFound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
			cfg := subConfig(nil)
			cfg.StreamName = "gone"
			cfg.ConsumerARN = strings.Replace(subConsumerARN, testStream, "gone", 1)
			r := startSub(t, mustSubscriber(t, fk, cfg))
			if err := r.wait(t); !errors.Is(err, ErrStreamNotFound) || awserr.Classify(err) != awserr.NotFound {
				t.Errorf("Run returned %v, want ErrStreamNotFound wrapping ResourceNotFound", err)
			}
			subscriptionsClosed(t, fk)
		})
	})
	t.Run("a missing consumer of an open shard is ErrConsumerNotFound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(failCall("SubscribeToShard", notFound, 1)))
			r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
			if err := r.wait(t); !errors.Is(err, ErrConsumerNotFound) {
				t.Errorf("Run returned %v, want ErrConsumerNotFound", err)
			}
			subscriptionsClosed(t, fk)
		})
	})
	t.Run("a missing shard is its end", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
			cfg := subConfig(nil)
			cfg.ShardID = "shardId-000000000009"
			r := startSub(t, mustSubscriber(t, fk, cfg))
			_, end := r.receive(t, 1)
			if !end.ShardEnd || end.ChildShards != nil {
				t.Errorf("final batch %+v, want ShardEnd without children", end)
			}
			if err := r.wait(t); err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
			subscriptionsClosed(t, fk)
		})
	})
	t.Run("not found mid-stream on a closed shard confirms its end", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithEndlessClosedShards(),
				fakekinesis.WithSubscribePlan(func(int, *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
					return fakekinesis.SubscribePlan{Events: 1, Then: fakekinesis.FailStream, Err: notFound()}
				}))
			put(fk, 3)
			split(t, fk)
			r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
			recs, end := r.receive(t, 1000)
			checkPlain(t, recs, 3)
			if !end.ShardEnd || len(end.ChildShards) != 2 {
				t.Errorf("final batch: ShardEnd %v with %d children, want the shard end with 2", end.ShardEnd, len(end.ChildShards))
			}
			subscriptionsClosed(t, fk)
		})
	})
}

func TestSubscriberNonRetryableErrorsEndRun(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  func() error
		kind awserr.Kind
	}{
		{"access denied", func() error { return &types.AccessDeniedException{} }, awserr.Denied},
		{"an invalid argument", func() error { return &types.InvalidArgumentException{} }, awserr.Invalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1), fakekinesis.WithFault(failCall("SubscribeToShard", tt.err, 2)),
					fakekinesis.WithSubscribePlan(func(int, *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
						return fakekinesis.SubscribePlan{Events: 2, Then: fakekinesis.EndEarly}
					}))
				r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
				if err := r.wait(t); awserr.Classify(err) != tt.kind {
					t.Errorf("Run returned %v, want a %v error", err, tt.kind)
				}
				subscriptionsClosed(t, fk)
			})
		})
	}
}

func TestSubscriberCancelReturnsCauseAndClosesTheSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 3)
		r := startSub(t, mustSubscriber(t, fk, subConfig(nil)))
		time.Sleep(5 * time.Second) // the batch waits for a consumer
		if err := r.stop(); !errors.Is(err, errTestDone) {
			t.Errorf("Run returned %v, want the context's cause", err)
		}
		subscriptionsClosed(t, fk)
	})
}

func TestSubscriberOneEventInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		wait := putEvery(fk, 10, 500*time.Millisecond)
		synctest.Wait() // r0 is in the shard before the first event
		var c calls
		r := startSub(t, mustSubscriber(t, fk, subConfig(&c)))
		time.Sleep(time.Minute) // a consumer that takes nothing
		if n, _ := c.count("SubscribeToShardEvent"); n != 1 {
			t.Errorf("%d events read while the consumer took nothing, want 1", n)
		}
		recs, _ := r.receive(t, 10)
		wait()
		checkPlain(t, recs, 10)
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

func TestNewSubscriberValidatesConfig(t *testing.T) {
	ok := subConfig(nil)
	tests := []struct {
		name  string
		edit  func(*fanConfig)
		field string
	}{
		{"a consumer ARN is required", func(c *fanConfig) { c.ConsumerARN = "" }, "ConsumerARN"},
		{"a stream is required", func(c *fanConfig) { c.StreamName = "" }, "StreamName"},
		{"a shard is required", func(c *fanConfig) { c.ShardID = "" }, "ShardID"},
		{"a start is required", func(c *fanConfig) { c.Start = checkpoint.Position{} }, "Start"},
		{"SHARD_END is not a start", func(c *fanConfig) { c.Start = checkpoint.ShardEnd }, "Start"},
		{"AT_TIMESTAMP needs a timestamp", func(c *fanConfig) { c.Start = checkpoint.AtTimestamp }, "Timestamp"},
		{"a negative silence is rejected", func(c *fanConfig) { c.Silence = -time.Second }, "Silence"},
		{"a negative end check is rejected", func(c *fanConfig) { c.EndCheck = -time.Second }, "EndCheck"},
		{"a backoff max below its base is rejected", func(c *fanConfig) { c.BackoffBase, c.BackoffMax = time.Second, time.Millisecond }, "BackoffMax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := newSubscriber(fakekinesis.New(), cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewSubscriber returned %v, want a *ConfigError for %s", err, tt.field)
			}
		})
	}
	if _, err := newSubscriber(nil, ok); err == nil {
		t.Error("NewSubscriber accepted a nil API")
	}
	s, err := newSubscriber(fakekinesis.New(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if s.fan.Silence != DefaultSilence || s.fan.EndCheck != DefaultEndCheck || s.cfg.BackoffBase != DefaultBackoffBase || s.cfg.BackoffMax != DefaultBackoffMax {
		t.Errorf("defaults not applied: %+v %+v", s.cfg, s.fan)
	}
}

// hangingSubscribe makes the first SubscribeToShard call hang until its
// context ends.
type hangingSubscribe struct {
	*fakekinesis.Fake
	mu    sync.Mutex
	calls int
}

func (h *hangingSubscribe) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	h.mu.Lock()
	h.calls++
	first := h.calls == 1
	h.mu.Unlock()
	if first {
		<-ctx.Done()
		return nil, fmt.Errorf("operation SubscribeToShard: %w", ctx.Err())
	}
	return h.Fake.SubscribeToShard(ctx, in, optFns...)
}

func TestSubscriberBoundsAHangingSubscribeCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
		put(fk, 3)
		var c calls
		cfg := subConfig(&c)
		cfg.Silence = 10 * time.Second
		start := time.Now()
		r := startSub(t, mustSubscriber(t, &hangingSubscribe{Fake: fk}, cfg))
		recs, _ := r.receive(t, 3)
		checkPlain(t, recs, 3)
		if d := time.Since(start); d < cfg.Silence {
			t.Errorf("records after %v, before the hanging call could time out", d)
		}
		infos := c.snapshot()
		if infos[0].Op != "SubscribeToShard" || !errors.Is(infos[0].Err, errSubscribeTimeout) || infos[0].Kind != awserr.Transient {
			t.Errorf("first call reported %+v, want a transient timeout", infos[0])
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
	})
}

// eventTamper wraps the event stream of every subscription with wrap(n,
// reader), n counting subscriptions from 1.
type eventTamper struct {
	*fakekinesis.Fake
	mu   sync.Mutex
	n    int
	wrap func(n int, r kinesis.SubscribeToShardEventStreamReader) kinesis.SubscribeToShardEventStreamReader
}

func (e *eventTamper) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	out, err := e.Fake.SubscribeToShard(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.n++
	n := e.n
	e.mu.Unlock()
	es := out.GetStream()
	es.Reader = e.wrap(n, es.Reader)
	return out, nil
}

// editedReader passes events through edit.
type editedReader struct {
	kinesis.SubscribeToShardEventStreamReader
	ch   chan types.SubscribeToShardEventStream
	done chan struct{}
	once sync.Once
}

func editEvents(r kinesis.SubscribeToShardEventStreamReader, edit func(*types.SubscribeToShardEvent)) *editedReader {
	e := &editedReader{SubscribeToShardEventStreamReader: r, ch: make(chan types.SubscribeToShardEventStream), done: make(chan struct{})}
	go func() {
		defer close(e.ch)
		for ev := range r.Events() {
			if v, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
				edit(&v.Value)
			}
			select {
			case e.ch <- ev:
			case <-e.done:
				return
			}
		}
	}()
	return e
}

func (e *editedReader) Events() <-chan types.SubscribeToShardEventStream { return e.ch }

func (e *editedReader) Close() error {
	e.once.Do(func() { close(e.done) })
	return e.SubscribeToShardEventStreamReader.Close()
}

func TestSubscriberDropsInvalidEvents(t *testing.T) {
	child := []types.ChildShard{{ShardId: aws.String("shardId-000000000001")}}
	t.Run("an event with both continuation and children is dropped and read again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
			put(fk, 5)
			api := &eventTamper{Fake: fk, wrap: func(n int, r kinesis.SubscribeToShardEventStreamReader) kinesis.SubscribeToShardEventStreamReader {
				if n > 2 {
					return r
				}
				return editEvents(r, func(ev *types.SubscribeToShardEvent) { ev.ChildShards = child })
			}}
			r := startSub(t, mustSubscriber(t, api, subConfig(nil)))
			recs, _ := r.receive(t, 5)
			checkPlain(t, recs, 5)
			_ = r.stop()
			subscriptionsClosed(t, fk)
		})
	})
	t.Run("an event with neither, again and again, ends Run with ErrInvalidResult", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1))
			put(fk, 5)
			api := &eventTamper{Fake: fk, wrap: func(n int, r kinesis.SubscribeToShardEventStreamReader) kinesis.SubscribeToShardEventStreamReader {
				return editEvents(r, func(ev *types.SubscribeToShardEvent) { ev.ContinuationSequenceNumber = nil })
			}}
			r := startSub(t, mustSubscriber(t, api, subConfig(nil)))
			if err := r.wait(t); !errors.Is(err, ErrInvalidResult) {
				t.Errorf("Run returned %v, want ErrInvalidResult", err)
			}
			if started, _ := fk.Subscriptions(); started != maxInvalidResults+1 {
				t.Errorf("%d subscriptions, want %d", started, maxInvalidResults+1)
			}
			subscriptionsClosed(t, fk)
		})
	})
}

// staleReader is a misbehaving event stream: once closed, it still offers
// an event holding a record "stale" for a minute.
type staleReader struct {
	kinesis.SubscribeToShardEventStreamReader
	ch chan types.SubscribeToShardEventStream
}

func newStaleReader(r kinesis.SubscribeToShardEventStreamReader, seq string) *staleReader {
	s := &staleReader{SubscribeToShardEventStreamReader: r, ch: make(chan types.SubscribeToShardEventStream)}
	go func() {
		defer close(s.ch)
		for ev := range r.Events() {
			s.ch <- ev
		}
		stale := &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: types.SubscribeToShardEvent{
			ContinuationSequenceNumber: aws.String(seq),
			MillisBehindLatest:         aws.Int64(0),
			Records:                    []types.Record{{Data: []byte("stale"), PartitionKey: aws.String("k"), SequenceNumber: aws.String(seq)}},
		}}
		select {
		case s.ch <- stale:
		case <-time.After(time.Minute):
		}
	}()
	return s
}

func (s *staleReader) Events() <-chan types.SubscribeToShardEventStream { return s.ch }

func TestSubscriberIgnoresEventsOfAReplacedSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := fakekinesis.New(fakekinesis.WithStream(testStream, 1),
			fakekinesis.WithSubscribePlan(func(n int, _ *kinesis.SubscribeToShardInput) fakekinesis.SubscribePlan {
				if n == 1 {
					return fakekinesis.SubscribePlan{Events: 2, Then: fakekinesis.GoSilent}
				}
				return fakekinesis.SubscribePlan{}
			}))
		seqs := put(fk, 1)
		api := &eventTamper{Fake: fk, wrap: func(n int, r kinesis.SubscribeToShardEventStreamReader) kinesis.SubscribeToShardEventStreamReader {
			if n == 1 {
				return newStaleReader(r, seqs[0])
			}
			return r
		}}
		wait := putEvery(fk, 20, 2*time.Second) // r0..r19 after the first "r0"
		cfg := subConfig(nil)
		cfg.Silence = 5 * time.Second
		r := startSub(t, mustSubscriber(t, api, cfg))
		recs, _ := r.receive(t, 21)
		wait()
		for i, rec := range recs {
			if string(rec.Data) == "stale" {
				t.Fatalf("record %d came from the replaced subscription", i)
			}
		}
		if started, _ := fk.Subscriptions(); started < 2 {
			t.Fatalf("the silent subscription was not replaced")
		}
		if len(recs) != 21 {
			t.Errorf("got %d records, want 21", len(recs))
		}
		_ = r.stop()
		subscriptionsClosed(t, fk)
		time.Sleep(time.Minute) // the stale reader gives up
	})
}
