package e2e

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/testenv"
)

// Timings of every run: small, so that a case takes seconds.
var baseProperties = map[string]string{
	"AwsCredentialsProvider":        "DefaultCredentialsProvider",
	"regionName":                    testenv.Region,
	"initialPositionInStream":       "TRIM_HORIZON",
	"failoverTimeMillis":            "6000",
	"shardSyncIntervalMillis":       "1000",
	"parentShardPollIntervalMillis": "500",
	// Setting the polling keys makes retrievalMode DEFAULT mean polling
	// (kinesis-mock's enhanced fan-out needs TLS).
	"maxRecords":                   "10",
	"idleTimeBetweenReadsInMillis": "200",
	"timeoutInSeconds":             "30",
	"shutdownGraceMillis":          "20000",
}

// processTimeout bounds the wait for every produced record to be processed.
const processTimeout = 90 * time.Second

// stopTimeout bounds a graceful stop after SIGTERM.
const stopTimeout = 30 * time.Second

// A run is one application: a fresh stream, a lease table named after it
// (kcl creates it), and the record file its processors append to.
type run struct {
	t          *testing.T
	lang       lang
	kc         *kinesis.Client
	ddb        *dynamodb.Client
	stream     string
	app        string // applicationName, also the lease table
	dir        string
	recordFile string
	prod       *producer
}

// newRun creates a stream with shards shards for one test.
func newRun(t *testing.T, l lang, shards int32) *run {
	t.Helper()
	kclBinary(t) // a build failure ends the test before anything is created
	kc := testenv.Kinesis(t)
	ddb := testenv.DynamoDB(t)
	r := &run{t: t, lang: l, kc: kc, ddb: ddb, dir: t.TempDir()}
	r.stream = testenv.CreateStream(t, kc, shards)
	r.app = testenv.UniqueName(t, "mlapp")
	r.recordFile = filepath.Join(r.dir, "records.jsonl")
	r.prod = newProducer(kc, r.stream)
	t.Cleanup(func() { deleteTable(t, ddb, r.app) })
	return r
}

// host is one `kcl multilang` process.
type host struct {
	t       *testing.T
	cmd     *exec.Cmd
	logFile string
	exited  chan struct{} // closed once the process has exited
	waitErr error         // set before exited is closed
}

// start writes the properties file (baseProperties, the run's names and
// endpoints, then props) and starts `kcl multilang -p FILE` with env added
// to a scrubbed environment, which its children inherit. The host and its
// children are killed in t.Cleanup if they still run then.
func (r *run) start(props map[string]string, env ...string) *host {
	t := r.t
	t.Helper()
	bin := kclBinary(t)
	all := maps.Clone(baseProperties)
	all["executableName"] = r.lang.executable(t)
	all["streamName"] = r.stream
	all["applicationName"] = r.app
	all["workerId"] = "worker-" + r.lang.name
	all["kinesisEndpoint"] = testenv.KinesisEndpoint(t)
	all["dynamoDBEndpoint"] = testenv.DynamoDBEndpoint(t)
	maps.Copy(all, props)
	propsFile := filepath.Join(r.dir, "app.properties")
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(all)) {
		fmt.Fprintf(&b, "%s = %s\n", k, all[k])
	}
	if err := os.WriteFile(propsFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(r.dir, "kcl.log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "multilang", "-p", propsFile)
	cmd.Dir = r.dir
	cmd.Env = append(hostEnv(), "KCL_ML_RECORD_FILE="+r.recordFile)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group, so that cleanup can kill the children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h := &host{t: t, cmd: cmd, logFile: logFile, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kcl multilang: %v", err)
	}
	go func() {
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
		if t.Failed() {
			t.Logf("properties:\n%s", b.String())
			t.Logf("kcl log (last lines of %s):\n%s", logFile, tail(logFile, 60))
		}
	})
	return h
}

// hostEnv is the test's environment without AWS_* variables (this machine
// sets AWS_CA_BUNDLE, and a developer may have AWS_PROFILE), plus dummy
// credentials for DefaultCredentialsProvider and no instance metadata.
func hostEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "KCL_ML_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID=AKIDKCLTEST",
		"AWS_SECRET_ACCESS_KEY=kcl-test-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// stop sends SIGTERM and checks that the host stops gracefully with exit
// status 0 within stopTimeout.
func (h *host) stop() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatalf("SIGTERM kcl: %v", err)
	}
	start := time.Now()
	select {
	case <-h.exited:
	case <-time.After(stopTimeout):
		h.t.Fatalf("kcl did not exit within %v of SIGTERM", stopTimeout)
	}
	if h.waitErr != nil {
		h.t.Fatalf("kcl after SIGTERM: %v, want exit status 0", h.waitErr)
	}
	h.t.Logf("kcl stopped %v after SIGTERM", time.Since(start).Round(10*time.Millisecond))
}

// running fails the test if the host has exited.
func (h *host) running() {
	h.t.Helper()
	select {
	case <-h.exited:
		h.t.Fatalf("kcl exited early: %v", h.waitErr)
	default:
	}
}

// waitProcessed waits until every record produced so far has been
// processed at least once, failing the test if the host exits first.
func (r *run) waitProcessed(h *host) report {
	r.t.Helper()
	var rep report
	testenv.Eventually(r.t, processTimeout, 200*time.Millisecond, func() bool {
		h.running()
		rep = r.report()
		return rep.Lost == 0 && rep.Produced > 0
	}, "not every record processed: %v", &rep)
	return rep
}

// report judges the record file against what was produced.
func (r *run) report() report {
	r.t.Helper()
	lines, err := readLines(r.recordFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatal(err)
	}
	chk := checker.New()
	for k, n := range r.prod.counts() {
		chk.Produced(k, n)
	}
	rep := report{lines: lines}
	for _, l := range lines {
		if l.Event != "" {
			continue
		}
		key, n, err := checker.ParsePayload(l.Data)
		if err != nil || key != l.Key {
			r.t.Fatalf("record %s/%s: data %q, partition key %q", l.Shard, l.Seq, l.Data, l.Key)
		}
		chk.Processed(key, n)
	}
	rep.Report = chk.Report()
	return rep
}

// tail returns the last n lines of file.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
