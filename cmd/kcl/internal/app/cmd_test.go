package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/cmd/kcl/internal/app"
	"github.com/kclgo/kcl/cmd/kcl/internal/cli"
	"github.com/kclgo/kcl/cmd/kcl/internal/ops"
	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/lease/dynamolease"
	"github.com/kclgo/kcl/testkit/testenv"
)

var updateCLI = flag.Bool("update-cli", false, "rewrite the command golden files in testdata")

// setup points the SDK's default chain at the emulators through the
// standard endpoint variables, with nothing read from ~/.aws.
func setup(t *testing.T) {
	t.Helper()
	testenv.Require(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": testenv.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "",
		"AWS_ENDPOINT_URL_KINESIS": testenv.KinesisEndpoint(t), "AWS_ENDPOINT_URL_DYNAMODB": testenv.DynamoDBEndpoint(t),
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

func kclIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(args, &ops.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	t.Logf("kcl %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

func kcl(t *testing.T, args ...string) result { return kclIn(t, "", args...) }

// fixtureTable creates a lease table holding the items of the Java-shaped
// fixture file and returns its name.
func fixtureTable(t *testing.T, file string) string {
	t.Helper()
	ddb := testenv.DynamoDB(t)
	name := testenv.UniqueName(t, "java")
	testenv.CreateTable(t, ddb, name)
	for _, item := range app.FixtureItemsForTest(t, filepath.Join("../../../../lease/dynamolease/testdata", file)) {
		if _, err := ddb.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(name), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

var observed = regexp.MustCompile(`observed for [0-9.a-zµ]+|"observedMillis": [0-9]+`)

func goldenCLI(t *testing.T, name, got, table string) {
	t.Helper()
	got = strings.ReplaceAll(got, table, "APP")
	got = observed.ReplaceAllStringFunc(got, func(s string) string {
		if strings.HasPrefix(s, "observed") {
			return "observed for T"
		}
		return `"observedMillis": T`
	})
	path := filepath.Join("testdata", name)
	if *updateCLI {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-cli)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update-cli):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestDescribeCommandOnJavaFixtures(t *testing.T) {
	setup(t)
	for _, file := range []string{"kcl-lease-items.json", "kcl3-items.json"} {
		t.Run(file, func(t *testing.T) {
			table := fixtureTable(t, file)
			base := strings.TrimSuffix(file, ".json")
			r := kcl(t, "app", "describe", table, "--observe", "0")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			goldenCLI(t, "cli-describe-"+base+".table", r.stdout, table)
			r = kcl(t, "app", "describe", table, "--observe", "0", "-o", "json")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var v app.JSONView
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatalf("json output: %v", err)
			}
			goldenCLI(t, "cli-describe-"+base+".json", r.stdout, table)
		})
	}
}

func TestResetCommand(t *testing.T) {
	setup(t)
	table := fixtureTable(t, "kcl-lease-items.json")
	ddb := testenv.DynamoDB(t)
	store, err := dynamolease.New(ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	before, err := store.Get(t.Context(), "shardId-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"app", "reset", table, "--to", "trim-horizon", "--shard", "shardId-000000000001", "--observe", "0"}

	// Declined: nothing changes.
	r := kclIn(t, "n\n", args...)
	if r.code != 1 || !strings.Contains(r.stderr, "nothing changed") {
		t.Errorf("declined reset: exit %d, stderr %q; want 1, nothing changed", r.code, r.stderr)
	}
	if l, _ := store.Get(t.Context(), before.Key); l.Counter != before.Counter || l.Checkpoint != before.Checkpoint {
		t.Errorf("a declined reset wrote: %+v", l)
	}

	r = kclIn(t, "y\n", args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	goldenCLI(t, "cli-reset.table", r.stdout, table)
	l, err := store.Get(t.Context(), before.Key)
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint.String() != "TRIM_HORIZON" || l.Owner != "" || l.Counter != before.Counter+1 {
		t.Errorf("after the reset: %+v", l)
	}

	r = kcl(t, "app", "reset", table, "--to", "4965412345/2", "--shard", "shardId-000000000004", "--observe", "0", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	goldenCLI(t, "cli-reset.json", r.stdout, table)
	if l, _ := store.Get(t.Context(), "shardId-000000000004"); l.Checkpoint.SequenceNumber() != "4965412345" || l.Checkpoint.SubSequenceNumber() != 2 {
		t.Errorf("after the reset to a sequence number: %+v", l)
	}
}

func TestAppBadInput(t *testing.T) {
	setup(t)
	table := fixtureTable(t, "kcl-lease-items.json")
	other := testenv.UniqueName(t, "other")
	ddb := testenv.DynamoDB(t)
	if _, err := ddb.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(other),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(other)})
	})
	missing := testenv.UniqueName(t, "missing")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"an unknown application", []string{"app", "describe", missing, "--observe", "0"}, 1, "no such application"},
		{"a table that is not a lease table", []string{"app", "describe", other, "--observe", "0"}, 1, "not a KCL lease table"},
		{"an unknown stream", []string{"app", "describe", table, "--observe", "0", "--stream", missing}, 1, missing},
		{"an unknown shard", []string{"app", "reset", table, "--to", "latest", "--shard", "shardId-000000000099", "--observe", "0", "--yes"}, 1, "no lease for shard shardId-000000000099"},
		{"an unparsable time", []string{"app", "reset", table, "--to", "2026-13-01T00:00:00Z", "--yes"}, 2, "not an RFC 3339 time"},
		{"an unparsable sequence number", []string{"app", "reset", table, "--to", "12ab", "--yes"}, 2, "bad --to"},
		{"a sequence number for every shard", []string{"app", "reset", table, "--to", "123", "--observe", "0", "--yes"}, 2, "--shard"},
		{"a time without the stream", []string{"app", "reset", table, "--to", "2026-01-01T00:00:00Z", "--observe", "0", "--yes"}, 2, "--stream"},
		{"no --to", []string{"app", "reset", table}, 2, "--to is required"},
		{"no application", []string{"app", "describe"}, 2, "accepts 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kcl(t, tc.args...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != tc.code || !strings.Contains(first, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and one line naming %q", r.code, r.stderr, tc.code, tc.msg)
			}
		})
	}
}

func TestResetRefusedWhileAHolderRenewsWritesNothing(t *testing.T) {
	setup(t)
	ddb := testenv.DynamoDB(t)
	app := testenv.UniqueName(t, "app")
	testenv.CreateTable(t, ddb, app)
	store, err := dynamolease.New(ddb, app)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	at, _ := checkpoint.At("100", 3)
	if err := store.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: at}); err != nil {
		t.Fatal(err)
	}
	l, _ := store.Get(ctx, "shardId-000000000000")
	held, err := store.Take(ctx, l, "holder")
	if err != nil {
		t.Fatal(err)
	}
	// The holder renews every 200 ms while the reset watches.
	stop := make(chan struct{})
	renewed := make(chan lease.Lease, 1)
	go func() {
		defer func() { renewed <- held }()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				next, err := store.Renew(ctx, held)
				if err != nil {
					t.Errorf("renew: %v", err)
					return
				}
				held = next
			}
		}
	}()
	r := kcl(t, "app", "reset", app, "--to", "trim-horizon", "--observe", "1s", "--yes")
	close(stop)
	last := <-renewed
	if r.code != 1 || !strings.Contains(r.stderr, "held by a live worker: shardId-000000000000 (holder)") {
		t.Fatalf("exit %d, stderr %q: want 1 and the refusal", r.code, r.stderr)
	}
	got, err := store.Get(ctx, last.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checkpoint != at || got.Owner != "holder" || got.Counter != last.Counter {
		t.Errorf("after a refused reset: %+v, want the holder's lease untouched (checkpoint %s, counter %d)", got, at, last.Counter)
	}
}

func TestResetToATime(t *testing.T) {
	setup(t)
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 1)
	table := testenv.UniqueName(t, "app")
	testenv.CreateTable(t, ddb, table)
	store, err := dynamolease.New(ddb, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Create(t.Context(), lease.Lease{Key: "shardId-000000000000", Checkpoint: checkpoint.Latest}); err != nil {
		t.Fatal(err)
	}
	put := func(data string) string {
		out, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.SequenceNumber)
	}
	put("early")
	lastBefore := put("just before")
	time.Sleep(1100 * time.Millisecond) // the emulator's arrival times have second precision
	mark := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	put("after")

	r := kcl(t, "app", "reset", table, "--stream", stream, "--to", mark.Format(time.RFC3339Nano), "--observe", "0", "--yes", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got app.ResetJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Applied || len(got.Changes) != 1 || got.Changes[0].To != lastBefore {
		t.Errorf("reset to %s: %+v; want the checkpoint at the last record before it, %s", mark, got, lastBefore)
	}
	if l, _ := store.Get(t.Context(), "shardId-000000000000"); l.Checkpoint.SequenceNumber() != lastBefore {
		t.Errorf("checkpoint %s, want %s", l.Checkpoint, lastBefore)
	}
}

// throttle answers every request as DynamoDB does when throttling.
type throttle struct{ calls atomic.Int32 }

func (th *throttle) Do(req *http.Request) (*http.Response, error) {
	th.calls.Add(1)
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}`
	return &http.Response{
		StatusCode: 400, Status: "400 Bad Request", Request: req, ContentLength: int64(len(body)),
		Header: http.Header{"X-Amzn-Errortype": {"ProvisionedThroughputExceededException"}, "Content-Type": {"application/x-amz-json-1.0"},
			"X-Amz-Crc32": {strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10)}},
		Body: io.NopCloser(strings.NewReader(body)),
	}, nil
}

func TestThrottlingIsOneLineAndExitsOne(t *testing.T) {
	setup(t)
	th := &throttle{}
	var out, errb bytes.Buffer
	code := cli.Run([]string{"app", "describe", "orders-app", "--observe", "0"}, &ops.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		WrapHTTP: func(aws.HTTPClient) aws.HTTPClient { return th }})
	if code != 1 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "throttled by AWS") {
		t.Errorf("exit %d, stderr %q; want 1 and one line saying throttled", code, errb.String())
	}
	if th.calls.Load() < 2 {
		t.Errorf("%d calls: the SDK did not retry", th.calls.Load())
	}
}
