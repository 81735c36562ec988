package leasetest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/leasetest"
	"github.com/kclgo/kcl/lease/memlease"
)

// A suite that no broken store fails proves nothing. Each mutant below wraps
// the in-memory store with one bug a real implementation could have;
// TestSuiteCatchesBrokenStores runs the suite against each, in a child
// process (Run takes a *testing.T, whose failures cannot be intercepted), and
// checks that the subtest meant to catch the bug fails.

const mutantEnv = "LEASETEST_MUTANT"

type mutant struct {
	catches string // the subtest, as go test prints it, that must fail
	wrap    func(s *memlease.Store) lease.Store
}

var mutants = map[string]mutant{
	"renew ignores the counter": {
		"Renew/renewing_with_a_stale_counter_fails_with_ErrLeaseLost_and_writes_nothing",
		func(s *memlease.Store) lease.Store { return renewIgnoresCounter{s} },
	},
	"renew is a non-atomic read, check and write": {
		"Concurrency/concurrent_conditional_writes_never_lose_an_update",
		func(s *memlease.Store) lease.Store { return &racyRenew{Store: s} },
	},
	"take counts taking an unowned lease as an owner switch": {
		"Take/taking_an_unowned_lease_sets_the_owner_and_counts_no_owner_switch",
		func(s *memlease.Store) lease.Store { return takeAlwaysSwitches{s} },
	},
	"create overwrites": {
		"Create/creating_an_existing_key_fails_with_ErrAlreadyExists_and_leaves_the_lease_untouched",
		func(s *memlease.Store) lease.Store { return createOverwrites{s} },
	},
	"checkpoint keeps the checkpoint owner": {
		"Checkpoint/checkpointing_during_a_handoff_completes_it_and_keeps_the_incoming_owner",
		func(s *memlease.Store) lease.Store { return checkpointKeepsHandoff{s} },
	},
	"handoff increments the counter (a Java holder would lose its lease)": {
		"Handoff/handing_off_leaves_the_counter_unchanged,_as_KCL_3.x_does",
		func(s *memlease.Store) lease.Store { return handoffBumpsCounter{s} },
	},
	"delete ignores the counter": {
		"Delete/deleting_with_a_stale_counter_fails_with_ErrConflict_and_keeps_the_lease",
		func(s *memlease.Store) lease.Store { return deleteIgnoresCounter{s} },
	},
	"get returns shared memory": {
		"Isolation/changing_a_lease_returned_by_Get_does_not_change_the_stored_lease",
		func(s *memlease.Store) lease.Store { return &getShares{Store: s} },
	},
	"renew ignores the context": {
		"Context/every_operation_fails_with_a_cancelled_context_and_writes_nothing",
		func(s *memlease.Store) lease.Store { return renewIgnoresContext{s} },
	},
}

// TestMutant is the child process's test: it runs the suite against the
// mutant named in the environment.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	m, ok := mutants[name]
	if !ok {
		t.Fatalf("no mutant %q", name)
	}
	leasetest.Run(t, func(*testing.T) lease.Store { return m.wrap(memlease.New()) })
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("runs the suite in a child process per mutant")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutant$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store whose %s", name)
			}
			if want := "--- FAIL: TestMutant/" + m.catches + " "; !strings.Contains(string(out), want) {
				t.Errorf("subtest %s did not fail; output:\n%s", m.catches, out)
			}
		})
	}
}

func TestRunFleetPassesForTheInMemoryStore(t *testing.T) {
	leasetest.RunFleet(t, func(*testing.T) leasetest.FleetStore { return memlease.New() })
}

func TestRunPassesForTheInMemoryStore(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Store { return memlease.New() })
}

type renewIgnoresCounter struct{ *memlease.Store }

func (s renewIgnoresCounter) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	if cur, err := s.Get(ctx, l.Key); err == nil {
		l.Counter = cur.Counter
	}
	return s.Store.Renew(ctx, l)
}

// racyRenew checks the condition on a read, then writes unconditionally.
type racyRenew struct {
	*memlease.Store
	mu sync.Mutex // makes each step atomic, not the whole
}

func (s *racyRenew) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	cur, err := s.Get(ctx, l.Key)
	if err != nil || cur.Counter != l.Counter || cur.Owner != l.Owner {
		return lease.Lease{}, lease.ErrLeaseLost
	}
	time.Sleep(time.Millisecond)
	cur.Counter++
	s.mu.Lock()
	s.Put(cur)
	s.mu.Unlock()
	return cur, nil
}

type takeAlwaysSwitches struct{ *memlease.Store }

func (s takeAlwaysSwitches) Take(ctx context.Context, l lease.Lease, owner string) (lease.Lease, error) {
	res, err := s.Store.Take(ctx, l, owner)
	if err == nil && l.Owner == "" {
		res.OwnerSwitchesSinceCheckpoint++
		s.Put(res)
	}
	return res, err
}

type createOverwrites struct{ *memlease.Store }

func (s createOverwrites) Create(ctx context.Context, l lease.Lease) error {
	if _, err := s.Get(ctx, l.Key); err == nil {
		s.Put(l)
		return nil
	}
	return s.Store.Create(ctx, l)
}

type checkpointKeepsHandoff struct{ *memlease.Store }

func (s checkpointKeepsHandoff) Checkpoint(ctx context.Context, l lease.Lease, u lease.CheckpointUpdate) (lease.Lease, error) {
	res, err := s.Store.Checkpoint(ctx, l, u)
	if err == nil && l.CheckpointOwner != "" {
		res.CheckpointOwner = l.CheckpointOwner
		s.Put(res)
	}
	return res, err
}

type handoffBumpsCounter struct{ *memlease.Store }

func (s handoffBumpsCounter) Handoff(ctx context.Context, l lease.Lease, to string) (lease.Lease, error) {
	res, err := s.Store.Handoff(ctx, l, to)
	if err == nil {
		res.Counter++
		s.Put(res)
	}
	return res, err
}

type deleteIgnoresCounter struct{ *memlease.Store }

func (s deleteIgnoresCounter) Delete(ctx context.Context, l lease.Lease) error {
	if cur, err := s.Get(ctx, l.Key); err == nil {
		l.Counter = cur.Counter
	}
	return s.Store.Delete(ctx, l)
}

// getShares returns the same lease value, slices and all, while the stored
// lease is unchanged, as a store caching decoded items might.
type getShares struct {
	*memlease.Store
	mu    sync.Mutex
	cache map[string]lease.Lease
}

func (s *getShares) Get(ctx context.Context, key string) (lease.Lease, error) {
	l, err := s.Store.Get(ctx, key)
	if err != nil {
		return l, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[key]; ok && c.Counter == l.Counter {
		return c, nil
	}
	if s.cache == nil {
		s.cache = make(map[string]lease.Lease)
	}
	s.cache[key] = l
	return l, nil
}

type renewIgnoresContext struct{ *memlease.Store }

func (s renewIgnoresContext) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	return s.Store.Renew(context.WithoutCancel(ctx), l)
}
