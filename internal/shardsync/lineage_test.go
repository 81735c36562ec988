package shardsync

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

func TestReady(t *testing.T) {
	p := lz("p", seq, q(0, 4))
	a, b := lz("a", seq, q(0, 2)), lz("b", seq, q(2, 4))
	tests := []struct {
		name        string
		lease       lease.Lease
		table       []lease.Lease
		wantReady   bool
		wantWaiting []string
	}{
		{"a shard without parents is ready", lz("s0", th, q(0, 4)), nil, true, nil},
		{"a split child waits for its unfinished parent", lz("a", th, q(0, 2), "p"), []lease.Lease{p}, false, []string{"p"}},
		{"a split child is ready once its parent is at SHARD_END", lz("a", th, q(0, 2), "p"), []lease.Lease{ended(p, "a", "b")}, true, nil},
		{"a split child is ready once its parent lease is cleaned up", lz("a", th, q(0, 2), "p"), nil, true, nil},
		{"a merge child with one parent finished and the other not is not ready", lz("c", th, q(0, 4), "a", "b"),
			[]lease.Lease{ended(a, "c"), b}, false, []string{"b"}},
		{"a merge child listing the finished parent second still waits for the first", lz("c", th, q(0, 4), "b", "a"),
			[]lease.Lease{a, ended(b, "c")}, false, []string{"a"}},
		{"a merge child waits for both unfinished parents", lz("c", th, q(0, 4), "b", "a"),
			[]lease.Lease{a, b}, false, []string{"a", "b"}},
		{"a merge child is ready once both parents are at SHARD_END", lz("c", th, q(0, 4), "a", "b"),
			[]lease.Lease{ended(a, "c"), ended(b, "c")}, true, nil},
		{"a merge child is ready with one parent finished and the other cleaned up", lz("c", th, q(0, 4), "a", "b"),
			[]lease.Lease{ended(a, "c")}, true, nil},
		{"a lease already at SHARD_END is finished, not ready", ended(lz("a", th, q(0, 2), "p"), "x"), nil, false, nil},
		{"a repeated parent id is reported once", lz("a", th, q(0, 2), "p", "p"), []lease.Lease{p}, false, []string{"p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready, waiting := Ready(tt.lease, byKeyOf(tt.table...))
			if ready != tt.wantReady || !equalStrings(waiting, tt.wantWaiting) {
				t.Errorf("Ready = %v, %q; want %v, %q", ready, waiting, tt.wantReady, tt.wantWaiting)
			}
		})
	}
}

func TestMissingParents(t *testing.T) {
	tests := []struct {
		name  string
		lease lease.Lease
		table []lease.Lease
		want  []string
	}{
		{"a split child whose parent is leased misses nothing", lz("a", th, q(0, 2), "p"), []lease.Lease{lz("p", seq, q(0, 4))}, nil},
		{"a merge child whose other parent has no lease misses it", lz("c", th, q(0, 4), "a", "b"),
			[]lease.Lease{lz("a", seq, q(0, 2))}, []string{"b"}},
		{"a merge child whose parents are both leased misses nothing", lz("c", th, q(0, 4), "b", "a"),
			[]lease.Lease{lz("a", seq, q(0, 2)), lz("b", seq, q(2, 4))}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MissingParents(tt.lease, byKeyOf(tt.table...)); !equalStrings(got, tt.want) {
				t.Errorf("MissingParents = %q, want %q", got, tt.want)
			}
		})
	}
}

func child(id string, start, end string, parents ...string) types.ChildShard {
	return types.ChildShard{
		ShardId:      aws.String(id),
		ParentShards: parents,
		HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String(start), EndingHashKey: aws.String(end)},
	}
}

func TestChildLeases(t *testing.T) {
	const max = "340282366920938463463374607431768211455"
	const half = "170141183460469231731687303715884105728"
	const halfMinus1 = "170141183460469231731687303715884105727"
	p := lz("p", seq, q(0, 4))
	tests := []struct {
		name     string
		parent   lease.Lease
		children []types.ChildShard
		want     []string
		ranges   []hashkey.Range
	}{
		{"a split yields two children at TRIM_HORIZON", p,
			[]types.ChildShard{child("b", half, max, "p"), child("a", "0", halfMinus1, "p")},
			[]string{"a@TRIM_HORIZON<p", "b@TRIM_HORIZON<p"}, []hashkey.Range{q(0, 2), q(2, 4)}},
		{"a merge yields one child with both parents", lz("b", seq, q(2, 4)),
			[]types.ChildShard{child("c", "0", max, "b", "a")},
			[]string{"c@TRIM_HORIZON<a,b"}, []hashkey.Range{q(0, 4)}},
		{"no child shards yield no leases", p, nil, []string{}, nil},
		{"a child listed twice yields one lease", p,
			[]types.ChildShard{child("a", "0", max, "p"), child("a", "0", max, "p")},
			[]string{"a@TRIM_HORIZON<p"}, []hashkey.Range{q(0, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChildLeases(tt.parent, tt.children)
			if err != nil {
				t.Fatal(err)
			}
			if g := summary(got); !equalStrings(g, tt.want) {
				t.Errorf("ChildLeases = %q, want %q", g, tt.want)
			}
			for i, l := range got {
				if l.Owner != "" || l.Counter != 0 || l.HashRange == nil || *l.HashRange != tt.ranges[i] {
					t.Errorf("lease %s = %+v, want unowned, counter 0, range %v", l.Key, l, tt.ranges[i])
				}
			}
		})
	}
}

func TestChildLeasesErrors(t *testing.T) {
	p := lz("p", seq, q(0, 4))
	tests := []struct {
		name    string
		child   types.ChildShard
		shardID string
		wrapped error
	}{
		{"a child range whose start exceeds its end names the child", child("a", "10", "9", "p"), "a", hashkey.ErrInvalidRange},
		{"a child range bound that is not a number names the child", child("a", "x", "9", "p"), "a", hashkey.ErrInvalid},
		{"a child without a hash range names the child", types.ChildShard{ShardId: aws.String("a"), ParentShards: []string{"p"}}, "a", nil},
		{"a child without parents names the child", child("a", "0", "9"), "a", nil},
		{"a child without an id is rejected", types.ChildShard{ParentShards: []string{"p"}}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChildLeases(p, []types.ChildShard{child("ok", "0", "1", "p"), tt.child})
			var se *ShardError
			if got != nil || !errors.As(err, &se) || se.ShardID != tt.shardID || !errors.Is(err, ErrMalformedShard) {
				t.Fatalf("ChildLeases = %v, %v; want a *ShardError for %q", got, err, tt.shardID)
			}
			if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
				t.Errorf("error %v does not wrap %v", err, tt.wrapped)
			}
		})
	}
}

func TestCleanup(t *testing.T) {
	p := lz("p", seq, q(0, 4))
	a, b := lz("a", th, q(0, 2), "p"), lz("b", th, q(2, 4), "p")
	withCheckpoint := func(l lease.Lease, c checkpoint.Position) lease.Lease { l.Checkpoint = c; return l }
	started := func(l lease.Lease) lease.Lease { return withCheckpoint(l, seq) }
	tests := []struct {
		name   string
		leases []lease.Lease
		want   []string
	}{
		{"an unsharded stream has nothing to clean up", []lease.Lease{lz("s0", seq, q(0, 2)), lz("s1", seq, q(2, 4))}, []string{}},
		{"an open split parent is kept", []lease.Lease{p, a, b}, []string{}},
		{"a finished split parent is kept while its children have not started", []lease.Lease{ended(p, "a", "b"), a, b}, []string{}},
		{"a finished split parent is kept while one child has not started", []lease.Lease{ended(p, "a", "b"), started(a), b}, []string{}},
		{"a finished split parent is kept while one child has no lease", []lease.Lease{ended(p, "a", "b"), started(a)}, []string{}},
		{"a finished split parent goes once both children started", []lease.Lease{ended(p, "a", "b"), started(a), started(b)}, []string{"p"}},
		{"a finished child whose parent lease remains waits for the parent to go first",
			[]lease.Lease{ended(p, "a", "b"), ended(a, "a1"), started(b), lz("a1", seq, q(0, 1), "a")}, []string{"p"}},
		{"a finished child goes once its parent lease is gone",
			[]lease.Lease{ended(a, "a1"), started(b), lz("a1", seq, q(0, 1), "a")}, []string{"a"}},
		{"a child at SHARD_END counts as started", []lease.Lease{ended(p, "a", "b"), ended(a, "x"), started(b)}, []string{"p"}},
		{"a child at LATEST has not started", []lease.Lease{ended(p, "a", "b"), withCheckpoint(a, lt), started(b)}, []string{}},
		{"a child at AT_TIMESTAMP has not started", []lease.Lease{ended(p, "a", "b"), withCheckpoint(a, at), started(b)}, []string{}},
		{"a finished lease without recorded children is kept", []lease.Lease{ended(p), started(a), started(b)}, []string{}},
		{"both finished merge parents go once the child started", []lease.Lease{
			ended(lz("y", seq, q(2, 4)), "c"), ended(lz("x", seq, q(0, 2)), "c"), lz("c", seq, q(0, 4), "x", "y")}, []string{"x", "y"}},
		{"a finished merge parent is kept while the child has not started", []lease.Lease{
			ended(lz("x", seq, q(0, 2)), "c"), lz("y", seq, q(2, 4)), lz("c", th, q(0, 4), "x", "y")}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keys(Cleanup(tt.leases)); !equalStrings(got, tt.want) {
				t.Errorf("Cleanup = %q, want %q", got, tt.want)
			}
		})
	}
}
