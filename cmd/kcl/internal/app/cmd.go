package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
)

// Defaults of the app commands' flags.
const (
	// DefaultLeaseDuration is KCL's failoverTimeMillis: a lease whose
	// counter stands still this long is expired.
	DefaultLeaseDuration = 10 * time.Second
	// DefaultObserve is how long describe and reset watch the table before
	// they judge who is alive: longer than KCL's renewal interval (lease
	// duration / 3 − 25 ms, 3.3 s by default) and kcl's heartbeat.
	DefaultObserve = 4 * time.Second
	// DefaultInterval is --watch's repaint interval. Each repaint with
	// --stream reads every unfinished shard once, out of the five reads a
	// second the shard allows all its consumers.
	DefaultInterval = 5 * time.Second

	// forceRetries bounds the re-reads of a forced reset whose
	// transaction lost a race with a holder's renewal.
	forceRetries = 3
)

// New returns the app command: describe and reset a consumer application
// (a KCL lease table).
func New(env *ops.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Describe and reset consumer applications (KCL lease tables)",
		Long: "Describe and reset consumer applications: kcl's and the Java KCL 2.x/3.x's. APP is the application\n" +
			"name, which is the lease table's name.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDescribe(env), newReset(env))
	return cmd
}

// watchFlags are the observation flags both commands share.
type watchFlags struct {
	stream        string
	observe       time.Duration
	leaseDuration time.Duration
}

func (w *watchFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.stream, "stream", "", "the application's stream (single-stream applications): for lag and closed shards")
	cmd.Flags().DurationVar(&w.observe, "observe", DefaultObserve, "how long to watch lease counters and heartbeats before judging who is alive (0: one read)")
	cmd.Flags().DurationVar(&w.leaseDuration, "lease-duration", DefaultLeaseDuration, "the application's lease duration (failoverTimeMillis): a holder silent this long is expired")
}

func (w *watchFlags) check() error {
	switch {
	case w.observe < 0:
		return ops.Usagef("--observe must not be negative, not %s", w.observe)
	case w.leaseDuration <= 0:
		return ops.Usagef("--lease-duration must be positive, not %s", w.leaseDuration)
	}
	return nil
}

func newDescribe(env *ops.Env) *cobra.Command {
	var (
		w        watchFlags
		watch    bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "describe APP",
		Short: "Show who processes which shard, where each checkpoint stands, how far behind it is, and what is wrong",
		Long: "describe reads the lease table APP twice, --observe apart, and prints one row per lease: its shard,\n" +
			"state (active: the holder renews; owned: not yet seen renewing; expired: silent for a lease duration;\n" +
			"unowned; waiting for its parents; finished at SHARD_END), owner, lease counter, checkpoint\n" +
			"(sequence/sub-sequence), lag (MillisBehindLatest at the checkpoint, from one GetRecords) and the age\n" +
			"of the checkpoint's record, and owner switches since the last checkpoint; then each worker's leases\n" +
			"and total lag, and the problems it sees: holes in the hash key coverage, children no worker will\n" +
			"process, closed shards read to their end but never finished. It writes nothing.\n\n" +
			"--watch repaints every --interval until Ctrl-C, judging liveness over everything it has seen.\n\n" +
			"With --stream (or for multi-stream applications), each lag costs one GetShardIterator and one\n" +
			"GetRecords on the shard, out of the five reads a second the shard allows all its consumers.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			if watch && interval <= 0 {
				return ops.Usagef("--interval must be positive, not %s", interval)
			}
			out, err := env.Output()
			if err != nil {
				return err
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			t, kc, err := open(ctx, env, args[0])
			if err != nil {
				return err
			}
			obs := NewObserver()
			if _, err := Describe(ctx, t, nil, "", obs, w.leaseDuration); err != nil {
				return ops.Fail(err)
			}
			if !watch {
				if err := sleep(ctx, w.observe); err != nil {
					return ops.Fail(err)
				}
				v, err := Describe(ctx, t, kc, w.stream, obs, w.leaseDuration)
				if err != nil {
					return ops.Fail(err)
				}
				return show(env, out, v)
			}
			for {
				v, err := Describe(ctx, t, kc, w.stream, obs, w.leaseDuration)
				if ctx.Err() != nil {
					return nil // Ctrl-C
				}
				if err != nil {
					return ops.Fail(err)
				}
				var buf bytes.Buffer
				if out == ops.Table {
					buf.WriteString("\x1b[H\x1b[2J")
				}
				e := *env
				e.Stdout = &buf
				if err := show(&e, out, v); err != nil {
					return err
				}
				if _, err := env.Stdout.Write(buf.Bytes()); err != nil {
					return ops.Fail(err)
				}
				if sleep(ctx, interval) != nil {
					return nil
				}
			}
		},
	}
	w.add(cmd)
	cmd.Flags().BoolVar(&watch, "watch", false, "repaint every --interval until Ctrl-C (json: one document per interval)")
	cmd.Flags().DurationVar(&interval, "interval", DefaultInterval, "repaint interval of --watch")
	return cmd
}

func show(env *ops.Env, out ops.Output, v View) error {
	if out == ops.JSON {
		return ops.WriteJSON(env.Stdout, ToJSON(v))
	}
	return WriteTable(env.Stdout, v)
}

func newReset(env *ops.Env) *cobra.Command {
	var (
		w          watchFlags
		to, shard  string
		yes, force bool
	)
	cmd := &cobra.Command{
		Use:   "reset APP --to trim-horizon|latest|TIME|SEQUENCE",
		Short: "Move the application's checkpoints",
		Long: "reset moves the checkpoints of APP's unfinished leases (or of --shard's lease) to --to:\n" +
			"  trim-horizon   the oldest record the stream keeps\n" +
			"  latest         records that arrive after the workers start again\n" +
			"  TIME           RFC 3339 (2026-01-02T15:04:05Z): the first record that arrived at or after it\n" +
			"  SEQUENCE[/SUB] as if that record (and sub-record) had just been processed; needs --shard\n\n" +
			"It watches the table for --observe and refuses while a worker is seen renewing a lease to move,\n" +
			"unless --force: then each write fences the holder (the lease counter moves and the owner is\n" +
			"removed), so the holder's next renewal or checkpoint fails and a worker takes the lease from the\n" +
			"new checkpoint. It prints what it will change and asks unless --yes. Every write is conditioned\n" +
			"on the lease as observed, in one transaction per 100 leases: a refused or failed reset writes\n" +
			"nothing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.check(); err != nil {
				return err
			}
			if to == "" {
				return ops.Usagef("--to is required: trim-horizon, latest, an RFC 3339 time or a sequence number")
			}
			target, err := ParseTarget(to)
			if err != nil {
				return ops.Usagef("%v", err)
			}
			if _, err := env.Output(); err != nil {
				return err
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			t, kc, err := open(ctx, env, args[0])
			if err != nil {
				return err
			}
			plan, err := PlanReset(ctx, t, kc, ResetOptions{Target: target, Shard: shard, Stream: w.stream,
				Observe: w.observe, LeaseDuration: w.leaseDuration})
			switch {
			case errors.Is(err, ErrBadTarget):
				return ops.Usagef("%v", err)
			case err != nil:
				return ops.Fail(err)
			}
			out, _ := env.Output()
			report := func(applied bool) error {
				if out == ops.JSON {
					return ops.WriteJSON(env.Stdout, PlanJSON(plan, applied))
				}
				if applied {
					_, err := fmt.Fprintf(env.Stdout, "reset %s\n", plural(len(plan.Changes), "lease", "leases"))
					return err
				}
				return WritePlan(env.Stdout, plan)
			}
			refusal := plan.Refusal(force)
			if len(plan.Changes) == 0 || refusal != nil || out == ops.Table {
				if err := report(false); err != nil {
					return ops.Fail(err)
				}
			}
			if len(plan.Changes) == 0 {
				if out == ops.Table {
					_, err := fmt.Fprintln(env.Stdout, "nothing to reset")
					return err
				}
				return nil
			}
			if refusal != nil {
				return ops.Fail(refusal)
			}
			if out == ops.JSON && !yes {
				if err := WritePlan(env.Stderr, plan); err != nil {
					return ops.Fail(err)
				}
			}
			ok, err := env.Confirm(fmt.Sprintf("move %s?", plural(len(plan.Changes), "checkpoint", "checkpoints")), yes)
			if err != nil {
				return err
			}
			if !ok {
				return ops.Failf("not confirmed: nothing changed")
			}
			dc, err := env.DynamoDB(ctx)
			if err != nil {
				return err
			}
			err = ApplyReset(ctx, dc, plan)
			// A forced reset races the holders it fences: a renewal that
			// lands between the read and the write fails the transaction,
			// which wrote nothing. Read again and retry a few times.
			for retry := 0; force && errors.Is(err, ErrChanged) && retry < forceRetries; retry++ {
				plan, err = PlanReset(ctx, t, kc, ResetOptions{Target: target, Shard: shard, Stream: w.stream, LeaseDuration: w.leaseDuration})
				if err == nil {
					err = ApplyReset(ctx, dc, plan)
				}
			}
			if err != nil {
				return ops.Fail(err)
			}
			return report(true)
		},
	}
	w.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "where to move the checkpoints: trim-horizon, latest, an RFC 3339 time or a sequence number")
	cmd.Flags().StringVar(&shard, "shard", "", "reset only this shard's lease, a finished one too (a shard id, or a multi-stream application's lease key)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&force, "force", false, "reset leases held by live workers, fencing them")
	return cmd
}

// open builds the clients and opens the application's lease table.
func open(ctx context.Context, env *ops.Env, app string) (*Table, KinesisAPI, error) {
	dc, err := env.DynamoDB(ctx)
	if err != nil {
		return nil, nil, err
	}
	kc, err := env.Kinesis(ctx)
	if err != nil {
		return nil, nil, err
	}
	t, err := Open(ctx, dc, app)
	if err != nil {
		return nil, nil, ops.Fail(err)
	}
	return t, kc, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
