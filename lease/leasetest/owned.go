package leasetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kclgo/kcl/lease"
)

var listOwnedTests = []test{
	{"listing owned leases returns exactly the keys each worker owns", func(t *testing.T, s lease.Store) {
		ol := ownerLister(t, s)
		for i, owner := range []string{workerA, workerA, workerA, workerB, workerB, ""} {
			create(t, s, heldLease(t, fmt.Sprintf("shardId-%012d", i), owner))
		}
		// A lease handed off belongs to the incoming owner.
		l := create(t, s, heldLease(t, "shardId-000000000100", workerB))
		_, err := s.Handoff(t.Context(), l, workerA)
		wantOK(t, "Handoff", err)

		wantOwned(t, ol, workerA, "shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000100")
		wantOwned(t, ol, workerB, "shardId-000000000003", "shardId-000000000004")
		wantOwned(t, ol, workerC)
	}},
	{"listing owned leases follows takes, releases and deletes", func(t *testing.T, s lease.Store) {
		ol := ownerLister(t, s)
		a0 := create(t, s, heldLease(t, "shardId-000000000000", workerA))
		a1 := create(t, s, heldLease(t, "shardId-000000000001", workerA))
		a2 := create(t, s, heldLease(t, "shardId-000000000002", workerA))
		wantOwned(t, ol, workerA, a0.Key, a1.Key, a2.Key)

		_, err := s.Take(t.Context(), a0, workerB)
		wantOK(t, "Take", err)
		_, err = s.Release(t.Context(), a1)
		wantOK(t, "Release", err)
		wantOK(t, "Delete", s.Delete(t.Context(), a2))
		wantOwned(t, ol, workerA)
		wantOwned(t, ol, workerB, a0.Key)
	}},
}

func ownerLister(t *testing.T, s lease.Store) lease.OwnerLister {
	t.Helper()
	ol, ok := s.(lease.OwnerLister)
	if !ok {
		t.Skipf("%T does not implement lease.OwnerLister", s)
	}
	return ol
}

// wantOwned waits up to ownedWait for ListOwned(owner) to return exactly
// keys, in any order: ListOwned may lag writes.
func wantOwned(t *testing.T, ol lease.OwnerLister, owner string, keys ...string) {
	t.Helper()
	slices.Sort(keys)
	var got []string
	var err error
	ok := eventually(t, ownedWait, func() bool {
		got, err = ol.ListOwned(t.Context(), owner)
		if err != nil {
			return false
		}
		got = slices.Clone(got)
		slices.Sort(got)
		return slices.Equal(got, keys)
	})
	if !ok {
		t.Errorf("ListOwned(%q) = %q, %v after %v; want %q", owner, got, err, ownedWait, keys)
	}
}

// eventually polls cond, backing off from 10 ms to 500 ms, until it holds or
// timeout passes; it reports whether cond held.
func eventually(t *testing.T, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	wait := 10 * time.Millisecond
	for {
		if cond() {
			return true
		}
		tick := time.NewTimer(wait)
		select {
		case <-t.Context().Done():
			tick.Stop()
			return false
		case <-deadline.C:
			tick.Stop()
			return cond()
		case <-tick.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
