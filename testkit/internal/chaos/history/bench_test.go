package history

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// bigRun is a history the size of a long chaos run: n records of 64 keys
// over 8 shards and 4 workers, each worker SIGKILLed once and its shards
// taken over by the next worker, which replays the last 100 records.
func bigRun(n int) History {
	const (
		shards  = 8
		keys    = 64
		workers = 4
	)
	var h History
	owner := func(s int) string { return fmt.Sprintf("worker-%d", s%workers) }
	shardID := func(s int) string { return fmt.Sprintf("shardId-%012d", s) }
	keyName := func(k int) string { return fmt.Sprintf("key-%02d", k) }
	h.Produced = make([]Produced, 0, n)
	h.Processed = make([]Processed, 0, n+n/100)
	next := make([]int, keys)
	at := make([]int, shards)
	for s := range shards {
		h.Leases = append(h.Leases, LeaseEvent{T: ms(0), Worker: owner(s), Shard: shardID(s), Kind: Acquired})
	}
	killAt := n / 2
	for i := range n {
		t := ms(1 + i/10) // 10 records a millisecond
		k := i % keys
		s := k % shards
		p := Produced{T: t, Key: keyName(k), N: next[k], Shard: shardID(s), Seq: fmt.Sprint(1_000_000 + at[s])}
		next[k]++
		at[s]++
		h.Produced = append(h.Produced, p)
		h.Processed = append(h.Processed, Processed{T: t.Add(time.Millisecond), Worker: owner(s), Shard: p.Shard, Seq: p.Seq, Key: p.Key, N: p.N})
		if i%1000 == 999 {
			h.Checkpoints = append(h.Checkpoints, Checkpoint{T: t.Add(2 * time.Millisecond), Start: t.Add(time.Millisecond),
				Worker: owner(s), Shard: p.Shard, Position: p.Seq + "/0"})
		}
		if i == killAt {
			// worker-0 dies; worker-1 takes its shards and replays.
			h.Lifecycle = append(h.Lifecycle, Lifecycle{T: t.Add(2 * time.Millisecond), Worker: owner(0), Kind: SIGKILL})
			for _, s := range []int{0, 4} {
				h.Leases = append(h.Leases, LeaseEvent{T: t.Add(3 * time.Millisecond), Worker: owner(1), Shard: shardID(s), Kind: Acquired})
			}
			for j := len(h.Processed) - 100; j < len(h.Processed)-1; j++ {
				q := h.Processed[j]
				if q.Worker == owner(0) {
					q.Worker, q.T = owner(1), t.Add(4*time.Millisecond)
					h.Processed = append(h.Processed, q)
				}
			}
			owner = func(s int) string {
				if s%workers == 0 {
					return "worker-1"
				}
				return fmt.Sprintf("worker-%d", s%workers)
			}
		}
	}
	return h
}

func BenchmarkCheck(b *testing.B) {
	h := bigRun(1_000_000)
	b.ReportAllocs()
	var r Report
	for b.Loop() {
		r = Check(h, Options{FailoverTime: time.Second, Epsilon: 5 * time.Millisecond})
	}
	if !r.OK() || r.Duplicates == 0 {
		b.Fatalf("unexpected verdict: %s", r)
	}
}

func BenchmarkRead(b *testing.B) {
	text := encode(b, bigRun(1_000_000))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		var h History
		if err := h.Read("big", bytes.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}
