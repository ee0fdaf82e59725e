//go:build linux

package storetest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// diesWithTestBinary says that the processes startChild starts are killed
// when the test binary exits, even when it never runs its cleanups (a panic,
// a -timeout): see startChild.
const diesWithTestBinary = true

var spawner struct {
	once sync.Once
	jobs chan spawnJob
}

type spawnJob struct {
	cmd  *exec.Cmd
	done chan error
}

// startChild starts cmd with PR_SET_PDEATHSIG set to SIGKILL, so the
// kernel kills it when its parent goes away. The parent the kernel watches
// is the thread that forked, not the process, and Go may end threads, so
// every child is started from one goroutine locked to its thread, which
// lives as long as the test binary.
func startChild(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.jobs = make(chan spawnJob)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays until exit
			for j := range spawner.jobs {
				j.done <- j.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	spawner.jobs <- spawnJob{cmd: cmd, done: done}
	return <-done
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
