//go:build !unix

package exec

func procStart(pid int) (uint64, bool, bool) { return 0, false, false }

func running(pid int, start uint64) bool { return false }

func killOrphan(pid int) {}
