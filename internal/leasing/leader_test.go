package leasing_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kclgo/kcl/internal/leasing"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/memlease"
)

// Leader lock timings of these tests: duration 2 s, margin 200 ms, renewals
// and polls every 666 ms.
const (
	ldD      = 2 * time.Second
	ldMargin = 200 * time.Millisecond
	ldPoll   = ldD / 3
)

// lockNet is the network between the electors and one memlease table: each
// elector can be cut off (its lock writes fail before reaching the table),
// paused before its requests reach the table, or slowed in receiving the
// responses of writes that landed. It records the send time of each
// elector's last successful renewal.
type lockNet struct {
	mu          sync.Mutex
	cut         map[string]bool
	before      map[string]time.Duration // delay before a write reaches the table
	after       map[string]time.Duration // delay of the response of a write that landed
	lastRenewal map[string]time.Time
	store       *memlease.Store
}

func newLockNet() *lockNet {
	n := &lockNet{
		cut:         map[string]bool{},
		before:      map[string]time.Duration{},
		after:       map[string]time.Duration{},
		lastRenewal: map[string]time.Time{},
	}
	n.store = memlease.New(memlease.WithFault(n.fault))
	return n
}

func (n *lockNet) fault(op memlease.Op, id string) error {
	switch op {
	case memlease.OpAcquireLeader, memlease.OpRenewLeader, memlease.OpReleaseLeader:
	default:
		return nil
	}
	n.mu.Lock()
	cut, before := n.cut[id], n.before[id]
	n.mu.Unlock()
	time.Sleep(before)
	if cut {
		return errPartitioned
	}
	return nil
}

func (n *lockNet) set(id string, cut bool, before, after time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[id], n.before[id], n.after[id] = cut, before, after
}

func (n *lockNet) lastRenewalOf(id string) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastRenewal[id]
}

// electorStore is one elector's view of the table through the network.
type electorStore struct {
	*memlease.Store
	net *lockNet
	id  string
}

func (s *electorStore) respond() {
	s.net.mu.Lock()
	d := s.net.after[s.id]
	s.net.mu.Unlock()
	time.Sleep(d)
}

func (s *electorStore) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	l, err := s.Store.AcquireLeader(ctx, id, seen)
	if err == nil {
		s.respond()
	}
	return l, err
}

func (s *electorStore) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	sent := time.Now()
	nl, err := s.Store.RenewLeader(ctx, l)
	if err == nil {
		s.net.mu.Lock()
		s.net.lastRenewal[s.id] = sent
		s.net.mu.Unlock()
		s.respond()
	}
	return nl, err
}

func (s *electorStore) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	err := s.Store.ReleaseLeader(ctx, l)
	if err == nil {
		s.respond()
	}
	return err
}

// term is one leadership as the callbacks saw it, in fake time.
type term struct {
	id             string
	epoch          int64
	gained, lost   time.Time
	cause          error
	open           bool
	lostEpochMatch bool
}

// terms records the leaderships of every elector.
type terms struct {
	mu   sync.Mutex
	all  []*term
	open map[string]*term
}

func (ts *terms) callbacks(t *testing.T, id string) leasing.LeaderOption {
	gained := func(epoch int64) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if ts.open == nil {
			ts.open = map[string]*term{}
		}
		if ts.open[id] != nil {
			t.Errorf("%s gained epoch %d while leading epoch %d", id, epoch, ts.open[id].epoch)
		}
		tm := &term{id: id, epoch: epoch, gained: time.Now(), open: true}
		ts.open[id] = tm
		ts.all = append(ts.all, tm)
	}
	lost := func(epoch int64, cause error) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		tm := ts.open[id]
		if tm == nil {
			t.Errorf("%s lost epoch %d without leading", id, epoch)
			return
		}
		tm.lost, tm.cause, tm.open, tm.lostEpochMatch = time.Now(), cause, false, tm.epoch == epoch
		delete(ts.open, id)
	}
	return leasing.WithLeaderCallbacks(gained, lost)
}

func (ts *terms) snapshot() []term {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]term, len(ts.all))
	for i, tm := range ts.all {
		out[i] = *tm
	}
	return out
}

// startElector runs an elector for id until the returned cancel is called;
// cancel waits for Run to return.
func startElector(t *testing.T, net *lockNet, ts *terms, id string) (cancel func()) {
	t.Helper()
	e, err := leasing.NewLeaderElector(&electorStore{Store: net.store, net: net, id: id}, id,
		leasing.WithLockDuration(ldD), ts.callbacks(t, id))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, t.Context()) }() // drain: lives until the test ends
	return func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("%s: Run returned %v", id, err)
		}
	}
}

func TestLeaderOneElectorLeadsAndAnotherNeverTakesOverWhileItRenews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ts := newLockNet(), &terms{}
		stopA := startElector(t, net, ts, "a")
		synctest.Wait()
		stopB := startElector(t, net, ts, "b")
		time.Sleep(time.Minute)
		got := ts.snapshot()
		if len(got) != 1 || got[0].id != "a" || got[0].epoch != 1 || !got[0].open || !got[0].gained.Equal(time.Unix(946684800, 0)) {
			t.Fatalf("terms = %+v, want a single open term of a, epoch 1, from the start", got)
		}
		stopB()
		stopA()
	})
}

func TestLeaderCutOffStepsDownBeforeAnotherTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ts := newLockNet(), &terms{}
		stopA := startElector(t, net, ts, "a")
		synctest.Wait()
		stopB := startElector(t, net, ts, "b")
		defer stopB()
		defer stopA()
		time.Sleep(10*time.Second + 100*time.Millisecond)
		net.set("a", true, 0, 0)
		last := net.lastRenewalOf("a")
		time.Sleep(2 * ldD)

		got := ts.snapshot()
		if len(got) != 2 {
			t.Fatalf("terms = %+v, want a's then b's", got)
		}
		a, b := got[0], got[1]
		if a.id != "a" || b.id != "b" {
			t.Fatalf("terms = %+v, want a's then b's", got)
		}
		if want := last.Add(ldD - ldMargin); !a.lost.Equal(want) {
			t.Fatalf("a stepped down at %v, want %v (its last renewal's send %v + D − m)", a.lost, want, last)
		}
		if !errors.Is(a.cause, leasing.ErrLeadershipExpired) || !errors.Is(a.cause, lease.ErrLeaseLost) {
			t.Fatalf("a's cause = %v, want ErrLeadershipExpired matching lease.ErrLeaseLost", a.cause)
		}
		if gap := b.gained.Sub(a.lost); gap < ldMargin {
			t.Fatalf("b gained at %v, %v after a stepped down at %v; want at least the margin %v", b.gained, gap, a.lost, ldMargin)
		}
		if latest := last.Add(ldD + ldPoll); b.gained.After(latest) {
			t.Fatalf("b gained at %v, after %v (a's last renewal + D + one poll)", b.gained, latest)
		}
		if b.epoch != a.epoch+1 {
			t.Fatalf("epochs a %d, b %d: want b's one more", a.epoch, b.epoch)
		}
	})
}

func TestLeaderStepsDownAtOnceWhenARenewalFailsItsCondition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ts := newLockNet(), &terms{}
		stopA := startElector(t, net, ts, "a")
		defer stopA()
		time.Sleep(time.Second)
		// Someone overwrites the lock behind a's back (a wrong takeover).
		l, err := net.store.Leader(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.store.AcquireLeader(t.Context(), "intruder", &l); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := ts.snapshot(); len(got) != 1 || !got[0].open {
			t.Fatalf("terms = %+v: a stepped down before it renewed", got)
		}
		time.Sleep(ldPoll)
		got := ts.snapshot()
		if len(got) != 1 || got[0].open {
			t.Fatalf("terms = %+v, want a's, ended", got)
		}
		if want := time.Unix(946684800, 0).Add(ldPoll * 2); !got[0].lost.Equal(want) {
			t.Fatalf("a stepped down at %v, want at its next renewal %v", got[0].lost, want)
		}
		if !errors.Is(got[0].cause, lease.ErrLeaseLost) || errors.Is(got[0].cause, leasing.ErrLeadershipExpired) {
			t.Fatalf("cause = %v, want lease.ErrLeaseLost from the renewal", got[0].cause)
		}
	})
}

func TestLeaderReleasesOnAGracefulStopAndAnotherAcquiresWithinOnePoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, ts := newLockNet(), &terms{}
		stopA := startElector(t, net, ts, "a")
		synctest.Wait()
		stopB := startElector(t, net, ts, "b")
		defer stopB()
		time.Sleep(5 * time.Second)
		stopped := time.Now()
		stopA()
		l, err := net.store.Leader(t.Context())
		if err != nil || l.Owner != "" {
			t.Fatalf("lock after a's stop = %+v, %v; want released", l, err)
		}
		time.Sleep(ldPoll)
		got := ts.snapshot()
		if len(got) != 2 || got[0].id != "a" || got[1].id != "b" {
			t.Fatalf("terms = %+v, want a's then b's", got)
		}
		if !got[0].lost.Equal(stopped) || !errors.Is(got[0].cause, leasing.ErrLeaderStopped) {
			t.Fatalf("a lost at %v with %v, want at %v with ErrLeaderStopped", got[0].lost, got[0].cause, stopped)
		}
		if d := got[1].gained.Sub(stopped); d > ldPoll {
			t.Fatalf("b gained %v after a's stop, want within one poll (%v)", d, ldPoll)
		}
		if got[1].epoch != 2 {
			t.Fatalf("b's epoch = %d, want 2 (the released lock keeps its epoch)", got[1].epoch)
		}
	})
}

// TestLeaderNeverTwoAtOnce runs several electors over one table for fake
// minutes while cutting them off, pausing their requests before they reach
// the table, slowing the responses of writes that landed, and stopping and
// restarting them; no two may ever lead at the same instant.
func TestLeaderNeverTwoAtOnce(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { leaderChaos(t, seed) })
		})
	}
}

func leaderChaos(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 12))
	net, ts := newLockNet(), &terms{}
	ids := []string{"a", "b", "c", "d"}
	stops := map[string]func(){}
	for _, id := range ids {
		stops[id] = startElector(t, net, ts, id)
	}
	end := time.Now().Add(5 * time.Minute)
	for time.Now().Before(end) {
		time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		id := ids[rng.IntN(len(ids))]
		switch r := rng.IntN(10); {
		case r < 3: // heal
			net.set(id, false, 0, 0)
		case r < 5: // cut off
			net.set(id, true, 0, 0)
		case r < 7: // requests paused before reaching the table, up to 1.5 D
			net.set(id, false, time.Duration(rng.Int64N(int64(3*ldD/2))), 0)
		case r < 9: // responses of landed writes late, up to 1.5 D
			net.set(id, false, 0, time.Duration(rng.Int64N(int64(3*ldD/2))))
		default: // restart (a graceful stop, then a new elector)
			if stop := stops[id]; stop != nil {
				stop()
			}
			stops[id] = startElector(t, net, ts, id)
		}
	}
	for _, id := range ids {
		net.set(id, false, 0, 0)
	}
	for _, id := range ids {
		stops[id]()
	}

	got := ts.snapshot()
	if len(got) < 10 {
		t.Fatalf("only %d leaderships in 5 minutes: the chaos is too gentle to prove anything", len(got))
	}
	slices.SortFunc(got, func(x, y term) int { return x.gained.Compare(y.gained) })
	var prev term
	for i, tm := range got {
		if tm.open {
			t.Fatalf("%s's term of epoch %d never ended although every elector stopped", tm.id, tm.epoch)
		}
		if !tm.lostEpochMatch {
			t.Fatalf("%s's term of epoch %d ended with another epoch", tm.id, tm.epoch)
		}
		if i > 0 {
			if tm.gained.Before(prev.lost) {
				t.Fatalf("%s led from %v (epoch %d) while %s led until %v (epoch %d)",
					tm.id, tm.gained, tm.epoch, prev.id, prev.lost, prev.epoch)
			}
			if tm.epoch <= prev.epoch {
				t.Fatalf("epoch %d of %s follows epoch %d of %s", tm.epoch, tm.id, prev.epoch, prev.id)
			}
		}
		prev = tm
	}
	t.Logf("%d leaderships, last epoch %d", len(got), prev.epoch)
}

func TestLeaderOptionsAreValidated(t *testing.T) {
	store := memlease.New()
	for _, tc := range []struct {
		name string
		opts []leasing.LeaderOption
	}{
		{"a zero lock duration is refused", []leasing.LeaderOption{leasing.WithLockDuration(0)}},
		{"a margin over a quarter of the duration is refused", []leasing.LeaderOption{leasing.WithLeaderMargin(time.Second)}},
		{"a negative poll interval is refused", []leasing.LeaderOption{leasing.WithLeaderPollInterval(-time.Second)}},
		{"a nil logger is refused", []leasing.LeaderOption{leasing.WithLeaderLogger(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leasing.NewLeaderElector(store, "a", tc.opts...)
			var oe *leasing.OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v, want *OptionError", err)
			}
		})
	}
}
