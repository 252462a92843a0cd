package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Handler returns the HTTP API:
//
//	POST /v1/events   NDJSON or a JSON array of events (Content-Encoding: gzip accepted)
//	GET  /healthz     the process is alive
//	GET  /readyz      JetStream answers (ready reports whether it does)
func (in *Ingester) Handler(ready func(context.Context) error, auth Authorizer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/events", in.EventsHandler(auth))
	health := HealthHandler(ready)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	return mux
}

// EventsHandler is POST /v1/events alone, for a listener that serves the
// health checks elsewhere (http.metrics_addr).
func (in *Ingester) EventsHandler(auth Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { in.serveEvents(w, r, auth) })
}

// HealthHandler answers GET /healthz (the process is alive) and GET /readyz
// (JetStream answers: ready reports whether it does).
func HealthHandler(ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if ready != nil {
			if err := ready(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

// apiError is the body of every non-200 answer.
type apiError struct {
	Error string `json:"error"`
}

func (in *Ingester) serveEvents(w http.ResponseWriter, r *http.Request, auth Authorizer) {
	var scope *Scope
	if auth != nil {
		s, status, err := auth.Authenticate(r)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="epiwatch"`)
			}
			writeJSON(w, status, apiError{err.Error()})
			return
		}
		scope = s
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, in.cfg.MaxBodyBytes))
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"body is not valid gzip: " + err.Error()})
			return
		}
		defer zr.Close()
		// Bound the decompressed size too: a small gzip bomb must not become a
		// huge allocation. And count it against the bytes in flight as it
		// grows (Limiter): its Content-Length says nothing of its size.
		body = GrantReader(r.Context(), io.LimitReader(zr, in.cfg.MaxBodyBytes+1))
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var busy *errBusy
		if errors.As(err, &busy) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, apiError{busy.Error() + "; retry after 1 s"})
			return
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body larger than %d bytes; split it into smaller batches", in.cfg.MaxBodyBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{"read body: " + err.Error()})
		return
	}
	if int64(len(raw)) > in.cfg.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("decompressed body larger than %d bytes; split it into smaller batches", in.cfg.MaxBodyBytes)})
		return
	}
	events, err := SplitBody(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if len(events) == 0 {
		writeJSON(w, http.StatusBadRequest, apiError{"no events in the body: send NDJSON (one event per line) or a JSON array"})
		return
	}
	if len(events) > in.cfg.MaxBatch {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("%d events in one request; the limit is %d", len(events), in.cfg.MaxBatch)})
		return
	}
	if scope != nil {
		if err := scope.CheckBatch(events); err != nil {
			writeJSON(w, http.StatusForbidden, apiError{err.Error()})
			return
		}
	}
	sum, err := in.Submit(r.Context(), events)
	if err != nil {
		var ue *ErrUnavailable
		if errors.As(err, &ue) {
			w.Header().Set("Retry-After", "5")
			status := http.StatusServiceUnavailable
			if ue.Full {
				status = http.StatusTooManyRequests
			}
			writeJSON(w, status, apiError{ue.Error() + " (nothing in this request is guaranteed stored; resend it unchanged: event_ids make that safe)"})
			return
		}
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

// SplitBody splits a request body into raw events: a JSON array, or NDJSON
// (one JSON value per non-empty line). A broken NDJSON line stays a raw event
// so it is rejected on its own and its neighbours still land.
func SplitBody(raw []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("body starts with '[' but is not a valid JSON array (%v); send valid JSON or NDJSON", err)
		}
		out := make([][]byte, len(arr))
		for i, m := range arr {
			out[i] = m
		}
		return out, nil
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(make([]byte, 0, 64<<10), len(trimmed)+1)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		out = append(out, append([]byte(nil), line...))
	}
	return out, sc.Err()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
