// Package ops is the plumbing the kcl operations commands (streams, put,
// tail, app) share: the global AWS flags, the clients built from them, the
// --output format, tables and JSON, confirmation prompts and the exit
// status of an error.
//
// A command package adds itself to the root with a constructor taking the
// root's *Env, and in its RunE:
//
//	kc, err := env.Kinesis(ctx)      // *kinesis.Client from --profile, --region, --endpoint-url
//	dc, err := env.DynamoDB(ctx)     // *dynamodb.Client, the same way
//	return env.Print(v, func(t *ops.Table) { t.Header("NAME", ...); t.Row(...) })
//	return ops.Usagef("--shards must be positive, not %d", n)   // exit 2
//	return ops.Fail(err)                                        // exit 1, one line
//	ok, err := env.Confirm("delete stream s?", yes)
//	ctx, stop := ops.Context(cmd)   // cancelled on Ctrl-C
//
// JSON output uses lowerCamelCase field names ("openShards",
// "retentionHours"), which are part of the command's contract.
//
// Flags (persistent, on the root): --profile, --region, --endpoint-url,
// --output (-o) table|json. Configuration is the SDK's default chain, as for
// the AWS CLI: AWS_PROFILE, AWS_REGION, the shared config files, and the
// standard endpoint variables AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS and
// AWS_ENDPOINT_URL_DYNAMODB, which config.LoadDefaultConfig and the service
// clients honour themselves; --endpoint-url overrides them for both services.
//
// Exit statuses (mapped by cli.Main): 0 success; 1 an error wrapped by Fail
// (a failure after the command line was understood); 2 a usage error
// (Usagef, a bad flag, a wrong number of arguments). Errors print as one
// line, "kcl streams describe: stream "x" not found".
package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Output is the format of a command's result.
type Output int

const (
	// Table is aligned columns for people (the default).
	Table Output = iota + 1
	// JSON is one indented JSON document with stable field names, for scripts.
	JSON
)

func (o Output) String() string {
	switch o {
	case Table:
		return "table"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("Output(%d)", int(o))
}

// Env is what every ops command shares: the global flags, the standard
// streams and the test hooks. The root command owns one.
type Env struct {
	// Profile, Region and EndpointURL are --profile, --region and
	// --endpoint-url; empty means the SDK's default chain.
	Profile, Region, EndpointURL string
	// OutputName is --output: "table" or "json".
	OutputName string

	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// WrapHTTP, when set, wraps the SDK's HTTP client (tests inject faults
	// with it). It is applied after the configuration is loaded, so that
	// AWS_CA_BUNDLE keeps working.
	WrapHTTP func(aws.HTTPClient) aws.HTTPClient
}

// AddFlags registers the global flags on fs (the root's persistent flags).
func (e *Env) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&e.Profile, "profile", "", "AWS profile from the shared config files (default: AWS_PROFILE, else default)")
	fs.StringVar(&e.Region, "region", "", "AWS region (default: AWS_REGION, else the profile's)")
	fs.StringVar(&e.EndpointURL, "endpoint-url", "", "endpoint URL for Kinesis and DynamoDB (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL)")
	fs.StringVarP(&e.OutputName, "output", "o", "table", "output format: table or json")
}

// Output returns the --output format, or a usage error.
func (e *Env) Output() (Output, error) {
	switch e.OutputName {
	case "", "table":
		return Table, nil
	case "json":
		return JSON, nil
	}
	return 0, Usagef("--output must be table or json, not %q", e.OutputName)
}

// AWSConfig loads the SDK configuration from the default chain, --profile
// and --region. It calls no AWS API.
func (e *Env) AWSConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if e.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(e.Profile))
	}
	if e.Region != "" {
		opts = append(opts, config.WithRegion(e.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, Usagef("loading the AWS configuration: %v", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, Usagef("no region: use --region, AWS_REGION or a profile with a region")
	}
	if e.WrapHTTP != nil {
		cfg.HTTPClient = e.WrapHTTP(cfg.HTTPClient)
	}
	return cfg, nil
}

// endpoint returns --endpoint-url checked, or "".
func (e *Env) endpoint() (string, error) {
	u := strings.TrimSpace(e.EndpointURL)
	if u == "" {
		return "", nil
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return "", Usagef("--endpoint-url must start with http:// or https://, not %q", u)
	}
	return u, nil
}

// Kinesis returns a Kinesis client for the flags and environment.
func (e *Env) Kinesis(ctx context.Context) (*kinesis.Client, error) {
	cfg, err := e.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := e.endpoint()
	if err != nil {
		return nil, err
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	}), nil
}

// DynamoDB returns a DynamoDB client for the flags and environment.
func (e *Env) DynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := e.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := e.endpoint()
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	}), nil
}

// Print writes v as JSON, or calls table to fill a table on stdout,
// according to --output.
func (e *Env) Print(v any, table func(*Tab)) error {
	out, err := e.Output()
	if err != nil {
		return err
	}
	if out == JSON {
		return WriteJSON(e.Stdout, v)
	}
	t := NewTab(e.Stdout)
	table(t)
	return t.Flush()
}

// WriteJSON writes v indented by two spaces, with a final newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Tab is a table of aligned columns (text/tabwriter, two spaces between
// columns). Cells must not contain tabs or newlines.
type Tab struct {
	tw *tabwriter.Writer
}

// NewTab returns a table writing to w; call Flush at the end.
func NewTab(w io.Writer) *Tab {
	return &Tab{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

// Row adds a row (a header is a row too).
func (t *Tab) Row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprint(t.tw, "\n")
}

// Line writes a line outside the columns' alignment (a title, a blank
// line). It flushes the rows before it.
func (t *Tab) Line(format string, args ...any) {
	_ = t.tw.Flush()
	fmt.Fprintf(t.tw, format+"\n", args...)
}

// Flush writes what is buffered.
func (t *Tab) Flush() error { return t.tw.Flush() }

// Confirm asks question on stderr and reads the answer from stdin; it
// returns true for "y" or "yes". With yes (the --yes flag) it returns true
// without asking. End of input is a no.
func (e *Env) Confirm(question string, yes bool) (bool, error) {
	if yes {
		return true, nil
	}
	fmt.Fprintf(e.Stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(e.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, Fail(fmt.Errorf("reading the answer: %w", err))
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// Context returns cmd's context, cancelled on the first SIGINT or SIGTERM,
// so that a command stops its calls and waits cleanly on Ctrl-C.
func Context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}
