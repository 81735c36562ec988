package host

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// TestMain runs the test binary as a child record processor when
// KCL_HOST_TEST_CHILD is set (see testChild), and as the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv("KCL_HOST_TEST_CHILD") != "" {
		os.Exit(testChild())
	}
	os.Exit(m.Run())
}

// testChild is a MultiLangDaemon record processor for the tests, speaking
// the protocol with encoding/json as a client library would. It appends one
// line per record and per lifecycle message to the file KCL_HOST_TEST_LOG:
// "rec SHARD SEQ SUB DATA", "init SHARD SEQ", "ckpt ERROR" (the reply's
// error, or "ok"), "end ACTION". Behaviour:
//   - KCL_HOST_TEST_CHECKPOINT=batch: checkpoint (no sequence number) after
//     every processRecords; otherwise only at shardEnded and
//     shutdownRequested;
//   - KCL_HOST_TEST_CRASH_ONCE=FILE: if FILE does not exist, create it and
//     exit in the middle of the second processRecords call, before
//     recording it;
//   - KCL_HOST_TEST_DIE_AFTER_CHECKPOINT=FILE: if FILE does not exist,
//     create it and, in the second processRecords call, record the records,
//     ask for a checkpoint and exit without reading the reply;
//   - KCL_HOST_TEST_BEYOND=1: in the first processRecords, ask for a
//     checkpoint beyond the batch and record the reply.
func testChild() int {
	logf, err := os.OpenFile(os.Getenv("KCL_HOST_TEST_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer logf.Close()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 64<<20)
	out := bufio.NewWriter(os.Stdout)
	send := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(append(append([]byte("\n"), b...), '\n'))
		out.Flush()
	}
	var shard string
	checkpoint := func(seq *string) {
		send(map[string]any{"action": "checkpoint", "sequenceNumber": seq})
		for in.Scan() {
			var m struct {
				Action string  `json:"action"`
				Error  *string `json:"error"`
			}
			if json.Unmarshal(in.Bytes(), &m) != nil || m.Action != "checkpoint" {
				continue
			}
			e := "ok"
			if m.Error != nil {
				e = *m.Error
			}
			fmt.Fprintf(logf, "ckpt %s\n", e)
			return
		}
	}
	calls := 0
	for in.Scan() {
		var m struct {
			Action         string  `json:"action"`
			ShardID        string  `json:"shardId"`
			SequenceNumber *string `json:"sequenceNumber"`
			Records        []struct {
				Data     string `json:"data"`
				Seq      string `json:"sequenceNumber"`
				Sub      int64  `json:"subSequenceNumber"`
				Key      string `json:"partitionKey"`
				Arrival  *int64 `json:"approximateArrivalTimestamp"`
				Constant string `json:"action"`
			} `json:"records"`
		}
		if len(in.Bytes()) == 0 {
			continue
		}
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			fmt.Fprintln(os.Stderr, "bad line from host:", err)
			return 3
		}
		switch m.Action {
		case "initialize":
			shard = m.ShardID
			seq := "null"
			if m.SequenceNumber != nil {
				seq = *m.SequenceNumber
			}
			fmt.Fprintf(logf, "init %s %s\n", shard, seq)
		case "processRecords":
			calls++
			if f := os.Getenv("KCL_HOST_TEST_CRASH_ONCE"); f != "" && calls == 2 {
				if _, err := os.Stat(f); err != nil {
					os.WriteFile(f, nil, 0o644)
					return 4
				}
			}
			for _, r := range m.Records {
				data, _ := base64.StdEncoding.DecodeString(r.Data)
				fmt.Fprintf(logf, "rec %s %s %d %s\n", shard, r.Seq, r.Sub, data)
			}
			if f := os.Getenv("KCL_HOST_TEST_DIE_AFTER_CHECKPOINT"); f != "" && calls == 2 {
				if _, err := os.Stat(f); err != nil {
					// Ask for the checkpoint, and die before reading the
					// reply: the host stores it, then finds the child gone.
					send(map[string]any{"action": "checkpoint", "sequenceNumber": nil})
					os.WriteFile(f, nil, 0o644)
					return 5
				}
			}
			if os.Getenv("KCL_HOST_TEST_BEYOND") != "" && calls == 1 && len(m.Records) > 0 {
				beyond := m.Records[len(m.Records)-1].Seq + "0"
				checkpoint(&beyond)
			}
			if os.Getenv("KCL_HOST_TEST_CHECKPOINT") == "batch" {
				checkpoint(nil)
			}
		case "shardEnded", "shutdownRequested":
			fmt.Fprintf(logf, "end %s %s\n", shard, m.Action)
			checkpoint(nil)
		case "leaseLost":
			fmt.Fprintf(logf, "end %s %s\n", shard, m.Action)
		}
		send(map[string]string{"action": "status", "responseFor": m.Action})
	}
	return 0
}
