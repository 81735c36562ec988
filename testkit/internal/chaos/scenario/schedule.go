package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// The fault kinds a schedule draws from (Config.Faults). Durations are in
// failover times: the lease duration with per-lease renewal, F in kcl
// fleet mode (Config.Coordination).
const (
	// Process faults.
	FaultSIGKILL   = "sigkill"   // kill a worker, restart it after 0..2 failover times
	FaultSIGTERM   = "sigterm"   // stop a worker gracefully, restart it after 0..1 failover time
	FaultSIGSTOP   = "sigstop"   // pause a worker for 1.5..2.5 failover times (a zombie), then continue it
	FaultPartition = "partition" // cut a worker off from DynamoDB (not Kinesis) for 1.5..2.5 failover times
	FaultJoin      = "join"      // start an extra worker (at most two over Config.Workers)
	// Faults of the kcl fleet's leader: the worker the leader lock names
	// when the action runs (skipped when there is none, or it is disrupted
	// already), killed, paused or partitioned as above.
	FaultLeaderSIGKILL   = "leader-sigkill"
	FaultLeaderSIGSTOP   = "leader-sigstop"
	FaultLeaderPartition = "leader-partition"
	// FaultSIGKILLChild kills one child process of a host (multilang mode
	// only); the host starts a new one.
	FaultSIGKILLChild = "sigkill-child"
	// Resharding, each waiting for the stream to be ACTIVE again.
	FaultSplit       = "split"
	FaultMerge       = "merge"
	FaultScaleUp     = "scale-up"     // UpdateShardCount to twice the open shards, at most MaxShards
	FaultScaleDown   = "scale-down"   // UpdateShardCount to half the open shards
	FaultStopReshard = "stop-reshard" // SIGSTOP a worker, reshard while it is paused, continue it
	// Proxy fault windows of 3..6 s (see proxyRules).
	FaultLatency         = "latency"
	FaultReset           = "reset"
	FaultBlackhole       = "blackhole"
	FaultError500        = "error500"
	FaultThrottle        = "throttle"
	FaultExpiredIterator = "expired-iterator"
	FaultSlowDynamoDB    = "slow-dynamodb"
	FaultDropResponse    = "drop-response"
	FaultSlowBody        = "slow-body"
)

// AllFaults lists every fault kind, the default of Config.Faults in kcl
// fleet mode.
var AllFaults = []string{
	FaultSIGKILL, FaultSIGTERM, FaultSIGSTOP, FaultPartition, FaultJoin,
	FaultLeaderSIGKILL, FaultLeaderSIGSTOP, FaultLeaderPartition,
	FaultSplit, FaultMerge, FaultScaleUp, FaultScaleDown, FaultStopReshard,
	FaultLatency, FaultReset, FaultBlackhole, FaultError500, FaultThrottle, FaultExpiredIterator,
	FaultSlowDynamoDB, FaultDropResponse, FaultSlowBody,
}

// PerLeaseFaults is the default of Config.Faults with per-lease renewal,
// where no worker leads: AllFaults without the leader's.
var PerLeaseFaults = slices.DeleteFunc(slices.Clone(AllFaults), isLeaderFault)

// MultilangFaults is the default of Config.Faults in the multilang mode:
// AllFaults and FaultSIGKILLChild, three times over — a child's kill is
// cheap, leaves the fleet whole, and is what the mode is for.
var MultilangFaults = append(slices.Clone(AllFaults), FaultSIGKILLChild, FaultSIGKILLChild, FaultSIGKILLChild)

func isProcessFault(k string) bool {
	return k == FaultSIGKILL || k == FaultSIGTERM || k == FaultSIGSTOP || k == FaultPartition || k == FaultStopReshard
}

func isLeaderFault(k string) bool {
	return k == FaultLeaderSIGKILL || k == FaultLeaderSIGSTOP || k == FaultLeaderPartition
}

func isReshard(k string) bool {
	return k == FaultSplit || k == FaultMerge || k == FaultScaleUp || k == FaultScaleDown || k == FaultStopReshard
}

func isProxyFault(k string) bool {
	return !isProcessFault(k) && !isLeaderFault(k) && !isReshard(k) && k != FaultJoin && k != FaultSIGKILLChild
}

// Action is one step of a fault schedule.
type Action struct {
	// At is when the action starts, from the start of production.
	At time.Duration
	// Kind is one of the Fault constants.
	Kind string
	// Worker is the worker acted on (process faults, join, a child's kill);
	// "" for a leader fault, whose worker is found when it runs.
	Worker string
	// Dur is the pause (SIGSTOP), the partition's length, the time before
	// the restart (SIGKILL, SIGTERM) or the window's length (proxy faults).
	Dur time.Duration
	// Pick in [0, 1) chooses the shard to split or the pair to merge among
	// the open shards when the action runs, or the child to kill among the
	// host's children.
	Pick float64
	// Scale is a proxy window's draw in [0, 1), scaling its latencies.
	Scale float64
}

func (a Action) String() string {
	s := fmt.Sprintf("%7.2fs %s", a.At.Seconds(), a.Kind)
	if a.Worker != "" {
		s += " " + a.Worker
	}
	if a.Dur > 0 {
		s += " for " + a.Dur.Round(time.Millisecond).String()
	}
	return s
}

// planInput is what a schedule depends on.
type planInput struct {
	seed      uint64
	faults    []string
	workers   int
	shards    int
	maxShards int
	// failover is the failover time: the lease duration with per-lease
	// renewal, F in kcl fleet mode.
	failover time.Duration
	shutdown time.Duration
	from, to time.Duration // actions start in [from, to)
	minGap   time.Duration
	maxGap   time.Duration
}

// plan draws a fault schedule from the seed. It is a pure function: the
// same input gives the same schedule. It keeps the fleet alive (at most
// workers-1 of them disrupted at once, a leader fault counting as one
// disrupted worker of unknown name), one proxy window at a time, and open
// shards within [1, maxShards] (assuming every reshard succeeds).
func plan(in planInput) []Action {
	if len(in.faults) == 0 || in.to <= in.from {
		return nil
	}
	r := rand.New(rand.NewPCG(in.seed, in.seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)))
	}
	ft := in.failover
	var members []string
	for i := range in.workers {
		members = append(members, workerID(i))
	}
	busy := make(map[string]time.Duration) // planned end of a disruption, by worker
	var leaderBusy []time.Duration         // planned ends of leader faults
	joins := 0
	open := in.shards
	var proxyUntil time.Duration

	var (
		out []Action
		bag []string
	)
	for t := in.from + between(0, in.maxGap); t < in.to; t += between(in.minGap, in.maxGap) {
		free := func() []string {
			var f []string
			for _, m := range members {
				if busy[m] <= t {
					f = append(f, m)
				}
			}
			return f
		}
		// disrupted counts the workers disrupted at t, leader faults
		// included.
		disrupted := func(free int) int {
			n := len(members) - free
			for _, end := range leaderBusy {
				if end > t {
					n++
				}
			}
			return n
		}
		// Kinds come from a shuffled bag, refilled when empty, so that a
		// short schedule still has every kind: take the first kind in the
		// bag that is possible now; if none is, the slot stays empty.
		if len(bag) == 0 {
			bag = slices.Clone(in.faults)
			r.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		placed := false
		for bi := 0; bi < len(bag); bi++ {
			k := bag[bi]
			a := Action{At: t, Kind: k}
			ok := true
			switch {
			case k == FaultJoin:
				ok = joins < 2
				if ok {
					a.Worker = workerID(in.workers + joins)
					joins++
					members = append(members, a.Worker)
				}
			case k == FaultSIGKILLChild:
				// A host that is not disrupted (one being restarted may have no
				// children yet); the host stays whole, so nothing gets busy.
				f := free()
				ok = len(f) > 0
				if ok {
					a.Worker = f[r.IntN(len(f))]
					a.Pick = r.Float64()
				}
			case isProcessFault(k):
				f := free()
				if k == FaultStopReshard && open >= in.maxShards && open == 1 {
					ok = false
					break
				}
				if len(f) == 0 || disrupted(len(f))+1 > len(members)-1 {
					ok = false
					break
				}
				a.Worker = f[r.IntN(len(f))]
				switch k {
				case FaultSIGKILL:
					a.Dur = between(0, 2*ft)
					busy[a.Worker] = t + a.Dur + time.Second
				case FaultSIGTERM:
					a.Dur = between(0, ft)
					busy[a.Worker] = t + in.shutdown + 5*time.Second + a.Dur + time.Second // as the executor waits
				case FaultSIGSTOP, FaultStopReshard, FaultPartition:
					a.Dur = ft*3/2 + between(0, ft)
					busy[a.Worker] = t + a.Dur + time.Second
				}
				if k == FaultStopReshard {
					a.Pick = r.Float64()
					open = stopReshardTarget(open, in.maxShards)
				}
			case isLeaderFault(k):
				// Whoever leads when the action runs: one more disrupted
				// worker, not named yet (the executor skips the action if
				// the leader is disrupted already).
				if disrupted(len(free()))+1 > len(members)-1 {
					ok = false
					break
				}
				if k == FaultLeaderSIGKILL {
					a.Dur = between(0, 2*ft)
				} else {
					a.Dur = ft*3/2 + between(0, ft)
				}
				leaderBusy = append(leaderBusy, t+a.Dur+time.Second)
			case isReshard(k):
				a.Pick = r.Float64()
				switch k {
				case FaultSplit:
					ok = open < in.maxShards
					open += b2i(ok)
				case FaultMerge:
					ok = open > 1
					open -= b2i(ok)
				case FaultScaleUp:
					ok = open < in.maxShards
					if ok {
						open = min(2*open, in.maxShards)
					}
				case FaultScaleDown:
					ok = open > 1
					if ok {
						open = (open + 1) / 2
					}
				}
			default: // proxy window
				ok = proxyUntil <= t
				if ok {
					a.Dur = between(3*time.Second, 6*time.Second)
					a.Scale = r.Float64()
					proxyUntil = t + a.Dur + time.Second
				}
			}
			if ok {
				out = append(out, a)
				bag = slices.Delete(bag, bi, bi+1)
				placed = true
				break
			}
		}
		if !placed {
			// Nothing left in the bag is possible now. A kind that can never
			// happen again (a third join) leaves the bag; and the leftovers
			// (say, split and scale-up at the maximum shard count) may wait
			// for kinds no longer in it (a merge), so a fresh set goes in
			// behind them, once: the leftovers keep their turn.
			if joins >= 2 {
				bag = slices.DeleteFunc(bag, func(k string) bool { return k == FaultJoin })
			}
			if len(bag) < len(in.faults) {
				more := slices.Clone(in.faults)
				r.Shuffle(len(more), func(i, j int) { more[i], more[j] = more[j], more[i] })
				bag = append(bag, more...)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Action) int { return int(a.At - b.At) })
	return out
}

// stopReshardTarget is the open shard count a stop-reshard scales to from
// open: up while below max, else down.
func stopReshardTarget(open, max int) int {
	if open < max {
		return min(2*open, max)
	}
	return (open + 1) / 2
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func workerID(i int) string { return fmt.Sprintf("w%d", i+1) }
