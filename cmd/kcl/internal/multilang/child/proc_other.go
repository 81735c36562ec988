//go:build !unix

package child

import "os/exec"

func setProcessGroup(*exec.Cmd) {}

func killGroup(int) error { return nil }
