package main

import (
	"strings"
	"testing"
)

// TestStreamsExitStatuses runs the built binary: usage errors exit 2, a
// failure to reach Kinesis exits 1, each with one line naming it.
func TestStreamsExitStatuses(t *testing.T) {
	creds := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_MAX_ATTEMPTS=1"}
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no region", nil, []string{"streams", "list"}, 2, "kcl streams list: no region"},
		{"an unknown operation", creds, []string{"streams", "reshard", "s", "grow", "2"}, 2, `kcl streams reshard: unknown operation "grow"`},
		{"an unknown output", creds, []string{"streams", "list", "-o", "xml"}, 2, `kcl streams list: --output must be table or json, not "xml"`},
		{"an unreachable endpoint", creds, []string{"streams", "describe", "s", "--endpoint-url", "http://127.0.0.1:9"}, 1, "kcl streams describe: DescribeStreamSummary: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runKCL(t, isolatedEnv(t, tt.env...), tt.args...)
			if r.code != tt.code {
				t.Errorf("status %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			if lines := r.errorLines(); len(lines) != 1 || !strings.HasPrefix(lines[0], tt.want) {
				t.Errorf("error lines %q, want one starting with %q", lines, tt.want)
			}
		})
	}
}
