package records

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
)

// putFlags are kcl put's flags.
type putFlags struct {
	data        []string
	key         string
	keyField    string
	aggregate   bool
	maxAttempts int
	quiet       bool
}

// putSummary is kcl put's result; its JSON field names are stable.
type putSummary struct {
	Stream         string  `json:"stream"`
	Lines          int     `json:"lines"`
	Records        int     `json:"records"`
	Failed         int     `json:"failed"`
	KinesisRecords int     `json:"kinesisRecords"`
	Calls          int     `json:"calls"`
	Retried        int     `json:"retried"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"recordsPerSecond"`
}

// NewPut returns the kcl put command.
func NewPut(env *ops.Env) *cobra.Command {
	f := &putFlags{}
	cmd := &cobra.Command{
		Use:   "put STREAM",
		Short: "Put records into a stream, one per line of stdin or per --data",
		Long: `Put records into a stream: one record per line of standard input (without its
newline; empty lines are skipped), or one per --data.

The partition key is --partition-key, a template in which {n} is the line's
number (from 0) and {uuid} a random UUID (default {uuid}); a template without
placeholders is a fixed key. --key-field takes it from a field of each line,
a JSON object, instead.

--aggregate packs the records into KPL aggregates, one per shard: each record
goes to the aggregate of the shard whose hash key range holds its key, as the
KPL does, so KCL consumers (and kcl tail) expand them.

Records are sent with PutRecords, at most 500 records and 5 MiB a call.
Records Kinesis rejects are sent again first, after a backoff, up to
--max-attempts times. Progress goes to stderr every 2 s for long inputs; the
summary to stdout. Exit status 1 if any record finally failed.`,
		Example: `  seq 1000 | kcl put orders --partition-key 'k-{n}'
  kcl put orders --data '{"id":"a1"}' --key-field id
  kcl put orders --aggregate < events.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPut(cmd, env, args[0], f)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.data, "data", nil, "a record's data (repeatable); stdin is not read then")
	fs.StringVarP(&f.key, "partition-key", "k", "{uuid}", "partition key template: {n} the line number, {uuid} a random UUID")
	fs.StringVar(&f.keyField, "key-field", "", "take the partition key from this field of each line (a JSON object)")
	fs.BoolVar(&f.aggregate, "aggregate", false, "pack records into KPL aggregates, one per shard")
	fs.IntVar(&f.maxAttempts, "max-attempts", 8, "sends of one record before it counts as failed")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	return cmd
}

func runPut(cmd *cobra.Command, env *ops.Env, stream string, f *putFlags) error {
	var key KeyFunc
	switch {
	case f.keyField != "" && cmd.Flags().Changed("partition-key"):
		return ops.Usagef("--partition-key and --key-field are exclusive")
	case f.keyField != "":
		key = FieldKey(f.keyField)
	default:
		k, err := TemplateKey(f.key)
		if err != nil {
			return ops.Usagef("--partition-key: %v", err)
		}
		key = k
	}
	if f.maxAttempts < 1 {
		return ops.Usagef("--max-attempts must be at least 1, not %d", f.maxAttempts)
	}
	if _, err := env.Output(); err != nil {
		return err
	}
	ctx, stop := ops.Context(cmd)
	defer stop()
	kc, err := env.Kinesis(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	cfg := PutConfig{Stream: stream, Key: key, Aggregate: f.aggregate, MaxAttempts: f.maxAttempts}
	if !f.quiet {
		cfg.ProgressEvery = 2 * time.Second
		cfg.Progress = func(s PutStats) {
			el := time.Since(start)
			fmt.Fprintf(env.Stderr, "kcl put: %d lines read, %d put, %d failed, %.0f records/s\n",
				s.Lines, s.Put, s.Failed, float64(s.Put)/el.Seconds())
		}
	}
	p, err := NewProducer(kc, cfg)
	if err != nil {
		return ops.Usagef("%v", err)
	}
	lines := make(chan []byte, 1024)
	var readErr error
	if cmd.Flags().Changed("data") {
		go func() {
			defer close(lines)
			for _, d := range f.data {
				lines <- []byte(d)
			}
		}()
	} else {
		go func() {
			readErr = readLines(ctx, env.Stdin, lines)
			close(lines) // after readErr is set: Run returning nil saw it
		}()
	}
	st, err := p.Run(ctx, lines)
	if err == nil && readErr != nil { // Run saw lines closed: readErr is set
		err = fmt.Errorf("reading stdin after %d lines: %w", st.Lines, readErr)
	}
	sum := putSummary{
		Stream: stream, Lines: st.Lines, Records: st.Put, Failed: st.Failed, KinesisRecords: st.Entries,
		Calls: st.Calls, Retried: st.Retried, Seconds: st.Elapsed.Seconds(),
	}
	if st.Elapsed > 0 {
		sum.RecordsPerSec = float64(st.Put) / st.Elapsed.Seconds()
	}
	if err != nil && !errors.Is(err, ErrRecordsFailed) {
		if errors.Is(err, context.Canceled) {
			err = fmt.Errorf("interrupted after %d of %d records", st.Put, st.Lines)
		}
		if errors.Is(err, ErrStreamNotFound) {
			err = fmt.Errorf("stream %q not found", stream)
		}
		return ops.Fail(err)
	}
	if perr := env.Print(sum, func(t *ops.Tab) {
		t.Row("STREAM", "RECORDS", "FAILED", "KINESIS RECORDS", "CALLS", "RETRIED", "SECONDS", "RECORDS/S")
		t.Row(stream, sum.Records, sum.Failed, sum.KinesisRecords, sum.Calls, sum.Retried,
			fmt.Sprintf("%.2f", sum.Seconds), fmt.Sprintf("%.0f", sum.RecordsPerSec))
	}); perr != nil {
		return ops.Fail(perr)
	}
	if err != nil {
		return ops.Fail(err)
	}
	return nil
}

// readLines sends each non-empty line of r (without "\n" or "\r\n") on
// out until the end of r or ctx ends. It returns the error that ended
// reading, nil at the end of r or of ctx.
func readLines(ctx context.Context, r io.Reader, out chan<- []byte) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		n := len(line)
		if n > 0 && line[n-1] == '\n' {
			n--
			if n > 0 && line[n-1] == '\r' {
				n--
			}
		}
		if n > 0 {
			select {
			case out <- line[:n]:
			case <-ctx.Done():
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
