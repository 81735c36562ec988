package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
)

// summary prints the verdict and the lease table, and returns an error if
// the run failed.
func (d *demo) summary(ctx context.Context, store *dynamolease.Store, drained bool) error {
	r := d.chk.Report()
	ps := d.prod.Stats()
	counts := d.fleet.counts()
	var problems []string
	d.mu.Lock()
	problems = append(problems, d.problems...)
	d.mu.Unlock()
	problems = append(problems, d.fleet.failures()...)
	d.fleet.mu.Lock()
	bad := slices.Clone(d.fleet.bad)
	d.fleet.mu.Unlock()
	for _, b := range bad {
		problems = append(problems, "malformed worker output: "+b)
	}

	fmt.Println()
	fmt.Println("==== kcl demo summary ====")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "elapsed\t%v\n", time.Since(d.start).Round(100*time.Millisecond))
	fmt.Fprintf(tw, "records produced\t%d (%d plain, %d in %d KPL aggregates), %d keys\n",
		r.Produced, ps.Records-ps.AggregatedRecords, ps.AggregatedRecords, ps.Aggregates, d.cfg.keys)
	fmt.Fprintf(tw, "records processed\t%d (unique %d)\n", r.Processed, r.Unique)
	var per []string
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		per = append(per, fmt.Sprintf("%s %d", id, counts[id]))
	}
	fmt.Fprintf(tw, "per worker\t%s\n", strings.Join(per, ", "))
	fmt.Fprintf(tw, "duplicates\t%d (records delivered again after their lease moved: processed, not yet checkpointed)\n", r.Duplicates)
	fmt.Fprintf(tw, "order violations\t%d\n", r.OrderViolations)
	fmt.Fprintf(tw, "lost\t%d\n", r.Lost)
	if r.Unexpected > 0 {
		fmt.Fprintf(tw, "unexpected\t%d (processed but never acknowledged to the producer)\n", r.Unexpected)
	}
	tw.Flush()
	for _, s := range r.ViolationSamples {
		fmt.Println("  order violation:", s)
	}
	if len(r.LostSamples) > 0 {
		fmt.Println("  lost, for example:", strings.Join(r.LostSamples, ", "))
	}
	fmt.Println("failover:")
	d.mu.Lock()
	for _, f := range d.failover {
		fmt.Println("  " + f)
	}
	d.mu.Unlock()
	d.metrics.print()

	if err := printLeases(ctx, store); err != nil {
		problems = append(problems, "read lease table: "+err.Error())
	}

	if !drained {
		problems = append(problems, fmt.Sprintf("not every record was processed within %v of the last put", d.cfg.drain))
	}
	if !r.OK() {
		problems = append(problems, "checker: "+r.String())
	}
	if r.Produced == 0 {
		problems = append(problems, "nothing was produced")
	}
	if len(problems) > 0 {
		fmt.Println("RESULT: FAILED")
		for _, p := range problems {
			fmt.Println("  -", p)
		}
		fmt.Println("worker logs:", d.dir)
		return errors.New("demo failed")
	}
	fmt.Println("RESULT: OK: every record processed, in order per key, through resharding, a graceful stop and a crash")
	if !d.cfg.keep {
		_ = os.RemoveAll(d.dir)
	}
	return nil
}

// printLeases prints the lease table, sorted by key.
func printLeases(ctx context.Context, store *dynamolease.Store) error {
	leases, err := store.List(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(leases, func(a, b lease.Lease) int { return strings.Compare(a.Key, b.Key) })
	fmt.Printf("lease table %s:\n", store.Table())
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KEY\tOWNER\tCHECKPOINT\tPARENTS\tCHILDREN")
	for _, l := range leases {
		owner := l.Owner
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.Key, owner, shortCheckpoint(l.Checkpoint.String()),
			orDash(shortShards(slices.Sorted(slices.Values(l.ParentShardIDs)))),
			orDash(shortShards(slices.Sorted(slices.Values(l.ChildShardIDs)))))
	}
	return tw.Flush()
}

// shortCheckpoint abbreviates a sequence-number checkpoint.
func shortCheckpoint(s string) string {
	if len(s) > 20 {
		return "…" + s[len(s)-16:]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
