// Package loopback finds free ports on 127.0.0.1 for servers that the bench
// and the tests start next to each other (embedded NATS, HTTP listeners,
// Alertmanager).
package loopback

import (
	"fmt"
	"net"
)

// FreeAddr returns a loopback address whose port was free a moment ago. The
// port is released before returning, so another process could take it in
// between; callers start their server at once and fail loudly if it is taken.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
