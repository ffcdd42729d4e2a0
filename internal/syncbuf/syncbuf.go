package syncbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is ready to use at its zero value and safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *Buffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// String returns everything written so far.
func (w *Buffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Lines is the number of complete lines written so far.
func (w *Buffer) Lines() int { return strings.Count(w.String(), "\n") }

// Count is the number of lines that contain s.
func (w *Buffer) Count(s string) int {
	n := 0
	for _, l := range strings.Split(w.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
