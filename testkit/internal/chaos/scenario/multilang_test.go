package scenario

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHostProperties(t *testing.T) {
	p := hostProps{stream: "s1", worker: "w2", kinesisEndpoint: "http://127.0.0.1:1", dynamoDBEndpoint: "http://127.0.0.1:2",
		leaseDuration: 3 * time.Second, shutdown: 5 * time.Second, child: []string{"/bin/kclchaos", "mlchild", "-worker", "w2", "-log", "/tmp/d/w2.1"}}
	got, err := p.properties()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"executableName = /bin/kclchaos mlchild -worker w2 -log /tmp/d/w2.1\n",
		"streamName = s1\n", "tableName = s1\n", "workerId = w2\n",
		"kinesisEndpoint = http://127.0.0.1:1\n", "dynamoDBEndpoint = http://127.0.0.1:2\n",
		"failoverTimeMillis = 3000\n", "shutdownGraceMillis = 5000\n",
		"initialPositionInStream = TRIM_HORIZON\n", "retrievalMode = POLLING\n",
		"AwsCredentialsProvider = EnvironmentVariableCredentialsProvider\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}

	p.child = []string{"/tmp/a dir/kclchaos", "mlchild"}
	if _, err := p.properties(); err == nil {
		t.Error("a child path with a space: no error (executableName would split it)")
	}
}

func TestStatPPID(t *testing.T) {
	for _, tt := range []struct {
		name, stat string
		want       int
		ok         bool
	}{
		{"a plain command", "123 (kcl) S 45 123 45 0 -1", 45, true},
		{"a command with spaces and parentheses", "123 (a (b) c) R 7 123 7 0", 7, true},
		{"no parenthesis", "123 kcl S 45", 0, false},
		{"cut short", "123 (kcl) S", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statPPID([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("statPPID(%q) = %d, %v; want %d, ok %v", tt.stat, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestChildren(t *testing.T) {
	// A shell with two sleeping children of its own.
	sh := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if kids, err := children(sh.Process.Pid); err == nil {
			for _, k := range kids {
				if p, err := os.FindProcess(k); err == nil {
					_ = p.Kill()
				}
			}
		}
		_ = sh.Process.Kill()
		_ = sh.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids, err := children(sh.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) == 2 {
			if slices.Contains(kids, sh.Process.Pid) || slices.Contains(kids, os.Getpid()) {
				t.Fatalf("children %v include the shell or the test", kids)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children of the shell: %v, want 2", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if kids, err := children(os.Getpid()); err != nil || !slices.Contains(kids, sh.Process.Pid) {
		t.Fatalf("children of the test %v (%v), want the shell %d among them", kids, err, sh.Process.Pid)
	}
}

func TestChildProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("w1.1.shardId-0.10.problems", "a\nb\n")
	write("w2.3.shardId-1.11.problems", "c\n")
	write("w1.1.shardId-0.10.jsonl", "not a problem\n")
	got, err := childProblems(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host protocol (w1.1.shardId-0.10.problems): a", "host protocol (w1.1.shardId-0.10.problems): b",
		"host protocol: 1 more in " + filepath.Join(dir, "w*.problems")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got, _ := childProblems(t.TempDir(), 2); len(got) != 0 {
		t.Fatalf("no problems files: %q", got)
	}
}

func TestMultilangConfig(t *testing.T) {
	base := func() Config {
		return Config{HostCommand: []string{"kcl", "multilang"}, ChildCommand: []string{"kclchaos", "mlchild"},
			KinesisEndpoint: "http://k", DynamoDBEndpoint: "http://d"}
	}
	c := base()
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Faults, MultilangFaults) || !slices.Contains(c.Faults, FaultSIGKILLChild) {
		t.Fatalf("default faults %v, want MultilangFaults", c.Faults)
	}
	for name, mod := range map[string]func(*Config){
		"no child command":                    func(c *Config) { c.ChildCommand = nil },
		"a checkpoint policy the child lacks": func(c *Config) { c.Checkpoint = "manual" },
		"a worker bug":                        func(c *Config) { c.Bug = "unfenced" },
		"a coordination the host cannot take": func(c *Config) { c.Coordination = "kcl" },
	} {
		c := base()
		mod(&c)
		if err := c.setDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	g := Config{WorkerCommand: []string{"kclchaos", "worker"}, KinesisEndpoint: "http://k", DynamoDBEndpoint: "http://d",
		Faults: []string{FaultSIGKILLChild}}
	if err := g.setDefaults(); err == nil {
		t.Error("sigkill-child with Go workers: no error")
	}
}
