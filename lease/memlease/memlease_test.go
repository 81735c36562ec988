package memlease_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/leasetest"
	"github.com/kclgo/kcl/lease/memlease"
)

func TestConformance(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Store { return memlease.New() })
}

// TestConformanceWithFaultHooks runs the suite with hooks that never fire, to
// check that calling them changes nothing.
func TestConformanceWithFaultHooks(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Store {
		return memlease.New(
			memlease.WithFault(func(memlease.Op, string) error { return nil }),
			memlease.WithSpuriousFailure(func(memlease.Op, string) error { return nil }),
		)
	})
}

func unowned(key string) lease.Lease {
	return lease.Lease{Key: key, Checkpoint: checkpoint.TrimHorizon}
}

func TestFaultIsReturnedInsteadOfTheOperation(t *testing.T) {
	errNetwork := errors.New("network down")
	var failing atomic.Bool
	s := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
		switch {
		case !failing.Load():
			return nil
		case op == memlease.OpRenew:
			return lease.ErrThrottled
		case op.IsWrite():
			return errNetwork
		}
		return nil
	}))
	ctx := t.Context()
	if err := s.Create(ctx, unowned("a")); err != nil {
		t.Fatal(err)
	}
	l, err := s.Take(ctx, unowned("a"), "w1")
	if err != nil {
		t.Fatal(err)
	}
	before := s.Stats()

	failing.Store(true)
	if _, err := s.Renew(ctx, l); !errors.Is(err, lease.ErrThrottled) {
		t.Errorf("Renew = %v; want lease.ErrThrottled", err)
	}
	if _, err := s.Release(ctx, l); !errors.Is(err, errNetwork) {
		t.Errorf("Release = %v; want the injected error", err)
	}
	if err := s.Create(ctx, unowned("b")); !errors.Is(err, errNetwork) {
		t.Errorf("Create = %v; want the injected error", err)
	}
	if got, err := s.Get(ctx, "a"); err != nil || got.Counter != l.Counter || got.Owner != "w1" {
		t.Errorf("Get after the faults = %+v, %v; want the lease unchanged", got, err)
	}
	if d := s.Stats().Sub(before); d.Writes() != 0 || d.Gets != 1 {
		t.Errorf("Stats during the faults = %+v; want no write and one Get", d)
	}
}

func TestFaultSeesEveryOperationAndKey(t *testing.T) {
	type call struct {
		op  memlease.Op
		key string
	}
	var calls []call
	s := memlease.New(memlease.WithFault(func(op memlease.Op, key string) error {
		calls = append(calls, call{op, key})
		return nil
	}))
	ctx := t.Context()
	_ = s.Create(ctx, unowned("k"))
	l, _ := s.Get(ctx, "k")
	_, _ = s.List(ctx)
	_, _ = s.ListOwned(ctx, "w1")
	l, _ = s.Take(ctx, l, "w1")
	l, _ = s.Renew(ctx, l)
	l, _ = s.Handoff(ctx, l, "w2")
	l, _ = s.Checkpoint(ctx, l, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd})
	l, _ = s.Release(ctx, l)
	_ = s.Delete(ctx, l)
	want := []call{
		{memlease.OpCreate, "k"}, {memlease.OpGet, "k"}, {memlease.OpList, ""}, {memlease.OpListOwned, ""},
		{memlease.OpTake, "k"}, {memlease.OpRenew, "k"}, {memlease.OpHandoff, "k"},
		{memlease.OpCheckpoint, "k"}, {memlease.OpRelease, "k"}, {memlease.OpDelete, "k"},
	}
	if len(calls) != len(want) {
		t.Fatalf("fault saw %v; want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %v %q; want %v %q", i, calls[i].op, calls[i].key, want[i].op, want[i].key)
		}
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Get after Delete = %v; want lease.ErrNotFound (every operation succeeded)", err)
	}
}

// TestSpuriousRenewFailureLeavesTheLeaseHeld shows the case KCL's renewer
// handles by re-reading: the write landed, the caller got an error.
func TestSpuriousRenewFailureLeavesTheLeaseHeld(t *testing.T) {
	errTimeout := errors.New("request timed out")
	s := memlease.New(memlease.WithSpuriousFailure(func(op memlease.Op, key string) error {
		if op == memlease.OpRenew {
			return errTimeout
		}
		return nil
	}))
	ctx := t.Context()
	if err := s.Create(ctx, unowned("k")); err != nil {
		t.Fatal(err)
	}
	l, err := s.Take(ctx, unowned("k"), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(ctx, l); !errors.Is(err, errTimeout) {
		t.Fatalf("Renew = %v; want the injected error", err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil || got.Owner != "w1" || got.Counter != l.Counter+1 {
		t.Errorf("Get after the spurious failure = %+v, %v; want owner w1 at counter %d", got, err, l.Counter+1)
	}
	if st := s.Stats(); st.Renew != (memlease.WriteCount{Succeeded: 1}) {
		t.Errorf("Stats().Renew = %+v; want one successful write", st.Renew)
	}
}

func TestStatsCountLikeDynamoDB(t *testing.T) {
	s := memlease.New()
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Create(ctx, unowned(k)); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Create(ctx, unowned("a"))                     // failed: exists
	a, _ := s.Take(ctx, unowned("a"), "w1")             // ok
	_, _ = s.Take(ctx, unowned("a"), "w2")              // failed: stale
	a, _ = s.Renew(ctx, a)                              // ok
	_, _ = s.Renew(ctx, unowned("a"))                   // failed
	a, _ = s.Handoff(ctx, a, "w2")                      // ok
	_, _ = s.Handoff(ctx, a, "w3")                      // failed: in handoff
	a, _ = s.Checkpoint(ctx, a, lease.CheckpointUpdate{ // ok
		Checkpoint: checkpoint.Latest,
	})
	_, _ = s.Checkpoint(ctx, a, lease.CheckpointUpdate{}) // invalid: not counted
	_, _ = s.Release(ctx, a)                              // ok
	_, _ = s.Release(ctx, a)                              // failed: stale
	_ = s.Delete(ctx, unowned("b"))                       // ok
	_ = s.Delete(ctx, unowned("b"))                       // failed: missing
	_, _ = s.Get(ctx, "a")
	_, _ = s.Get(ctx, "missing")
	_, _ = s.List(ctx)
	_, _ = s.ListOwned(ctx, "w1")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = s.Get(cancelled, "a") // not counted

	want := memlease.Stats{
		Gets: 2, Lists: 1, ListedItems: 2, ListOwnedCalls: 1, OwnedKeys: 0,
		Create:     memlease.WriteCount{Succeeded: 3, Failed: 1},
		Renew:      memlease.WriteCount{Succeeded: 1, Failed: 1},
		Take:       memlease.WriteCount{Succeeded: 1, Failed: 1},
		Handoff:    memlease.WriteCount{Succeeded: 1, Failed: 1},
		Checkpoint: memlease.WriteCount{Succeeded: 1},
		Release:    memlease.WriteCount{Succeeded: 1, Failed: 1},
		Delete:     memlease.WriteCount{Succeeded: 1, Failed: 1},
	}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() =\n\t%+v\nwant\n\t%+v", got, want)
	}
	if got := s.Stats().Writes(); got != 15 {
		t.Errorf("Writes() = %d; want 15", got)
	}
	if d := s.Stats().Sub(want); d != (memlease.Stats{}) {
		t.Errorf("Sub of itself = %+v; want zero", d)
	}
}

func TestInvalidArgumentsFailWithoutConflict(t *testing.T) {
	s := memlease.New()
	ctx := t.Context()
	if err := s.Create(ctx, unowned("k")); err != nil {
		t.Fatal(err)
	}
	l, _ := s.Get(ctx, "k")
	held, _ := s.Take(ctx, l, "w1")
	calls := []struct {
		name string
		err  error
	}{
		{"Create with an empty key", s.Create(ctx, unowned(""))},
		{"Take for an empty owner", second(s.Take(ctx, held, ""))},
		{"Handoff to an empty owner", second(s.Handoff(ctx, held, ""))},
		{"Handoff of an unowned lease", second(s.Handoff(ctx, l, "w2"))},
		{"Checkpoint at the zero position", second(s.Checkpoint(ctx, held, lease.CheckpointUpdate{}))},
	}
	for _, c := range calls {
		if c.err == nil || errors.Is(c.err, lease.ErrConflict) {
			t.Errorf("%s = %v; want an error not matching lease.ErrConflict", c.name, c.err)
		}
	}
	if got, _ := s.Get(ctx, "k"); got.Counter != held.Counter {
		t.Errorf("Counter = %d after invalid calls; want %d", got.Counter, held.Counter)
	}
}

func second[T any](_ T, err error) error { return err }

func TestLeasesAreStoredAsDynamoDBKeepsThem(t *testing.T) {
	s := memlease.New()
	l := unowned("k")
	l.ParentShardIDs = []string{"shardId-2", "shardId-1", "shardId-2"}
	l.ChildShardIDs = []string{}
	l.PendingCheckpointState = []byte{}
	s.Put(l)
	got := s.Leases()
	if len(got) != 1 {
		t.Fatalf("Leases() = %+v; want one lease", got)
	}
	g := got[0]
	if len(g.ParentShardIDs) != 2 || g.ParentShardIDs[0] != "shardId-1" || g.ParentShardIDs[1] != "shardId-2" ||
		g.ChildShardIDs != nil || g.PendingCheckpointState != nil {
		t.Errorf("stored lease = %+v; want sorted, deduplicated parents and nil empty slices", g)
	}
	if st := s.Stats(); st != (memlease.Stats{}) {
		t.Errorf("Stats after Put and Leases = %+v; want zero", st)
	}
}

func TestChildShardIDsAreWrittenOnlyWhenGiven(t *testing.T) {
	s := memlease.New()
	ctx := t.Context()
	l := unowned("k")
	l.Owner = "w1"
	l.ChildShardIDs = []string{"c1"}
	s.Put(l)
	for _, children := range [][]string{nil, {}} {
		var err error
		l, err = s.Checkpoint(ctx, l, lease.CheckpointUpdate{Checkpoint: checkpoint.ShardEnd, ChildShardIDs: children})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.ChildShardIDs) != 1 {
			t.Errorf("ChildShardIDs after a checkpoint with %#v = %q; want the stored [c1]", children, l.ChildShardIDs)
		}
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[memlease.Op]string{
		memlease.OpCreate: "Create", memlease.OpListOwned: "ListOwned", memlease.OpDelete: "Delete", 0: "Op(0)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q; want %q", uint8(op), got, want)
		}
	}
	for op := memlease.OpCreate; op <= memlease.OpDelete; op++ {
		write := op != memlease.OpGet && op != memlease.OpList && op != memlease.OpListOwned
		if op.IsWrite() != write {
			t.Errorf("%v.IsWrite() = %t", op, op.IsWrite())
		}
	}
}

// TestWorksInsideSynctest renews a lease from two goroutines on fake time:
// the Store needs no real time and blocks only on its mutex.
func TestWorksInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memlease.New()
		ctx := t.Context()
		if err := s.Create(ctx, unowned("k")); err != nil {
			t.Fatal(err)
		}
		l, err := s.Take(ctx, unowned("k"), "w1")
		if err != nil {
			t.Fatal(err)
		}
		var lost atomic.Int64
		renew := func() {
			l := l
			for range 10 {
				time.Sleep(3300 * time.Millisecond)
				next, err := s.Renew(ctx, l)
				if errors.Is(err, lease.ErrLeaseLost) {
					lost.Add(1)
					if l, err = s.Get(ctx, "k"); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				l = next
			}
		}
		start := time.Now()
		done := make(chan struct{}, 2)
		for range 2 {
			go func() { renew(); done <- struct{}{} }()
		}
		<-done
		<-done
		if elapsed := time.Since(start); elapsed != 33*time.Second {
			t.Errorf("fake time elapsed = %v; want 33s", elapsed)
		}
		got, err := s.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		renewed := s.Stats().Renew.Succeeded
		if got.Counter != l.Counter+renewed {
			t.Errorf("Counter = %d after %d renewals from %d", got.Counter, renewed, l.Counter)
		}
		if renewed+lost.Load() != 20 {
			t.Errorf("%d renewals and %d lost; want 20 attempts", renewed, lost.Load())
		}
	})
}

func BenchmarkRenew(b *testing.B) {
	s := memlease.New()
	ctx := b.Context()
	l := unowned("shardId-000000000000")
	l.Owner = "worker"
	l.ParentShardIDs = []string{"shardId-000000000001"}
	s.Put(l)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if l, err = s.Renew(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenewParallel renews one lease per goroutine, all in one Store: the
// cost of the Store's single mutex under contention.
func BenchmarkRenewParallel(b *testing.B) {
	s := memlease.New()
	ctx := b.Context()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		l := unowned("shardId-" + strconv.FormatInt(next.Add(1), 10))
		l.Owner = "worker"
		s.Put(l)
		for pb.Next() {
			var err error
			if l, err = s.Renew(ctx, l); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestFleetConformance(t *testing.T) {
	leasetest.RunFleet(t, func(*testing.T) leasetest.FleetStore { return memlease.New() })
}
