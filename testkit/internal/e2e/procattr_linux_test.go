package e2e

import "syscall"

// childAttr makes the kernel kill a worker process when the test binary
// dies (a test timeout panics without running cleanups), so that no worker
// outlives its test and keeps loading the shared emulators.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
