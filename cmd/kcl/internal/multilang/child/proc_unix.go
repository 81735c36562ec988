//go:build unix

package child

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, so that a
// Ctrl-C in the host's terminal (SIGINT to the foreground group) reaches the
// host only: the host then stops gracefully and asks its children to
// finish, instead of them dying with it mid-batch.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to the child's process group: the child and
// whatever it started (a shell wrapper's interpreter, say), which would
// otherwise keep its pipes open.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
