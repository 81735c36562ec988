// Package streams is `kcl streams`: list, create, describe, delete and
// reshard Kinesis streams, on top of the control plane the test harnesses
// use too (internal/streamctl). Output, flags and exit statuses follow
// package ops.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/internal/awserr"
	"github.com/kclgo/kcl/internal/streamctl"
)

// New returns the streams command and its subcommands.
func New(env *ops.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List, create, describe, delete and reshard Kinesis streams",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newList(env), newCreate(env), newDescribe(env), newDelete(env), newReshard(env))
	return cmd
}

// waitTimeout bounds --wait and the waits of split and merge.
const waitTimeout = 5 * time.Minute

// busyTimeout bounds the retries of a reshard or create that AWS refuses
// with LimitExceeded or ResourceInUse, before the command reports it: a
// busy stream settles in seconds, a spent quota does not.
var busyTimeout = 15 * time.Second

// stream returns the control plane of the stream name.
func stream(ctx context.Context, env *ops.Env, name string) (*streamctl.Stream, error) {
	kc, err := env.Kinesis(ctx)
	if err != nil {
		return nil, err
	}
	return &streamctl.Stream{Client: kc, Name: name, Timeout: waitTimeout, BusyTimeout: busyTimeout}, nil
}

// fail turns err into an *ops.Failure, naming the stream when Kinesis does
// not know it.
func fail(name string, err error) error {
	var u *ops.UsageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	if awserr.Classify(err) == awserr.NotFound {
		return ops.Failf("stream %q not found", name)
	}
	var ie *types.InvalidArgumentException
	if errors.As(err, &ie) {
		return ops.Failf("stream %s: %s", name, aws.ToString(ie.Message))
	}
	return ops.Fail(err)
}

// summaryJSON is a stream in `list` and the head of `describe`.
type summaryJSON struct {
	Name           string `json:"name"`
	ARN            string `json:"arn"`
	Status         string `json:"status"`
	Mode           string `json:"mode"`
	OpenShards     int    `json:"openShards"`
	RetentionHours int    `json:"retentionHours"`
	Encryption     string `json:"encryption"`
	KeyID          string `json:"keyId,omitempty"`
}

func summary(d *types.StreamDescriptionSummary) summaryJSON {
	s := summaryJSON{
		Name:           aws.ToString(d.StreamName),
		ARN:            aws.ToString(d.StreamARN),
		Status:         string(d.StreamStatus),
		Mode:           string(types.StreamModeProvisioned),
		OpenShards:     int(aws.ToInt32(d.OpenShardCount)),
		RetentionHours: int(aws.ToInt32(d.RetentionPeriodHours)),
		Encryption:     string(d.EncryptionType),
		KeyID:          aws.ToString(d.KeyId),
	}
	if d.StreamModeDetails != nil && d.StreamModeDetails.StreamMode != "" {
		s.Mode = string(d.StreamModeDetails.StreamMode)
	}
	if s.Encryption == "" {
		s.Encryption = string(types.EncryptionTypeNone)
	}
	return s
}

func newList(env *ops.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the streams of the account and region",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := ops.Context(cmd)
			defer stop()
			kc, err := env.Kinesis(ctx)
			if err != nil {
				return err
			}
			names, err := streamctl.ListStreams(ctx, kc)
			if err != nil {
				return ops.Fail(err)
			}
			out := struct {
				Streams []summaryJSON `json:"streams"`
			}{Streams: []summaryJSON{}}
			for _, name := range names {
				st := &streamctl.Stream{Client: kc, Name: name}
				d, err := st.Summary(ctx)
				if awserr.Classify(err) == awserr.NotFound {
					continue
				}
				if err != nil {
					return fail(name, err)
				}
				out.Streams = append(out.Streams, summary(d))
			}
			return env.Print(out, func(t *ops.Tab) {
				t.Row("NAME", "STATUS", "MODE", "OPEN SHARDS", "RETENTION")
				for _, s := range out.Streams {
					t.Row(s.Name, s.Status, s.Mode, s.OpenShards, fmt.Sprintf("%dh", s.RetentionHours))
				}
			})
		},
	}
}

func newCreate(env *ops.Env) *cobra.Command {
	var (
		shards   int
		onDemand bool
		wait     bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME (--shards N | --on-demand) [--wait]",
		Short: "Create a stream",
		Long: "Create a provisioned stream of --shards shards, or an on-demand stream. With --wait it returns once\n" +
			"the stream is ACTIVE; otherwise once Kinesis accepted the request (status CREATING).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			switch {
			case onDemand && cmd.Flags().Changed("shards"):
				return ops.Usagef("--shards and --on-demand exclude each other")
			case !onDemand && shards <= 0:
				return ops.Usagef("--shards must be a positive number of shards (or use --on-demand), not %d", shards)
			}
			if _, err := env.Output(); err != nil {
				return err
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			st, err := stream(ctx, env, name)
			if err != nil {
				return err
			}
			if err := st.CreateWith(ctx, streamctl.CreateOptions{Shards: shards, OnDemand: onDemand, NoWait: !wait}); err != nil {
				var iu *types.ResourceInUseException
				if errors.As(err, &iu) {
					return ops.Failf("stream %q already exists", name)
				}
				return fail(name, err)
			}
			d, err := st.Summary(ctx)
			if err != nil {
				return fail(name, err)
			}
			s := summary(d)
			return env.Print(s, func(t *ops.Tab) {
				t.Line("stream %s: %s, %s, %d open shards", s.Name, s.Status, s.Mode, s.OpenShards)
			})
		},
	}
	cmd.Flags().IntVar(&shards, "shards", 0, "number of shards of a provisioned stream")
	cmd.Flags().BoolVar(&onDemand, "on-demand", false, "create an on-demand stream (Kinesis sizes it)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the stream is ACTIVE")
	return cmd
}

func newDelete(env *ops.Env) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--yes]",
		Short: "Delete a stream and its enhanced fan-out consumers",
		Long:  "Delete a stream and its enhanced fan-out consumers. It asks first, on stderr, unless --yes.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if _, err := env.Output(); err != nil {
				return err
			}
			ctx, stop := ops.Context(cmd)
			defer stop()
			st, err := stream(ctx, env, name)
			if err != nil {
				return err
			}
			d, err := st.Summary(ctx)
			if err != nil {
				return fail(name, err)
			}
			ok, err := env.Confirm(fmt.Sprintf("Delete stream %s (%d open shards) and its data?", name, aws.ToInt32(d.OpenShardCount)), yes)
			if err != nil {
				return err
			}
			if !ok {
				return ops.Failf("stream %s not deleted: not confirmed (use --yes to skip the question)", name)
			}
			if err := st.Delete(ctx); err != nil {
				return fail(name, err)
			}
			out := struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			}{name, string(types.StreamStatusDeleting)}
			return env.Print(out, func(t *ops.Tab) { t.Line("stream %s: DELETING", name) })
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}
