package shardsync

import (
	"testing"

	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

func TestCoverage(t *testing.T) {
	p := lz("p", seq, q(0, 4))
	a, b := lz("a", th, q(0, 2), "p"), lz("b", th, q(2, 4), "p")
	noRange := lease.Lease{Key: "old", Checkpoint: seq}
	one := hashkey.Key{Lo: 1}
	tests := []struct {
		name   string
		leases []lease.Lease
		want   []hashkey.Range
	}{
		{"an unsharded stream is covered", []lease.Lease{lz("s0", seq, q(0, 2)), lz("s1", th, q(2, 4))}, nil},
		{"an empty table is one hole over the whole space", nil, []hashkey.Range{q(0, 4)}},
		{"an open split parent covers its children", []lease.Lease{p, a, b}, nil},
		{"a finished split parent with leased children is covered by the children", []lease.Lease{ended(p, "a", "b"), a, b}, nil},
		{"a cleaned-up split parent is covered by its children", []lease.Lease{a, b}, nil},
		{"a finished parent whose child lacks a lease still covers its range", []lease.Lease{ended(p, "a", "b"), a}, nil},
		{"a finished lease without recorded children still covers its range", []lease.Lease{ended(p)}, nil},
		{"a parent deleted before its second child was leased leaves that child's range", []lease.Lease{a}, []hashkey.Range{q(2, 4)}},
		{"a finished child's range is a hole when its own children's leases are gone",
			[]lease.Lease{ended(a, "a1"), b, lz("a1", seq, q(0, 1))}, []hashkey.Range{q(1, 2)}},
		{"holes at both ends and in the middle are reported in order",
			[]lease.Lease{lz("x", seq, q(1, 2)), lz("y", seq, q(3, 4)), lz("z", seq, hashkey.Range{Start: hashkey.Key{Hi: 3 << 62}, End: hashkey.Key{Hi: 3 << 62}})},
			[]hashkey.Range{q(0, 1), q(2, 3)}},
		{"overlapping and adjacent ranges merge", []lease.Lease{lz("x", seq, q(0, 3)), lz("y", seq, q(1, 2)), lz("z", seq, q(3, 4))}, nil},
		{"a single missing key at the bottom is a hole", []lease.Lease{lz("x", seq, hashkey.Range{Start: one, End: hashkey.Max})},
			[]hashkey.Range{{Start: hashkey.Key{}, End: hashkey.Key{}}}},
		{"a single missing key at the top is a hole", []lease.Lease{lz("x", seq, hashkey.Range{End: prev(hashkey.Max)})},
			[]hashkey.Range{{Start: hashkey.Max, End: hashkey.Max}}},
		{"a lease without a hash range is ignored", []lease.Lease{noRange, a}, []hashkey.Range{q(2, 4)}},
		{"an inverted range is ignored", []lease.Lease{a, lz("x", seq, hashkey.Range{Start: hashkey.Max, End: one})}, []hashkey.Range{q(2, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Coverage(tt.leases)
			if rangesString(got) != rangesString(tt.want) {
				t.Errorf("Coverage = %s, want %s", rangesString(got), rangesString(tt.want))
			}
		})
	}
}
