package shardsync

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// q returns the hash key range of quarters [a, b) of the hash key space:
// q(0, 4) is the whole space, q(0, 2) its lower half.
func q(a, b int) hashkey.Range {
	end := hashkey.Max
	if b < 4 {
		end = prev(hashkey.Key{Hi: uint64(b) << 62})
	}
	return hashkey.Range{Start: hashkey.Key{Hi: uint64(a) << 62}, End: end}
}

func rp(r hashkey.Range) *hashkey.Range { return &r }

// open and closed build listed shards; parents are "" or ids.
func open(id string, r hashkey.Range, parents ...string) Shard {
	s := Shard{ID: id, HashRange: r}
	if len(parents) > 0 {
		s.ParentID = parents[0]
	}
	if len(parents) > 1 {
		s.AdjacentParentID = parents[1]
	}
	return s
}

func closed(id string, r hashkey.Range, parents ...string) Shard {
	s := open(id, r, parents...)
	s.Closed = true
	return s
}

var seq = mustAt("49590338271490256608559692538361571095921575989136588898")

func mustAt(s string) checkpoint.Position {
	p, err := checkpoint.At(s, 0)
	if err != nil {
		panic(err)
	}
	return p
}

// lz builds a lease for tests: key, checkpoint, range, parents.
func lz(key string, at checkpoint.Position, r hashkey.Range, parents ...string) lease.Lease {
	return lease.Lease{Key: key, Checkpoint: at, HashRange: rp(r), ParentShardIDs: parents}
}

// ended returns l finished with the given children recorded.
func ended(l lease.Lease, children ...string) lease.Lease {
	l.Checkpoint = checkpoint.ShardEnd
	l.ChildShardIDs = children
	return l
}

// summary renders leases as "key@CHECKPOINT<parent,parent", sorted as given.
func summary(ls []lease.Lease) []string {
	out := []string{}
	for _, l := range ls {
		s := l.Key + "@" + l.Checkpoint.String()
		if len(l.ParentShardIDs) > 0 {
			s += "<" + strings.Join(l.ParentShardIDs, ",")
		}
		out = append(out, s)
	}
	return out
}

func keys(ls []lease.Lease) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.Key)
	}
	return out
}

func byKeyOf(ls ...lease.Lease) map[string]lease.Lease {
	m := map[string]lease.Lease{}
	for _, l := range ls {
		m[l.Key] = l
	}
	return m
}

func rangesString(rs []hashkey.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("[%s,%s]", r.Start, r.End)
	}
	return strings.Join(parts, " ")
}

func equalStrings(a, b []string) bool { return slices.Equal(a, b) }
