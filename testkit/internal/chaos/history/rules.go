package history

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/kclgo/kcl/checkpoint"
)

// DuplicateReason says why a stream record was processed again.
type DuplicateReason uint8

// The reasons. The first two explain a duplicate; the others make it a
// violation.
const (
	// Zombie: processed by a worker after another worker acquired the
	// shard — an in-flight batch finishing on a worker that lost its lease.
	Zombie DuplicateReason = iota + 1
	// Takeover: replayed from a checkpoint that did not cover it, after its
	// previous processor was killed, stopped, lost the lease, failed a
	// checkpoint or was taken over.
	Takeover
	// NoLease: processed by a worker that never acquired the shard.
	NoLease
	// SameTenure: processed twice by one worker within one lease tenure.
	SameTenure
	// PastCheckpoint: replayed although a durable checkpoint covered it
	// when the replaying worker's tenure began.
	PastCheckpoint
	// AfterRelease: replayed after its previous processor released the
	// lease gracefully without a checkpoint covering it.
	AfterRelease
)

// Explained reports whether the reason is one a correct system shows.
func (d DuplicateReason) Explained() bool { return d == Zombie || d == Takeover }

func (d DuplicateReason) String() string {
	switch d {
	case Zombie:
		return "zombie"
	case Takeover:
		return "takeover"
	case NoLease:
		return "no lease"
	case SameTenure:
		return "same tenure"
	case PastCheckpoint:
		return "past checkpoint"
	case AfterRelease:
		return "after release"
	}
	return "DuplicateReason(" + strconv.Itoa(int(d)) + ")"
}

// duplicates applies rule 3.
func (ix *index) duplicates(r *Report) {
	h := ix.h
	all := make([][]int32, 0, len(ix.multi))
	for _, idx := range ix.multi {
		slices.SortFunc(idx, func(a, b int32) int {
			return cmp.Or(cmp.Compare(ns(h.Processed[a].T), ns(h.Processed[b].T)), cmp.Compare(a, b))
		})
		all = append(all, idx)
	}
	slices.SortFunc(all, func(a, b []int32) int { return cmp.Compare(a[0], b[0]) })
	for _, idx := range all {
		first := &h.Processed[idx[0]]
		s := ix.shards[first.Shard]
		pos, _ := checkpoint.At(first.Seq, first.Sub) // validated when read
		for k := 1; k < len(idx); k++ {
			q := &h.Processed[idx[k]]
			window := q.T.Sub(first.T)
			r.Duplicates++
			r.MaxWindow = max(r.MaxWindow, window)
			reason := ix.classify(s, pos, idx[:k], q)
			r.DuplicateReasons[reason]++
			if reason.Explained() {
				r.ExplainedDuplicates++
				continue
			}
			r.UnexplainedDuplicates++
			if len(r.UnexplainedSamples) < r.samples {
				r.UnexplainedSamples = append(r.UnexplainedSamples, Duplicate{First: *first, Again: *q, Window: window, Reason: reason})
			}
		}
	}
}

// classify returns why q, a processing of the stream record at pos, came
// after the processings earlier, in time order.
func (ix *index) classify(s *shardIndex, pos checkpoint.Position, earlier []int32, q *Processed) DuplicateReason {
	qt := ns(q.T)
	if ix.zombie(s, q.Worker, qt) {
		return Zombie
	}
	ta, ok := s.lastAcquired(q.Worker, qt+ix.eps)
	if !ok {
		return NoLease
	}
	if s.covered(pos, ta-ix.eps) {
		return PastCheckpoint
	}
	// The previous processing by a lease holder: a zombie's processing
	// promises nothing, since its checkpoints must fail.
	var p *Processed
	for j := len(earlier) - 1; j >= 0; j-- {
		c := &ix.h.Processed[earlier[j]]
		if !ix.zombie(s, c.Worker, ns(c.T)) {
			p = c
			break
		}
	}
	if p == nil {
		return Takeover
	}
	pt := ns(p.T)
	if p.Worker == q.Worker && pt >= ta {
		return SameTenure
	}
	if ix.releasedUncovered(s, pos, p.Worker, pt, qt) {
		return AfterRelease
	}
	return Takeover
}

// releasedUncovered reports whether w's next lease event on the shard
// after pt (and by qt) is a graceful release or shard end, with no kill,
// stop or failed checkpoint of w in between, and no durable checkpoint
// covering pos by then.
func (ix *index) releasedUncovered(s *shardIndex, pos checkpoint.Position, w string, pt, qt int64) bool {
	evs := s.events[w]
	i := sort.Search(len(evs), func(i int) bool { return ns(evs[i].T) > pt })
	if i == len(evs) {
		return false
	}
	e := evs[i]
	et := ns(e.T)
	if et > qt || (e.Kind != Released && e.Kind != ShardEnded) {
		return false
	}
	if ix.disrupted(w, pt, et) || s.covered(pos, et+1) {
		return false
	}
	for _, f := range s.failed[w] {
		if f > pt && f <= et {
			return false
		}
	}
	return true
}

// fencing applies rule 4.
func (ix *index) fencing(r *Report) {
	for _, c := range ix.h.Checkpoints {
		if c.Err != "" {
			continue
		}
		s := ix.shards[c.Shard]
		st := ns(c.Start)
		ta, ok := s.lastAcquired(c.Worker, st+ix.eps)
		var v FencingViolation
		switch a, taken := s.supersededBy(c.Worker, ta, st-ix.eps, ix.eps); {
		case !ok:
			v = FencingViolation{Checkpoint: c}
		case taken:
			v = FencingViolation{Checkpoint: c, Holder: a.worker, Acquired: time.Unix(0, a.t)}
		default:
			continue
		}
		r.FencingViolations++
		if len(r.FencingSamples) < r.samples {
			r.FencingSamples = append(r.FencingSamples, v)
		}
	}
}

type span struct {
	worker     string
	start, end int64
}

// overlaps applies rule 5.
func (ix *index) overlaps(r *Report) {
	if ix.opts.FailoverTime <= 0 {
		return
	}
	limit := int64(ix.opts.FailoverTime)
	for _, id := range sortedKeys(ix.shards) {
		s := ix.shards[id]
		var runs []span
		for _, w := range sortedKeys(s.proc) {
			ts := s.proc[w]
			cur := span{w, ts[0], ts[0]}
			for _, t := range ts[1:] {
				if t-cur.end > limit {
					runs = append(runs, cur)
					cur.start = t
				}
				cur.end = t
			}
			runs = append(runs, cur)
		}
		slices.SortStableFunc(runs, func(a, b span) int { return cmp.Compare(a.start, b.start) })
		for i, a := range runs {
			for _, b := range runs[i+1:] {
				if b.start >= a.end {
					break
				}
				if a.worker == b.worker {
					continue
				}
				if d := min(a.end, b.end) - b.start; d > limit+ix.eps {
					r.OverlapViolations++
					if len(r.OverlapSamples) < r.samples {
						r.OverlapSamples = append(r.OverlapSamples, Overlap{Shard: id, Workers: [2]string{a.worker, b.worker},
							Start: time.Unix(0, b.start), End: time.Unix(0, min(a.end, b.end))})
					}
				}
			}
		}
	}
}

// failoverKinds are the faults rule 6 measures, in the order of the table.
var failoverKinds = []LifecycleKind{SIGKILL, SIGSTOP, SIGTERM, Partition}

// failovers applies rule 6.
func (ix *index) failovers(r *Report) {
	type fault struct {
		kind   LifecycleKind
		leader bool
	}
	times := make(map[fault][]time.Duration)
	unresolved := make(map[fault]int)
	ended := make(map[fault]int)
	shards := sortedKeys(ix.shards)
	for _, w := range sortedKeys(ix.life) {
		for li, l := range ix.life[w] {
			if !slices.Contains(failoverKinds, l.Kind) {
				continue
			}
			fk := fault{l.Kind, l.Leader}
			t := ns(l.T)
			// The worker's own processing from resumed on counts: after a
			// SIGSTOP, once continued (it was frozen until then); after a
			// partition, once healed (until then it may go on processing
			// up to its deadline, which resumes nothing); never after a
			// SIGKILL or SIGTERM (it is dying or draining).
			resumed := int64(1<<63 - 1)
			switch l.Kind {
			case SIGSTOP:
				resumed = t
			case Partition:
				for _, n := range ix.life[w][li+1:] {
					if n.Kind == Heal {
						resumed = ns(n.T)
						break
					}
				}
			}
			for _, id := range shards {
				s := ix.shards[id]
				if !ix.holder(s, w, t) || !lastEventAcquired(s.events[w], t) {
					continue
				}
				end, found := int64(1<<63-1), false
				if i := sort.Search(len(s.acquired), func(i int) bool { return s.acquired[i].t > t }); i < len(s.acquired) {
					end, found = s.acquired[i].t, true
				}
				for pw, ts := range s.proc {
					from := t
					if pw == w {
						from = resumed
					}
					i := sort.Search(len(ts), func(i int) bool { return ts[i] > from })
					if i < len(ts) && ts[i] < end && ix.holder(s, pw, ts[i]) {
						end, found = ts[i], true
					}
				}
				if !found {
					if l.Kind != SIGKILL && endedOwnShard(s.events[w], t) {
						ended[fk]++ // drained (SIGTERM) or resumed (SIGSTOP, Partition) to the shard's end
						continue
					}
					unresolved[fk]++
					if len(r.UnresolvedSamples) < r.samples {
						r.UnresolvedSamples = append(r.UnresolvedSamples, Unresolved{Kind: l.Kind, Worker: w, Shard: id, T: l.T, Leader: l.Leader})
					}
					continue
				}
				times[fk] = append(times[fk], time.Duration(end-t))
			}
		}
	}
	r.Failover = make(map[LifecycleKind]Failover)
	r.LeaderFailover = make(map[LifecycleKind]Failover)
	for _, k := range failoverKinds {
		for _, leader := range []bool{false, true} {
			fk := fault{k, leader}
			ds := times[fk]
			if len(ds) == 0 && unresolved[fk] == 0 && ended[fk] == 0 {
				continue
			}
			f := Failover{Count: len(ds), Ended: ended[fk], Unresolved: unresolved[fk]}
			if len(ds) > 0 {
				slices.Sort(ds)
				f.Min, f.Median, f.Max = ds[0], ds[(len(ds)-1)/2], ds[len(ds)-1]
			}
			if leader {
				r.LeaderFailover[k] = f
			} else {
				r.Failover[k] = f
			}
		}
	}
}

// endedOwnShard reports whether evs (one worker's events on one shard)
// have a ShardEnded after t: the worker finished the shard itself, so it
// never needed another owner.
func endedOwnShard(evs []LeaseEvent, t int64) bool {
	i := sort.Search(len(evs), func(i int) bool { return ns(evs[i].T) > t })
	return i < len(evs) && evs[i].Kind == ShardEnded
}

// lastEventAcquired reports whether the last of evs at or before t is an
// acquisition.
func lastEventAcquired(evs []LeaseEvent, t int64) bool {
	i := sort.Search(len(evs), func(i int) bool { return ns(evs[i].T) > t })
	return i > 0 && evs[i-1].Kind == Acquired
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
