package ingest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Limiter bounds the ingest API's work in flight: the requests served at
// once and the request-body bytes they bring (as sent, Content-Length; a
// body of unknown length or compressed counts as the largest one accepted). Without it, a
// burst of 32 MiB requests from a misbehaving producer would hold their
// decoded events in memory all at once. A request beyond either bound is
// answered 429 with Retry-After at once, before its body is read: the
// producer retries, nothing is lost, and the requests in progress finish.
type Limiter struct {
	maxRequests int
	maxBytes    int64
	maxBody     int64
	retryAfter  int // seconds

	mu       sync.Mutex
	requests int
	bytes    int64
}

// NewLimiter bounds requests in flight to maxRequests and their bodies to
// maxBytes; maxBody is what a body of unknown length counts as (the
// ingest's MaxBodyBytes). Zero or negative bounds mean no bound.
func NewLimiter(maxRequests int, maxBytes, maxBody int64) *Limiter {
	return &Limiter{maxRequests: maxRequests, maxBytes: maxBytes, maxBody: maxBody, retryAfter: 1}
}

// acquire reserves a request of n bytes, or reports which bound it would
// cross.
func (l *Limiter) acquire(n int64) (ok bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxRequests > 0 && l.requests >= l.maxRequests {
		return false, fmt.Sprintf("%d requests in progress (ingest.max_concurrent_requests)", l.requests)
	}
	// One request alone is always let through (bounded by MaxBodyBytes).
	if l.maxBytes > 0 && l.requests > 0 && l.bytes+n > l.maxBytes {
		return false, fmt.Sprintf("%d bytes of requests in progress (ingest.max_in_flight_bytes %d)", l.bytes, l.maxBytes)
	}
	l.requests++
	l.bytes += n
	return true, ""
}

func (l *Limiter) release(n int64) {
	l.mu.Lock()
	l.requests--
	l.bytes -= n
	l.mu.Unlock()
}

// Wrap applies the bounds to the POST requests of h; other requests (health,
// readiness) pass.
func (l *Limiter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		n := r.ContentLength
		// A compressed body is held decompressed, up to maxBody: its
		// Content-Length (a 100 KiB gzip of 32 MiB of NDJSON) says nothing
		// about the memory it takes.
		gz := strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip")
		if n < 0 || gz || (l.maxBody > 0 && n > l.maxBody) {
			n = l.maxBody
		}
		ok, why := l.acquire(n)
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter))
			writeJSON(w, http.StatusTooManyRequests, apiError{"busy: " + why + "; retry after " + strconv.Itoa(l.retryAfter) + " s"})
			return
		}
		defer l.release(n)
		h.ServeHTTP(w, r)
	})
}
