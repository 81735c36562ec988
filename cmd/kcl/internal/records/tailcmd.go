package records

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
)

// tailFlags are kcl tail's flags.
type tailFlags struct {
	from   string
	shard  string
	follow bool
	format string
	limit  int
	grep   string
	poll   time.Duration
}

// NewTail returns the kcl tail command.
func NewTail(env *ops.Env) *cobra.Command {
	f := &tailFlags{}
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Print a stream's records, like tail -f",
		Long: `Print a stream's records: every shard (or --shard) from --from, KPL aggregates
expanded into their user 

--from is latest (the default), trim-horizon, an RFC 3339 time or a sequence
number (which needs --shard). Without --follow, kcl tail stops when every shard
it reads is caught up; with it, it keeps reading, and when a shard is split or
merged it reads the children after their parents end, so each partition key's
records come in order. Ctrl-C, --limit or a closed pipe stop it with status 0.

--format raw prints each record's data and a newline; --format json prints one
object a line with the fields shard, sequence, subSequence, partitionKey,
explicitHashKey (when set), arrival, aggregated, encoding ("text" when data is
valid UTF-8, else "base64") and data. --grep keeps records whose data matches
a regular expression.`,
		Example: `  kcl tail orders --follow
  kcl tail orders --from trim-horizon --format json --limit 10
  kcl tail orders --from 2026-12-08T03:00:00Z --grep 'error|fail'
  kcl tail orders --shard shardId-000000000001 --from 49590338271490256608559692538361571095921575989136588898`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTail(cmd, env, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.from, "from", "latest", "start: latest, trim-horizon, an RFC 3339 time or a sequence number")
	fs.StringVar(&f.shard, "shard", "", "read only this shard (and, with --follow, its descendants)")
	fs.BoolVarP(&f.follow, "follow", "f", false, "keep reading new records, across reshards")
	fs.StringVar(&f.format, "format", "raw", "record format: raw or json")
	fs.IntVarP(&f.limit, "limit", "n", 0, "stop after this many records (0: no limit)")
	fs.StringVar(&f.grep, "grep", "", "print only records whose data matches this regular expression")
	fs.DurationVar(&f.poll, "poll-interval", time.Second, "time between reads of a caught-up shard (at least 200ms)")
	return cmd
}

func runTail(cmd *cobra.Command, env *ops.Env, stream string, f *tailFlags) error {
	from, err := ParseStart(f.from)
	if err != nil {
		return ops.Usagef("--from: %v", err)
	}
	if from.Kind == FromSequence && f.shard == "" {
		return ops.Usagef("--from with a sequence number needs --shard")
	}
	var appendRec func([]byte, *Record) []byte
	switch f.format {
	case "raw":
		appendRec = AppendRaw
	case "json":
		appendRec = AppendJSON
	default:
		return ops.Usagef("--format must be raw or json, not %q", f.format)
	}
	if f.limit < 0 {
		return ops.Usagef("--limit must not be negative, not %d", f.limit)
	}
	cfg := TailConfig{Stream: stream, From: from, Shard: f.shard, Follow: f.follow, Limit: f.limit, PollInterval: f.poll}
	if f.grep != "" {
		re, err := regexp.Compile(f.grep)
		if err != nil {
			return ops.Usagef("--grep: %v", err)
		}
		cfg.Match = func(r *Record) bool { return re.Match(r.Data) }
	}
	ctx, stop := ops.Context(cmd)
	defer stop()
	// A closed stdout pipe makes writes fail with EPIPE, which ends the
	// command with status 0, instead of killing it with SIGPIPE.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)

	kc, err := env.Kinesis(ctx)
	if err != nil {
		return err
	}
	t, err := NewTailer(kc, cfg)
	if err != nil {
		return ops.Usagef("%v", err)
	}
	w := bufio.NewWriterSize(env.Stdout, 64<<10)
	var buf []byte
	err = t.Run(ctx, func(recs []Record) error {
		buf = buf[:0]
		for i := range recs {
			buf = appendRec(buf, &recs[i])
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return w.Flush()
	})
	if err == nil {
		err = w.Flush()
	}
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE):
		return nil
	case errors.Is(err, ErrStreamNotFound):
		return ops.Failf("stream %q not found", stream)
	case errors.Is(err, ErrBadStart):
		return ops.Failf("--from: %v", err)
	case errors.Is(err, ErrShardNotFound):
		return ops.Failf("stream %q has no shard %q", stream, f.shard)
	}
	return ops.Fail(fmt.Errorf("%w", err))
}
