package lobby

import (
	"sync"
	"time"
)

// workers runs the deep work of connections (requests, attach, writes) on
// goroutines kept for reuse, so that a connection's own goroutine, which
// only reads, keeps a small stack while it waits. A new goroutine starts
// with a small stack and grows it by copying as a request goes deep
// (JSON, Redis, the socket): reusing the workers pays that once per
// worker, not once per request. A task never waits for a free worker: if
// none is idle a new one starts, so one slow request never holds up
// another; a worker idle for workerIdle ends.
type workers struct {
	tasks chan func()
	stop  chan struct{}
	wg    sync.WaitGroup
}

// workerIdle is how long a worker waits for a task before it ends.
const workerIdle = 10 * time.Second

func newWorkers() *workers {
	return &workers{tasks: make(chan func()), stop: make(chan struct{})}
}

// goRun runs f on a worker and returns at once.
func (w *workers) goRun(f func()) {
	select {
	case w.tasks <- f: // an idle worker took it
	default:
		w.wg.Add(1)
		go w.work(f)
	}
}

// run runs f on a worker and returns once it has.
func (w *workers) run(f func()) {
	done := make(chan struct{})
	w.goRun(func() {
		defer close(done)
		f()
	})
	<-done
}

func (w *workers) work(f func()) {
	defer w.wg.Done()
	f()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case f := <-w.tasks:
			f()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close ends the idle workers and waits for every worker to end; tasks
// under way are finished first. Nothing may be run after close.
func (w *workers) close() {
	close(w.stop)
	w.wg.Wait()
}
