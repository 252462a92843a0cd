package alerts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// request is one HTTP delivery: where, what, and how to sign each attempt.
type request struct {
	url  string
	body []byte
	// sign, if set, adds headers to each attempt (a fresh timestamp each).
	sign func(h http.Header, now time.Time)
}

// outcome of one delivery round.
type outcome struct {
	attempts  int
	err       error // nil: delivered
	permanent bool  // the receiver refused it (4xx other than 408/429): do not retry
	stopped   bool  // the round stopped early because ctx ended
}

// post delivers r with up to cfg.MaxAttempts attempts. Network errors,
// timeouts, 5xx, 408 and 429 are retried with exponential backoff (honouring
// Retry-After up to MaxBackoff); any other 4xx is permanent. An attempt in
// flight when ctx ends is finished (bounded by Timeout) so the outcome is
// known; no further attempt starts.
func (a *Alerter) post(ctx context.Context, r request) outcome {
	var o outcome
	delay := a.cfg.Backoff
	for o.attempts < a.cfg.MaxAttempts {
		o.attempts++
		retryAfter, permanent, err := a.attempt(ctx, r)
		if err == nil {
			o.err = nil
			return o
		}
		o.err, o.permanent = fmt.Errorf("attempt %d: %w", o.attempts, err), permanent
		if permanent || o.attempts >= a.cfg.MaxAttempts {
			return o
		}
		wait := min(max(delay, retryAfter), a.cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			o.stopped = true
			return o
		case <-t.C:
		}
		delay = min(delay*2, a.cfg.MaxBackoff)
	}
	return o
}

// attempt makes one POST. It returns the Retry-After asked for,
// whether an error is permanent, and the error.
func (a *Alerter) attempt(ctx context.Context, r request) (time.Duration, bool, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return 0, true, fmt.Errorf("build request to %s: %w", r.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "epiwatch-alerter")
	if r.sign != nil {
		r.sign(req.Header, a.now())
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("POST %s: %w", r.url, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, false, nil
	}
	err = fmt.Errorf("POST %s: %s: %s", r.url, resp.Status, bytes.TrimSpace(snippet))
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return retryAfter(resp.Header.Get("Retry-After"), a.now()), false, err
	}
	return 0, true, err
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
