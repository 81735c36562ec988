package shardsync

import (
	"testing"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

var (
	th = checkpoint.TrimHorizon
	lt = checkpoint.Latest
	at = checkpoint.AtTimestamp
)

// A stream without resharding.
var flat = []Shard{open("s0", q(0, 2)), open("s1", q(2, 4))}

// A split: p into a (lower half) and b (upper half).
var split = []Shard{closed("p", q(0, 4)), open("a", q(0, 2), "p"), open("b", q(2, 4), "p")}

// A merge: a and b into c.
var merge = []Shard{closed("a", q(0, 2)), closed("b", q(2, 4)), open("c", q(0, 4), "a", "b")}

// UpdateShardCount 2 → 4 → 2.
var scale = []Shard{
	closed("s0", q(0, 2)), closed("s1", q(2, 4)),
	closed("s2", q(0, 1), "s0"), closed("s3", q(1, 2), "s0"), closed("s4", q(2, 3), "s1"), closed("s5", q(3, 4), "s1"),
	open("s6", q(0, 2), "s2", "s3"), open("s7", q(2, 4), "s4", "s5"),
}

// The example of KCL's NonEmptyLeaseTableSynchronizer:
//
//	0 1 2 3 4   5   - shards till epoch 102
//	\ / \ / |   |
//	 6   7  4   5   - shards from epoch 103 - 205
//	  \ /   |  / \
//	   8    4 9  10 - shards from epoch 206 (open)
var kclExample = []Shard{
	closed("0", hashkey.Range{}), closed("1", hashkey.Range{}), closed("2", hashkey.Range{}), closed("3", hashkey.Range{}),
	open("4", hashkey.Range{}), closed("5", hashkey.Range{}),
	closed("6", hashkey.Range{}, "0", "1"), closed("7", hashkey.Range{}, "2", "3"),
	open("8", hashkey.Range{}, "6", "7"), open("9", hashkey.Range{}, "5"), open("10", hashkey.Range{}, "5"),
}

func TestNewLeases(t *testing.T) {
	running := func(k string, parents ...string) lease.Lease { return lz(k, seq, hashkey.Range{}, parents...) }
	fresh := func(k string, parents ...string) lease.Lease { return lz(k, th, hashkey.Range{}, parents...) }
	tests := []struct {
		name     string
		shards   []Shard
		existing []lease.Lease
		initial  checkpoint.Position
		want     []string
	}{
		{"an empty table over an unsharded stream leases every shard at TRIM_HORIZON", flat, nil, th,
			[]string{"s0@TRIM_HORIZON", "s1@TRIM_HORIZON"}},
		{"an empty table over an unsharded stream leases every shard at LATEST", flat, nil, lt,
			[]string{"s0@LATEST", "s1@LATEST"}},
		{"a fully leased unsharded stream needs nothing", flat, []lease.Lease{running("s0"), running("s1")}, th, []string{}},
		{"an empty table at TRIM_HORIZON leases the closed parent of a split, not its children", split, nil, th,
			[]string{"p@TRIM_HORIZON"}},
		{"an empty table at LATEST leases the open children of a split", split, nil, lt,
			[]string{"a@LATEST<p", "b@LATEST<p"}},
		{"an empty table at AT_TIMESTAMP leases the oldest shard with the AT_TIMESTAMP sentinel", split, nil, at,
			[]string{"p@AT_TIMESTAMP"}},
		{"a leased split parent gets its children on the frontier at TRIM_HORIZON", split, []lease.Lease{running("p")}, lt,
			[]string{"a@TRIM_HORIZON<p", "b@TRIM_HORIZON<p"}},
		{"a split with every shard leased needs nothing", split, []lease.Lease{ended(running("p"), "a", "b"), fresh("a", "p"), fresh("b", "p")}, th,
			[]string{}},
		{"a cleaned-up split parent is never leased again", split, []lease.Lease{running("a", "p"), running("b", "p")}, th,
			[]string{}},
		{"a lost child lease of a cleaned-up parent is recreated at TRIM_HORIZON", split, []lease.Lease{running("b", "p")}, lt,
			[]string{"a@TRIM_HORIZON<p"}},
		{"children of an expired parent start a fresh lineage at the initial position",
			[]Shard{open("a", q(0, 2), "p"), open("b", q(2, 4), "p")}, []lease.Lease{running("x")}, lt,
			[]string{"a@LATEST<p", "b@LATEST<p"}},
		{"an empty table at TRIM_HORIZON leases both parents of a merge", merge, nil, th,
			[]string{"a@TRIM_HORIZON", "b@TRIM_HORIZON"}},
		{"an empty table at LATEST leases the merged child", merge, nil, lt,
			[]string{"c@LATEST<a,b"}},
		{"a merge child waits while one parent is leased and the other still needs a lease", merge, []lease.Lease{running("a")}, th,
			[]string{"b@TRIM_HORIZON"}},
		{"at LATEST an unleased closed merge parent is skipped and the child joins the frontier", merge, []lease.Lease{running("a")}, lt,
			[]string{"c@TRIM_HORIZON<a,b"}},
		{"a merge child is leased once both parents are", merge, []lease.Lease{running("a"), ended(running("b"), "c")}, th,
			[]string{"c@TRIM_HORIZON<a,b"}},
		{"an empty table at TRIM_HORIZON leases the first generation of a 2-4-2 rescale", scale, nil, th,
			[]string{"s0@TRIM_HORIZON", "s1@TRIM_HORIZON"}},
		{"an empty table at LATEST leases the last generation of a 2-4-2 rescale", scale, nil, lt,
			[]string{"s6@LATEST<s2,s3", "s7@LATEST<s4,s5"}},
		{"an empty table at AT_TIMESTAMP leases the first generation of a 2-4-2 rescale", scale, nil, at,
			[]string{"s0@AT_TIMESTAMP", "s1@AT_TIMESTAMP"}},
		{"a 2-4-2 rescale midway leases exactly the frontier", scale,
			[]lease.Lease{ended(running("s0"), "s2", "s3"), running("s1"), running("s2", "s0"), fresh("s3", "s0")}, th,
			[]string{"s4@TRIM_HORIZON<s1", "s5@TRIM_HORIZON<s1", "s6@TRIM_HORIZON<s2,s3"}},
		{"a 2-4-2 rescale after cleanup of the first generation recreates nothing", scale,
			[]lease.Lease{running("s2", "s0"), running("s3", "s0"), running("s4", "s1"), running("s5", "s1")}, th,
			[]string{"s6@TRIM_HORIZON<s2,s3", "s7@TRIM_HORIZON<s4,s5"}},
		{"KCL's example at TRIM_HORIZON leases the untouched roots and the frontier", kclExample,
			[]lease.Lease{running("4"), running("5"), running("7", "2", "3")}, th,
			[]string{"0@TRIM_HORIZON", "1@TRIM_HORIZON", "10@TRIM_HORIZON<5", "9@TRIM_HORIZON<5"}},
		{"KCL's example at AT_TIMESTAMP leases the untouched roots at AT_TIMESTAMP", kclExample,
			[]lease.Lease{running("4"), running("5"), running("7", "2", "3")}, at,
			[]string{"0@AT_TIMESTAMP", "1@AT_TIMESTAMP", "10@TRIM_HORIZON<5", "9@TRIM_HORIZON<5"}},
		{"KCL's example at LATEST skips the untouched closed lineage", kclExample,
			[]lease.Lease{running("4"), running("5"), running("7", "2", "3")}, lt,
			[]string{"10@TRIM_HORIZON<5", "8@TRIM_HORIZON<6,7", "9@TRIM_HORIZON<5"}},
		{"an invalid initial position is treated as TRIM_HORIZON", split, nil, seq,
			[]string{"p@TRIM_HORIZON"}},
		{"a duplicate listing entry yields one lease", append(flat, flat[0]), nil, th,
			[]string{"s0@TRIM_HORIZON", "s1@TRIM_HORIZON"}},
		{"a cyclic listing terminates", []Shard{open("x", q(0, 4), "y"), closed("y", q(0, 4), "x")}, nil, th,
			[]string{"y@TRIM_HORIZON<x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLeases(tt.shards, tt.existing, tt.initial)
			if g := summary(got); !equalStrings(g, tt.want) {
				t.Errorf("NewLeases = %q, want %q", g, tt.want)
			}
			have := byKeyOf(tt.existing...)
			for _, l := range got {
				if _, dup := have[l.Key]; dup {
					t.Errorf("NewLeases recreates existing lease %s", l.Key)
				}
			}
		})
	}
}

func TestNewLeasesFillsTheLease(t *testing.T) {
	got := NewLeases(merge, []lease.Lease{lz("a", seq, q(0, 2)), ended(lz("b", seq, q(2, 4)), "c")}, th)
	if len(got) != 1 {
		t.Fatalf("NewLeases = %q, want one lease", summary(got))
	}
	l := got[0]
	if l.Key != "c" || l.Owner != "" || l.Counter != 0 || l.Checkpoint != th ||
		!equalStrings(l.ParentShardIDs, []string{"a", "b"}) || l.HashRange == nil || *l.HashRange != q(0, 4) {
		t.Errorf("NewLeases lease = %+v", l)
	}
}
