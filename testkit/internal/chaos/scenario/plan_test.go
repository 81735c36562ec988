package scenario

import (
	"slices"
	"testing"
	"time"
)

func testPlanInput(seed uint64) planInput {
	return planInput{seed: seed, faults: AllFaults, workers: 3, shards: 4, maxShards: 8,
		failover: 2 * time.Second, shutdown: 5 * time.Second, from: 5 * time.Second, to: 10 * time.Minute,
		minGap: 2 * time.Second, maxGap: 6 * time.Second}
}

func TestPlan(t *testing.T) {
	t.Run("a long schedule keeps injecting faults until its end", func(t *testing.T) {
		for seed := range uint64(20) {
			in := testPlanInput(seed)
			in.to = 20 * time.Minute
			acts := plan(in)
			if len(acts) == 0 {
				t.Fatalf("seed %d: empty schedule", seed)
			}
			if last := acts[len(acts)-1].At; last < in.to-time.Minute {
				t.Fatalf("seed %d: the last action is at %v of %v: the schedule ran dry", seed, last, in.to)
			}
			reshards := 0
			for _, a := range acts {
				if isReshard(a.Kind) {
					reshards++
				}
			}
			// A soak must reach 100 faults and 10 reshards (issue 6).
			if len(acts) < 100 || reshards < 10 {
				t.Fatalf("seed %d: %d actions, %d reshards in 20 minutes; want at least 100 and 10", seed, len(acts), reshards)
			}
		}
	})

	t.Run("the same seed gives the same schedule", func(t *testing.T) {
		a, b := plan(testPlanInput(7)), plan(testPlanInput(7))
		if !slices.Equal(a, b) || len(a) == 0 {
			t.Fatalf("schedules differ or are empty:\n%v\n%v", a, b)
		}
		if c := plan(testPlanInput(8)); slices.Equal(a, c) {
			t.Fatal("seeds 7 and 8 give the same schedule")
		}
	})
	t.Run("the fleet always keeps one undisturbed worker and one proxy window at a time", func(t *testing.T) {
		for seed := range uint64(50) {
			in := testPlanInput(seed)
			acts := plan(in)
			members := in.workers
			busy := map[string]time.Duration{}
			var leaders []time.Duration // ends of leader faults, on workers unknown here
			var window time.Duration
			open := in.shards
			for _, a := range acts {
				if a.At < in.from || a.At >= in.to {
					t.Fatalf("seed %d: %v outside [%v, %v)", seed, a, in.from, in.to)
				}
				switch {
				case a.Kind == FaultJoin:
					members++
				case isProcessFault(a.Kind) || isLeaderFault(a.Kind):
					n := 0
					for w, until := range busy {
						if until > a.At && w != a.Worker {
							n++
						}
					}
					for _, until := range leaders {
						if until > a.At {
							n++
						}
					}
					if a.Worker != "" && busy[a.Worker] > a.At {
						t.Fatalf("seed %d: %v while %s is still disrupted", seed, a, a.Worker)
					}
					if (a.Worker == "") != isLeaderFault(a.Kind) {
						t.Fatalf("seed %d: %v: a leader fault names no worker, any other process fault one", seed, a)
					}
					if n+1 > members-1 {
						t.Fatalf("seed %d: %v leaves no worker undisturbed", seed, a)
					}
					if isLeaderFault(a.Kind) {
						leaders = append(leaders, a.At+a.Dur)
					} else {
						busy[a.Worker] = a.At + a.Dur
					}
				case isProxyFault(a.Kind):
					if window > a.At {
						t.Fatalf("seed %d: %v overlaps the previous window", seed, a)
					}
					window = a.At + a.Dur
				}
				switch a.Kind {
				case FaultSplit:
					open++
				case FaultMerge:
					open--
				case FaultScaleUp:
					open = min(2*open, in.maxShards)
				case FaultScaleDown:
					open = (open + 1) / 2
				case FaultStopReshard:
					open = stopReshardTarget(open, in.maxShards)
				}
				if open < 1 || open > in.maxShards {
					t.Fatalf("seed %d: %v leaves %d open shards", seed, a, open)
				}
			}
		}
	})
	t.Run("a CI-size schedule has every fault kind", func(t *testing.T) {
		in := testPlanInput(20261126)
		in.to = 81 * time.Second                                            // TestScenario: 90 s minus the quiet end (2 F + 5 s)
		in.minGap, in.maxGap = 1500*time.Millisecond, 4500*time.Millisecond // as Run
		seen := map[string]bool{}
		for _, a := range plan(in) {
			seen[a.Kind] = true
		}
		for _, k := range AllFaults {
			if !seen[k] {
				t.Errorf("no %s in %v", k, plan(in))
			}
		}
	})
	t.Run("the CI multilang schedule has each of its kinds and kills children of undisturbed hosts", func(t *testing.T) {
		in := testPlanInput(20261126)
		in.faults = ciMultilangFaults
		in.to = 49 * time.Second // TestScenarioMultilang: 60 s minus the quiet end
		in.minGap, in.maxGap = 1500*time.Millisecond, 4500*time.Millisecond
		seen := map[string]int{}
		busy := map[string]time.Duration{}
		for _, a := range plan(in) {
			seen[a.Kind]++
			switch {
			case a.Kind == FaultSIGKILLChild:
				if a.Worker == "" || busy[a.Worker] > a.At {
					t.Errorf("%v: no worker, or one still disrupted", a)
				}
			case isProcessFault(a.Kind):
				busy[a.Worker] = a.At + a.Dur
			}
		}
		if seen[FaultSIGKILLChild] < 2 {
			t.Errorf("%d child kills in %v", seen[FaultSIGKILLChild], plan(in))
		}
		for _, k := range ciMultilangFaults {
			if seen[k] == 0 {
				t.Errorf("no %s in %v", k, plan(in))
			}
		}
	})
	t.Run("no fault kinds give an empty schedule", func(t *testing.T) {
		in := testPlanInput(1)
		in.faults = nil
		if acts := plan(in); len(acts) != 0 {
			t.Fatalf("got %v", acts)
		}
	})
}
