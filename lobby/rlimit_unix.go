//go:build unix

package lobby

import "syscall"

// openFilesLimit returns the process's open-files limit (0: unknown).
func openFilesLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 0
	}
	return int(l.Cur)
}
