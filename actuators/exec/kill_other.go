//go:build !unix

package exec

import osexec "os/exec"

// killGroup: without process groups, only the command itself is killed.
func killGroup(cmd *osexec.Cmd) {}
