package leasetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

var createTests = []test{
	{"a created lease reads back as given", func(t *testing.T, s lease.Store) {
		create(t, s, plainLease("shardId-000000000000"))
	}},
	{"a lease is created as given, owner and counter included", func(t *testing.T, s lease.Store) {
		create(t, s, heldLease(t, "shardId-000000000000", workerA))
	}},
	{"creating an existing key fails with ErrAlreadyExists and leaves the lease untouched", func(t *testing.T, s lease.Store) {
		orig := create(t, s, heldLease(t, "shardId-000000000000", workerA))
		again := plainLease(orig.Key)
		again.Owner = workerB
		err := s.Create(t.Context(), again)
		wantErr(t, "second Create", err, lease.ErrAlreadyExists, lease.ErrConflict)
		wantStored(t, s, "after the second Create", orig)
	}},
	{"creating a lease with an empty key fails", func(t *testing.T, s lease.Store) {
		err := s.Create(t.Context(), plainLease(""))
		if err == nil {
			t.Fatal("Create with an empty key succeeded")
		}
		if errors.Is(err, lease.ErrConflict) {
			t.Errorf("Create with an empty key = %v; want an error that does not match lease.ErrConflict", err)
		}
		wantListed(t, s, "after the failed Create", nil)
	}},
	{"exactly one of concurrent creates of one key succeeds", testCreateRace},
}

var getTests = []test{
	{"getting a missing key fails with ErrNotFound", func(t *testing.T, s lease.Store) {
		wantMissing(t, s, "of a key never created", "shardId-000000000000")
	}},
	{"getting a deleted lease fails with ErrNotFound", func(t *testing.T, s lease.Store) {
		l := create(t, s, plainLease("shardId-000000000000"))
		wantOK(t, "Delete", s.Delete(t.Context(), l))
		wantMissing(t, s, "after Delete", l.Key)
	}},
}

// listMany is more leases than one DynamoDB scan page holds when a store is
// configured with a small page size, yet few enough to create in well under a
// second against DynamoDB Local.
const listMany = 250

var listTests = []test{
	{"listing an empty table returns no leases", func(t *testing.T, s lease.Store) {
		wantListed(t, s, "of an empty table", nil)
	}},
	{"listing returns every lease exactly once, as stored", func(t *testing.T, s lease.Store) {
		want := make([]lease.Lease, 0, listMany)
		for i := range listMany {
			key := fmt.Sprintf("shardId-%012d", i)
			var l lease.Lease
			switch i % 3 {
			case 0:
				l = plainLease(key)
			case 1:
				l = heldLease(t, key, fmt.Sprintf("worker-%d", i%7))
			default:
				l = fullLease(t)
				l.Key = key
			}
			wantOK(t, "Create", s.Create(t.Context(), l))
			want = append(want, l)
		}
		wantListed(t, s, "after creating "+fmt.Sprint(listMany)+" leases", want)
	}},
	{"listing reflects every write and delete that returned before it", func(t *testing.T, s lease.Store) {
		a := create(t, s, heldLease(t, "shardId-000000000000", workerA))
		b := create(t, s, plainLease("shardId-000000000001"))
		c := create(t, s, plainLease("shardId-000000000002"))
		a, err := s.Renew(t.Context(), a)
		wantOK(t, "Renew", err)
		b, err = s.Take(t.Context(), b, workerB)
		wantOK(t, "Take", err)
		wantOK(t, "Delete", s.Delete(t.Context(), c))
		wantListed(t, s, "after Renew, Take and Delete", []lease.Lease{a, b})
	}},
}

// wantListed checks that List returns exactly want, in any order.
func wantListed(t testing.TB, s lease.Store, what string, want []lease.Lease) {
	t.Helper()
	got, err := s.List(t.Context())
	if err != nil {
		t.Fatalf("List %s: %v", what, err)
	}
	byKey := make(map[string]lease.Lease, len(got))
	for _, l := range got {
		if _, dup := byKey[l.Key]; dup {
			t.Errorf("List %s returned lease %q twice", what, l.Key)
		}
		byKey[l.Key] = l
	}
	for _, w := range want {
		g, ok := byKey[w.Key]
		if !ok {
			t.Errorf("List %s: lease %q missing", what, w.Key)
			continue
		}
		checkLease(t, "List "+what, g, w)
		delete(byKey, w.Key)
	}
	for key := range byKey {
		t.Errorf("List %s returned unexpected lease %q", what, key)
	}
}

var roundTripTests = []test{
	{"every field survives a round trip", func(t *testing.T, s lease.Store) {
		l := fullLease(t)
		create(t, s, l)
		wantListed(t, s, "after Create", []lease.Lease{l})
	}},
	{"a lease without optional fields reads back without them", func(t *testing.T, s lease.Store) {
		l := plainLease("shardId-000000000000")
		got := create(t, s, l)
		if got.HashRange != nil || got.ThroughputKBps != nil || got.PendingCheckpointState != nil ||
			got.ParentShardIDs != nil || got.ChildShardIDs != nil {
			t.Errorf("Get = %+v; want nil HashRange, ThroughputKBps and slices", got)
		}
	}},
	{"every kind of checkpoint survives a round trip", func(t *testing.T, s lease.Store) {
		positions := []checkpoint.Position{
			checkpoint.TrimHorizon,
			checkpoint.Latest,
			checkpoint.AtTimestamp,
			checkpoint.ShardEnd,
			at(t, "0", 0),
			at(t, "1", 1<<63-1), // KCL reads sub-sequence numbers as a Java long
			at(t, seq56, 7),
			at(t, "9"+fmt.Sprintf("%0128d", 0), 1), // 129 digits, the longest Kinesis allows
		}
		for i, p := range positions {
			l := plainLease(fmt.Sprintf("shardId-%012d", i))
			l.Checkpoint = p
			l.PendingCheckpoint = p
			create(t, s, l)
		}
	}},
	{"hash ranges survive a round trip", func(t *testing.T, s lease.Store) {
		ranges := []hashkey.Range{
			{Start: hashkey.Key{}, End: hashkey.Max},
			{Start: hashkey.Key{}, End: hashkey.Key{}},
			{Start: hashkey.Max, End: hashkey.Max},
			{Start: hashkey.Key{Lo: 1<<64 - 1}, End: hashkey.Key{Hi: 1}},
			{Start: hashkey.Key{Hi: 1 << 63}, End: hashkey.Key{Hi: 1<<64 - 1, Lo: 1<<64 - 2}},
		}
		for i, r := range ranges {
			l := plainLease(fmt.Sprintf("shardId-%012d", i))
			l.HashRange = &r
			create(t, s, l)
		}
	}},
	{"throughput values survive a round trip, zero included", func(t *testing.T, s lease.Store) {
		for i, v := range []float64{0, 0.1, 1536.25, 1e6} {
			l := plainLease(fmt.Sprintf("shardId-%012d", i))
			l.ThroughputKBps = &v
			create(t, s, l)
		}
	}},
	{"empty slices read back as empty", func(t *testing.T, s lease.Store) {
		l := plainLease("shardId-000000000000")
		l.PendingCheckpointState = []byte{}
		l.ParentShardIDs = []string{}
		l.ChildShardIDs = []string{}
		got := create(t, s, l)
		if len(got.PendingCheckpointState)+len(got.ParentShardIDs)+len(got.ChildShardIDs) != 0 {
			t.Errorf("Get = %+v; want empty slices", got)
		}
	}},
}

var isolationTests = []test{
	{"changing a lease after passing it to Create does not change the stored lease", func(t *testing.T, s lease.Store) {
		l := fullLease(t)
		want := l.Clone()
		wantOK(t, "Create", s.Create(t.Context(), l))
		scribble(&l)
		wantStored(t, s, "after changing the created lease", want)
	}},
	{"changing a lease returned by Get does not change the stored lease", func(t *testing.T, s lease.Store) {
		want := create(t, s, fullLease(t)).Clone() // shares nothing with what Get returns next
		got := get(t, s, want.Key)
		scribble(&got)
		wantStored(t, s, "after changing a returned lease", want)
	}},
	{"changing a lease returned by List does not change the stored lease", func(t *testing.T, s lease.Store) {
		want := create(t, s, fullLease(t)).Clone()
		got, err := s.List(t.Context())
		wantOK(t, "List", err)
		for i := range got {
			scribble(&got[i])
		}
		wantStored(t, s, "after changing listed leases", want)
	}},
	{"changing a lease returned by a write does not change the stored lease", func(t *testing.T, s lease.Store) {
		l := fullLease(t)
		l.CheckpointOwner = ""
		l = create(t, s, l)
		ctx := t.Context()
		writes := []struct {
			name  string
			write func(l lease.Lease) (lease.Lease, error)
		}{
			{"Renew", func(l lease.Lease) (lease.Lease, error) { return s.Renew(ctx, l) }},
			{"Take", func(l lease.Lease) (lease.Lease, error) { return s.Take(ctx, l, workerB) }},
			{"Handoff", func(l lease.Lease) (lease.Lease, error) { return s.Handoff(ctx, l, workerC) }},
			{"Checkpoint", func(l lease.Lease) (lease.Lease, error) {
				return s.Checkpoint(ctx, l, lease.CheckpointUpdate{
					Checkpoint:             checkpoint.ShardEnd,
					PendingCheckpoint:      at(t, "5", 0),
					PendingCheckpointState: []byte("state"),
					ChildShardIDs:          []string{"shardId-000000000011"},
				})
			}},
			{"Release", func(l lease.Lease) (lease.Lease, error) { return s.Release(ctx, l) }},
		}
		for _, w := range writes {
			res, err := w.write(l)
			wantOK(t, w.name, err)
			want := res.Clone()
			scribble(&res)
			wantStored(t, s, "after changing the lease "+w.name+" returned", want)
			l = want
		}
	}},
	{"changing an update after passing it to Checkpoint does not change the stored lease", func(t *testing.T, s lease.Store) {
		l := create(t, s, heldLease(t, "shardId-000000000000", workerA))
		u := lease.CheckpointUpdate{
			Checkpoint:             checkpoint.ShardEnd,
			PendingCheckpoint:      at(t, "5", 0),
			PendingCheckpointState: []byte("state"),
			ChildShardIDs:          []string{"shardId-000000000011", "shardId-000000000012"},
		}
		want := afterCheckpoint(l, u)
		_, err := s.Checkpoint(t.Context(), l, u)
		wantOK(t, "Checkpoint", err)
		u.PendingCheckpointState[0] = 'X'
		u.ChildShardIDs[0] = "scribbled"
		wantStored(t, s, "after changing the update", want)
	}},
}
