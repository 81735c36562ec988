package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/testkit/testenv"
)

// kclBin is the kcl binary that TestMain builds once for every test here.
var kclBin string

func TestMain(m *testing.M) {
	if mode := os.Getenv(envTestChild); mode != "" {
		runTestChild(mode)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "kcl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kclBin = filepath.Join(dir, "kcl")
	if runtime.GOOS == "windows" {
		kclBin += ".exe"
	}
	build := exec.Command("go", "build", "-o", kclBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building kcl: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// isolatedEnv is the environment for the binary: this process's, without
// any AWS_* variable, with empty shared config files and instance metadata
// off, plus extra.
func isolatedEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	env = append(env,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return append(env, extra...)
}

type result struct {
	code   int
	stdout string
	stderr string
}

// errorLines are the lines of stderr that are errors ("kcl ...: ..."), not
// log entries or the usage hint.
func (r result) errorLines() []string {
	var out []string
	for line := range strings.Lines(r.stderr) {
		if strings.HasPrefix(line, "kcl") {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return out
}

// runKCL runs the binary with args to its end (at most a minute).
func runKCL(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kclBin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running kcl %s: %v", strings.Join(args, " "), err)
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("kcl %s panicked:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

func writeProperties(t *testing.T, lines ...string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "app.properties")
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// validLines is a complete properties file for the tests to break.
var validLines = []string{
	"executableName = python3 app.py",                     // 1
	"applicationName = kcltest",                           // 2
	"streamName = words",                                  // 3
	"AwsCredentialsProvider = DefaultCredentialsProvider", // 4
	"regionName = us-east-1",                              // 5
}

func replaceLine(lines []string, i int, s string) []string {
	out := append([]string(nil), lines...)
	out[i] = s
	return out
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := runKCL(t, isolatedEnv(t), args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "kcl ") {
			t.Errorf("kcl %s: status %d, stdout %q, stderr %q", args[0], r.code, r.stdout, r.stderr)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	file := writeProperties(t, validLines...)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no properties file", args: []string{"multilang"}, want: "kcl multilang: no properties file"},
		{name: "two positional files", args: []string{"multilang", file, file}, want: "kcl multilang: one properties file, got 2 arguments"},
		{name: "the flag and a positional file", args: []string{"multilang", "-p", file, file}, want: "kcl multilang: properties file given twice"},
		{name: "an unknown flag", args: []string{"multilang", "--frobnicate", file}, want: "kcl multilang: unknown flag: --frobnicate"},
		{name: "a flag without its value", args: []string{"multilang", "--properties-file"}, want: "kcl multilang: flag needs an argument"},
		{name: "an unknown log level", args: []string{"multilang", "--log-level", "loud", file}, want: `kcl multilang: --log-level "loud"`},
		{name: "an unknown log format", args: []string{"--log-format", "xml", "multilang", file}, want: `kcl multilang: --log-format "xml"`},
		{name: "an unknown command", args: []string{"multilingual"}, want: `kcl: unknown command "multilingual"`},
		{name: "an operations flag given to multilang", args: []string{"--region", "eu-west-1", "multilang", file},
			want: "kcl multilang: --region does not apply to multilang: its settings come from the properties file"},
		{name: "an output format given to multilang", args: []string{"multilang", "-o", "json", file},
			want: "kcl multilang: --output does not apply to multilang"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runKCL(t, isolatedEnv(t), tt.args...)
			if r.code != 2 {
				t.Errorf("status %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			lines := r.errorLines()
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Errorf("error lines %q, want one starting with %q", lines, tt.want)
			}
		})
	}
}

func TestBadPropertiesExit2WithOneLineNamingTheKey(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string // after "kcl multilang: <file>"
	}{
		{
			name:  "a missing required key",
			lines: validLines[1:],
			want:  ": executableName: required key is missing",
		},
		{
			name:  "an unknown credentials provider",
			lines: replaceLine(validLines, 3, "AwsCredentialsProvider = MagicCredentialsProvider"),
			want:  `:4: AwsCredentialsProvider: "MagicCredentialsProvider": unknown credentials provider "MagicCredentialsProvider" (known: DefaultCredentialsProvider`,
		},
		{
			name:  "a malformed number",
			lines: append(append([]string(nil), validLines...), "maxRecords = ten"),
			want:  `:6: maxRecords: "ten": not a whole number`,
		},
		{
			name:  "an unknown retrieval mode",
			lines: append(append([]string(nil), validLines...), "retrievalMode = TURBO"),
			want:  `:6: retrievalMode: "TURBO": unknown retrieval mode`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeProperties(t, tt.lines...)
			for _, args := range [][]string{{"multilang", file}, {"multilang", "--properties-file", file}, {"multilang", "-p", file}} {
				r := runKCL(t, isolatedEnv(t), args...)
				if r.code != 2 {
					t.Errorf("%q: status %d, want 2; stderr:\n%s", args, r.code, r.stderr)
				}
				want := "kcl multilang: " + file + tt.want
				if lines := r.errorLines(); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
					t.Errorf("%q: error lines %q, want one starting with %q", args, lines, want)
				}
			}
		})
	}
}

func TestEveryPropertiesErrorIsReportedOnItsOwnLine(t *testing.T) {
	file := writeProperties(t,
		"applicationName = kcltest",
		"streamName = words",
		"AwsCredentialsProvider = DefaultCredentialsProvider",
		"maxRecords = ten",
		"retrievalMode = TURBO",
	)
	r := runKCL(t, isolatedEnv(t), "multilang", file)
	if r.code != 2 {
		t.Errorf("status %d, want 2", r.code)
	}
	want := []string{
		"kcl multilang: " + file + `:4: maxRecords: "ten": not a whole number`,
		"kcl multilang: " + file + `:5: retrievalMode: "TURBO": unknown retrieval mode`,
		"kcl multilang: " + file + ": executableName: required key is missing",
	}
	lines := r.errorLines()
	if len(lines) != len(want) {
		t.Fatalf("error lines:\n%s\nwant %d lines", strings.Join(lines, "\n"), len(want))
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("no error line starts with %q in\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

func TestMissingFileExit2NamingIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nope.properties")
	r := runKCL(t, isolatedEnv(t), "multilang", file)
	want := "kcl multilang: " + file + ": no such file or directory"
	if lines := r.errorLines(); r.code != 2 || len(lines) != 1 || lines[0] != want {
		t.Errorf("status %d, error lines %q; want 2 and %q", r.code, lines, want)
	}
}

func TestUnusableCredentialsExit2BeforeStarting(t *testing.T) {
	file := writeProperties(t, replaceLine(validLines, 3, "AwsCredentialsProvider = SystemPropertyCredentialsProvider")...)
	r := runKCL(t, isolatedEnv(t), "multilang", file)
	want := "kcl multilang: awsconf: AwsCredentialsProvider: no provider can work here: SystemPropertyCredentialsProvider: " +
		"the Java system properties it reads do not exist for a Go process; use EnvironmentVariableCredentialsProvider"
	if lines := r.errorLines(); r.code != 2 || len(lines) != 1 || lines[0] != want {
		t.Errorf("status %d, error lines %q; want 2 and %q", r.code, lines, want)
	}
}

func TestLogConfigurationIsAcceptedAndIgnoredWithAWarning(t *testing.T) {
	file := writeProperties(t, validLines[1:]...) // stop right after the warning
	for _, flag := range []string{"-l", "--log-configuration"} {
		r := runKCL(t, isolatedEnv(t), "multilang", flag, "logback.xml", "--log-format", "json", file)
		if r.code != 2 || !strings.Contains(r.stderr, "executableName: required key is missing") {
			t.Errorf("%s: status %d, stderr:\n%s", flag, r.code, r.stderr)
		}
		entry := findLog(r.stderr, func(e logEntry) bool {
			return e.Level == "warn" && strings.Contains(e.Msg, "--log-configuration is ignored") && e.Fields["file"] == "logback.xml"
		})
		if entry == nil {
			t.Errorf("%s: no warning naming logback.xml in:\n%s", flag, r.stderr)
		}
	}
}

// logEntry is one JSON log line of --log-format json.
type logEntry struct {
	Level  string
	Msg    string
	Fields map[string]any
}

func parseLog(line string) (logEntry, bool) {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return logEntry{}, false
	}
	e := logEntry{Fields: m}
	e.Level, _ = m["level"].(string)
	e.Msg, _ = m["msg"].(string)
	return e, true
}

func findLog(stderr string, match func(logEntry) bool) *logEntry {
	for line := range strings.Lines(stderr) {
		if e, ok := parseLog(line); ok && match(e) {
			return &e
		}
	}
	return nil
}

// TestUnknownKeyIsLoggedAndTheHostStartsAgainstTheEmulators runs the binary
// on a valid file with an unknown key against the emulators: the warning
// names the key and its line, the clients reach DynamoDB Local (the lease
// table is created), and the process ends with 0 or 1 (never a usage
// error), by itself or after SIGTERM.
func TestUnknownKeyIsLoggedAndTheHostStartsAgainstTheEmulators(t *testing.T) {
	testenv.Require(t)
	app := testenv.UniqueName(t, "kclcli")
	ddb := testenv.DynamoDB(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(app)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("deleting the lease table %s: %v", app, err)
		}
	})
	file := writeProperties(t,
		"executableName = /bin/cat",
		"applicationName = "+app,
		"streamName = "+app+"-missing",
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"regionName = "+testenv.Region,
		"kinesisEndpoint = "+testenv.KinesisEndpoint(t),
		"dynamoDBEndpoint = "+testenv.DynamoDBEndpoint(t),
		"initialPositionInStream = TRIM_HORIZON",
		"# a key kcl does not know, on line 10:",
		"fancyNewKey = 42",
	)

	cmd := exec.CommandContext(t.Context(), kclBin, "multilang", "--log-format", "json", "--log-level", "debug", file)
	cmd.Env = isolatedEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	var all strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var warned, ready bool
	timeout := time.After(time.Minute)
read:
	for !warned || !ready {
		select {
		case line, ok := <-lines:
			if !ok {
				break read
			}
			all.WriteString(line + "\n")
			e, ok := parseLog(line)
			if !ok {
				continue
			}
			if e.Level == "warn" && e.Fields["key"] == "fancyNewKey" && e.Fields["line"] == float64(10) && e.Fields["file"] == file {
				warned = true
			}
			if e.Msg == "lease table ready" && e.Fields["table"] == app {
				ready = true
			}
		case <-timeout:
			break read
		}
	}
	if !warned {
		t.Errorf("no warning naming fancyNewKey and line 10 in:\n%s", all.String())
	}
	if !ready {
		t.Errorf("the lease table was not made ready:\n%s", all.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // fails harmlessly if it has exited
	for line := range lines {
		all.WriteString(line + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
		t.Errorf("status %d (%v), want 0 or 1; stderr:\n%s", code, cmd.ProcessState, all.String())
	}
	if strings.Contains(all.String(), "panic:") {
		t.Errorf("kcl panicked:\n%s", all.String())
	}
	if _, err := ddb.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(app)}); err != nil {
		t.Errorf("the lease table %s does not exist: %v", app, err)
	}
}

// TestSIGTERMDuringStartUpStopsGracefully sends SIGTERM while the lease
// table is being made ready (DynamoDB is a server that never answers): the
// signal must cancel the start-up and the process must exit 0, logging the
// graceful stop.
func TestSIGTERMDuringStartUpStopsGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		var conns []net.Conn // held open, never answered
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		ln.Close()
		<-accepted
	}()
	hang := "http://" + ln.Addr().String()
	file := writeProperties(t,
		"executableName = /bin/cat",
		"applicationName = kcltest",
		"streamName = words",
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"regionName = us-east-1",
		"kinesisEndpoint = "+hang,
		"dynamoDBEndpoint = "+hang,
	)
	cmd := exec.CommandContext(t.Context(), kclBin, "multilang", "--log-format", "json", file)
	cmd.Env = isolatedEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var all strings.Builder
	started := false
	for !started && sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		e, ok := parseLog(sc.Text())
		started = ok && e.Msg == "making the lease table ready"
	}
	if !started {
		t.Fatalf("kcl did not start:\n%s", all.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("status %d (%v) after SIGTERM, want 0; stderr:\n%s", code, cmd.ProcessState, all.String())
	}
	if findLog(all.String(), func(e logEntry) bool {
		return strings.HasPrefix(e.Msg, "stopping gracefully") && e.Fields["signal"] == "terminated"
	}) == nil {
		t.Errorf("the graceful stop was not logged:\n%s", all.String())
	}
}
