package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/testkit/testenv"
)

// startTail starts kcl tail --follow on a one-shard stream holding one
// record, with stdout on a pipe, and returns the process, the pipe's read
// end, and a function putting more records.
func startTail(t *testing.T) (*exec.Cmd, *os.File, func()) {
	t.Helper()
	kc := testenv.Kinesis(t)
	stream := testenv.CreateStream(t, kc, 1)
	n := 0
	put := func() {
		t.Helper()
		var entries []types.PutRecordsRequestEntry
		for range 100 {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, "record %d", n)})
			n++
		}
		if _, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kclBin, "tail", stream, "--from", "trim-horizon", "--follow", "--poll-interval", "200ms",
		"--endpoint-url", testenv.KinesisEndpoint(t))
	cmd.Env = isolatedEnv(t, "AWS_ACCESS_KEY_ID=AKIDKCLTEST", "AWS_SECRET_ACCESS_KEY=kcl-test-secret", "AWS_REGION=us-east-1")
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		r.Close()
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "record 0\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	return cmd, r, put
}

// waitExit waits at most d for cmd and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("kcl tail did not stop within %v", d)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("kcl tail was killed by %v", ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

func TestTailFollowEndsWithStatus0WhenItsPipeCloses(t *testing.T) {
	cmd, r, put := startTail(t)
	r.Close() // like `kcl tail -f s | head -1`
	put()     // the next write finds the pipe closed
	if code := waitExit(t, cmd, 30*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

func TestTailFollowEndsWithStatus0OnCtrlC(t *testing.T) {
	cmd, _, _ := startTail(t)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}
