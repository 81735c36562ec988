package child

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// childEnv selects the test binary's role: unset, it runs the tests; set, it
// is a child record processor behaving as the mode says.
const childEnv = "KCL_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// runChild is a tiny processor speaking the protocol on stdin and stdout the
// way aws-kcl does ("\n" before each message). It returns the exit code.
//
// Modes:
//   - well-behaved: answers every action; during initialize it asks for a
//     checkpoint and expects InvalidStateException; during processRecords it
//     asks for checkpoints "1" and then "2" and expects success, then
//     IllegalArgumentException (exit 3 otherwise); exits on stdin EOF.
//   - exit: exits with status 1 when processRecords arrives, without a status.
//   - exit-now: exits at once.
//   - hang: reads messages, never answers.
//   - garbage: before each status writes three garbage lines.
//   - wrong: answers with responseFor "bogus".
//   - stderr: before each status writes two lines to stderr, the second
//     naming its working directory and KCL_TEST_MARK.
//   - huge: answers processRecords with 1 MiB without a newline.
//   - deaf: answers like well-behaved but ignores stdin EOF.
func runChild(mode string) int {
	if mode == "exit-now" {
		return 0
	}
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(out, "\n%s\n", b)
		_ = out.Flush()
	}
	read := func() (map[string]any, bool) {
		for {
			line, err := in.ReadString('\n')
			if strings.TrimSpace(line) != "" {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) != nil {
					return nil, false
				}
				return m, true
			}
			if err != nil {
				return nil, false
			}
		}
	}
	checkpoint := func(seq string, wantErr any) bool {
		send(map[string]any{"action": "checkpoint", "sequenceNumber": seq})
		reply, ok := read()
		return ok && reply["action"] == "checkpoint" && reply["sequenceNumber"] == seq && reply["error"] == wantErr
	}
	for {
		msg, ok := read()
		if !ok {
			if mode == "deaf" {
				time.Sleep(time.Hour)
			}
			return 0
		}
		action, _ := msg["action"].(string)
		switch mode {
		case "well-behaved", "deaf":
			switch action {
			case "initialize":
				if !checkpoint("7", "InvalidStateException") {
					return 3
				}
			case "processRecords":
				if !checkpoint("1", nil) || !checkpoint("2", "IllegalArgumentException") {
					return 3
				}
			}
		case "exit":
			if action == "processRecords" {
				return 1
			}
		case "hang":
			continue
		case "garbage":
			fmt.Fprint(out, "Processing record 42\n{\"action\":\"hello\"}\n{\"action\":\"status\",\"responseFor\":\"x\",\"extra\":1}\n")
		case "wrong":
			action = "bogus"
		case "stderr":
			wd, _ := os.Getwd()
			fmt.Fprintf(os.Stderr, "Traceback (most recent call last):\ncwd=%s mark=%s\n", wd, os.Getenv("KCL_TEST_MARK"))
		case "huge":
			if action == "processRecords" {
				_, _ = out.Write(make([]byte, 1<<20))
				_ = out.Flush()
				time.Sleep(time.Hour)
			}
		}
		send(map[string]any{"action": "status", "responseFor": action})
	}
}
