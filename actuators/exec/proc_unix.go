//go:build unix

package exec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// procStart returns a process' start time (field 22 of /proc/PID/stat) and whether it
// has exited (a zombie counts as exited); ok is false when there is no such process.
func procStart(pid int) (start uint64, zombie, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if os.IsNotExist(err) {
			return 0, false, false
		}
		// No /proc (not Linux): only whether the pid exists is known.
		return 0, false, syscall.Kill(pid, 0) == nil
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return 0, false, false
	}
	start, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return start, f[0][0] == 'Z', true
}

// running reports whether pid is still the process that started at start.
func running(pid int, start uint64) bool {
	s, zombie, ok := procStart(pid)
	return ok && !zombie && (s == 0 || start == 0 || s == start)
}

// killOrphan kills the process group of a command past its timeout, or the process
// alone when it leads no group (a command's child found by its environment).
func killOrphan(pid int) {
	if syscall.Kill(-pid, syscall.SIGKILL) != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// withEnv returns the live processes whose initial environment holds kv exactly (found
// through /proc: Linux only; elsewhere none). Only the same user's are readable, which
// canaryd's commands are.
func withEnv(kv string) []orphanProc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	want := []byte(kv)
	var out []orphanProc
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(b, []byte{0}) {
			if bytes.Equal(v, want) {
				if st, zombie, ok := procStart(pid); ok && !zombie {
					out = append(out, orphanProc{pid, st})
				}
				break
			}
		}
	}
	return out
}
