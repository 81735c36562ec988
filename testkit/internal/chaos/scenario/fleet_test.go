package scenario

import (
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestWorkersHaveTheirOwnProcessGroup starts a worker and checks it leads a
// process group of its own: a SIGSTOPped worker in the harness's group
// would get the kernel's SIGHUP when that group is orphaned.
func TestWorkersHaveTheirOwnProcessGroup(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(filepath.Join(dir, "harness.jsonl"), filepath.Join(dir, "faults.log"), io.Discard, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	f := &fleet{
		cmd: []string{"/bin/sh", "-c", "sleep 30", "sh"}, dir: dir, j: j, members: map[string]*member{},
		dynamoDB: func(string) (string, error) { return "http://127.0.0.1:1", nil },
	}
	if err := f.start("w1"); err != nil {
		t.Fatal(err)
	}
	defer f.stopAll(5 * time.Second)
	pid, err := f.pid("w1")
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || pgid == syscall.Getpgrp() {
		t.Fatalf("worker pid %d in process group %d (the harness's: %d), want a group of its own", pid, pgid, syscall.Getpgrp())
	}
}
