package matchmaker

import "iter"

// inOrder runs work on each input, up to parallel at once, and hands every
// result to done in input order, each as soon as it and those before it
// are ready. It is how a pass keeps Redis busy: Redis serves one request
// while the next is prepared and the last one's reply is handled. It
// returns once every input has been worked on and handed to done; done
// runs on the caller's goroutine.
func inOrder[In, Out any](inputs iter.Seq[In], parallel int, work func(In) (Out, error), done func(In, Out, error)) {
	type call struct {
		in    In
		out   Out
		err   error
		ready chan struct{}
	}
	calls := make(chan *call, max(parallel, 1)-1)
	go func() { // ends with inputs; the loop below waits for every call
		defer close(calls)
		for in := range inputs {
			c := &call{in: in, ready: make(chan struct{})}
			calls <- c // blocks while parallel calls are started and not yet handed to done
			go func() {
				defer close(c.ready)
				c.out, c.err = work(in)
			}()
		}
	}()
	for c := range calls {
		<-c.ready
		done(c.in, c.out, c.err)
	}
}

// chanSeq iterates over what ch receives until it is closed. A loop that
// stops early leaves the sender blocked: inOrder never does.
func chanSeq[T any](ch <-chan T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}
