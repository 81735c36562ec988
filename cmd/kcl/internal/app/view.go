// Package app is the consumer-application view of the kcl command line
// (kcl app describe, kcl app reset): it reads a KCL lease table — written by
// kcl Workers or by the Java KCL 2.x/3.x — and says, per lease, who holds it,
// whether the holder is alive, where its checkpoint stands and how far
// behind the stream it is; per worker, what it holds; and which problems the
// table shows. It also moves checkpoints, with the same conditional writes a
// KCL worker makes.
//
// The decisions are plain functions over values (Build, Plan); the loops
// that read the table and the stream and write the table are in read.go,
// lag.go and reset.go.
package app

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/shardsync"
	"github.com/kclgo/kcl/lease"
)

// State is what a lease is doing, as far as the table and an observation of
// it tell.
type State int

const (
	// Active: owned, and its counter moved while observed (the holder
	// renews).
	Active State = iota + 1
	// Owned: owned, but not observed long enough to tell whether the
	// holder renews.
	Owned
	// Expired: owned, but the counter stood still for a lease duration:
	// the holder stopped, and any worker may take the lease.
	Expired
	// Unowned: no worker holds it; any worker may take it.
	Unowned
	// Waiting: a parent shard's lease is not finished yet, so the shard
	// may not be processed (KCL's parent gating).
	Waiting
	// Finished: processed to the shard's end (checkpoint SHARD_END).
	Finished
)

func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Owned:
		return "owned"
	case Expired:
		return "expired"
	case Unowned:
		return "unowned"
	case Waiting:
		return "waiting"
	case Finished:
		return "finished"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Lag is how far a lease's checkpoint is behind its shard, from one
// GetRecords at the checkpoint (see Lagger).
type Lag struct {
	// Known reports whether Behind was measured.
	Known bool
	// Behind is the shard's MillisBehindLatest at the checkpoint.
	Behind time.Duration
	// Age is how long ago the checkpoint's record arrived in the stream;
	// valid when HasAge (a sequence-number checkpoint whose record is still
	// in the stream).
	Age    time.Duration
	HasAge bool
	// Err says why the lag could not be measured; "" otherwise.
	Err string
}

// Row is one lease of the view.
type Row struct {
	Key string
	// Stream is the stream name of a multi-stream lease; "" otherwise.
	Stream string
	// Shard is the shard id.
	Shard string
	State State
	Owner string
	// HandoffFrom is the outgoing owner of a KCL 3.x graceful handoff.
	HandoffFrom string
	Counter     int64
	Checkpoint  checkpoint.Position
	// Switches is ownerSwitchesSinceCheckpoint.
	Switches int64
	// WaitingFor lists the unfinished parents of a Waiting lease.
	WaitingFor []string
	Lag        Lag
}

// Worker summarises what one worker holds.
type Worker struct {
	ID     string
	Leases int
	// Lag is the sum of the measured lags of its leases; LagKnown reports
	// whether any was measured.
	Lag      time.Duration
	LagKnown bool
}

// Problem kinds.
const (
	ProblemHole          = "hole"           // part of the hash key space no lease covers
	ProblemStuckChild    = "stuck-child"    // a child no worker will process
	ProblemNeverFinished = "never-finished" // a closed shard's lease read to its end but not at SHARD_END
)

// Problem is something in the table that needs a person.
type Problem struct {
	Kind string
	// Shard is the shard concerned; "" for a hole.
	Shard   string
	Message string
}

// View is the application as the table and the stream show it.
type View struct {
	App      string
	Observed time.Duration
	Rows     []Row
	Workers  []Worker
	Problems []Problem
}

// Input is what Build works from.
type Input struct {
	App    string
	Leases []lease.Lease
	// Observer has observed Leases (Observe called with them at Now).
	Observer *Observer
	Now      time.Time
	// LeaseDuration is the application's lease duration (KCL's
	// failoverTimeMillis).
	LeaseDuration time.Duration
	// Lags holds the measured lags by lease key; missing means not measured.
	Lags map[string]Lag
	// Closed holds the ids of the shards the stream lists as closed, by
	// stream name ("" for a single-stream application); nil when the stream
	// was not read.
	Closed map[string]map[string]bool
}

// Build computes the view: one row per lease sorted by stream and shard, the
// workers sorted by id, and the problems.
func Build(in Input) View {
	v := View{App: in.App, Observed: in.Observer.Watched(in.Now)}
	groups := byStream(in.Leases)
	for _, stream := range slices.Sorted(maps.Keys(groups)) {
		byShard := groups[stream]
		for _, shard := range slices.Sorted(maps.Keys(byShard)) {
			l := byShard[shard]
			r := Row{
				Key: l.origKey, Stream: stream, Shard: shard, Owner: l.Owner, HandoffFrom: l.CheckpointOwner,
				Counter: l.Counter, Checkpoint: l.Checkpoint, Switches: l.OwnerSwitchesSinceCheckpoint,
				Lag: in.Lags[l.origKey],
			}
			r.State, r.WaitingFor = state(l.Lease, l.origKey, byShard.leases(), in)
			v.Rows = append(v.Rows, r)
		}
		v.Problems = append(v.Problems, problems(stream, byShard, in)...)
	}
	v.Workers = workers(v.Rows)
	return v
}

// state returns the state of l (keyed by shard id, key in the table) among
// leases.
func state(l lease.Lease, key string, leases map[string]lease.Lease, in Input) (State, []string) {
	if l.Finished() {
		return Finished, nil
	}
	if ready, waiting := shardsync.Ready(l, leases); !ready {
		return Waiting, waiting
	}
	if l.Owner == "" {
		return Unowned, nil
	}
	switch in.Observer.Liveness(key, l.Owner, in.Now, in.LeaseDuration) {
	case Live:
		return Active, nil
	case Dead:
		return Expired, nil
	}
	return Owned, nil
}

// problems returns what is wrong among one stream's leases.
func problems(stream string, byShard shardLeases, in Input) []Problem {
	var out []Problem
	leases := byShard.leases()
	list := make([]lease.Lease, 0, len(leases))
	ranged := true
	for _, l := range leases {
		list = append(list, l)
		ranged = ranged && l.HashRange != nil
	}
	if ranged {
		for _, h := range shardsync.Coverage(list) {
			out = append(out, Problem{Kind: ProblemHole, Message: withStream(stream,
				fmt.Sprintf("hash keys %s no lease covers (%s of the key space): their records are not processed", rangeText(h), percent(h)))})
		}
	}
	for _, shard := range slices.Sorted(maps.Keys(byShard)) {
		l := leases[shard]
		st, waiting := state(l, byShard[shard].origKey, leases, in)
		switch st {
		case Waiting:
			for _, p := range waiting {
				if ps, _ := state(leases[p], byShard[p].origKey, leases, in); ps == Unowned || ps == Expired {
					out = append(out, Problem{Kind: ProblemStuckChild, Shard: shard, Message: withStream(stream,
						fmt.Sprintf("%s waits for parent %s, which is %s and not finished", shard, p, ps))})
				}
			}
		case Unowned, Expired:
			if len(l.ParentShardIDs) > 0 && l.Checkpoint.Kind() == checkpoint.KindTrimHorizon {
				out = append(out, Problem{Kind: ProblemStuckChild, Shard: shard, Message: withStream(stream,
					fmt.Sprintf("%s is %s: its parents are finished but no worker processes it", shard, st))})
			}
		}
		if closed := in.Closed[stream]; closed[shard] && !l.Finished() {
			if lag, ok := in.Lags[byShard[shard].origKey]; ok && lag.Known && lag.Behind == 0 && st != Active {
				out = append(out, Problem{Kind: ProblemNeverFinished, Shard: shard, Message: withStream(stream,
					fmt.Sprintf("%s is closed and read to its end, but its lease is %s and not at SHARD_END: its children wait", shard, st))})
			}
		}
	}
	return out
}

func withStream(stream, msg string) string {
	if stream == "" {
		return msg
	}
	return stream + ": " + msg
}

// workers sums the rows per owner. Finished leases are left out: their owner
// holds nothing to process.
func workers(rows []Row) []Worker {
	by := make(map[string]*Worker)
	for _, r := range rows {
		if r.Owner == "" || r.State == Finished {
			continue
		}
		w := by[r.Owner]
		if w == nil {
			w = &Worker{ID: r.Owner}
			by[r.Owner] = w
		}
		w.Leases++
		if r.Lag.Known {
			w.Lag += r.Lag.Behind
			w.LagKnown = true
		}
	}
	out := make([]Worker, 0, len(by))
	for _, w := range by {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// shardLease is a lease keyed by its shard id, with its table key.
type shardLease struct {
	lease.Lease
	origKey string
}

type shardLeases map[string]shardLease

func (s shardLeases) leases() map[string]lease.Lease {
	m := make(map[string]lease.Lease, len(s))
	for k, l := range s {
		m[k] = l.Lease
	}
	return m
}

// byStream groups leases by stream, each keyed by shard id, so that the
// lineage and coverage rules (which name parents and children by shard id)
// apply to multi-stream tables too.
func byStream(leases []lease.Lease) map[string]shardLeases {
	out := make(map[string]shardLeases)
	for _, l := range leases {
		stream, shard := StreamOf(l), l.Key
		if l.ShardID != "" {
			shard = l.ShardID
		}
		g := out[stream]
		if g == nil {
			g = make(shardLeases)
			out[stream] = g
		}
		orig := l.Key
		l.Key = shard
		g[shard] = shardLease{Lease: l, origKey: orig}
	}
	return out
}

// StreamOf returns the stream name of a multi-stream lease, whose streamName
// attribute holds KCL's serialized stream identifier
// "account:stream:creationEpochSeconds"; "" for a single-stream lease.
func StreamOf(l lease.Lease) string {
	if l.StreamName == "" {
		return ""
	}
	parts := strings.Split(l.StreamName, ":")
	if len(parts) == 3 {
		return parts[1]
	}
	return l.StreamName
}

func rangeText(r hashkey.Range) string { return r.Start.String() + "–" + r.End.String() }

// percent returns the share of the hash key space r covers.
func percent(r hashkey.Range) string {
	f := (keyFloat(r.End) - keyFloat(r.Start) + 1) / 340282366920938463463374607431768211456.0 * 100
	return fmt.Sprintf("%.3g%%", f)
}

func keyFloat(k hashkey.Key) float64 { return float64(k.Hi)*18446744073709551616.0 + float64(k.Lo) }
