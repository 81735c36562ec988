package shardsync

import (
	"cmp"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/lease"
)

// stream is a reshard history: every shard ever created, parents first.
type stream struct {
	shards []Shard
}

func (s *stream) add(r hashkey.Range, parents ...string) {
	s.shards = append(s.shards, open(fmt.Sprintf("shardId-%012d", len(s.shards)), r, parents...))
}

func (s *stream) children(id string) []Shard {
	var out []Shard
	for _, c := range s.shards {
		if c.ParentID == id || c.AdjacentParentID == id {
			out = append(out, c)
		}
	}
	return out
}

// reshard builds a random history: n first-generation shards, then ops
// splits and merges of open shards, as SplitShard and MergeShards do.
func reshard(r *rand.Rand, n, ops int) *stream {
	s := &stream{}
	start := hashkey.Key{}
	for i := range n {
		end := hashkey.Max
		if i < n-1 {
			end = prev(hashkey.Key{Hi: (hashkey.Max.Hi / uint64(n)) * uint64(i+1)})
		}
		s.add(hashkey.Range{Start: start, End: end})
		start = succ(end)
	}
	for range ops {
		var openIdx []int
		for i, sh := range s.shards {
			if !sh.Closed {
				openIdx = append(openIdx, i)
			}
		}
		slices.SortFunc(openIdx, func(a, b int) int { return s.shards[a].HashRange.Start.Compare(s.shards[b].HashRange.Start) })
		k := r.IntN(len(openIdx))
		if r.IntN(2) == 0 && len(openIdx) > 1 { // merge k with its right neighbour
			if k == len(openIdx)-1 {
				k--
			}
			a, b := &s.shards[openIdx[k]], &s.shards[openIdx[k+1]]
			a.Closed, b.Closed = true, true
			ids := []string{a.ID, b.ID}
			if r.IntN(2) == 0 { // either may be named ParentShardId
				ids[0], ids[1] = ids[1], ids[0]
			}
			s.add(hashkey.Range{Start: a.HashRange.Start, End: b.HashRange.End}, ids...)
			continue
		}
		sh := &s.shards[openIdx[k]]
		width := sub(sh.HashRange.End, sh.HashRange.Start)
		if width == (hashkey.Key{}) {
			continue // a single key cannot be split
		}
		mid := add(sh.HashRange.Start, shr(width, 1+r.UintN(3)))
		sh.Closed = true
		lo, hi := hashkey.Range{Start: sh.HashRange.Start, End: mid}, hashkey.Range{Start: succ(mid), End: sh.HashRange.End}
		id := sh.ID
		s.add(lo, id)
		s.add(hi, id)
	}
	return s
}

func sub(a, b hashkey.Key) hashkey.Key {
	lo, borrow := bits.Sub64(a.Lo, b.Lo, 0)
	hi, _ := bits.Sub64(a.Hi, b.Hi, borrow)
	return hashkey.Key{Hi: hi, Lo: lo}
}

func add(a, b hashkey.Key) hashkey.Key {
	lo, carry := bits.Add64(a.Lo, b.Lo, 0)
	hi, _ := bits.Add64(a.Hi, b.Hi, carry)
	return hashkey.Key{Hi: hi, Lo: lo}
}

func shr(a hashkey.Key, n uint) hashkey.Key {
	return hashkey.Key{Hi: a.Hi >> n, Lo: a.Lo>>n | a.Hi<<(64-n)}
}

func childShards(s *stream, id string) []types.ChildShard {
	var out []types.ChildShard
	for _, c := range s.children(id) {
		out = append(out, types.ChildShard{
			ShardId:      aws.String(c.ID),
			ParentShards: c.parents(),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(c.HashRange.Start.String()),
				EndingHashKey:   aws.String(c.HashRange.End.String()),
			},
		})
	}
	return out
}

// TestLifecycleProperty runs random reshard histories through the whole
// lease lifecycle — NewLeases on an empty table at TRIM_HORIZON, then workers
// processing ready leases (a checkpoint, then SHARD_END with ChildLeases for
// closed shards), periodic NewLeases and Cleanup in random order — and checks
// that the hash space stays covered, that no shard starts before all its
// parents ended, and that every shard is processed exactly once.
func TestLifecycleProperty(t *testing.T) {
	events := map[string]int{}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 42))
		s := reshard(r, 1+r.IntN(4), r.IntN(16))
		t.Run(fmt.Sprintf("seed %d with %d shards", seed, len(s.shards)), func(t *testing.T) {
			for _, e := range runLifecycle(t, r, s) {
				events[strings.Fields(e)[0]]++
			}
		})
	}
	t.Logf("events over all histories: %v", events)
	// The histories must exercise what the property is about.
	for _, e := range []string{"create", "start", "end", "defer", "delete"} {
		if events[e] == 0 {
			t.Errorf("no %q event in any history: %v", e, events)
		}
	}
}

func runLifecycle(t *testing.T, r *rand.Rand, s *stream) (log []string) {
	t.Helper()
	byID := map[string]Shard{}
	for _, sh := range s.shards {
		byID[sh.ID] = sh
	}
	table := map[string]lease.Lease{}
	create := func(ls []lease.Lease) {
		for _, l := range ls {
			if _, ok := table[l.Key]; !ok {
				table[l.Key] = l
				log = append(log, "create "+l.Key+"@"+l.Checkpoint.String())
			}
		}
	}
	list := func() []lease.Lease {
		out := make([]lease.Lease, 0, len(table))
		for _, l := range table {
			out = append(out, l)
		}
		slices.SortFunc(out, func(a, b lease.Lease) int { return cmp.Compare(a.Key, b.Key) })
		return out
	}
	startCount := map[string]int{}
	endCount := map[string]int{}

	create(NewLeases(s.shards, nil, checkpoint.TrimHorizon))
	for step := 0; ; step++ {
		if step > 100*len(s.shards)+100 {
			t.Fatalf("no quiescence after %d steps\n%q", step, log)
		}
		if holes := Coverage(list()); holes != nil {
			t.Fatalf("step %d: holes %s\n%q", step, rangesString(holes), log)
		}
		var work []lease.Lease // ready leases with work left
		for _, l := range list() {
			if ready, _ := Ready(l, table); ready && (byID[l.Key].Closed || !l.Checkpoint.IsSequence()) {
				work = append(work, l)
			}
		}
		switch x := r.IntN(10); {
		case x == 0:
			create(NewLeases(s.shards, list(), checkpoint.TrimHorizon))
			continue
		case x == 1:
			for _, l := range Cleanup(list()) {
				delete(table, l.Key)
				log = append(log, "delete "+l.Key)
			}
			continue
		}
		if len(work) == 0 {
			// Quiescent unless a sync or cleanup would change something.
			if n := NewLeases(s.shards, list(), checkpoint.TrimHorizon); len(n) > 0 {
				create(n)
				continue
			}
			if c := Cleanup(list()); len(c) > 0 {
				for _, l := range c {
					delete(table, l.Key)
					log = append(log, "delete "+l.Key)
				}
				continue
			}
			break
		}
		l := work[r.IntN(len(work))]
		if !l.Checkpoint.IsSequence() { // the first records: the shard starts
			startCount[l.Key]++
			for _, p := range byID[l.Key].parents() {
				if endCount[p] == 0 {
					t.Fatalf("step %d: %s started before its parent %s ended\n%q", step, l.Key, p, log)
				}
			}
			log = append(log, "start "+l.Key)
			if r.IntN(3) > 0 || !byID[l.Key].Closed {
				l.Checkpoint = seq
				table[l.Key] = l
				continue
			}
		}
		// The shard's end: create the children whose parents are all leased,
		// then record them and SHARD_END.
		kids, err := ChildLeases(l, childShards(s, l.Key))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			if len(MissingParents(k, table)) == 0 {
				create([]lease.Lease{k})
			} else {
				log = append(log, "defer "+k.Key)
			}
		}
		l.ChildShardIDs = keys(kids)
		l.Checkpoint = checkpoint.ShardEnd
		table[l.Key] = l
		endCount[l.Key]++
		log = append(log, "end "+l.Key)
	}

	for _, sh := range s.shards {
		if startCount[sh.ID] != 1 {
			t.Errorf("%s started %d times\n%q", sh.ID, startCount[sh.ID], log)
		}
		if want := map[bool]int{true: 1}[sh.Closed]; endCount[sh.ID] != want {
			t.Errorf("%s ended %d times, want %d\n%q", sh.ID, endCount[sh.ID], want, log)
		}
	}
	return log
}
