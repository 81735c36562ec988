package cli

import (
	"testing"

	"github.com/aws/smithy-go/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// The SDK's warnings reach the log as warnings, except the body-close one
// that DynamoDB Local causes on every call, which is kept for debugging.
func TestSDKLoggerLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := sdkLogger(zap.New(core), "dynamodb")
	l.Logf(logging.Warn, "failed to close HTTP response body, this may affect connection reuse: %v", "checksum")
	l.Logf(logging.Warn, "request failed with unretryable error %v", "x")
	l.Logf(logging.Debug, "retrying %d", 1)
	var got []zapcore.Level
	for _, e := range logs.All() {
		got = append(got, e.Level)
		if e.ContextMap()["client"] != "dynamodb" || e.ContextMap()["component"] != "aws-sdk" {
			t.Errorf("entry %q without its client and component fields", e.Message)
		}
	}
	want := []zapcore.Level{zapcore.DebugLevel, zapcore.WarnLevel, zapcore.DebugLevel}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("levels %v, want %v", got, want)
	}
}
