// Package proc holds the two helpers every test that starts a server needs:
// a free loopback address and a log buffer safe to write from the server's
// goroutines while the test reads it.
package proc

import (
	"bytes"
	"sync"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/loopback"
)

// FreeAddr returns a loopback address with a port free right now, failing the
// test if there is none.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := loopback.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Buffer collects a server's output; Write and String may run concurrently.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
