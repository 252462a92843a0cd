package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestLimiter: requests beyond the bounds get 429 with Retry-After before
// their body is read; the ones in progress finish; once they have, new ones
// are served again. Health checks are never throttled.
func TestLimiter(t *testing.T) {
	tests := []struct {
		name        string
		maxRequests int
		maxBytes    int64
		held        []int64 // bodies of the requests held in progress
		next        int64   // the body of the next one
		gzip        bool    // the next one is sent compressed
		want        int
	}{
		{"under both bounds", 3, 1000, []int64{100, 100}, 100, false, http.StatusOK},
		{"requests bound", 2, 1000, []int64{100, 100}, 100, false, http.StatusTooManyRequests},
		{"bytes bound", 10, 1000, []int64{600}, 500, false, http.StatusTooManyRequests},
		{"unknown length counts as the largest body", 10, 1000, []int64{200}, -1, false, http.StatusTooManyRequests},
		{"one request alone always passes", 10, 100, nil, 500, false, http.StatusOK},
		{"a small compressed body passes", 10, 1000, []int64{200}, 50, true, http.StatusOK},
		{"a compressed body counts as it decompresses", 10, 1000, []int64{600}, 900, true, http.StatusTooManyRequests},
		{"a compressed body alone always passes", 10, 100, nil, 800, true, http.StatusOK},
		{"a small plain body passes", 10, 1000, []int64{200}, 50, false, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 16)
			l := NewLimiter(tc.maxRequests, tc.maxBytes, 900)
			srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Hold") != "" {
					entered <- struct{}{}
					<-release
				}
				if r.Header.Get("Content-Encoding") == "gzip" {
					// As serveEvents reads a compressed body.
					zr, err := gzip.NewReader(r.Body)
					if err != nil {
						w.WriteHeader(http.StatusBadRequest)
						return
					}
					if _, err := io.ReadAll(GrantReader(r.Context(), zr)); err != nil {
						var busy *errBusy
						if errors.As(err, &busy) {
							l.busy(w, busy.why)
							return
						}
						w.WriteHeader(http.StatusBadRequest)
						return
					}
				}
				w.WriteHeader(http.StatusOK)
			})))
			defer srv.Close()
			post := func(n int64, hold, gz bool) *http.Response {
				payload := []byte(strings.Repeat("x", int(max(n, 1))))
				if gz {
					// n bytes once decompressed, a few dozen as sent.
					var buf bytes.Buffer
					zw := gzip.NewWriter(&buf)
					zw.Write(payload)
					zw.Close()
					payload, n = buf.Bytes(), int64(buf.Len())
				}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", bytes.NewReader(payload))
				if n < 0 {
					req.ContentLength = -1 // chunked
				} else {
					req.ContentLength = n
				}
				if hold {
					req.Header.Set("X-Hold", "1")
				}
				if gz {
					req.Header.Set("Content-Encoding", "gzip")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return nil
				}
				resp.Body.Close()
				return resp
			}
			var wg sync.WaitGroup
			for _, n := range tc.held {
				wg.Go(func() {
					if resp := post(n, true, false); resp != nil && resp.StatusCode != http.StatusOK {
						t.Errorf("held request: %d", resp.StatusCode)
					}
				})
				<-entered
			}
			resp := post(tc.next, false, tc.gzip)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			// Health is never throttled.
			if r, err := http.Get(srv.URL + "/healthz"); err != nil || r.StatusCode != http.StatusOK {
				t.Errorf("health check: %v %v", r, err)
			}
			close(release)
			wg.Wait()
			if resp := post(tc.next, false, tc.gzip); resp.StatusCode != http.StatusOK {
				t.Errorf("after the others finished: %d", resp.StatusCode)
			}
		})
	}
}
