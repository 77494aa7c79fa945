//go:build unix

package exec

import (
	osexec "os/exec"
	"syscall"
)

// killGroup starts the command in its own process group and makes cancellation kill the
// whole group: a script's children (a kubectl it started) die with it.
func killGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
