package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/kclgo/kcl/testkit/testenv"
)

// TestMetricsAddressServesMetricsAndProbes runs kcl multilang with
// kclMetricsAddress against the emulators and reads /readyz, /healthz and
// /metrics. The child (/bin/true) exits at once, so every
// initialize fails: the Worker is ready all the same (it holds the leases
// and reaches its table), and /metrics counts the failures.
func TestMetricsAddressServesMetricsAndProbes(t *testing.T) {
	kc, ddb := testenv.Kinesis(t), testenv.DynamoDB(t)
	stream := testenv.CreateStream(t, kc, 2)
	app := testenv.UniqueName(t, "kclmetrics")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(app)})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := writeProperties(t,
		"executableName = /bin/true",
		"applicationName = "+app,
		"streamName = "+stream,
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider",
		"regionName = "+testenv.Region,
		"kinesisEndpoint = "+testenv.KinesisEndpoint(t),
		"dynamoDBEndpoint = "+testenv.DynamoDBEndpoint(t),
		"initialPositionInStream = TRIM_HORIZON",
		"kclMetricsAddress = "+addr,
	)
	cmd := exec.CommandContext(t.Context(), kclBin, "multilang", "--log-level", "warn", file)
	cmd.Env = isolatedEnv(t, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Errorf("wait: %v", err)
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit status %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var code int
	var body string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if code, body = get("/readyz"); code == http.StatusOK && strings.Contains(body, `"leases": 2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s after a minute; stderr:\n%s", code, body, stderr.String())
		}
	}
	var rep struct {
		Status  string `json:"status"`
		Workers []struct {
			Stream string `json:"stream"`
			State  string `json:"state"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Status != "ok" || len(rep.Workers) != 1 || rep.Workers[0].Stream != stream || rep.Workers[0].State != "running" {
		t.Errorf("/readyz body %s (%v), want one running worker of %s", body, err, stream)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s, want 200", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body = get("/metrics")
		if code == http.StatusOK && strings.Contains(body, `kcl_processor_errors_total{method="Initialize"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: %d, no Initialize failures counted:\n%s", code, body)
		}
	}
	for _, want := range []string{
		`kcl_leases_held{stream="` + stream + `",`, "kcl_dynamodb_consumed_capacity_total{", "go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
