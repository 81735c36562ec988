package history

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is Check's verdict. Counts are complete; the Samples slices hold
// the first few examples (Options.Samples).
type Report struct {
	// Produced counts distinct produced records, Processed the processed
	// lines (duplicates included), Unique the distinct records processed.
	Produced, Processed, Unique int
	// ByWorker counts processed lines by worker.
	ByWorker map[string]int
	// Truncated counts logs whose cut-short last line was dropped.
	Truncated int
	// Faults is Options.Faults: what the harness injected, by kind.
	Faults map[string]int

	// Rule 1.
	Lost        int
	LostSamples []string // "key/n"
	Unexpected  int      // processed records never produced
	// ProducerDuplicates counts records found at more than one stream
	// position (a put retried after a lost acknowledgement); not a
	// violation.
	ProducerDuplicates int

	// Rule 2.
	OrderViolations int
	OrderSamples    []string

	// Rule 3. Duplicates = ExplainedDuplicates + UnexplainedDuplicates;
	// MaxWindow is the longest time between a stream record's first
	// processing and a re-processing.
	Duplicates            int
	ExplainedDuplicates   int
	UnexplainedDuplicates int
	UnexplainedSamples    []Duplicate
	MaxWindow             time.Duration
	DuplicateReasons      map[DuplicateReason]int

	// Rule 4.
	FencingViolations int
	FencingSamples    []FencingViolation

	// Rule 5.
	OverlapViolations int
	OverlapSamples    []Overlap

	// Rule 6, by SIGKILL, SIGSTOP, SIGTERM and Partition (kinds that
	// happened only): Failover after faults on any worker but the
	// leader, LeaderFailover after faults on the fleet's leader.
	Failover          map[LifecycleKind]Failover
	LeaderFailover    map[LifecycleKind]Failover
	UnresolvedSamples []Unresolved

	// Rule 7: TableLeases leases checked, TableViolations with a
	// checkpoint that does not parse or is past the processing.
	TableLeases     int
	TableViolations int
	TableSamples    []TableViolation

	samples int
}

// Duplicate is a re-processing of a stream record.
type Duplicate struct {
	First, Again Processed
	Window       time.Duration // Again.T - First.T
	Reason       DuplicateReason
}

func (d Duplicate) String() string {
	return fmt.Sprintf("%s %s/%d (%s/%d) processed by %s, again by %s %s later: %s",
		d.First.Shard, d.First.Seq, d.First.Sub, d.First.Key, d.First.N, d.First.Worker, d.Again.Worker, d.Window, d.Reason)
}

// FencingViolation is a durable checkpoint written without the lease.
type FencingViolation struct {
	Checkpoint Checkpoint
	// Holder acquired the shard at Acquired, before the write began; ""
	// if the writer never acquired the shard.
	Holder   string
	Acquired time.Time
}

func (f FencingViolation) String() string {
	c := f.Checkpoint
	if f.Holder == "" {
		return fmt.Sprintf("%s checkpointed %s at %s (write begun %s) without ever acquiring it", c.Worker, c.Shard, c.Position, c.Start.Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("%s checkpointed %s at %s (write begun %s), %s after %s acquired it", c.Worker, c.Shard, c.Position,
		c.Start.Format(time.RFC3339Nano), c.Start.Sub(f.Acquired), f.Holder)
}

// Overlap is a time two workers both processed a shard, longer than the
// failover time (Options.FailoverTime).
type Overlap struct {
	Shard      string
	Workers    [2]string
	Start, End time.Time
}

func (o Overlap) String() string {
	return fmt.Sprintf("%s processed by %s and %s for %s from %s", o.Shard, o.Workers[0], o.Workers[1],
		o.End.Sub(o.Start), o.Start.Format(time.RFC3339Nano))
}

// Failover summarizes the failover times after one kind of fault: Count
// shards got a new owner (or resumed), and Min, Median and Max are their
// times; Ended shards were finished (SHARD_END) by the signalled worker
// itself, draining after SIGTERM or resumed after SIGSTOP, and needed no
// new owner; Unresolved shards had none of these before the run ended.
type Failover struct {
	Count, Ended, Unresolved int
	Min, Median, Max         time.Duration
}

// Unresolved is a shard held by a worker when it was signalled or
// partitioned that no one acquired or processed again, and the worker did
// not finish.
type Unresolved struct {
	Kind   LifecycleKind
	Worker string
	Shard  string
	T      time.Time
	Leader bool // the worker led the fleet
}

func (u Unresolved) String() string {
	role := ""
	if u.Leader {
		role = " (the leader)"
	}
	return fmt.Sprintf("%s%s held %s at its %s (%s); no one acquired or processed it again", u.Worker, role, u.Shard, u.Kind,
		u.T.Format(time.RFC3339Nano))
}

// OK reports whether no rule was violated: nothing lost or unexpected, no
// order violation, no unexplained duplicate, no fencing or overlap
// violation, no lease checkpoint past the processing. Failover times and explained duplicates are measurements.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Unexpected == 0 && r.OrderViolations == 0 && r.UnexplainedDuplicates == 0 &&
		r.FencingViolations == 0 && r.OverlapViolations == 0 && r.TableViolations == 0
}

func (r Report) String() string {
	return fmt.Sprintf("produced %d, processed %d (unique %d), lost %d, unexpected %d, order violations %d, duplicates %d (unexplained %d, max window %s), fencing violations %d, overlap violations %d, lease table violations %d of %d",
		r.Produced, r.Processed, r.Unique, r.Lost, r.Unexpected, r.OrderViolations, r.Duplicates, r.UnexplainedDuplicates,
		r.MaxWindow, r.FencingViolations, r.OverlapViolations, r.TableViolations, r.TableLeases)
}

// Table writes the report as the chaos harness prints it: one row per
// measure, then the verdict, then samples of each violation.
func (r Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	var byWorker []string
	for _, wk := range sortedKeys(r.ByWorker) {
		byWorker = append(byWorker, fmt.Sprintf("%s %d", wk, r.ByWorker[wk]))
	}
	row("records", "produced %d, processed %d, unique %d", r.Produced, r.Processed, r.Unique)
	row("by worker", "%s", orNone(strings.Join(byWorker, ", ")))
	var faults []string
	for _, k := range sortedKeys(r.Faults) {
		faults = append(faults, fmt.Sprintf("%s %d", k, r.Faults[k]))
	}
	if r.Faults == nil {
		row("faults", "not given to the checker")
	} else {
		row("faults", "%s", orNone(strings.Join(faults, ", ")))
	}
	row("lost", "%d", r.Lost)
	row("unexpected", "%d", r.Unexpected)
	row("order violations", "%d", r.OrderViolations)
	var reasons []string
	for d := Zombie; d <= AfterRelease; d++ {
		if n := r.DuplicateReasons[d]; n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %d", d, n))
		}
	}
	row("duplicates", "%d (explained %d, unexplained %d), max window %s", r.Duplicates, r.ExplainedDuplicates,
		r.UnexplainedDuplicates, r.MaxWindow)
	if len(reasons) > 0 {
		row("  by reason", "%s", strings.Join(reasons, ", "))
	}
	row("fencing violations", "%d", r.FencingViolations)
	row("overlap violations", "%d", r.OverlapViolations)
	if len(r.Failover) == 0 && len(r.LeaderFailover) == 0 {
		row("failover", "none")
	}
	for _, leader := range []bool{false, true} {
		m, suffix := r.Failover, ""
		if leader {
			m, suffix = r.LeaderFailover, " (leader)"
		}
		kinds := make([]LifecycleKind, 0, len(m))
		for k := range m {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			f := m[k]
			ended := ""
			if f.Ended > 0 {
				ended = fmt.Sprintf(", ended by the worker %d", f.Ended)
			}
			row("failover "+string(k)+suffix, "n %d, min %s, median %s, max %s%s, unresolved %d", f.Count, f.Min, f.Median, f.Max, ended, f.Unresolved)
		}
	}
	if r.TableLeases > 0 {
		row("lease checkpoints", "%d leases, %d past the processing", r.TableLeases, r.TableViolations)
	}
	if r.ProducerDuplicates > 0 {
		row("producer duplicates", "%d", r.ProducerDuplicates)
	}
	if r.Truncated > 0 {
		row("truncated logs", "%d", r.Truncated)
	}
	if r.OK() {
		row("verdict", "OK")
	} else {
		row("verdict", "FAIL")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("history: writing the table: %w", err)
	}
	var b strings.Builder
	for _, s := range r.LostSamples {
		fmt.Fprintf(&b, "lost: %s\n", s)
	}
	for _, s := range r.OrderSamples {
		fmt.Fprintf(&b, "order: %s\n", s)
	}
	for _, d := range r.UnexplainedSamples {
		fmt.Fprintf(&b, "duplicate: %s\n", d)
	}
	for _, f := range r.FencingSamples {
		fmt.Fprintf(&b, "fencing: %s\n", f)
	}
	for _, o := range r.OverlapSamples {
		fmt.Fprintf(&b, "overlap: %s\n", o)
	}
	for _, v := range r.TableSamples {
		fmt.Fprintf(&b, "lease checkpoint: %s\n", v)
	}
	for _, u := range r.UnresolvedSamples {
		fmt.Fprintf(&b, "unresolved failover: %s\n", u)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("history: writing the table: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
