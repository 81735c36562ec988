package streams

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/internal/streamctl"
)

// reshardJSON is `reshard`'s result: what was done and the open shards
// after it (before it, without --wait on scale).
type reshardJSON struct {
	Stream     string      `json:"stream"`
	Operation  string      `json:"operation"` // split, merge or scale
	Shards     []string    `json:"shards,omitempty"`
	At         string      `json:"at,omitempty"`
	Target     int         `json:"target,omitempty"`
	Status     string      `json:"status"`
	OpenShards []shardJSON `json:"openShards"`
}

func newReshard(env *ops.Env) *cobra.Command {
	var (
		at   string
		half bool
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "reshard NAME (split SHARD [--at HASH|--half] | merge A B | scale N [--wait])",
		Short: "Split or merge shards, or scale a stream to N shards",
		Long: "Reshard a provisioned stream:\n" +
			"  split SHARD   splits the open shard at the decimal hash key --at HASH (the first key of the upper\n" +
			"                child), or in the middle of its range (--half, the default)\n" +
			"  merge A B     merges two open shards whose hash key ranges are adjacent\n" +
			"  scale N       UpdateShardCount with uniform scaling to N open shards, which Kinesis allows between\n" +
			"                half and double the current count; with --wait it returns when the stream is ACTIVE\n" +
			"split and merge return once the stream is ACTIVE again, with the open shards.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return ops.Usagef("want NAME and an operation: split, merge or scale")
			}
			want := map[string]int{"split": 3, "merge": 4, "scale": 3}
			n, ok := want[args[1]]
			switch {
			case !ok:
				return ops.Usagef("unknown operation %q: want split, merge or scale", args[1])
			case len(args) != n:
				return ops.Usagef("%s takes %d argument(s), got %d", args[1], n-2, len(args)-2)
			case args[1] != "split" && (cmd.Flags().Changed("at") || half):
				return ops.Usagef("--at and --half are for split")
			case args[1] != "scale" && wait:
				return ops.Usagef("--wait is for scale (split and merge always wait)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, op := args[0], args[1]
			if _, err := env.Output(); err != nil {
				return err
			}
			var splitAt *hashkey.Key
			var target int
			switch op {
			case "split":
				if cmd.Flags().Changed("at") {
					k, err := hashkey.Parse(at)
					if err != nil {
						return ops.Usagef("--at %q is not a decimal hash key from 0 to 2^128-1", at)
					}
					splitAt = &k
				}
			case "scale":
				n, err := strconv.Atoi(args[2])
				if err != nil || n <= 0 {
					return ops.Usagef("scale: %q is not a positive number of shards", args[2])
				}
				target = n
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			st, err := stream(ctx, env, name)
			if err != nil {
				return err
			}
			out := reshardJSON{Stream: name, Operation: op, OpenShards: []shardJSON{}}
			var msg string
			switch op {
			case "split":
				lin, err := st.Lineage(ctx)
				if err != nil {
					return fail(name, err)
				}
				k, err := lin.SplitPoint(args[2], splitAt)
				if err != nil {
					return reshardFail(name, err)
				}
				if err := st.SplitShard(ctx, args[2], &k); err != nil {
					return reshardFail(name, err)
				}
				out.Shards, out.At = []string{args[2]}, k.String()
				msg = fmt.Sprintf("split %s at %s (%s of the key space)", args[2], k, pct(100*streamctl.Position(k)))
			case "merge":
				if err := st.MergeShards(ctx, args[2], args[3]); err != nil {
					return reshardFail(name, err)
				}
				out.Shards = []string{args[2], args[3]}
				msg = fmt.Sprintf("merged %s and %s", args[2], args[3])
			case "scale":
				d, err := st.Summary(ctx)
				if err != nil {
					return fail(name, err)
				}
				if err := streamctl.CheckScale(int(aws.ToInt32(d.OpenShardCount)), target); err != nil {
					return reshardFail(name, err)
				}
				out.Target = target
				if wait {
					got, err := st.Scale(ctx, target)
					if err != nil {
						return reshardFail(name, err)
					}
					msg = fmt.Sprintf("scaled to %d open shards", got)
				} else {
					if err := st.UpdateShardCount(ctx, target); err != nil {
						return reshardFail(name, err)
					}
					msg = fmt.Sprintf("scaling to %d shards (UPDATING); --wait waits for it", target)
				}
			}
			d, err := st.Summary(ctx)
			if err != nil {
				return fail(name, err)
			}
			out.Status = string(d.StreamStatus)
			lin, err := st.Lineage(ctx)
			if err != nil {
				return fail(name, err)
			}
			for _, s := range lin.Open() {
				out.OpenShards = append(out.OpenShards, shardOf(s))
			}
			return env.Print(out, func(t *ops.Tab) {
				t.Line("stream %s: %s; %s", name, msg, out.Status)
				t.Row("OPEN SHARD", "HASH KEYS", "SHARE")
				for _, s := range out.OpenShards {
					t.Row(s.ID, pct(s.KeySpaceStart)+" – "+pct(s.KeySpaceEnd), pct(s.KeySpaceShare))
				}
			})
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "split: the decimal hash key where the upper child starts")
	cmd.Flags().BoolVar(&half, "half", false, "split: in the middle of the shard's range (the default)")
	cmd.Flags().BoolVar(&wait, "wait", false, "scale: wait until the stream is ACTIVE with its new shards")
	cmd.MarkFlagsMutuallyExclusive("at", "half")
	return cmd
}

// reshardFail words the checks' errors for the command line.
func reshardFail(name string, err error) error {
	for _, e := range []error{streamctl.ErrNoShard, streamctl.ErrShardClosed, streamctl.ErrNotAdjacent, streamctl.ErrScaleRange, streamctl.ErrSplitPoint} {
		if errors.Is(err, e) {
			return ops.Failf("stream %s: %s", name, trimPrefix(err.Error()))
		}
	}
	return fail(name, err)
}

// trimPrefix drops the "streamctl: " of a sentinel's message.
func trimPrefix(s string) string {
	const p = "streamctl: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
