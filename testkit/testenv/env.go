// Package testenv connects tests to the local emulators (kinesis-mock and
// DynamoDB Local) that scripts/emulators.sh runs, and holds the helpers that
// emulator tests share: AWS clients, uniquely named streams and tables removed
// at cleanup, bounded waits, and the SubscribeToShard adapter kinesis-mock
// needs.
//
// Tests find the emulators through environment variables:
//
//	KCL_KINESIS_ENDPOINT      kinesis-mock, plain HTTP/1.1 and h2c   (http://127.0.0.1:4567)
//	KCL_KINESIS_TLS_ENDPOINT  kinesis-mock, TLS with ALPN h2         (https://127.0.0.1:4568)
//	KCL_DYNAMODB_ENDPOINT     DynamoDB Local                         (http://127.0.0.1:8000)
//	KCL_KINESIS_CA_FILE       PEM certificate served on the TLS port (optional)
//
// `make test` sets them. By hand: `make emulators-start`, then
// `eval "$(scripts/emulators.sh env)"`. When they are absent an emulator test
// skips, naming those commands; with KCL_REQUIRE_EMULATORS=1 (set by `make
// test` and therefore CI) it fails instead, so an emulator test can never pass
// by skipping.
//
// This package is for tests only; production code must not import it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables read by this package.
const (
	EnvKinesisEndpoint    = "KCL_KINESIS_ENDPOINT"
	EnvKinesisTLSEndpoint = "KCL_KINESIS_TLS_ENDPOINT"
	EnvDynamoDBEndpoint   = "KCL_DYNAMODB_ENDPOINT"
	EnvKinesisCAFile      = "KCL_KINESIS_CA_FILE"
	// EnvRequireEmulators, when "1" or "true", turns every skip for a missing
	// emulator or tool into a test failure.
	EnvRequireEmulators = "KCL_REQUIRE_EMULATORS"
)

const startHint = "run `make test`, or `make emulators-start` then `eval \"$(scripts/emulators.sh env)\"`"

// Required reports whether KCL_REQUIRE_EMULATORS asks for missing emulators
// to fail tests rather than skip them.
func Required() bool {
	switch strings.ToLower(os.Getenv(EnvRequireEmulators)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// skipOrFail stops the test: Skip normally, Fatal when KCL_REQUIRE_EMULATORS is set.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=%s forbids skipping)", msg, EnvRequireEmulators, os.Getenv(EnvRequireEmulators))
	}
	t.Skip(msg)
}

// Require stops the test unless all emulator endpoints are configured: it
// skips, naming the commands that start the emulators, or fails when
// KCL_REQUIRE_EMULATORS=1. The client constructors call it; call it directly
// in tests that only need the endpoints.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	for _, name := range []string{EnvKinesisEndpoint, EnvKinesisTLSEndpoint, EnvDynamoDBEndpoint} {
		if os.Getenv(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "testenv: emulators not configured (%s unset); %s", strings.Join(missing, ", "), startHint)
	}
}

// RequireNode stops the test, under the same skip-or-fail rule as Require,
// unless the node binary is on PATH and a node_modules directory holding
// every named npm package is found in the working directory or one of its
// parents. It returns that node_modules directory; run scripts there with the
// returned node path.
func RequireNode(t testing.TB, packages ...string) (node, nodeModules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "testenv: node not found on PATH; install Node.js 20, then %s", startHint)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for {
		candidate := filepath.Join(dir, "node_modules")
		if hasPackages(candidate, packages) {
			return node, candidate
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	skipOrFail(t, "testenv: no node_modules with %s above the working directory; run `npm ci` in the repository root, or %s",
		strings.Join(packages, ", "), startHint)
	return "", ""
}

func hasPackages(nodeModules string, packages []string) bool {
	if fi, err := os.Stat(nodeModules); err != nil || !fi.IsDir() {
		return false
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(nodeModules, filepath.FromSlash(p), "package.json")); err != nil {
			return false
		}
	}
	return true
}

// KinesisEndpoint returns kinesis-mock's plain endpoint (HTTP/1.1 and h2c).
func KinesisEndpoint(t testing.TB) string {
	t.Helper()
	Require(t)
	return os.Getenv(EnvKinesisEndpoint)
}

// KinesisTLSEndpoint returns kinesis-mock's TLS endpoint (HTTPS, ALPN h2).
func KinesisTLSEndpoint(t testing.TB) string {
	t.Helper()
	Require(t)
	return os.Getenv(EnvKinesisTLSEndpoint)
}

// DynamoDBEndpoint returns DynamoDB Local's endpoint.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	Require(t)
	return os.Getenv(EnvDynamoDBEndpoint)
}
