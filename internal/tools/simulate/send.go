package simulate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// DefaultBatch is the number of events per request of Send.
const DefaultBatch = 500

// maxRejections bounds the rejection reasons a SendResult keeps.
const maxRejections = 100

// SendResult adds up the ingest API's answers.
type SendResult struct {
	Sent       int // events posted and answered
	Accepted   int
	Duplicates int // already in the stream (a re-run of the same seed)
	Rejected   int
	Retries    int // requests repeated after 429/502/503/504 or a network error
	// Rejections holds the first rejection reasons, "event_id: reason".
	Rejections []string
}

// Add adds o's counts to r (keeping at most 100 rejection reasons).
func (r *SendResult) Add(o SendResult) {
	r.Sent += o.Sent
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.Rejected += o.Rejected
	r.Retries += o.Retries
	for _, s := range o.Rejections {
		if len(r.Rejections) < maxRejections {
			r.Rejections = append(r.Rejections, s)
		}
	}
}

// Sender posts events to the ingest API (POST /v1/events) as gzipped NDJSON
// in batches. A batch the API cannot take now (429, 503: JetStream down or
// full; 502, 504: a proxy; a network error: the API is not up yet) is resent
// unchanged after the Retry-After the API asks for, or with backoff, until
// ctx ends or MaxWait passes: event_ids make the resend harmless.
type Sender struct {
	Client *http.Client // nil: a client with a 60 s timeout
	URL    string       // e.g. http://127.0.0.1:8080/v1/events
	Token  string       // bearer token; empty sends none
	Batch  int          // events per request; 0: DefaultBatch
	// MaxWait bounds the retrying of one batch; 0: five minutes.
	MaxWait time.Duration
	// OnRetry, if set, hears about each retry (for a progress line).
	OnRetry func(reason string, wait time.Duration)
}

// Send posts events with a default Sender: batches of DefaultBatch, retries
// on 429/503.
func Send(ctx context.Context, client *http.Client, url, token string, events []schemas.Event) (SendResult, error) {
	s := &Sender{Client: client, URL: url, Token: token}
	return s.Send(ctx, events)
}

// Send posts events in batches and adds up the answers. It stops at the
// first batch the API refuses for good (bad token, body too large, …).
func (s *Sender) Send(ctx context.Context, events []schemas.Event) (SendResult, error) {
	var res SendResult
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	for len(events) > 0 {
		n := min(batch, len(events))
		r, err := s.sendBatch(ctx, events[:n])
		res.Add(r)
		if err != nil {
			return res, err
		}
		events = events[n:]
	}
	return res, nil
}

// ingestSummary is the API's answer to a batch (ingest.Summary).
type ingestSummary struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Results    []struct {
		Index   int    `json:"index"`
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
	} `json:"results"`
}

func (s *Sender) sendBatch(ctx context.Context, events []schemas.Event) (SendResult, error) {
	body, err := Encode(events)
	if err != nil {
		return SendResult{}, err
	}
	return s.Post(ctx, body)
}

// Body is one request's events, encoded as the API takes them.
type Body struct {
	Gzip   []byte // gzipped NDJSON
	Events int
}

// Encode encodes events as one request body: gzipped NDJSON. A load test
// encodes its requests ahead with it, so that the clock measures the API and
// not the client.
func Encode(events []schemas.Event) (Body, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return Body{}, fmt.Errorf("encode event %s: %w", events[i].EventID, err)
		}
	}
	if err := zw.Close(); err != nil {
		return Body{}, fmt.Errorf("compress batch: %w", err)
	}
	return Body{Gzip: buf.Bytes(), Events: len(events)}, nil
}

// Post sends one encoded request, retrying like Send, and returns the API's
// answer.
func (s *Sender) Post(ctx context.Context, b Body) (SendResult, error) {
	var res SendResult
	body, n := b.Gzip, b.Events
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	maxWait := s.MaxWait
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	deadline := time.Now().Add(maxWait)
	backoff := 500 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
		if err != nil {
			return res, fmt.Errorf("POST %s: %w", s.URL, err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Content-Encoding", "gzip")
		if s.Token != "" {
			req.Header.Set("Authorization", "Bearer "+s.Token)
		}
		resp, err := client.Do(req)
		var reason string
		wait := backoff
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("POST %d events to %s: %w", n, s.URL, ctx.Err())
			}
			reason = err.Error()
		} else {
			raw, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && rerr == nil:
				var sum ingestSummary
				if err := json.Unmarshal(raw, &sum); err != nil {
					return res, fmt.Errorf("POST %s: unreadable answer (%v); is this the epiwatch ingest API?", s.URL, err)
				}
				res.Sent += n
				res.Accepted, res.Duplicates, res.Rejected = sum.Accepted, sum.Duplicates, sum.Rejected
				for _, r := range sum.Results {
					if r.Status == "rejected" && len(res.Rejections) < maxRejections {
						res.Rejections = append(res.Rejections, r.EventID+": "+r.Reason)
					}
				}
				return res, nil
			case retryable(resp.StatusCode) || rerr != nil:
				reason = resp.Status + apiMessage(raw)
				if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
					wait = ra
				}
			default:
				return res, fmt.Errorf("POST %s: %s%s%s", s.URL, resp.Status, apiMessage(raw), hint(resp.StatusCode))
			}
		}
		if time.Now().Add(wait).After(deadline) {
			return res, fmt.Errorf("POST %d events to %s: gave up after %s: %s", n, s.URL, maxWait, reason)
		}
		if s.OnRetry != nil {
			s.OnRetry(reason, wait)
		}
		res.Retries++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, fmt.Errorf("POST %d events to %s: %w (last answer: %s)", n, s.URL, ctx.Err(), reason)
		case <-t.C:
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped at
// one minute.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(0, time.Until(t))
	} else {
		return 0, false
	}
	return min(d, time.Minute), true
}

// apiMessage extracts the API's {"error": "..."} message.
func apiMessage(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return ": " + e.Error
	}
	if s := strings.TrimSpace(string(raw)); s != "" && len(s) < 300 {
		return ": " + s
	}
	return ""
}

func hint(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return " (check the token: it must be one of ingest.tokens, allowed to send every event type and region simulated)"
	case http.StatusRequestEntityTooLarge:
		return " (send smaller batches)"
	case http.StatusNotFound:
		return " (the URL should end in /v1/events)"
	}
	return ""
}
