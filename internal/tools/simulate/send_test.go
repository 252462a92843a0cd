package simulate_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/schemas"
)

// fakeIngest answers like the ingest API: it decodes the gzipped NDJSON body
// with the real contract and validator, after refusing the first requests
// with the given statuses, and rejects a correction whose target it has not
// accepted before (in an earlier request or earlier in this one) or is of
// another source, as ingest does.
type fakeIngest struct {
	mu       sync.Mutex
	refuse   []int
	batches  []int
	ids      map[string]bool
	accepted map[string]*schemas.Event
}

func (f *fakeIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer secret" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"unknown token"}`)
		return
	}
	if len(f.refuse) > 0 {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(f.refuse[0])
		fmt.Fprint(w, `{"error":"event stream is full; retry later"}`)
		f.refuse = f.refuse[1:]
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" {
		http.Error(w, "want gzip", http.StatusBadRequest)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, _ := io.ReadAll(zr)
	lines, _ := ingest.SplitBody(raw)
	contract, _ := schemas.NewContract()
	v := &schemas.Validator{Regions: schemas.DefaultRegions()}
	sum := ingest.Summary{}
	if f.accepted == nil {
		f.accepted = map[string]*schemas.Event{}
	}
	for i, line := range lines {
		e, err := contract.Decode(line)
		if err == nil {
			err = v.Validate(e)
		}
		if err == nil && e.Corrects() != "" && !f.ids[e.EventID] {
			if t := f.accepted[e.Corrects()]; t == nil || t.Source != e.Source {
				err = fmt.Errorf("%s: no event %q of this source was accepted before", map[bool]string{true: "retracts", false: "supersedes"}[e.Type == schemas.TypeRetraction], e.Corrects())
			}
		}
		switch {
		case err != nil:
			sum.Rejected++
			sum.Results = append(sum.Results, ingest.Result{Index: i, Status: ingest.StatusRejected, Reason: err.Error()})
		case f.ids[e.EventID]:
			sum.Duplicates++
			sum.Results = append(sum.Results, ingest.Result{Index: i, EventID: e.EventID, Status: ingest.StatusDuplicate})
		default:
			f.ids[e.EventID] = true
			f.accepted[e.EventID] = e
			sum.Accepted++
			sum.Results = append(sum.Results, ingest.Result{Index: i, EventID: e.EventID, Status: ingest.StatusAccepted})
		}
	}
	f.batches = append(f.batches, len(lines))
	_ = json.NewEncoder(w).Encode(sum)
}

func someEvents(t *testing.T) []schemas.Event {
	cfg := simulate.DefaultConfig()
	cfg.Regions = []string{"KZ-75"}
	cfg.Days = 12
	_, days := runSim(t, cfg)
	var all []schemas.Event
	for _, d := range days {
		all = append(all, d.events...)
	}
	return all
}

func TestSendRetriesAndCounts(t *testing.T) {
	events := someEvents(t)
	f := &fakeIngest{refuse: []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}, ids: map[string]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var retries []string
	s := &simulate.Sender{URL: srv.URL + "/v1/events", Token: "secret", Batch: 300,
		OnRetry: func(reason string, _ time.Duration) { retries = append(retries, reason) }}
	res, err := s.Send(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != len(events) || res.Accepted != len(events) || res.Rejected != 0 || res.Retries != 2 || len(retries) != 2 {
		t.Fatalf("sent %d events: %+v, retries %q", len(events), res, retries)
	}
	if !strings.Contains(retries[1], "429") || !strings.Contains(retries[1], "stream is full") {
		t.Errorf("retry reason %q", retries[1])
	}
	for i, n := range f.batches {
		if n > 300 || (i < len(f.batches)-1 && n != 300) {
			t.Fatalf("batches %v, want 300 events each", f.batches)
		}
	}
	// Re-sending the run is harmless: every event is a duplicate.
	res, err = simulate.Send(context.Background(), nil, srv.URL+"/v1/events", "secret", events)
	if err != nil || res.Duplicates != len(events) || res.Accepted != 0 {
		t.Fatalf("re-send: %+v, %v", res, err)
	}
}

func TestSendPermanentErrors(t *testing.T) {
	events := someEvents(t)[:10]
	srv := httptest.NewServer(&fakeIngest{ids: map[string]bool{}})
	defer srv.Close()
	_, err := simulate.Send(context.Background(), nil, srv.URL+"/v1/events", "wrong", events)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "unknown token") || !strings.Contains(err.Error(), "check the token") {
		t.Fatalf("bad token: %v", err)
	}
	// An event the API rejects is reported with its reason, not retried.
	bad := append([]schemas.Event(nil), events...)
	bad[3].Region = "KZ-99"
	res, err := simulate.Send(context.Background(), nil, srv.URL+"/v1/events", "secret", bad)
	if err != nil || res.Rejected != 1 || len(res.Rejections) != 1 || !strings.Contains(res.Rejections[0], "KZ-99") {
		t.Fatalf("rejected event: %+v, %v", res, err)
	}
	// An API that stays unavailable: give up after MaxWait, or when ctx ends.
	busy := &fakeIngest{refuse: []int{503, 503, 503, 503, 503, 503, 503, 503}, ids: map[string]bool{}}
	srv2 := httptest.NewServer(busy)
	defer srv2.Close()
	s := &simulate.Sender{URL: srv2.URL, Token: "secret", MaxWait: 50 * time.Millisecond}
	s.OnRetry = func(string, time.Duration) { time.Sleep(20 * time.Millisecond) }
	if _, err := s.Send(context.Background(), events); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("unavailable API: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := simulate.Send(ctx, nil, srv.URL, "secret", events); err == nil {
		t.Fatal("cancelled context: no error")
	}
}

// Sent day by day as `epiwatch simulate` does, in small requests, every
// correction reaches the API after the event it corrects, with every
// scenario on (a late upload included): nothing is rejected.
func TestSendCorrectionsAfterTargets(t *testing.T) {
	cfg := smallConfig()
	cfg.Days = 40
	cfg.RetractShare = 0.1
	_, days := runSim(t, cfg)
	f := &fakeIngest{ids: map[string]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	s := &simulate.Sender{URL: srv.URL + "/v1/events", Token: "secret", Batch: 37}
	var total simulate.SendResult
	var corrections []schemas.Event
	for _, d := range days {
		res, err := s.Send(context.Background(), d.events)
		if err != nil {
			t.Fatal(err)
		}
		total.Add(res)
		for _, e := range d.events {
			if e.Corrects() != "" {
				corrections = append(corrections, e)
			}
		}
	}
	if total.Rejected != 0 || len(corrections) == 0 {
		t.Fatalf("%d corrections sent: %+v", len(corrections), total)
	}
	// The check has teeth: corrections alone, to an API that has not seen
	// their targets, are all rejected.
	srv2 := httptest.NewServer(&fakeIngest{ids: map[string]bool{}})
	defer srv2.Close()
	res, err := simulate.Send(context.Background(), nil, srv2.URL, "secret", corrections)
	if err != nil || res.Rejected != len(corrections) {
		t.Fatalf("corrections without their targets: %+v, %v", res, err)
	}
}
