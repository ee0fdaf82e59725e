package batch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lobbyd/lobbyd/internal/batch"
)

// What is waiting goes out together, up to max at a time, in order.
func TestEach(t *testing.T) {
	in := make(chan int, 10)
	for i := range 10 {
		in <- i
	}
	close(in)
	var got [][]int
	batch.Each(in, 4, func(b []int) { got = append(got, append([]int(nil), b...)) })
	assert.Equal(t, [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}, got)
}

// EachUntil ends once stop is closed, with in still open.
func TestEachUntil(t *testing.T) {
	in := make(chan int, 10)
	stop := make(chan struct{})
	for i := range 3 {
		in <- i
	}
	var got [][]int
	batch.EachUntil(in, stop, 4, func(b []int) {
		got = append(got, append([]int(nil), b...))
		close(stop)
	})
	assert.Equal(t, [][]int{{0, 1, 2}}, got)
}
