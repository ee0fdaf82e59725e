//go:build !linux

package storetest

import "os/exec"

// diesWithTestBinary is false: outside Linux a child outlives a test binary
// that exits without its cleanups (see spawn_linux.go).
const diesWithTestBinary = false

func startChild(cmd *exec.Cmd) error { return cmd.Start() }

// processAlive is always true here: orphaned directories are left alone.
func processAlive(pid int) bool { return true }
