package mlchild

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kclgo/kcl/testkit/checker"
	"github.com/kclgo/kcl/testkit/internal/chaos/history"
)

// host drives a child through pipes as a host would, one message at a time.
type host struct {
	t      *testing.T
	in     *io.PipeWriter // the child's stdin
	out    *bufio.Reader  // the child's stdout
	stderr strings.Builder
	prefix string
	code   chan int
}

func startChild(t *testing.T, args ...string) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{t: t, prefix: filepath.Join(dir, "w1.1"), code: make(chan int, 1)}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h.in, h.out = inW, bufio.NewReader(outR)
	args = append([]string{"-worker", "w1", "-log", h.prefix}, args...)
	go func() {
		code := Main(args, inR, outW, &h.stderr)
		outW.Close()
		inR.Close()
		h.code <- code
	}()
	t.Cleanup(func() { inW.Close() })
	return h
}

func (h *host) send(m map[string]any) {
	h.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(h.in, "%s\n", b); err != nil {
		h.t.Fatalf("sending %s: %v", b, err)
	}
}

// next returns the child's next message, skipping the empty lines of its
// framing.
func (h *host) next() map[string]any {
	h.t.Helper()
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			h.t.Fatalf("reading the child: %v (stderr: %s)", err, h.stderr.String())
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("child wrote %q: %v", line, err)
		}
		return m
	}
}

func (h *host) wantStatus(action string) {
	h.t.Helper()
	if m := h.next(); m["action"] != "status" || m["responseFor"] != action {
		h.t.Fatalf("got %v, want the status for %s", m, action)
	}
}

// wantCheckpoint reads a checkpoint request, checks its sequence number
// (nil for null) and answers it with errName ("" for success).
func (h *host) wantCheckpoint(seq any, sub any, errName string) {
	h.t.Helper()
	m := h.next()
	if m["action"] != "checkpoint" || m["sequenceNumber"] != seq || m["subSequenceNumber"] != sub {
		h.t.Fatalf("got %v, want a checkpoint request at (%v, %v)", m, seq, sub)
	}
	reply := map[string]any{"action": "checkpoint", "sequenceNumber": m["sequenceNumber"], "subSequenceNumber": m["subSequenceNumber"], "error": nil}
	if errName != "" {
		reply["error"] = errName
	}
	h.send(reply)
}

// end closes stdin and returns the exit code.
func (h *host) end() int {
	h.t.Helper()
	h.in.Close()
	select {
	case c := <-h.code:
		return c
	case <-time.After(10 * time.Second):
		h.t.Fatal("the child did not exit on stdin EOF")
		return -1
	}
}

// history reads every log the child wrote.
func (h *host) history() history.History {
	h.t.Helper()
	paths, err := filepath.Glob(h.prefix + ".*.jsonl")
	if err != nil || len(paths) != 1 {
		h.t.Fatalf("logs %v (%v), want one", paths, err)
	}
	hist, err := history.ReadFiles(paths...)
	if err != nil {
		h.t.Fatal(err)
	}
	return hist
}

func (h *host) problems() string {
	h.t.Helper()
	paths, _ := filepath.Glob(h.prefix + ".*.problems")
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			h.t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func rec(key string, n int, seq string, sub int) map[string]any {
	return map[string]any{"action": "record", "data": base64.StdEncoding.EncodeToString(checker.Payload(key, n)),
		"partitionKey": key, "sequenceNumber": seq, "subSequenceNumber": sub, "approximateArrivalTimestamp": 1}
}

func records(rs ...map[string]any) map[string]any {
	return map[string]any{"action": "processRecords", "records": rs, "millisBehindLatest": 0}
}

const shard = "shardId-000000000001"

func initialize(seq any) map[string]any {
	return map[string]any{"action": "initialize", "shardId": shard, "sequenceNumber": seq, "subSequenceNumber": nil}
}

func leaseKinds(h history.History) []string {
	var out []string
	for _, l := range h.Leases {
		out = append(out, string(l.Kind))
	}
	return out
}

func checkpoints(h history.History) []string {
	var out []string
	for _, c := range h.Checkpoints {
		s := c.Position
		if c.Err != "" {
			s += " " + c.Err
		}
		out = append(out, s)
	}
	return out
}

func TestChild(t *testing.T) {
	t.Run("a shard's life is logged: records, checkpoints in both forms, the shard's end", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("TRIM_HORIZON"))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "100", 0), rec("k2", 0, "101", 0)))
		h.wantCheckpoint(nil, nil, "") // the first batch: null
		h.wantStatus("processRecords")
		h.send(records(rec("k1", 1, "102", 0), rec("k1", 2, "102", 1)))
		h.wantCheckpoint("102", float64(1), "") // the second: the last record's numbers
		h.wantStatus("processRecords")
		h.send(map[string]any{"action": "shardEnded"})
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("shardEnded")
		if code := h.end(); code != 0 {
			t.Fatalf("exit %d, stderr %s", code, h.stderr.String())
		}
		hist := h.history()
		if len(hist.Processed) != 4 || hist.Processed[3].Key != "k1" || hist.Processed[3].N != 2 || hist.Processed[3].Sub != 1 ||
			hist.Processed[0].Worker != "w1" || hist.Processed[0].Shard != shard {
			t.Fatalf("processed %+v", hist.Processed)
		}
		if got, want := checkpoints(hist), []string{"101/0", "102/1", "SHARD_END"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("checkpoints %v, want %v", got, want)
		}
		if got := leaseKinds(hist); fmt.Sprint(got) != "[acquired shard ended]" {
			t.Fatalf("lease events %v", got)
		}
		if p := h.problems(); p != "" {
			t.Fatalf("problems: %s", p)
		}
	})

	t.Run("a failed checkpoint is logged with its error, and shutdownRequested checkpoints what it left", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("200"))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "201", 0)))
		h.wantCheckpoint(nil, nil, "ThrottlingException")
		h.wantStatus("processRecords")
		h.send(map[string]any{"action": "shutdownRequested"})
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("shutdownRequested")
		h.send(map[string]any{"action": "leaseLost"})
		h.wantStatus("leaseLost")
		if code := h.end(); code != 0 {
			t.Fatalf("exit %d", code)
		}
		hist := h.history()
		if got, want := checkpoints(hist), []string{"201/0 ThrottlingException", "201/0"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("checkpoints %v, want %v", got, want)
		}
		if got := leaseKinds(hist); fmt.Sprint(got) != "[acquired released]" {
			t.Fatalf("lease events %v", got)
		}
	})

	t.Run("shutdownRequested with everything checkpointed asks for nothing; leaseLost is logged", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("200"))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "201", 0)))
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("processRecords")
		h.send(map[string]any{"action": "shutdownRequested"})
		h.wantStatus("shutdownRequested")
		h.end()

		h = startChild(t)
		h.send(initialize("200"))
		h.wantStatus("initialize")
		h.send(map[string]any{"action": "leaseLost"})
		h.wantStatus("leaseLost")
		h.end()
		if got := leaseKinds(h.history()); fmt.Sprint(got) != "[acquired lost]" {
			t.Fatalf("lease events %v", got)
		}
	})

	t.Run("checkpoints every N batches with -every", func(t *testing.T) {
		h := startChild(t, "-every", "2")
		h.send(initialize(nil))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "1", 0)))
		h.wantStatus("processRecords")
		h.send(records(rec("k1", 1, "2", 0)))
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("processRecords")
		h.end()
		if got := checkpoints(h.history()); fmt.Sprint(got) != "[2/0]" {
			t.Fatalf("checkpoints %v", got)
		}
	})

	t.Run("shardEnded retries a throttled checkpoint and gives up on ShutdownException", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("TRIM_HORIZON"))
		h.wantStatus("initialize")
		h.send(map[string]any{"action": "shardEnded"})
		h.wantCheckpoint(nil, nil, "ThrottlingException")
		h.wantCheckpoint(nil, nil, "KinesisClientLibDependencyException")
		h.wantCheckpoint(nil, nil, "ShutdownException")
		h.wantStatus("shardEnded")
		h.end()
		hist := h.history()
		if got := leaseKinds(hist); fmt.Sprint(got) != "[acquired]" {
			t.Fatalf("lease events %v, want no shard end", got)
		}
		if got := checkpoints(hist); len(got) != 3 {
			t.Fatalf("checkpoints %v", got)
		}
	})

	t.Run("a record that is not the producer's is logged as foreign", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("TRIM_HORIZON"))
		h.wantStatus("initialize")
		h.send(records(map[string]any{"data": base64.StdEncoding.EncodeToString([]byte("garbage")), "partitionKey": "x",
			"sequenceNumber": "5", "subSequenceNumber": 0}))
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("processRecords")
		h.end()
		if p := h.history().Processed; len(p) != 1 || p[0].N != foreignOrdinal || p[0].Key != "x" {
			t.Fatalf("processed %+v", p)
		}
	})
}

func TestChildReportsTheHostsMistakes(t *testing.T) {
	t.Run("records at or before the initialize checkpoint or going backwards", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("200"))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "199", 0)))
		h.wantCheckpoint(nil, nil, "")
		h.wantStatus("processRecords")
		h.send(records(rec("k1", 1, "300", 0), rec("k1", 2, "300", 0)))
		h.wantCheckpoint("300", float64(0), "")
		h.wantStatus("processRecords")
		h.end()
		p := h.problems()
		if !strings.Contains(p, "record 199/0 delivered after 200/0") || !strings.Contains(p, "record 300/0 delivered after 300/0") {
			t.Fatalf("problems: %q", p)
		}
	})

	t.Run("a checkpoint reply that does not echo the request, or an error the situation does not allow", func(t *testing.T) {
		h := startChild(t)
		h.send(initialize("TRIM_HORIZON"))
		h.wantStatus("initialize")
		h.send(records(rec("k1", 0, "1", 0)))
		if m := h.next(); m["action"] != "checkpoint" {
			t.Fatalf("got %v", m)
		}
		h.send(map[string]any{"action": "checkpoint", "sequenceNumber": "7", "subSequenceNumber": nil, "error": "IllegalArgumentException"})
		h.wantStatus("processRecords")
		h.end()
		p := h.problems()
		if !strings.Contains(p, "echoes (7, null), the request was (null, null)") || !strings.Contains(p, "answered IllegalArgumentException") {
			t.Fatalf("problems: %q", p)
		}
	})

	for _, tt := range []struct {
		name string
		msgs []map[string]any
		want string
	}{
		{"processRecords before initialize", []map[string]any{records(rec("k", 0, "1", 0))}, "processRecords after nothing"},
		{"a second initialize", []map[string]any{initialize(nil), initialize(nil)}, "initialize after initialize"},
		{"records after shutdownRequested", []map[string]any{initialize(nil), {"action": "shutdownRequested"}, records(rec("k", 0, "1", 0))},
			"processRecords after shutdownRequested"},
		{"a message after shardEnded", []map[string]any{initialize(nil), {"action": "shardEnded"}, {"action": "leaseLost"}},
			"leaseLost after the shard's ending"},
		{"an unknown action", []map[string]any{{"action": "shutdown"}}, `unknown action "shutdown"`},
	} {
		t.Run(tt.name+" ends the child with status 1", func(t *testing.T) {
			h := startChild(t)
			for i, m := range tt.msgs {
				h.send(m)
				if i == len(tt.msgs)-1 {
					break
				}
				if m["action"] == "shardEnded" {
					h.wantCheckpoint(nil, nil, "")
				}
				h.wantStatus(m["action"].(string))
			}
			select {
			case code := <-h.code:
				if code != 1 {
					t.Fatalf("exit %d, want 1", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the child goes on")
			}
			if !strings.Contains(h.stderr.String(), tt.want) {
				t.Fatalf("stderr %q, want %q", h.stderr.String(), tt.want)
			}
		})
	}
}
