package scenario

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCoordinationConfig(t *testing.T) {
	base := func(coordination string) Config {
		return Config{WorkerCommand: []string{"kclchaos", "worker"}, KinesisEndpoint: "http://k", DynamoDBEndpoint: "http://d",
			Coordination: coordination, LeaseDuration: 5 * time.Second}
	}
	tests := []struct {
		name         string
		config       Config
		wantFaults   []string
		wantFailover time.Duration
		wantErr      bool
	}{
		{name: "the default is the Worker's own choice, kcl fleet on a new table, with every fault kind",
			config: base(""), wantFaults: AllFaults, wantFailover: 2 * time.Second},
		{name: "kcl fleet required has every fault kind",
			config: base("fleet"), wantFaults: AllFaults, wantFailover: 2 * time.Second},
		{name: "per-lease renewal has no leader faults and fails over in a lease duration",
			config: base("kcl"), wantFaults: PerLeaseFaults, wantFailover: 5 * time.Second},
		{name: "per-lease renewal refuses a leader fault",
			config: func() Config { c := base("kcl"); c.Faults = []string{FaultLeaderSIGKILL}; return c }(), wantErr: true},
		{name: "an unknown coordination is refused", config: base("java"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.config
			err := c.setDefaults()
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Faults, tt.wantFaults) {
				t.Errorf("faults %v, want %v", c.Faults, tt.wantFaults)
			}
			if got := c.failoverTime(); got != tt.wantFailover {
				t.Errorf("failover time %v, want %v", got, tt.wantFailover)
			}
		})
	}
	if slices.ContainsFunc(PerLeaseFaults, isLeaderFault) || len(PerLeaseFaults) != len(AllFaults)-3 {
		t.Errorf("PerLeaseFaults %v: want AllFaults without the three leader faults", PerLeaseFaults)
	}
}

func TestReadWorkerLogs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, lines ...string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A Go worker's JSON log (two processes of w1) and a multilang host's
	// console log.
	write("w1.stderr",
		`{"level":"info","msg":"coordination","worker_id":"w1","mode":"kcl fleet (heartbeats and a leader)","reason":"new table"}`,
		`{"level":"info","msg":"leading","worker_id":"w1","epoch":1}`,
		`{"level":"warn","msg":"leadership lost","worker_id":"w1","epoch":1}`,
		`{"level":"info","msg":"coordination","worker_id":"w1","mode":"kcl fleet (heartbeats and a leader)"}`,
		`{"level":"info","msg":"leading","worker_id":"w1","epoch":3}`)
	write("w2.stderr",
		"2026-11-26T12:00:00.000Z\tINFO\tcoordination\t{\"mode\": \"KCL-compatible (per-lease renewal)\"}",
		"2026-11-26T12:00:01.000Z\tINFO\tleading\t{\"epoch\": 2}",
		"2026-11-26T12:00:02.000Z\tINFO\tworker starting\t{\"note\": \"leading\"}")
	modes, leaders, err := readWorkerLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{modeFleet: 2, modePerLease: 1}; !maps.Equal(modes, want) {
		t.Errorf("modes %v, want %v", modes, want)
	}
	if want := map[string]int{"w1": 2, "w2": 1}; !maps.Equal(leaders, want) {
		t.Errorf("leaderships %v, want %v", leaders, want)
	}

	for _, tt := range []struct {
		coordination string
		modes        map[string]int
		problem      bool
	}{
		{"auto", map[string]int{modeFleet: 3}, false},
		{"auto", map[string]int{modeFleet: 3, modePerLease: 1}, true},
		{"auto", map[string]int{}, true},
		{"fleet", map[string]int{modeFleet: 1}, false},
		{"kcl", map[string]int{}, false},
		{"kcl", map[string]int{modeFleet: 1}, true},
	} {
		if got := coordinationProblems(tt.coordination, tt.modes); (len(got) > 0) != tt.problem {
			t.Errorf("coordinationProblems(%q, %v) = %q, want a problem: %v", tt.coordination, tt.modes, got, tt.problem)
		}
	}
}

func TestRunFailoverTime(t *testing.T) {
	dir := t.TempDir()
	if d, err := runFailoverTime(dir); err != nil || d != 3*time.Second {
		t.Fatalf("without settings: %v, %v; want 3s, the lease duration of older runs", d, err)
	}
	if err := writeSettings(dir, settings{Coordination: "auto", FailoverTime: (2 * time.Second).String()}); err != nil {
		t.Fatal(err)
	}
	if d, err := runFailoverTime(dir); err != nil || d != 2*time.Second {
		t.Fatalf("from the settings: %v, %v; want 2s", d, err)
	}
	if err := os.WriteFile(filepath.Join(dir, settingsFile), []byte(`{"failover_time":"soon"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runFailoverTime(dir); err == nil {
		t.Fatal("a malformed failover time: no error")
	}
}
