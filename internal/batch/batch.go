// Package batch groups values read from a channel into batches.
package batch

// Each hands what in receives to flush in batches of up to max, each
// batch taking what is already waiting, so that a burst of writes goes to
// Redis in a few pipelines while a lone one leaves at once. The slice is
// reused: flush must not keep it. Each returns once in is closed and
// drained.
func Each[T any](in <-chan T, max int, flush func([]T)) { EachUntil(in, nil, max, flush) }

// EachUntil is Each that also returns, between batches, once stop is
// closed: for a channel its senders cannot close (they may still be
// sending).
func EachUntil[T any](in <-chan T, stop <-chan struct{}, max int, flush func([]T)) {
	batch := make([]T, 0, max)
	for {
		select {
		case v, ok := <-in:
			if !ok {
				return
			}
			batch = append(batch[:0], v)
		case <-stop:
			return
		}
	more:
		for len(batch) < max {
			select {
			case v, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, v)
			default:
				break more
			}
		}
		flush(batch)
		clear(batch)
	}
}
