//go:build !unix

package lobby

// openFilesLimit returns the process's open-files limit (0: unknown).
func openFilesLimit() int { return 0 }
