package history

import (
	"strconv"
	"time"
)

// t0 is the start of every synthetic history; times are given in
// milliseconds after it.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// run builds a synthetic history the way a run's logs would show it.
type run struct {
	h            History
	next, nextAt map[string]int // for stream
}

func newRun() *run { return &run{next: map[string]int{}, nextAt: map[string]int{}} }

// seq is the sequence number of the n-th record of a shard in these tests.
func seq(n int) string { return strconv.Itoa(1000 + n) }

// pos is the checkpoint position text of the n-th record.
func pos(n int) string { return seq(n) + "/0" }

func (b *run) produce(t int, shard string, key string, n, at int) *run {
	b.h.Produced = append(b.h.Produced, Produced{T: ms(t), Key: key, N: n, Shard: shard, Seq: seq(at)})
	return b
}

func (b *run) process(t int, w, shard string, key string, n, at int) *run {
	b.h.Processed = append(b.h.Processed, Processed{T: ms(t), Worker: w, Shard: shard, Seq: seq(at), Key: key, N: n})
	return b
}

func (b *run) lease(t int, w, shard string, k LeaseKind) *run {
	b.h.Leases = append(b.h.Leases, LeaseEvent{T: ms(t), Worker: w, Shard: shard, Kind: k})
	return b
}

// acquired records an acquisition whose take was sent at start and
// returned at t.
func (b *run) acquired(start, t int, w, shard string) *run {
	b.h.Leases = append(b.h.Leases, LeaseEvent{T: ms(t), Start: ms(start), Worker: w, Shard: shard, Kind: Acquired})
	return b
}

// checkpoint records a write that began at start and returned at t.
func (b *run) checkpoint(start, t int, w, shard, position, err string) *run {
	b.h.Checkpoints = append(b.h.Checkpoints, Checkpoint{T: ms(t), Start: ms(start), Worker: w, Shard: shard, Position: position, Err: err})
	return b
}

func (b *run) life(t int, w string, k LifecycleKind) *run {
	b.h.Lifecycle = append(b.h.Lifecycle, Lifecycle{T: ms(t), Worker: w, Kind: k})
	return b
}

// leader records a fault on w as the fleet's leader.
func (b *run) leader(t int, w string, k LifecycleKind) *run {
	b.h.Lifecycle = append(b.h.Lifecycle, Lifecycle{T: ms(t), Worker: w, Kind: k, Leader: true})
	return b
}

// produceKey produces records from..to-1 of key into shard, the n-th at
// position n.
func (b *run) produceKey(shard, key string, from, to int) *run {
	for n := from; n < to; n++ {
		b.produce(n, shard, key, n, n)
	}
	return b
}

// batch has w process records from..to-1 of key (at positions n) every
// 10ms from t.
func (b *run) batch(t int, w, shard, key string, from, to int) *run {
	for n := from; n < to; n++ {
		b.process(t+10*(n-from), w, shard, key, n, n)
	}
	return b
}

// counts is the part of a Report the rule tests compare.
type counts struct {
	Lost, Unexpected, Order, Duplicates, Explained, Unexplained, Fencing, Overlap int
}

func countsOf(r Report) counts {
	return counts{Lost: r.Lost, Unexpected: r.Unexpected, Order: r.OrderViolations, Duplicates: r.Duplicates,
		Explained: r.ExplainedDuplicates, Unexplained: r.UnexplainedDuplicates, Fencing: r.FencingViolations,
		Overlap: r.OverlapViolations}
}

// stream has w process a fresh record of key (produced just before) every
// every ms in [from, to), at positions counted by b.
func (b *run) stream(w, shard, key string, from, to, every int) *run {
	for t := from; t < to; t += every {
		n := b.next[key]
		b.next[key]++
		at := b.nextAt[shard]
		b.nextAt[shard]++
		b.produce(t-1, shard, key, n, at)
		b.process(t, w, shard, key, n, at)
	}
	return b
}
