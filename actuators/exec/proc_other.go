//go:build !unix

package exec

func procStart(pid int) (uint64, bool, bool) { return 0, false, false }

func running(pid int, start uint64) bool { return false }

func killOrphan(pid int) {}

// withEnv cannot look into other processes here.
func withEnv(kv string) []orphanProc { return nil }
