package leasetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/lease"
)

// Bounds of the race tests: enough contention to catch a non-atomic
// read-check-write, few enough requests (about 2 × raceOps) for DynamoDB
// Local to serve in about a second.
const (
	raceWorkers = 16
	raceLeases  = 3
	raceOps     = 400
	racers      = 10 // for the single-shot take and create races
)

var concurrencyTests = []test{
	{"concurrent conditional writes never lose an update", testWriteRace},
	{"exactly one of concurrent takes at the same counter wins", testTakeRace},
}

// outcome is the result of one conditional write in a race.
type outcome struct {
	op     string
	read   lease.Lease // the lease the write was conditioned on
	result lease.Lease // what the store returned
	want   lease.Lease // what the model says it must return
}

// testWriteRace has raceWorkers goroutines read one of raceLeases leases and
// write it at the counter they read, with Renew, Take, Handoff, Checkpoint
// or Release. A store is linearizable on each lease exactly when the
// successful writes to it, in counter order, form one chain: every write but
// a Handoff returned the counter one above the previous write's (initial+1,
// initial+2, … without gaps or repeats), every Handoff the previous write's
// counter (it leaves the counter alone, as in KCL 3.x) and never two
// Handoffs in a row; each returned what the model computes from the lease it
// was conditioned on, and the last one is what the store holds. Every
// failure must be a condition failure.
func testWriteRace(t *testing.T, s lease.Store) {
	ctx := t.Context()
	keys := make([]string, raceLeases)
	initial := make(map[string]lease.Lease, raceLeases)
	for i := range keys {
		keys[i] = fmt.Sprintf("shardId-%012d", i)
		initial[keys[i]] = create(t, s, heldLease(t, keys[i], workerA))
	}

	var (
		budget atomic.Int64
		mu     sync.Mutex
		wins   = make(map[string][]outcome) // guarded by mu
		losses atomic.Int64
	)
	budget.Store(raceOps)
	var wg sync.WaitGroup
	for w := range raceWorkers {
		me := "worker-" + strconv.Itoa(w)
		rng := rand.New(rand.NewPCG(uint64(w), 0x6b636c))
		wg.Go(func() {
			for {
				n := budget.Add(-1)
				if n < 0 || ctx.Err() != nil {
					return
				}
				key := keys[rng.IntN(len(keys))]
				l, err := s.Get(ctx, key)
				if err != nil {
					t.Errorf("Get(%q): %v", key, err)
					return
				}
				o, err := raceWrite(ctx, s, rng, me, l, n)
				switch {
				case err == nil:
					mu.Lock()
					wins[key] = append(wins[key], o)
					mu.Unlock()
				case !errors.Is(err, lease.ErrConflict):
					t.Errorf("%s(%q) = %v; want success or an error matching lease.ErrConflict", o.op, key, err)
					return
				case o.op != "Take" && o.op != "Handoff" && !errors.Is(err, lease.ErrLeaseLost):
					t.Errorf("%s(%q) = %v; want success or an error matching lease.ErrLeaseLost", o.op, key, err)
					return
				default:
					losses.Add(1)
				}
			}
		})
	}
	wg.Wait()

	total := 0
	for _, key := range keys {
		won := wins[key]
		total += len(won)
		// A Handoff at counter c returns c, after the write that produced c
		// and before the write made at c.
		slices.SortFunc(won, func(a, b outcome) int {
			if c := cmp.Compare(a.result.Counter, b.result.Counter); c != 0 {
				return c
			}
			return cmp.Compare(handoffRank(a), handoffRank(b))
		})
		base := initial[key].Counter
		cur, handoffs := base, 0
		for i, o := range won {
			want := cur + 1
			if o.op == "Handoff" {
				want = cur
				handoffs++
			}
			if o.result.Counter != want || (o.op == "Handoff" && i > 0 && won[i-1].op == "Handoff") {
				t.Errorf("lease %q: successful writes (%s) returned counters %v; want one chain from %d, each counter once but after a Handoff (a lost update)",
					key, ops(won), counters(won), base)
				break
			}
			cur = o.result.Counter
			checkLease(t, fmt.Sprintf("%s at counter %d result", o.op, o.read.Counter), o.result, o.want)
		}
		final := get(t, s, key)
		if want := base + int64(len(won)-handoffs); final.Counter != want {
			t.Errorf("lease %q: Counter = %d after %d successful writes (%d handoffs) from %d; want %d", key, final.Counter, len(won), handoffs, base, want)
		} else if len(won) > 0 {
			checkLease(t, "Get after the race", final, won[len(won)-1].result)
		}
	}
	t.Logf("%d successful writes, %d refused", total, losses.Load())
	if total == 0 {
		t.Error("no write succeeded")
	}
}

// raceWrite makes one conditional write of l chosen by rng, as worker me; n
// makes the positions it writes unique.
func raceWrite(ctx context.Context, s lease.Store, rng *rand.Rand, me string, l lease.Lease, n int64) (outcome, error) {
	o := outcome{read: l}
	var err error
	r := rng.IntN(10)
	switch {
	case l.Owner == "" || r < 2:
		o.op, o.want = "Take", afterTake(l, me)
		o.result, err = s.Take(ctx, l, me)
	case r < 5:
		o.op, o.want = "Renew", afterRenew(l)
		o.result, err = s.Renew(ctx, l)
	case r < 8:
		u := lease.CheckpointUpdate{Checkpoint: seqPos(1000+n, uint64(r))}
		if r == 7 {
			u.PendingCheckpoint = seqPos(2000+n, 0)
			u.PendingCheckpointState = []byte(me)
		}
		o.op, o.want = "Checkpoint", afterCheckpoint(l, u)
		o.result, err = s.Checkpoint(ctx, l, u)
	case r == 8 && !l.InHandoff():
		to := "worker-" + strconv.Itoa(rng.IntN(raceWorkers))
		if to == l.Owner {
			to = workerC // not one of the racing workers
		}
		o.op, o.want = "Handoff", afterHandoff(l, to)
		o.result, err = s.Handoff(ctx, l, to)
	default:
		o.op, o.want = "Release", afterRelease(l)
		o.result, err = s.Release(ctx, l)
	}
	return o, err
}

// seqPos returns the record position n/sub; n must not be negative.
func seqPos(n int64, sub uint64) checkpoint.Position {
	p, _ := checkpoint.At(strconv.FormatInt(n, 10), sub) // a decimal without sign or leading zero is valid
	return p
}

func handoffRank(o outcome) int {
	if o.op == "Handoff" {
		return 1
	}
	return 0
}

func ops(os []outcome) []string {
	names := make([]string, len(os))
	for i, o := range os {
		names[i] = o.op
	}
	return names
}

func counters(os []outcome) []int64 {
	c := make([]int64, len(os))
	for i, o := range os {
		c[i] = o.result.Counter
	}
	return c
}

// testTakeRace has racers workers take one unowned lease at the same counter.
func testTakeRace(t *testing.T, s lease.Store) {
	l := create(t, s, plainLease(key0))
	results := make([]lease.Lease, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Take(t.Context(), l, "worker-"+strconv.Itoa(i))
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("Take by worker-%d and worker-%d both succeeded at counter %d", winner, i, l.Counter)
		case err == nil:
			winner = i
		case !errors.Is(err, lease.ErrConflict):
			t.Errorf("Take by worker-%d = %v; want success or an error matching lease.ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Take succeeded")
	}
	want := afterTake(l, "worker-"+strconv.Itoa(winner))
	checkLease(t, "winning Take result", results[winner], want)
	wantStored(t, s, "after the take race", want)
}

// testCreateRace has racers workers create the same key, each with its own
// owner.
func testCreateRace(t *testing.T, s lease.Store) {
	leases := make([]lease.Lease, racers)
	for i := range leases {
		leases[i] = heldLease(t, key0, "worker-"+strconv.Itoa(i))
	}
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = s.Create(t.Context(), leases[i])
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("Create by worker-%d and worker-%d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, lease.ErrAlreadyExists):
			t.Errorf("Create by worker-%d = %v; want success or an error matching lease.ErrAlreadyExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Create succeeded")
	}
	wantStored(t, s, "after the create race", leases[winner])
}
