package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/testkit/testenv"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/*.golden of the put and tail tests")

// kclRun runs the kcl command line in-process against the emulators, with
// stdin, and returns its output and exit status. The AWS configuration
// comes from the environment it sets, as a user's would.
func kclRun(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &ops.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}
	args = append(args, "--endpoint-url", testenv.KinesisEndpoint(t))
	code = Run(args, env)
	return out.String(), errb.String(), code
}

// emulatorEnv sets the AWS variables the default chain reads, so that no
// profile, CA bundle or endpoint of the machine gets in the way.
func emulatorEnv(t *testing.T) {
	t.Helper()
	testenv.Require(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDKCLTEST", "AWS_SECRET_ACCESS_KEY": "kcl-test-secret", "AWS_REGION": "us-east-1",
		"AWS_PROFILE": "", "AWS_CA_BUNDLE": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KINESIS": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
}

var (
	seqRE  = regexp.MustCompile(`\b[0-9]{21,}\b`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
)

// golden compares got, with name replacing the stream's name, sequence
// numbers and arrival times masked, to testdata/name.golden.
func golden(t *testing.T, name, stream, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, stream, "STREAM")
	got = seqRE.ReplaceAllString(got, "SEQ")
	got = timeRE.ReplaceAllString(got, "TIME")
	path := filepath.Join("testdata", name+".golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestPutAndTailGoldenOnKinesisMock(t *testing.T) {
	emulatorEnv(t)
	stream := testenv.CreateStream(t, testenv.Kinesis(t), 1)

	out, errs, code := kclRun(t, "", "put", stream, "-o", "json", "-k", "user-{n}",
		"--data", "hello", "--data", `{"id":7,"msg":"ünïcode"}`, "--data", "\xff\xfe\x00binary")
	if code != 0 {
		t.Fatalf("put: exit %d, %s", code, errs)
	}
	if !strings.Contains(out, `"records": 3`) || !strings.Contains(out, `"failed": 0`) {
		t.Fatalf("put -o json: %s", out)
	}
	out, errs, code = kclRun(t, "a1\na2\n\r\na3\r\n", "put", stream, "--aggregate", "-k", "agg")
	if code != 0 {
		t.Fatalf("put --aggregate: exit %d, %s", code, errs)
	}
	// Seconds and rates vary: keep the header and the counts.
	fields := strings.Fields(out)
	if got := strings.Join(fields[:len(fields)-2], " "); got != "STREAM RECORDS FAILED KINESIS RECORDS CALLS RETRIED SECONDS RECORDS/S "+stream+" 3 0 1 1 0" {
		t.Errorf("put table: %q", out)
	}

	out, errs, code = kclRun(t, "", "tail", stream, "--from", "trim-horizon", "--format", "json")
	if code != 0 {
		t.Fatalf("tail json: exit %d, %s", code, errs)
	}
	golden(t, "tail-json", stream, out)
	out, _, code = kclRun(t, "", "tail", stream, "--from", "trim-horizon")
	if code != 0 {
		t.Fatalf("tail raw: exit %d", code)
	}
	golden(t, "tail-raw", stream, out)
	out, _, _ = kclRun(t, "", "tail", stream, "--from", "trim-horizon", "--grep", "^a[23]$", "--limit", "1")
	if out != "a2\n" {
		t.Errorf("tail --grep ^a[23]$ --limit 1 = %q, want a2", out)
	}
}

// TestPutAndTailBadInputOnKinesisMock checks the one-line message and exit
// status of each mistake. A sequence number from another shard is tested
// on fakekinesis (records.TestTailBadInput): kinesis-mock accepts some of
// them in GetShardIterator where AWS answers InvalidArgumentException.
func TestPutAndTailBadInputOnKinesisMock(t *testing.T) {
	emulatorEnv(t)
	stream := testenv.CreateStream(t, testenv.Kinesis(t), 1)
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"put to an unknown stream", "x\n", []string{"put", "no-such-stream"}, 1, `kcl put: stream "no-such-stream" not found`},
		{"aggregated put to an unknown stream", "x\n", []string{"put", "no-such-stream", "--aggregate"}, 1, `kcl put: stream "no-such-stream" not found`},
		{"put with an unknown placeholder", "x\n", []string{"put", stream, "-k", "{id}"}, 2, "unknown placeholder {id}"},
		{"put with both key options", "x\n", []string{"put", stream, "-k", "a", "--key-field", "id"}, 2, "exclusive"},
		{"put lines without the key field", "{\"x\":1}\n", []string{"put", stream, "--key-field", "id"}, 1, `1 of 1 records failed; the first: records: no partition key: line 1 has no field "id"`},
		{"tail of an unknown stream", "", []string{"tail", "no-such-stream"}, 1, `kcl tail: stream "no-such-stream" not found`},
		{"tail of an unknown shard", "", []string{"tail", stream, "--shard", "shardId-000000000007"}, 1, `has no shard "shardId-000000000007"`},
		{"tail from an unparsable time", "", []string{"tail", stream, "--from", "2026-13-40T00:00:00Z"}, 2, "is not latest, trim-horizon, an RFC 3339 time"},
		{"tail from an unparsable sequence number", "", []string{"tail", stream, "--from", "4959x"}, 2, "is not latest, trim-horizon, an RFC 3339 time"},
		{"tail from a sequence number without a shard", "", []string{"tail", stream, "--from", "4959"}, 2, "needs --shard"},
		{"tail in an unknown format", "", []string{"tail", stream, "--format", "xml"}, 2, "--format must be raw or json"},
		{"tail with a bad --grep", "", []string{"tail", stream, "--grep", "("}, 2, "--grep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errs, code := kclRun(t, c.stdin, c.args...)
			if code != c.code || !strings.Contains(errs, c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, c.code, c.msg)
			}
			if first, _, _ := strings.Cut(errs, "\n"); !strings.HasPrefix(first, "kcl ") {
				t.Errorf("first line of stderr %q does not name the command", first)
			}
		})
	}
}
