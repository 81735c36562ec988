package history

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/kclgo/kcl/checkpoint"
)

// Options tune Check.
type Options struct {
	// FailoverTime is how long a worker that stopped proving it is alive
	// keeps its shards before they may move: the lease duration when the
	// workers renew each lease (KCL's failoverTimeMillis), the failover
	// time F in kcl fleet mode, where a worker stops every shard at its own
	// deadline, F minus a margin after its last successful heartbeat was
	// sent, and the leader reassigns them once the heartbeat stood still
	// for F on its clock. Two workers may both process a shard for at most
	// this long (rule 5), and a worker's processing of a shard is taken to
	// have paused when it processed none of its records for longer. Zero
	// disables rule 5.
	FailoverTime time.Duration
	// Epsilon is the clock slack: how far apart two timestamps taken by
	// different processes (or by a hook and the write it reports) may be
	// out of order. Every rule gives the system the benefit of the doubt
	// within Epsilon. Zero means none.
	Epsilon time.Duration
	// Faults counts the faults the harness injected, by kind; Check copies
	// it into the Report for its table.
	Faults map[string]int
	// Samples is how many examples of each kind of violation the Report
	// keeps; zero means 10.
	Samples int
	// Leases is the lease table at the end of the run, for rule 7; nil
	// skips it.
	Leases []FinalLease
}

// Check computes the verdict on h. It does not modify h, and needs no
// particular order of h's lines: ties between equal timestamps are broken
// by the order of the lines in h.
//
// The rules, for a record identified by (Key, N) as the producer wrote it,
// and a stream record by (shard, sequence number, sub-sequence number):
//
//  1. Lost: a produced record processed by no one. Unexpected: a processed
//     record never produced.
//  2. Order: a record of key K is an order violation if its first
//     processing (by anyone) came after the first processing of a record
//     of K with a larger N — whatever the shards: a child shard's records
//     processed before its parent's show here.
//  3. Duplicates: every processing of a stream record after its earliest;
//     its window is the time since the earliest. A duplicate by worker W
//     gets the first DuplicateReason that fits, in this order: Zombie
//     (explained) if another worker acquired the shard after W last did;
//     NoLease if W never acquired it; PastCheckpoint if a durable
//     checkpoint at or past the record returned before W's current tenure
//     began. Then, with p the latest earlier processing by a worker that
//     was no zombie at the time (a zombie's processing promises nothing):
//     SameTenure if p is W's, in its current tenure; AfterRelease if p's
//     worker next released the lease (or ended the shard) with no SIGKILL,
//     SIGSTOP or failed checkpoint since p and no durable checkpoint
//     covering the record; otherwise Takeover (explained): p's worker was
//     killed, stopped, lost the lease, failed a checkpoint or was taken
//     over before a checkpoint covered the record. Unexplained duplicates
//     are violations.
//  4. Fencing: a durable checkpoint (Err "") of a shard whose write began
//     after another worker acquired the shard, its writer not having
//     acquired it again since (or ever). An acquisition counts only if it
//     began (LeaseEvent.Start) after the writer's own last acquisition was
//     logged; one that began earlier may have taken effect first.
//  5. Overlap: two workers both processing a shard for longer than
//     FailoverTime. A worker's processing of a shard is a series of runs,
//     a new run starting after a pause longer than FailoverTime.
//  6. Failover: for each SIGKILL, SIGSTOP, SIGTERM and Partition, for each
//     shard the worker held, the time until the shard was acquired again
//     (by anyone) or processed by a lease holder (after SIGSTOP, the
//     resumed worker itself; after Partition, the worker itself once
//     healed). A shard the worker itself finished (SHARD_END after the
//     fault) needed no new owner and is counted apart; a shard for which
//     none of these happened is unresolved. Faults on the fleet's leader
//     (Lifecycle.Leader) are summed apart.
//  7. Lease table (Options.Leases): every lease's checkpoint parses, and a
//     sequence checkpoint is at or before the last record of its shard
//     that anyone processed. A checkpoint past it would make the next
//     owner skip the records between: lost records the producer's log
//     cannot show once the run is over.
//
// Where timestamps of different processes are compared, Epsilon of slack
// goes the system's way: a checkpoint is fenced only if it began more than
// Epsilon after the other worker's acquisition, a worker is a zombie already
// Epsilon before the acquisition that made it one is logged, a checkpoint
// covers a tenure only if it returned more than Epsilon before the tenure
// began.
func Check(h History, opts Options) Report {
	if opts.Samples <= 0 {
		opts.Samples = 10
	}
	ix := newIndex(&h, opts)
	r := Report{
		Processed:        len(h.Processed),
		ByWorker:         make(map[string]int),
		DuplicateReasons: make(map[DuplicateReason]int),
		Truncated:        h.Truncated,
		Faults:           opts.Faults,
		samples:          opts.Samples,
	}
	ix.records(&r)
	ix.duplicates(&r)
	ix.fencing(&r)
	ix.overlaps(&r)
	ix.failovers(&r)
	ix.table(&r)
	return r
}

// index holds h's lines arranged for the rules' questions. Times are Unix
// nanoseconds.
type index struct {
	h      *History
	opts   Options
	eps    int64
	shards map[string]*shardIndex
	life   map[string][]Lifecycle // by worker, by time
	// multi holds the processings of each stream record processed more
	// than once, as indexes into h.Processed.
	multi map[recKey][]int32
}

type shardIndex struct {
	acquired []acquisition           // by time
	byWorker map[string][]int64      // acquisition times by worker
	events   map[string][]LeaseEvent // every lease event by worker, by time
	durable  []durable               // durable checkpoints, by T
	failed   map[string][]int64      // failed checkpoints' T by worker
	proc     map[string][]int64      // processing times by worker, sorted
}

type acquisition struct {
	t      int64
	worker string
	// start is the earliest the acquisition may have taken effect
	// (LeaseEvent.Start, or t when not logged).
	start int64
}

type durable struct {
	t   int64
	max checkpoint.Position // the largest position durable by t
}

func ns(t time.Time) int64 { return t.UnixNano() }

func newIndex(h *History, opts Options) *index {
	ix := &index{h: h, opts: opts, eps: int64(opts.Epsilon), shards: make(map[string]*shardIndex),
		life: make(map[string][]Lifecycle)}
	for _, e := range h.Leases {
		s := ix.shard(e.Shard)
		s.events[e.Worker] = append(s.events[e.Worker], e)
		if e.Kind == Acquired {
			start := ns(e.T)
			if !e.Start.IsZero() {
				start = ns(e.Start)
			}
			s.acquired = append(s.acquired, acquisition{ns(e.T), e.Worker, start})
			s.byWorker[e.Worker] = append(s.byWorker[e.Worker], ns(e.T))
		}
	}
	type cpAt struct {
		t   int64
		pos checkpoint.Position
	}
	cps := make(map[string][]cpAt)
	for _, c := range h.Checkpoints {
		s := ix.shard(c.Shard)
		if c.Err != "" {
			s.failed[c.Worker] = append(s.failed[c.Worker], ns(c.T))
			continue
		}
		var pos checkpoint.Position
		_ = pos.UnmarshalText([]byte(c.Position)) // validated when read; the zero Position covers nothing
		cps[c.Shard] = append(cps[c.Shard], cpAt{ns(c.T), pos})
	}
	for id, l := range cps {
		slices.SortStableFunc(l, func(a, b cpAt) int { return cmp.Compare(a.t, b.t) })
		s := ix.shards[id]
		var m checkpoint.Position
		for _, c := range l {
			if c.pos.Compare(m) > 0 {
				m = c.pos
			}
			s.durable = append(s.durable, durable{c.t, m})
		}
	}
	for _, l := range h.Lifecycle {
		ix.life[l.Worker] = append(ix.life[l.Worker], l)
	}
	for _, l := range ix.life {
		slices.SortStableFunc(l, func(a, b Lifecycle) int { return a.T.Compare(b.T) })
	}
	for _, s := range ix.shards {
		slices.SortStableFunc(s.acquired, func(a, b acquisition) int { return cmp.Compare(a.t, b.t) })
		for _, l := range s.byWorker {
			slices.Sort(l)
		}
		for _, l := range s.events {
			slices.SortStableFunc(l, func(a, b LeaseEvent) int { return a.T.Compare(b.T) })
		}
		for _, l := range s.failed {
			slices.Sort(l)
		}
	}
	return ix
}

func (ix *index) shard(id string) *shardIndex {
	s := ix.shards[id]
	if s == nil {
		s = &shardIndex{byWorker: make(map[string][]int64), events: make(map[string][]LeaseEvent),
			failed: make(map[string][]int64), proc: make(map[string][]int64)}
		ix.shards[id] = s
	}
	return s
}

// lastAcquired returns when w last acquired the shard at or before t.
func (s *shardIndex) lastAcquired(w string, t int64) (int64, bool) {
	l := s.byWorker[w]
	i := sort.Search(len(l), func(i int) bool { return l[i] > t })
	if i == 0 {
		return 0, false
	}
	return l[i-1], true
}

// otherAcquired returns the first acquisition of the shard by a worker
// other than w in (from, to].
func (s *shardIndex) otherAcquired(w string, from, to int64) (acquisition, bool) {
	i := sort.Search(len(s.acquired), func(i int) bool { return s.acquired[i].t > from })
	for ; i < len(s.acquired) && s.acquired[i].t <= to; i++ {
		if s.acquired[i].worker != w {
			return s.acquired[i], true
		}
	}
	return acquisition{}, false
}

// supersededBy returns the first acquisition of the shard by a worker
// other than w logged in (from, to] that took effect after from for sure:
// one that began more than eps after from. One that began earlier may have
// taken effect before w's own acquisition logged at from, which then
// superseded it: a worker paused while its take was in flight logs the
// take long after it happened.
func (s *shardIndex) supersededBy(w string, from, to, eps int64) (acquisition, bool) {
	i := sort.Search(len(s.acquired), func(i int) bool { return s.acquired[i].t > from })
	for ; i < len(s.acquired) && s.acquired[i].t <= to; i++ {
		if a := s.acquired[i]; a.worker != w && a.start > from+eps {
			return a, true
		}
	}
	return acquisition{}, false
}

// zombie reports whether w processed the shard at t after another worker
// acquired it (Epsilon early).
func (ix *index) zombie(s *shardIndex, w string, t int64) bool {
	ta, ok := s.lastAcquired(w, t)
	if !ok {
		return false
	}
	_, taken := s.otherAcquired(w, ta, t+ix.eps)
	return taken
}

// holder reports whether w held the shard's lease at t: it acquired it and
// no one else acquired it since.
func (ix *index) holder(s *shardIndex, w string, t int64) bool {
	ta, ok := s.lastAcquired(w, t)
	if !ok {
		return false
	}
	_, taken := s.otherAcquired(w, ta, t)
	return !taken
}

// covered reports whether a durable checkpoint at or past p returned
// before t.
func (s *shardIndex) covered(p checkpoint.Position, t int64) bool {
	i := sort.Search(len(s.durable), func(i int) bool { return s.durable[i].t >= t })
	return i > 0 && s.durable[i-1].max.Compare(p) >= 0
}

// disrupted reports whether w was killed or stopped in (from, to].
func (ix *index) disrupted(w string, from, to int64) bool {
	for _, l := range ix.life[w] {
		if t := ns(l.T); t > from && t <= to && (l.Kind == SIGKILL || l.Kind == SIGSTOP) {
			return true
		}
	}
	return false
}

// tick is a processing, for ordering: time, then place in the history.
type tick struct {
	t int64
	i int32
}

func (a tick) before(b tick) bool { return a.t < b.t || a.t == b.t && a.i < b.i }

type recKey struct {
	shard, seq string
	sub        uint64
}

// records applies rules 1 and 2 and gathers what rules 3 and 5 need.
func (ix *index) records(r *Report) {
	h := ix.h
	keys := make(map[string]*keyState)
	get := func(k string) *keyState {
		ks := keys[k]
		if ks == nil {
			ks = &keyState{}
			keys[k] = ks
		}
		return ks
	}
	for _, p := range h.Produced {
		if get(p.Key).produce(p.N) {
			r.Produced++
		}
	}
	first := make(map[recKey]int32, len(h.Processed))
	ix.multi = make(map[recKey][]int32)
	var lastShard string
	var s *shardIndex
	for i := range h.Processed {
		p := &h.Processed[i]
		r.ByWorker[p.Worker]++
		if s == nil || p.Shard != lastShard {
			s, lastShard = ix.shard(p.Shard), p.Shard
		}
		t := ns(p.T)
		s.proc[p.Worker] = append(s.proc[p.Worker], t)
		rk := recKey{p.Shard, p.Seq, p.Sub}
		j, seen := first[rk]
		switch {
		case !seen:
			first[rk] = int32(i)
		case ix.multi[rk] == nil: // the first duplicate: rule 3
			ix.multi[rk] = []int32{j, int32(i)}
		default:
			ix.multi[rk] = append(ix.multi[rk], int32(i))
		}
		// Every line counts for its record's first processing: a stream
		// record's first line in the history need not be its earliest.
		if again := get(p.Key).processed(p.N, tick{t, int32(i)}); again && !seen {
			r.ProducerDuplicates++ // the same record at another position
		}
	}
	for _, k := range sortedKeys(keys) {
		ks := keys[k]
		for n := range ks.producedOrdinals {
			if _, ok := ks.firstAt(n); !ok {
				r.Lost++
				if len(r.LostSamples) < r.samples {
					r.LostSamples = append(r.LostSamples, fmt.Sprintf("%s/%d", k, n))
				}
			}
		}
		// Walk down from the largest ordinal, keeping the earliest first
		// processing of a larger one.
		earliest := tick{t: math.MaxInt64, i: math.MaxInt32}
		var earliestN int
		for n, f := range ks.firstsDescending {
			r.Unique++
			if !ks.isProduced(n) {
				r.Unexpected++
			}
			if earliest.before(f) {
				r.OrderViolations++
				if len(r.OrderSamples) < r.samples {
					q, e := h.Processed[f.i], h.Processed[earliest.i]
					r.OrderSamples = append(r.OrderSamples, fmt.Sprintf("%s/%d first processed at %s by %s on %s, after %s/%d at %s by %s on %s",
						k, n, q.T.Format(time.RFC3339Nano), q.Worker, q.Shard, k, earliestN, e.T.Format(time.RFC3339Nano), e.Worker, e.Shard))
				}
				continue
			}
			earliest, earliestN = f, n
		}
	}
	for _, s := range ix.shards {
		for _, l := range s.proc {
			slices.Sort(l)
		}
	}
}
