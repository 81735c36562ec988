package consumer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease/memlease"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

// closing is a proc that also implements consumer.Closer. It records, for
// each Close, the event and the lease's owner at that moment.
type closing struct {
	*proc
	store *memlease.Store
	mu    *sync.Mutex
	log   *[]closed
}

type closed struct {
	shard string
	ev    consumer.LeaseEvent
	owner string
	// before are the lifecycle events journaled for the shard before Close.
	before []string
}

func (c *closing) Close(ctx context.Context, ev consumer.LeaseEvent) {
	owner := ""
	for _, l := range c.store.Leases() {
		if l.Key == c.info.ShardID {
			owner = l.Owner
		}
	}
	var before []string
	for _, kind := range []string{"shutdown", "lost", "ended"} {
		if slices.Contains(c.j.eventsOf(kind), c.info.ShardID) {
			before = append(before, kind)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.log = append(*c.log, closed{shard: c.info.ShardID, ev: ev, owner: owner, before: before})
}

// closingFactory is factory with processors that implement Closer.
func closingFactory(j *journal, store *memlease.Store, setup func(p *proc)) (consumer.Factory, func() []closed) {
	var (
		mu  sync.Mutex
		log []closed
	)
	inner := factory(j, store, setup)
	f := consumer.FactoryFunc(func(info consumer.ShardInfo) (consumer.Processor, error) {
		p, err := inner.NewProcessor(info)
		if err != nil {
			return nil, err
		}
		return &closing{proc: p.(*proc), store: store, mu: &mu, log: &log}, nil
	})
	return f, func() []closed {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// Close is called exactly once per processor, last, after the lease was
// given back, on every way processing ends — including the ones that call
// no other lifecycle method.
func TestCloseIsCalledOnceOnEveryEnding(t *testing.T) {
	t.Run("graceful stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
			store := memlease.New()
			j := &journal{}
			fac, closes := closingFactory(j, store, nil)
			putRange(f, 0, 5, 2)
			r := start(t, newWorker(t, f, store, fac, "w1"))
			waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
			if err := r.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			c := closes()
			if len(c) != 1 {
				t.Fatalf("Close called %d times, want 1: %+v", len(c), c)
			}
			if c[0].ev.Kind != consumer.LeaseReleased || !errors.Is(c[0].ev.Cause, consumer.ErrStopping) {
				t.Errorf("Close given %v (%v), want LeaseReleased caused by ErrStopping", c[0].ev.Kind, c[0].ev.Cause)
			}
			if !slices.Equal(c[0].before, []string{"shutdown"}) {
				t.Errorf("lifecycle calls before Close: %v, want [shutdown]", c[0].before)
			}
			if c[0].owner != "" {
				t.Errorf("lease owned by %q during Close, want it already released", c[0].owner)
			}
		})
	})
	t.Run("failing batch abandoned on a graceful stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
			store := memlease.New()
			j := &journal{}
			fac, closes := closingFactory(j, store, func(p *proc) {
				p.batch = func(context.Context, *consumer.Batch) error { return errors.New("always failing") }
			})
			putRange(f, 0, 5, 2)
			r := start(t, newWorker(t, f, store, fac, "w1"))
			time.Sleep(3 * time.Second)
			if err := r.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			c := closes()
			if len(c) != 1 || c[0].ev.Kind != consumer.LeaseReleased {
				t.Fatalf("Close calls %+v, want one with LeaseReleased", c)
			}
			if len(c[0].before) != 0 {
				t.Errorf("lifecycle calls before Close: %v, want none (the abandoned path calls none)", c[0].before)
			}
		})
	})
	t.Run("error handler stops the shard", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
			store := memlease.New()
			j := &journal{}
			fac, closes := closingFactory(j, store, func(p *proc) {
				p.batch = func(context.Context, *consumer.Batch) error { return errors.New("always failing") }
			})
			putRange(f, 0, 5, 2)
			r := start(t, newWorker(t, f, store, fac, "w1", consumer.WithRetryLimit(1)))
			waitFor(t, "a Close", time.Minute, func() bool { return len(closes()) > 0 })
			c := closes()[0]
			if c.ev.Kind != consumer.LeaseReleased || !errors.Is(c.ev.Cause, consumer.ErrShardStopped) {
				t.Errorf("Close given %v (%v), want LeaseReleased caused by ErrShardStopped", c.ev.Kind, c.ev.Cause)
			}
			if err := r.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			// The shard was taken again and stopped again: one Close per processor.
			if n, m := len(closes()), len(j.eventsOf("new")); n != m {
				t.Errorf("%d Close calls for %d processors", n, m)
			}
		})
	})
	t.Run("shard end", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := fakekinesis.New(fakekinesis.WithStream(streamName, 1))
			store := memlease.New()
			j := &journal{}
			fac, closes := closingFactory(j, store, nil)
			putRange(f, 0, 5, 2)
			r := start(t, newWorker(t, f, store, fac, "w1"))
			waitFor(t, "5 records", time.Minute, func() bool { return j.count() >= 5 })
			if _, err := f.SplitShard(t.Context(), &kinesis.SplitShardInput{
				StreamName: aws.String(streamName), ShardToSplit: aws.String(shard0),
				NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
			}); err != nil {
				t.Fatalf("SplitShard: %v", err)
			}
			waitFor(t, "the parent's Close", time.Minute, func() bool {
				for _, c := range closes() {
					if c.shard == shard0 {
						return true
					}
				}
				return false
			})
			if err := r.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var parent []closed
			for _, c := range closes() {
				if c.shard == shard0 {
					parent = append(parent, c)
				}
			}
			if len(parent) != 1 || parent[0].ev.Kind != consumer.LeaseShardEnded || !slices.Equal(parent[0].before, []string{"ended"}) {
				t.Errorf("parent's Close calls %+v, want one LeaseShardEnded after ShardEnded", parent)
			}
			if n, m := len(closes()), len(j.eventsOf("new")); n != m {
				t.Errorf("%d Close calls for %d processors", n, m)
			}
		})
	})
}
