// Package testutil holds helpers shared by lobbyd's tests: output
// captured from concurrent writers, and commands run in-process.
package testutil

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writes, to capture the
// output of a server or command under test.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// LineWriter captures a command's output for a test: it hands each
// complete line to Lines (dropping lines nobody reads once 64 are waiting)
// and keeps everything for String.
type LineWriter struct {
	mu      sync.Mutex
	partial []byte
	all     bytes.Buffer
	lines   chan string
}

// NewLineWriter returns an empty LineWriter.
func NewLineWriter() *LineWriter { return &LineWriter{lines: make(chan string, 64)} }

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.partial[:i]):
		default: // nobody is reading this many lines; they stay in String
		}
		w.partial = w.partial[i+1:]
	}
}

// Lines delivers each complete line written.
func (w *LineWriter) Lines() <-chan string { return w.lines }

// String returns everything written so far.
func (w *LineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
