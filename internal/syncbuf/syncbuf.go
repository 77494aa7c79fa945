// Package syncbuf is a bytes.Buffer that a child process's stdout and stderr may write
// while another goroutine reads it: the logs of a Prometheus or canaryd started by tests
// and by `canaryd eval --backend prometheus`. It holds no other state and does no I/O.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent use. The zero value is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
