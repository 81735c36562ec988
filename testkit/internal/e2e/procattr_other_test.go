//go:build !linux

package e2e

import "syscall"

// childAttr has nothing to add where the kernel cannot kill children with
// their parent; t.Cleanup still kills them.
func childAttr() *syscall.SysProcAttr { return nil }
