package streams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/cmd/kcl/internal/cli"
	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/cmd/kcl/internal/streams"
	"github.com/kclgo/kcl/testkit/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// setup points the SDK's default chain at the emulators through the
// environment, as a user of the emulators would (AWS_ENDPOINT_URL_KINESIS),
// with nothing read from ~/.aws.
func setup(t *testing.T) {
	t.Helper()
	testenv.Require(t)
	endpoint := testenv.KinesisEndpoint(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": testenv.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KINESIS": endpoint,
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// kcl runs the command line with stdin and, if wrap is set, the SDK's HTTP
// client wrapped.
func kclWith(t *testing.T, stdin string, wrap func(aws.HTTPClient) aws.HTTPClient, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(args, &ops.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, WrapHTTP: wrap})
	t.Logf("kcl %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

func kcl(t *testing.T, args ...string) result { return kclWith(t, "", nil, args...) }

// mustKCL runs a command that must succeed.
func mustKCL(t *testing.T, args ...string) string {
	t.Helper()
	r := kcl(t, args...)
	if r.code != 0 {
		t.Fatalf("kcl %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// createStream creates a stream with the CLI and deletes it in Cleanup.
func createStream(t *testing.T, shards string) string {
	t.Helper()
	name := testenv.UniqueName(t, "streams")
	mustKCL(t, "streams", "create", name, "--shards", shards, "--wait")
	t.Cleanup(func() {
		_, _ = testenv.Kinesis(t).DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: &name, EnforceConsumerDeletion: aws.Bool(true)})
	})
	return name
}

var (
	sequence = regexp.MustCompile(`("(starting|ending)SequenceNumber": )"\d+"`)
	rfc3339  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	consumer = regexp.MustCompile(`consumer/CONSUMER:\d+`)
	gap      = regexp.MustCompile(`(\S) {2,}`)
)

// normalize replaces what changes from run to run.
func normalize(s string, names map[string]string) string {
	for name, as := range names {
		s = strings.ReplaceAll(s, name, as)
	}
	s = sequence.ReplaceAllString(s, `$1"SEQ"`)
	s = consumer.ReplaceAllString(s, "consumer/CONSUMER:TIME")
	return rfc3339.ReplaceAllString(s, "TIME")
}

// normalizeTable is normalize for a table, whose column widths depend on
// the names it replaced: every gap between columns becomes two spaces
// (package ops's tests check the alignment itself).
func normalizeTable(s string, names map[string]string) string {
	return gap.ReplaceAllString(normalize(s, names), "$1  ")
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// TestDescribeDrawsTheLineage creates a stream, splits a shard, merges its
// children back, registers a consumer and compares describe's table and
// JSON with golden files.
func TestDescribeDrawsTheLineage(t *testing.T) {
	setup(t)
	name := createStream(t, "2")
	golden(t, "split.txt", normalizeTable(mustKCL(t, "streams", "reshard", name, "split", "shardId-000000000000", "--half"), map[string]string{name: "STREAM"}))
	golden(t, "merge.json", normalize(mustKCL(t, "-o", "json", "streams", "reshard", name, "merge", "shardId-000000000003", "shardId-000000000002"), map[string]string{name: "STREAM"}))

	kc := testenv.Kinesis(t)
	d, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	arn := testenv.RegisterConsumer(t, kc, aws.ToString(d.StreamDescriptionSummary.StreamARN))
	consumerName := arn[strings.Index(arn, "/consumer/")+len("/consumer/") : strings.LastIndex(arn, ":")]
	names := map[string]string{name: "STREAM", consumerName: "CONSUMER"}

	golden(t, "describe.txt", normalizeTable(mustKCL(t, "streams", "describe", name), names))
	out := mustKCL(t, "streams", "describe", name, "--output", "json")
	golden(t, "describe.json", normalize(out, names))
	var v struct {
		Shards []struct {
			ID       string   `json:"id"`
			State    string   `json:"state"`
			Parents  []string `json:"parents"`
			Children []string `json:"children"`
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("describe -o json: %v", err)
	}
	if len(v.Shards) != 5 || v.Shards[4].State != "open" || len(v.Shards[4].Parents) != 2 {
		t.Errorf("describe -o json shards = %+v, want 5 with the last open and merged from two parents", v.Shards)
	}
}

// TestListCreateDelete goes through a stream's life with list, create
// (provisioned and on-demand) and delete, asking and with --yes.
func TestListCreateDelete(t *testing.T) {
	setup(t)
	name := createStream(t, "3")
	var list struct {
		Streams []struct {
			Name       string `json:"name"`
			Status     string `json:"status"`
			Mode       string `json:"mode"`
			OpenShards int    `json:"openShards"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(mustKCL(t, "streams", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list.Streams {
		if s.Name == name {
			found = s.Status == "ACTIVE" && s.Mode == "PROVISIONED" && s.OpenShards == 3
		}
	}
	if !found {
		t.Errorf("list -o json = %+v, want %s ACTIVE PROVISIONED with 3 shards", list.Streams, name)
	}
	if table := mustKCL(t, "streams", "list"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +ACTIVE +PROVISIONED +3 +24h$`).MatchString(table) {
		t.Errorf("list table has no row for %s", name)
	}

	onDemand := testenv.UniqueName(t, "ondemand")
	out := mustKCL(t, "streams", "create", onDemand, "--on-demand", "--wait", "-o", "json")
	t.Cleanup(func() {
		_, _ = testenv.Kinesis(t).DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: &onDemand})
	})
	golden(t, "create-on-demand.json", normalize(out, map[string]string{onDemand: "STREAM"}))

	r := kclWith(t, "n\n", nil, "streams", "delete", name)
	if r.code != 1 || !strings.Contains(r.stderr, "not confirmed") {
		t.Errorf("delete answered n: exit %d, %q; want 1, not confirmed", r.code, r.stderr)
	}
	mustKCL(t, "streams", "describe", name) // still there
	r = kclWith(t, "yes\n", nil, "streams", "delete", name)
	if r.code != 0 || r.stdout != "stream "+name+": DELETING\n" {
		t.Errorf("delete answered yes: exit %d, %q", r.code, r.stdout)
	}
	golden(t, "delete.json", normalize(mustKCL(t, "streams", "delete", onDemand, "--yes", "-o", "json"), map[string]string{onDemand: "STREAM"}))
}

// TestBadInput checks that each mistake gives one line naming it on
// stderr, the right exit status, and changes nothing.
func TestBadInput(t *testing.T) {
	setup(t)
	name := createStream(t, "2")
	missing := testenv.UniqueName(t, "missing")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"an unknown stream is named", []string{"streams", "describe", missing}, 1, `stream "` + missing + `" not found`},
		{"deleting an unknown stream", []string{"streams", "delete", missing, "--yes"}, 1, `stream "` + missing + `" not found`},
		{"resharding an unknown stream", []string{"streams", "reshard", missing, "scale", "2"}, 1, `stream "` + missing + `" not found`},
		{"an unknown shard is named", []string{"streams", "reshard", name, "split", "shardId-000000000042"}, 1, "no such shard: shardId-000000000042"},
		{"merging an unknown shard", []string{"streams", "reshard", name, "merge", "shardId-000000000000", "shardId-000000000042"}, 1, "no such shard: shardId-000000000042"},
		{"scaling beyond double", []string{"streams", "reshard", name, "scale", "5"}, 1, "5 is more than double the 2 open shards (at most 4)"},
		{"a split point outside the shard", []string{"streams", "reshard", name, "split", "shardId-000000000000", "--at", "340282366920938463463374607431768211455"}, 1, "is not inside shardId-000000000000's range"},
		{"creating a stream that exists", []string{"streams", "create", name, "--shards", "1"}, 1, `stream "` + name + `" already exists`},
		{"a split point that is not a number", []string{"streams", "reshard", name, "split", "shardId-000000000000", "--at", "half"}, 2, `--at "half" is not a decimal hash key`},
		{"--at with --half", []string{"streams", "reshard", name, "split", "shardId-000000000000", "--at", "5", "--half"}, 2, "[at half] were all set"},
		{"an unknown operation", []string{"streams", "reshard", name, "grow", "3"}, 2, `unknown operation "grow"`},
		{"a merge of one shard", []string{"streams", "reshard", name, "merge", "shardId-000000000000"}, 2, "merge takes 2 argument(s), got 1"},
		{"--wait on split", []string{"streams", "reshard", name, "split", "shardId-000000000000", "--wait"}, 2, "--wait is for scale"},
		{"a count that is not a number", []string{"streams", "reshard", name, "scale", "two"}, 2, `"two" is not a positive number of shards`},
		{"create without --shards", []string{"streams", "create", missing}, 2, "--shards must be a positive number"},
		{"--shards with --on-demand", []string{"streams", "create", missing, "--shards", "2", "--on-demand"}, 2, "--shards and --on-demand exclude each other"},
		{"an unknown output format", []string{"streams", "describe", name, "-o", "yaml"}, 2, `--output must be table or json, not "yaml"`},
		{"a missing stream name", []string{"streams", "describe"}, 2, "accepts 1 arg(s), received 0"},
		{"an endpoint that is not a URL", []string{"streams", "list", "--endpoint-url", "localhost:1"}, 2, "--endpoint-url must start with http:// or https://"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kcl(t, c.args...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != c.code || !strings.Contains(first, c.want) || !strings.HasPrefix(first, "kcl streams") {
				t.Errorf("exit %d, stderr %q; want exit %d and a first line with %q", r.code, r.stderr, c.code, c.want)
			}
			if c.code == 1 && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr has %d lines, want one: %q", strings.Count(r.stderr, "\n"), r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}

	t.Run("a merge of non-adjacent shards is refused and changes nothing", func(t *testing.T) {
		mustKCL(t, "streams", "reshard", name, "split", "shardId-000000000000")
		// Open now: 2 (0–25%), 3 (25–50%), 1 (50–100%).
		r := kcl(t, "streams", "reshard", name, "merge", "shardId-000000000002", "shardId-000000000001")
		if r.code != 1 || !strings.Contains(r.stderr, "shards are not adjacent: shardId-000000000002 ends at") {
			t.Errorf("exit %d, stderr %q; want 1, not adjacent", r.code, r.stderr)
		}
		r = kcl(t, "streams", "reshard", name, "merge", "shardId-000000000000", "shardId-000000000001")
		if r.code != 1 || !strings.Contains(r.stderr, "shard is closed: shardId-000000000000 was split or merged into [shardId-000000000002 shardId-000000000003]") {
			t.Errorf("exit %d, stderr %q; want 1, closed", r.code, r.stderr)
		}
		if out := mustKCL(t, "streams", "describe", name); !strings.Contains(out, "Open shards:  3") {
			t.Errorf("after refused merges:\n%s\nwant 3 open shards", out)
		}
	})
}

// TestScale scales with --wait, and without it then waits for the result.
func TestScale(t *testing.T) {
	setup(t)
	name := createStream(t, "2")
	out := mustKCL(t, "streams", "reshard", name, "scale", "4", "--wait")
	if !strings.Contains(out, "scaled to 4 open shards; ACTIVE") {
		t.Errorf("scale 4 --wait:\n%s", out)
	}
	out = mustKCL(t, "streams", "reshard", name, "scale", "2", "-o", "json")
	var v struct {
		Operation string `json:"operation"`
		Target    int    `json:"target"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Operation != "scale" || v.Target != 2 {
		t.Errorf("scale 2 -o json = %s (%v)", out, err)
	}
	testenv.Eventually(t, waitTimeout, pollEvery, func() bool {
		return strings.Contains(mustKCL(t, "streams", "describe", name), "Open shards:  2")
	}, "stream %s did not reach 2 open shards", name)
}

// TestEndpointURLOverridesTheEnvironment points AWS_ENDPOINT_URL_KINESIS at
// a closed port and --endpoint-url at the emulator.
func TestEndpointURLOverridesTheEnvironment(t *testing.T) {
	setup(t)
	name := createStream(t, "1")
	endpoint := os.Getenv("AWS_ENDPOINT_URL_KINESIS")
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:9")
	mustKCL(t, "--endpoint-url", endpoint, "streams", "describe", name)
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "")
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	mustKCL(t, "streams", "describe", name) // the SDK's global variable
}

// throttle answers every call as Kinesis does when a limit is exceeded.
type throttle struct{ calls atomic.Int32 }

func (th *throttle) Do(req *http.Request) (*http.Response, error) {
	th.calls.Add(1)
	body := `{"__type":"LimitExceededException","message":"Rate exceeded for stream"}`
	return &http.Response{
		StatusCode: 400, Status: "400 Bad Request", Request: req, ContentLength: int64(len(body)),
		Header: http.Header{"X-Amzn-Errortype": {"LimitExceededException"}, "Content-Type": {"application/x-amz-json-1.1"}},
		Body:   io.NopCloser(strings.NewReader(body)),
	}, nil
}

// TestThrottling checks that throttling, once the SDK's retries are spent,
// is one line saying so, with exit status 1.
func TestThrottling(t *testing.T) {
	setup(t)
	th := &throttle{}
	r := kclWith(t, "", func(aws.HTTPClient) aws.HTTPClient { return th }, "streams", "describe", "any")
	want := "kcl streams describe: throttled by AWS, try again later (DescribeStreamSummary: LimitExceededException: Rate exceeded for stream)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	if th.calls.Load() < 2 {
		t.Errorf("%d calls: the SDK did not retry", th.calls.Load())
	}
}

const (
	waitTimeout = 60 * time.Second
	pollEvery   = 200 * time.Millisecond
)

// throttleOnly answers the calls to target as throttled and passes the
// others to next.
type throttleOnly struct {
	target string
	next   aws.HTTPClient
	th     throttle
}

func (o *throttleOnly) Do(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), "."+o.target) {
		return o.th.Do(req)
	}
	return o.next.Do(req)
}

// TestReshardGivesUpWhenThrottled checks that a reshard that AWS keeps
// refusing with LimitExceeded (a spent UpdateShardCount quota) stops
// retrying after a while and says so in one line, leaving the stream as it
// was.
func TestReshardGivesUpWhenThrottled(t *testing.T) {
	setup(t)
	old := streams.SetBusyTimeout(time.Second)
	t.Cleanup(func() { streams.SetBusyTimeout(old) })
	name := createStream(t, "2")
	o := &throttleOnly{target: "UpdateShardCount"}
	start := time.Now()
	r := kclWith(t, "", func(c aws.HTTPClient) aws.HTTPClient { o.next = c; return o }, "streams", "reshard", name, "scale", "3", "--wait")
	want := "kcl streams reshard: update shard count to 3: throttled by AWS, try again later (UpdateShardCount: LimitExceededException: Rate exceeded for stream)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
	if out := mustKCL(t, "streams", "describe", name); !strings.Contains(out, "Open shards:  2") {
		t.Errorf("after the refused scale:\n%s\nwant 2 open shards", out)
	}
}
