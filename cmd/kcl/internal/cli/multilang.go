package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/logging"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/kclgo/kcl/cmd/kcl/internal/awsconf"
	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/host"
	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/plugin/kprom"
)

// multilangFlags are the flags of kcl multilang.
type multilangFlags struct {
	propertiesFile string
	logConfig      string
}

func newMultilang(g *globalFlags, stderr io.Writer) *cobra.Command {
	f := &multilangFlags{}
	cmd := &cobra.Command{
		Use:   "multilang [--properties-file] FILE",
		Short: "Run MultiLangDaemon record processors (Python, Node, Ruby, .NET) without the JVM",
		Long: "multilang is a MultiLangDaemon host: it reads the properties file of Amazon's Java\n" +
			"MultiLangDaemon and runs executableName as one child process per shard, speaking the\n" +
			"MultiLangDaemon protocol. The file is given with --properties-file (-p) or as the one argument.\n\n" +
			"SIGTERM or SIGINT stops gracefully (shutdownRequested, final checkpoints, leases released);\n" +
			"a second signal kills the children and exits at once with status 1.\n\n" +
			"Exit status: 0 after a graceful stop, 1 on a runtime failure, 2 on a usage error or a\n" +
			"properties file that cannot be used.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{err: fmt.Errorf("one properties file, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// The operations commands' AWS and output flags would be
			// silently ignored here: the properties file says it all.
			for _, name := range []string{"profile", "region", "endpoint-url", "output"} {
				if fl := cmd.Flag(name); fl != nil && fl.Changed {
					return &usageError{err: fmt.Errorf("--%s does not apply to multilang: its settings come from the properties file", name)}
				}
			}
			file, err := f.file(args)
			if err != nil {
				return err
			}
			log, err := newLogger(g.logLevel, g.logFormat, stderr)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if f.logConfig != "" {
				log.Warn("--log-configuration is ignored: it configures Java logging; use --log-level and --log-format",
					zap.String("file", f.logConfig))
			}
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			return runMultilang(cmd.Context(), file, log, sigs)
		},
	}
	cmd.Flags().StringVarP(&f.propertiesFile, "properties-file", "p", "", "the MultiLangDaemon properties file")
	cmd.Flags().StringVarP(&f.logConfig, "log-configuration", "l", "", "accepted for the Java daemon's command line and ignored, with a warning")
	return cmd
}

// file returns the properties file, given either as the flag or as the one
// argument.
func (f *multilangFlags) file(args []string) (string, error) {
	switch {
	case f.propertiesFile != "" && len(args) == 1:
		return "", &usageError{err: fmt.Errorf("properties file given twice (--properties-file %s and %s): give one", f.propertiesFile, args[0])}
	case f.propertiesFile != "":
		return f.propertiesFile, nil
	case len(args) == 1 && args[0] != "":
		return args[0], nil
	}
	return "", &usageError{err: errors.New("no properties file: give --properties-file FILE or FILE")}
}

// runMultilang loads file, builds the clients and the host, and runs it
// until the signals on sigs stop it. Errors before the host starts are
// configError (status 2), later ones runtimeError (status 1).
func runMultilang(ctx context.Context, file string, log *zap.Logger, sigs <-chan os.Signal) error {
	cfg, warnings, err := properties.LoadFile(file)
	for _, w := range warnings {
		log.Warn("properties: "+w.Message, zap.String("file", file), zap.String("key", w.Key), zap.Int("line", w.Line))
	}
	if err != nil {
		return &configError{errs: propertiesErrors(file, err)}
	}
	confs, err := awsconf.Load(ctx, cfg)
	if err != nil {
		return &configError{errs: []string{err.Error()}}
	}
	confs.Kinesis.Logger = sdkLogger(log, "kinesis")
	confs.DynamoDB.Logger = sdkLogger(log, "dynamodb")
	store, err := dynamolease.New(dynamodb.NewFromConfig(confs.DynamoDB), cfg.TableName)
	if err != nil {
		return &configError{errs: []string{fmt.Sprintf("%s: tableName: %v", file, err)}}
	}
	var metrics *kprom.Metrics
	var hooks []any
	if cfg.MetricsAddress != "" {
		metrics = kprom.New(kprom.WithLeaseStore(store))
		hooks = append(hooks, metrics)
	}
	h, err := host.New(host.Config{
		Properties: cfg,
		Kinesis:    kinesis.NewFromConfig(confs.Kinesis),
		Store:      store,
		Logger:     log,
		Hooks:      hooks,
	})
	if err != nil {
		return &configError{errs: []string{err.Error()}}
	}
	if metrics != nil {
		stop, err := serveMetrics(cfg.MetricsAddress, metrics, h, log)
		if err != nil {
			return &configError{errs: []string{fmt.Sprintf("%s: kclMetricsAddress: %v", file, err)}}
		}
		defer stop()
	}
	log.Info("making the lease table ready", zap.String("table", cfg.TableName))
	err = serve(ctx, sigs, log, func(ctx context.Context) error {
		if err := store.EnsureTable(ctx); err != nil {
			return err
		}
		log.Info("lease table ready", zap.String("table", cfg.TableName))
		return h.Run(ctx)
	}, h.Kill)
	if err != nil {
		return &runtimeError{err: err}
	}
	log.Info("kcl multilang exiting", zap.Int("status", 0))
	return nil
}

// sdkLogger sends the AWS SDK's own log lines (retries, response body
// warnings) to log, so that every line on stderr has the chosen format.
func sdkLogger(log *zap.Logger, client string) logging.Logger {
	log = log.With(zap.String("component", "aws-sdk"), zap.String("client", client))
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		// The SDK warns when closing a response body fails, which only
		// costs the connection's reuse; DynamoDB Local causes one per call
		// (a CRC32 header the SDK cannot match), which would drown the log.
		if c == logging.Warn && !strings.HasPrefix(format, "failed to close HTTP response body") {
			log.Warn(fmt.Sprintf(format, v...))
			return
		}
		log.Debug(fmt.Sprintf(format, v...))
	})
}

// propertiesErrors returns one line for each error joined in err, naming
// file, the line and the key:
//
//	sample.properties:7: maxRecords: "ten": not a whole number
//	sample.properties: executableName: required key is missing
func propertiesErrors(file string, err error) []string {
	var lines []string
	for _, e := range flatten(err) {
		var (
			ve *properties.ValueError
			me *properties.MissingKeyError
			se *properties.SyntaxError
			pe *fs.PathError
		)
		switch {
		case errors.As(e, &ve):
			lines = append(lines, fmt.Sprintf("%s:%d: %s: %q: %s", file, ve.Line, ve.Key, ve.Value, ve.Reason))
		case errors.As(e, &me) && me.Alt != "":
			lines = append(lines, fmt.Sprintf("%s: %s (or %s): required key is missing", file, me.Key, me.Alt))
		case errors.As(e, &me):
			lines = append(lines, fmt.Sprintf("%s: %s: required key is missing", file, me.Key))
		case errors.As(e, &se):
			lines = append(lines, fmt.Sprintf("%s:%d: %s", file, se.Line, se.Reason))
		case errors.As(e, &pe):
			lines = append(lines, fmt.Sprintf("%s: %v", pe.Path, pe.Err))
		default:
			lines = append(lines, fmt.Sprintf("%s: %v", file, e))
		}
	}
	return lines
}

// flatten returns the leaves of a tree of joined errors, in order.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
