package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kclgo/kcl/cmd/kcl/internal/multilang/protocol"
)

// child is a test processor driven by hand, without a host: the test writes
// the host's messages and reads the child's with the host's decoder.
type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan protocol.Message
	done  chan error // the exit of the process, once stdout is drained
}

func startChild(t *testing.T, l lang, recordFile string, env ...string) *child {
	t.Helper()
	argv := strings.Fields(l.executable(t))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(hostEnv(), "KCL_ML_RECORD_FILE="+recordFile)
	cmd.Env = append(cmd.Env, env...)
	errFile := filepath.Join(t.TempDir(), "stderr")
	stderr, err := os.Create(errFile)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	c := &child{t: t, cmd: cmd, stdin: stdin, msgs: make(chan protocol.Message, 16), done: make(chan error, 1)}
	go func() {
		r := protocol.NewReader(stdout, protocol.DefaultMaxLine)
		for {
			m, err := r.Next()
			if err != nil {
				close(c.msgs)
				c.done <- cmd.Wait()
				return
			}
			c.msgs <- m
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("child's stderr:\n%s", tail(errFile, 40))
		}
	})
	return c
}

func (c *child) send(b []byte) {
	c.t.Helper()
	if _, err := c.stdin.Write(b); err != nil {
		c.t.Fatalf("write to child: %v", err)
	}
}

// next returns the child's next message that is not garbage.
func (c *child) next() protocol.Message {
	c.t.Helper()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatal("child closed its stdout")
			}
			if _, garbage := m.(protocol.Garbage); !garbage {
				return m
			}
		case <-time.After(10 * time.Second):
			c.t.Fatal("no message from the child within 10s")
		}
	}
}

// status expects the status ending the call for action.
func (c *child) status(action string) {
	c.t.Helper()
	m := c.next()
	if s, ok := m.(protocol.Status); !ok || s.ResponseFor != action {
		c.t.Fatalf("child sent %#v, want the status for %s", m, action)
	}
}

// checkpoint expects a checkpoint request for seq ("" for everything
// delivered) and answers it with e ("" for success).
func (c *child) checkpoint(seq string, e protocol.CheckpointError) {
	c.t.Helper()
	m := c.next()
	req, ok := m.(protocol.CheckpointRequest)
	if !ok {
		c.t.Fatalf("child sent %#v, want a checkpoint request", m)
	}
	got := ""
	if req.SequenceNumber != nil {
		got = *req.SequenceNumber
	}
	if got != seq || (req.SubSequenceNumber != nil && *req.SubSequenceNumber != 0) {
		c.t.Fatalf("checkpoint request (%q, %v), want (%q, 0 or none)", got, req.SubSequenceNumber, seq)
	}
	c.send(protocol.AppendCheckpoint(nil, req, e))
}

// exit closes stdin and expects the child to exit 0.
func (c *child) exit() {
	c.t.Helper()
	c.stdin.Close()
	select {
	case err := <-c.done:
		if err != nil {
			c.t.Fatalf("child exited with %v after stdin closed, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		c.t.Fatal("child still running 10s after stdin closed")
	}
}

func records(seqs ...string) []protocol.Record {
	recs := make([]protocol.Record, len(seqs))
	for i, s := range seqs {
		recs[i] = protocol.Record{Data: []byte("k/" + s), PartitionKey: "k", SequenceNumber: s, ArrivalTime: time.UnixMilli(1_700_000_000_000)}
	}
	return recs
}

// The test processors, driven by hand: what they send is what the host's
// decoder accepts, they checkpoint as configured, refuse nothing the host
// says, record what they processed and exit when stdin closes.
func TestProcessorsSpeakTheProtocol(t *testing.T) {
	t.Parallel()
	for _, l := range langs {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			t.Run("checkpoint each batch, then the shard's end", func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "records.jsonl")
				c := startChild(t, l, file, "KCL_ML_FAULT=badcheckpoint", "KCL_ML_FAULT_AT=2")
				th := "TRIM_HORIZON"
				c.send(protocol.AppendInitialize(nil, protocol.Initialize{ShardID: "shardId-000000000007", SequenceNumber: &th}))
				c.status("initialize")
				c.send(protocol.AppendProcessRecords(nil, records("100", "101", "102"), nil))
				c.checkpoint("", "")
				c.status("processRecords")
				// The second batch: first a checkpoint beyond it, refused.
				c.send(protocol.AppendProcessRecords(nil, records("103"), nil))
				c.checkpoint("1000103", protocol.IllegalArgumentException)
				c.checkpoint("", "")
				c.status("processRecords")
				c.send(protocol.AppendShardEnded(nil))
				c.checkpoint("", "")
				c.status("shardEnded")
				c.exit()

				lines, err := readLines(file)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, x := range lines {
					switch {
					case x.Event == "checkpointError":
						got = append(got, "error "+x.Seq+" "+*x.Error)
					case x.Event != "":
						got = append(got, x.Event)
					default:
						got = append(got, x.Shard+" "+x.Seq+" "+string(x.Data))
					}
				}
				want := []string{
					"initialize",
					"shardId-000000000007 100 k/100", "shardId-000000000007 101 k/101", "shardId-000000000007 102 k/102",
					"error 1000103 IllegalArgumentException",
					"shardId-000000000007 103 k/103",
					"shardEnded",
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("record file:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
			t.Run("checkpoint every two records, then on shutdown", func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "records.jsonl")
				c := startChild(t, l, file, "KCL_ML_CHECKPOINT_EVERY=2", "KCL_ML_FAULT=garbage")
				c.send(protocol.AppendInitialize(nil, protocol.Initialize{ShardID: "shardId-000000000001"}))
				c.status("initialize")
				c.send(protocol.AppendProcessRecords(nil, records("200", "201", "202"), nil))
				c.checkpoint("201", "")
				c.status("processRecords")
				c.send(protocol.AppendShutdownRequested(nil))
				c.checkpoint("", "")
				c.status("shutdownRequested")
				c.send(protocol.AppendLeaseLost(nil))
				c.status("leaseLost")
				c.exit()
			})
		})
	}
}
