// Package cli is the kcl command line: the root command, its global flags
// (--log-level, --log-format, --version) and its subcommands, of which
// multilang runs a MultiLangDaemon host.
//
// Main returns the process's exit status:
//
//	0  the command finished (multilang: after a graceful stop)
//	1  a runtime failure (multilang: AWS unreachable, the host failed, or a
//	   second signal stopped it at once)
//	2  a usage error, or a properties file that cannot be used; nothing was
//	   started
//
// The operations commands (streams, ...) share the global flags --profile,
// --region, --endpoint-url and --output and the conventions of package ops:
// an *ops.Failure exits 1, an *ops.UsageError or any other error exits 2.
//
// Every error is printed to stderr as one line per problem, prefixed with
// the command ("kcl multilang: ..."); logs go to stderr through zap.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kclgo/kcl/cmd/kcl/internal/app"
	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/cmd/kcl/internal/records"
	"github.com/kclgo/kcl/cmd/kcl/internal/streams"
)

// Exit statuses of Main.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Version is the version kcl reports. A release build sets it with
// -ldflags "-X github.com/kclgo/kcl/cmd/kcl/internal/cli.Version=v1.2.3";
// otherwise it comes from the module's build information.
var Version = ""

// version returns Version, else the main module's version and VCS revision.
func version() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" && v == "(devel)" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + dirty
	}
	return v
}

// usageError is a mistake on the command line; status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// configError is a properties file or configuration that cannot be used,
// found before anything started; status 2. Each of errs is printed on its
// own line.
type configError struct{ errs []string }

func (e *configError) Error() string { return strings.Join(e.errs, "; ") }

// runtimeError is a failure after start-up; status 1.
type runtimeError struct{ err error }

func (e *runtimeError) Error() string { return e.err.Error() }
func (e *runtimeError) Unwrap() error { return e.err }

// Main runs the kcl command line with args (without the program name),
// reading answers from os.Stdin, writing output to stdout and logs and
// errors to stderr, and returns the exit status. It does not call os.Exit.
func Main(args []string, stdout, stderr io.Writer) int {
	return Run(args, &ops.Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
}

// Run is Main with the standard streams, and the test hooks, in env; the
// global flags are parsed into env.
func Run(args []string, env *ops.Env) int {
	stderr := env.Stderr
	root := newRoot(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	prefix := root.Name()
	if cmd != nil {
		prefix = cmd.CommandPath()
	}
	var ce *configError
	if errors.As(err, &ce) {
		for _, line := range ce.errs {
			fmt.Fprintf(stderr, "%s: %s\n", prefix, oneLine(line))
		}
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: %s\n", prefix, oneLine(err.Error()))
	var re *runtimeError
	var fe *ops.Failure
	var ue *ops.UsageError
	if errors.As(err, &re) || (errors.As(err, &fe) && !errors.As(err, &ue)) {
		return ExitFailure
	}
	// Usage errors, and cobra's own (unknown command, bad flag, bad
	// arguments), which it does not type.
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", prefix)
	return ExitUsage
}

// oneLine keeps an error on one line, whatever a wrapped error contains.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// globalFlags are the root's persistent flags, shared by every subcommand.
type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRoot(env *ops.Env) *cobra.Command {
	stdout, stderr := env.Stdout, env.Stderr
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "kcl",
		Short: "kcl runs Kinesis consumers",
		Long: "kcl runs Kinesis consumers. Its multilang command is a MultiLangDaemon without the JVM:\n" +
			"it runs the record processors of the Java KCL's multilang clients (Python, Node, Ruby, .NET)\n" +
			"unchanged, reading the same properties file.",
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("kcl {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "console", "log format: console or json")
	env.AddFlags(root.PersistentFlags())
	// Every command checks --output before it calls AWS, so a typo
	// changes nothing. (A subcommand that sets its own PersistentPreRunE
	// replaces this one and must call env.Output itself.)
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		_, err := env.Output()
		return err
	}
	root.CompletionOptions.DisableDefaultCmd = true

	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print kcl's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "kcl %s\n", version())
			return err
		},
	})
	root.AddCommand(newMultilang(g, stderr))
	root.AddCommand(streams.New(env))
	root.AddCommand(app.New(env))
	root.AddCommand(records.NewPut(env), records.NewTail(env))
	return root
}
