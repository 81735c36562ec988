package scenario

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The multilang mode (Config.HostCommand): every worker is a `kcl multilang`
// host whose child processes are the recording child of package
// testkit/internal/chaos/mlchild. The harness writes each host process a
// properties file (<id>.<n>.properties) pointing it at the proxies, and the
// children write the history (<id>.<n>.<shard>.<pid>.jsonl) and whatever the
// host did wrong by the protocol (<id>.<n>.<shard>.<pid>.problems).

// hostProps is what a host's properties file depends on.
type hostProps struct {
	stream, worker                    string
	kinesisEndpoint, dynamoDBEndpoint string
	leaseDuration, shutdown           time.Duration
	child                             []string // the child's argv, flags included
}

// properties renders the MultiLangDaemon properties file of a host: the
// stream and lease table, the proxies as endpoints, credentials from the
// environment (the fleet sets them), polling from TRIM_HORIZON, and the
// timings of the Go workers as far as the file can say them.
func (p hostProps) properties() (string, error) {
	for _, a := range p.child {
		if a == "" || strings.ContainsAny(a, " \t\n") {
			// executableName is split on spaces, without quoting.
			return "", fmt.Errorf("scenario: the child's argument %q cannot be written in executableName", a)
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	b.WriteString("# kclchaos: a kcl multilang host of the chaos harness\n")
	kv("executableName", strings.Join(p.child, " "))
	kv("applicationName", p.stream)
	kv("tableName", p.stream)
	kv("streamName", p.stream)
	kv("AwsCredentialsProvider", "EnvironmentVariableCredentialsProvider")
	kv("regionName", "us-east-1")
	kv("kinesisEndpoint", p.kinesisEndpoint)
	kv("dynamoDBEndpoint", p.dynamoDBEndpoint)
	kv("workerId", p.worker)
	kv("initialPositionInStream", "TRIM_HORIZON")
	kv("retrievalMode", "POLLING")
	kv("idleTimeBetweenReadsInMillis", "200")
	kv("failoverTimeMillis", ms(p.leaseDuration))
	kv("shardSyncIntervalMillis", "2000")
	kv("parentShardPollIntervalMillis", "200")
	kv("shutdownGraceMillis", ms(p.shutdown))
	// Far above what a child of the harness takes to answer: the limit is
	// exercised, a kill by it would show as a problem-free replay.
	kv("timeoutInSeconds", "60")
	return b.String(), nil
}

// hostEnv is added to a host's environment: the credentials its properties
// file names.
var hostEnv = []string{"AWS_ACCESS_KEY_ID=chaos", "AWS_SECRET_ACCESS_KEY=chaos", "AWS_REGION=us-east-1"}

// children returns the pids of the processes whose parent is pid, sorted,
// from /proc/*/stat.
func children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scenario: listing processes: %w", err)
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if pp, err := statPPID(b); err == nil && pp == pid {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// statPPID returns the parent pid from the contents of /proc/PID/stat:
// "pid (comm) state ppid …", where comm may hold spaces and parentheses,
// so the fields are counted from the last ')'.
func statPPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("scenario: malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("scenario: malformed /proc stat")
	}
	return strconv.Atoi(f[1])
}

// childProblems returns what the children of a run reported about their
// hosts, from the *.problems files in dir: at most limit lines, then a
// count of the rest.
func childProblems(dir string, limit int) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "w*.problems"))
	if err != nil {
		return nil, err
	}
	var out []string
	more := 0
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if len(out) < limit {
				out = append(out, "host protocol ("+filepath.Base(p)+"): "+sc.Text())
			} else {
				more++
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("host protocol: %d more in %s", more, filepath.Join(dir, "w*.problems")))
	}
	return out, nil
}
