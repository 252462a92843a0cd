package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Limiter bounds the ingest API's work in flight: the requests served at
// once and the request-body bytes they bring. A request reserves its
// Content-Length (a body of unknown length, or longer than the largest one
// accepted, counts as that largest one) and a compressed body grows its
// reservation as it is decompressed (grant, GrantReader): its
// Content-Length (a 100 KiB gzip of 32 MiB of NDJSON) says nothing about
// the memory it takes, but counting every compressed request as the
// largest possible one would refuse small gzipped batches under load.
// Without it, a burst of 32 MiB requests from a misbehaving producer would
// hold their decoded events in memory all at once. A request beyond either
// bound is answered 429 with Retry-After (at once, before its body is read,
// or as soon as its decompressed body would cross the bound): the producer
// retries, nothing is lost, and the requests in progress finish.
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

// grant is one request's reservation, which its decompressed body grows.
// Only the request's own goroutine touches n.
type grant struct {
	l *Limiter
	n int64
}

// grow raises the reservation to n bytes, unless that crosses the bytes
// bound while other requests are in progress.
func (g *grant) grow(n int64) (ok bool, why string) {
	delta := n - g.n
	if delta <= 0 {
		return true, ""
	}
	l := g.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxBytes > 0 && l.requests > 1 && l.bytes+delta > l.maxBytes {
		return false, fmt.Sprintf("%d bytes of requests in progress (ingest.max_in_flight_bytes %d)", l.bytes, l.maxBytes)
	}
	l.bytes += delta
	g.n = n
	return true, ""
}

type grantKey struct{}

// errBusy is a decompressed body outgrowing what may be in flight now.
type errBusy struct{ why string }

func (e *errBusy) Error() string { return "busy: " + e.why }

// GrantReader counts r, a request's decompressed body, against the
// request's reservation (Limiter.Wrap), growing it ahead as the body grows
// (doubling, up to maxBody); a read that would cross the bytes bound fails
// with an error the handler answers 429. Without a Limiter it returns r.
func GrantReader(ctx context.Context, r io.Reader) io.Reader {
	g, _ := ctx.Value(grantKey{}).(*grant)
	if g == nil {
		return r
	}
	return &grantReader{r: r, g: g}
}

type grantReader struct {
	r    io.Reader
	g    *grant
	read int64
}

func (gr *grantReader) Read(p []byte) (int, error) {
	n, err := gr.r.Read(p)
	gr.read += int64(n)
	if gr.read > gr.g.n {
		to := max(2*gr.g.n, gr.read)
		if m := gr.g.l.maxBody; m > 0 {
			to = max(min(to, m), gr.read)
		}
		if ok, why := gr.g.grow(to); !ok {
			return n, &errBusy{why}
		}
	}
	return n, err
}

// busy answers 429 with Retry-After.
func (l *Limiter) busy(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter))
	writeJSON(w, http.StatusTooManyRequests, apiError{"busy: " + why + "; retry after " + strconv.Itoa(l.retryAfter) + " s"})
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
		if n < 0 || (l.maxBody > 0 && n > l.maxBody) {
			n = l.maxBody
		}
		ok, why := l.acquire(n)
		if !ok {
			l.busy(w, why)
			return
		}
		g := &grant{l: l, n: n}
		defer func() { l.release(g.n) }()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), grantKey{}, g)))
	})
}
