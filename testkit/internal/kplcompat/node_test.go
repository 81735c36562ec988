package kplcompat

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/testenv"
)

// nodeTimeout bounds one run of a tools/kplvectors script.
const nodeTimeout = 2 * time.Minute

// requireNode returns the node binary and the repository root, or skips the
// test (fails it under KCL_REQUIRE_EMULATORS=1) when node or
// node_modules/aws-kinesis-agg is missing.
func requireNode(t *testing.T) (node, root string) {
	t.Helper()
	node, nodeModules := testenv.RequireNode(t, "aws-kinesis-agg")
	return node, filepath.Dir(nodeModules)
}

// runNode runs a script from tools/kplvectors in the repository root with
// stdin, and returns its stdout; it fails the test, showing stderr, if the
// script exits non-zero.
func runNode(t *testing.T, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	node, root := requireNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join("tools", "kplvectors", script)}, args...)...)
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s %v: %v\n%s%s", script, args, err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes()
}

// nodeKinesisRecord is a Kinesis record as deaggregate.js reads it.
type nodeKinesisRecord struct {
	PartitionKey    string  `json:"partitionKey"`
	ExplicitHashKey *string `json:"explicitHashKey"`
	Data            []byte  `json:"data"`
	SequenceNumber  string  `json:"sequenceNumber"`
}

// nodeResult is what aws-kinesis-agg made of one Kinesis record.
type nodeResult struct {
	Error       *string `json:"error"`
	UserRecords []struct {
		PartitionKey      *string `json:"partitionKey"`
		ExplicitHashKey   *string `json:"explicitHashKey"`
		SequenceNumber    *string `json:"sequenceNumber"`
		SubSequenceNumber *int    `json:"subSequenceNumber"`
		Data              []byte  `json:"data"`
	} `json:"userRecords"`
}

// nodeDeaggregate expands records with aws-kinesis-agg's deaggregateSync
// (checksums on) and returns one result per record.
func nodeDeaggregate(t *testing.T, records []nodeKinesisRecord) []nodeResult {
	t.Helper()
	req, err := json.Marshal(struct {
		Records []nodeKinesisRecord `json:"records"`
	}{records})
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Package string       `json:"package"`
		Results []nodeResult `json:"results"`
	}
	if err := json.Unmarshal(runNode(t, "deaggregate.js", req), &resp); err != nil {
		t.Fatalf("deaggregate.js output: %v", err)
	}
	if len(resp.Results) != len(records) {
		t.Fatalf("deaggregate.js returned %d results for %d records", len(resp.Results), len(records))
	}
	return resp.Results
}

// TestVectorsUpToDate regenerates the vectors with the pinned
// aws-kinesis-agg and compares them with testdata/kpl.
func TestVectorsUpToDate(t *testing.T) {
	out := runNode(t, "generate.js", nil, "--check")
	t.Logf("%s", bytes.TrimSpace(out))
}
