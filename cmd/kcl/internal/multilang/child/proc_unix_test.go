//go:build unix

package child

import (
	"syscall"
	"testing"
)

// A child runs in a process group of its own, so that a terminal's SIGINT to
// the host's group does not kill it mid-batch while the host stops
// gracefully.
func TestChildRunsInAProcessGroupOfItsOwn(t *testing.T) {
	c, _ := start(t, "well-behaved", Spec{})
	pgid, err := syscall.Getpgid(c.PID())
	if err != nil {
		t.Fatalf("Getpgid: %v", err)
	}
	if pgid != c.PID() || pgid == syscall.Getpgrp() {
		t.Errorf("child's process group %d (child %d, host's group %d), want a group of its own", pgid, c.PID(), syscall.Getpgrp())
	}
}
