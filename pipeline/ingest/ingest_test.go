package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/schemas"
)

// testPseudo is a stand-in for pipeline/ingest/pseudo in these transport
// tests (pure logic; the real one is tested in its package and end to end).
type testPseudo struct{}

var digits = regexp.MustCompile(`[0-9]{12,14}`)

func (testPseudo) Apply(e *schemas.Event) error {
	for _, p := range e.Persons() {
		p.Pseudonym, p.KeyID = "p-"+strings.Repeat("x", len(p.NationalID)%5), "test"
		p.NationalID, p.Name, p.Phone, p.Address, p.BirthDate = "", "", "", "", ""
	}
	return nil
}
func (testPseudo) Redact(raw []byte) []byte { return digits.ReplaceAll(raw, []byte("[redacted]")) }

func newIngester(t *testing.T) (*ingest.Ingester, *streamtest.Server) {
	t.Helper()
	return newIngesterWith(t, ingest.Config{MaxBodyBytes: 1 << 16, MaxBatch: 100}, nil)
}

func newIngesterWith(t *testing.T, cfg ingest.Config, reg prometheus.Registerer) (*ingest.Ingester, *streamtest.Server) {
	t.Helper()
	s := streamtest.New(t)
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(cfg, ingest.Deps{
		Contract: c, Validator: &schemas.Validator{Regions: schemas.DefaultRegions()},
		Pseudo: testPseudo{}, Bus: s.Bus, Refs: s.Refs(), Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return in, s
}

const (
	goodCase = `{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`
	goodBeds = `{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f1","snapshot_time":"2020-07-01T08:00:00Z","bed_kind":"infectious","total":10,"occupied":5}`
	badBeds  = `{"event_id":"b2","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f1","snapshot_time":"2020-07-01T08:00:00Z","bed_kind":"infectious","total":10,"occupied":11}`
	badJSON  = `{"event_id":"c9","type":"case", "person":{"national_id":"900101300017"`
)

func post(t *testing.T, h http.Handler, body []byte, hdr map[string]string) (*httptest.ResponseRecorder, ingest.Summary) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var sum ingest.Summary
	if rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), &sum); err != nil {
			t.Fatalf("answer %s: %v", rec.Body, err)
		}
	}
	return rec, sum
}

func TestMixedBatchNDJSON(t *testing.T) {
	in, s := newIngester(t)
	h := in.Handler(nil, nil)
	body := strings.Join([]string{goodCase, badJSON, goodBeds, badBeds}, "\n")
	rec, sum := post(t, h, []byte(body), nil)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if sum.Accepted != 2 || sum.Rejected != 2 {
		t.Fatalf("summary %+v", sum)
	}
	want := []struct{ status, id, reason string }{
		{"accepted", "c1", ""}, {"rejected", "", "malformed JSON"}, {"accepted", "b1", ""}, {"rejected", "b2", "exceeds 10 total"},
	}
	for i, w := range want {
		r := sum.Results[i]
		if r.Index != i || r.Status != w.status || r.EventID != w.id || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
	}
	// Accepted events are in the stream, pseudonymised; rejected ones are not.
	ctx := context.Background()
	st, _ := s.JS.Stream(ctx, schemas.StreamEvents)
	m, err := st.GetLastMsgForSubject(ctx, s.Refs().Subject("t", "c1", schemas.TypeCase, "KZ-75"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(m.Data, []byte("900101300017")) || !bytes.Contains(m.Data, []byte(`"pseudonym"`)) {
		t.Fatalf("stream carries %s", m.Data)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("events stream holds %d, want 2", info.State.Msgs)
	}
	// Dead letters keep the reason and the redacted original bytes.
	dl, _ := s.JS.Stream(ctx, schemas.StreamDeadLetter)
	dinfo, _ := dl.Info(ctx)
	if dinfo.State.Msgs != 2 {
		t.Fatalf("dead-letter stream holds %d, want 2", dinfo.State.Msgs)
	}
	got := []string{}
	for seq := uint64(1); seq <= 2; seq++ {
		raw, err := dl.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw.Data, []byte("900101300017")) {
			t.Fatalf("dead letter carries a national ID: %s", raw.Data)
		}
		got = append(got, raw.Header.Get(schemas.HeaderReason))
	}
	if !strings.Contains(got[0], "malformed JSON") || !strings.Contains(got[1], "occupied") {
		t.Fatalf("dead-letter reasons %q", got)
	}
}

func TestResubmitIsDuplicate(t *testing.T) {
	in, _ := newIngester(t)
	h := in.Handler(nil, nil)
	body := []byte("[" + goodCase + "," + goodBeds + "]")
	if rec, sum := post(t, h, body, nil); rec.Code != 200 || sum.Accepted != 2 {
		t.Fatalf("first: %d %+v", rec.Code, sum)
	}
	rec, sum := post(t, h, body, nil)
	if rec.Code != 200 || sum.Accepted != 0 || sum.Duplicates != 2 {
		t.Fatalf("second: %d %+v", rec.Code, sum)
	}
}

func TestGzipAndLimits(t *testing.T) {
	in, _ := newIngester(t)
	h := in.Handler(nil, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(goodCase))
	zw.Close()
	if rec, sum := post(t, h, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}); rec.Code != 200 || sum.Accepted != 1 {
		t.Fatalf("gzip: %d %s", rec.Code, rec.Body)
	}
	big := bytes.Repeat([]byte(goodCase+"\n"), 1000) // > 64 KiB
	if rec, _ := post(t, h, big, nil); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "larger than") {
		t.Fatalf("oversized body: %d %s", rec.Code, rec.Body)
	}
	many := bytes.Repeat([]byte("{}\n"), 101)
	if rec, _ := post(t, h, many, nil); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "limit is 100") {
		t.Fatalf("too many events: %d %s", rec.Code, rec.Body)
	}
	if rec, _ := post(t, h, []byte("[1,"), nil); rec.Code != 400 {
		t.Fatalf("broken array: %d %s", rec.Code, rec.Body)
	}
	// gzip bomb: decompresses beyond the limit.
	gz.Reset()
	zw = gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	zw.Close()
	if rec, _ := post(t, h, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip bomb: %d %s", rec.Code, rec.Body)
	}
}

func TestTokensAndScopes(t *testing.T) {
	in, s := newIngester(t)
	tok, err := ingest.NewTokens([]ingest.TokenConfig{{Name: "almaty-lis", SHA256: ingest.HashToken("s3cret-almaty"), Types: []string{"case", "lab_test"}, Regions: []string{"KZ-75"}, Sources: []string{"t"}}})
	if err != nil {
		t.Fatal(err)
	}
	h := in.Handler(nil, tok)
	if rec, _ := post(t, h, []byte(goodCase), nil); rec.Code != 401 {
		t.Fatalf("no token: %d", rec.Code)
	}
	if rec, _ := post(t, h, []byte(goodCase), map[string]string{"Authorization": "Bearer wrong"}); rec.Code != 401 || strings.Contains(rec.Body.String(), "wrong") {
		t.Fatalf("bad token: %d %s", rec.Code, rec.Body)
	}
	auth := map[string]string{"Authorization": "Bearer s3cret-almaty"}
	rec, _ := post(t, h, []byte(goodCase+"\n"+goodBeds), auth)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), `may not send \"bed_snapshot\"`) {
		t.Fatalf("out of scope: %d %s", rec.Code, rec.Body)
	}
	info, _ := s.JS.Stream(context.Background(), schemas.StreamEvents)
	if st, _ := info.Info(context.Background()); st.State.Msgs != 0 {
		t.Fatalf("a forbidden request published %d events", st.State.Msgs)
	}
	if rec, sum := post(t, h, []byte(goodCase), auth); rec.Code != 200 || sum.Accepted != 1 {
		t.Fatalf("in scope: %d %s", rec.Code, rec.Body)
	}
}

// TestTokenSources: a token publishes only events of the sources it owns
// (its sources, or its name alone); a request with any other source is
// refused whole with 403, nothing of it published, and the refusal does
// not quote the foreign source.
func TestTokenSources(t *testing.T) {
	event := func(id, source string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"case","region":"KZ-75","source":%q,"person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`, id, source)
	}
	tests := []struct {
		name    string
		sources []string // of the token "lis-1"
		body    []string
		status  int
	}{
		{"own source", []string{"lis-1", "lis-2"}, []string{event("c1", "lis-2")}, 200},
		{"name is the default source", nil, []string{event("c1", "lis-1")}, 200},
		{"another source", []string{"lis-1"}, []string{event("c1", "his-9")}, 403},
		{"another source beside an own one", nil, []string{event("c1", "lis-1"), event("c1", "his-9")}, 403},
		{"an empty source is nobody's", nil, []string{event("c1", "")}, 403},
		{"no source: rejected by validation", nil, []string{`{"event_id":"c1","type":"case","region":"KZ-75","report_date":"2020-07-01"}`}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, s := newIngester(t)
			tok, err := ingest.NewTokens([]ingest.TokenConfig{{Name: "lis-1", SHA256: ingest.HashToken("s3cret"), Sources: tc.sources}})
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := post(t, in.Handler(nil, tok), []byte(strings.Join(tc.body, "\n")), map[string]string{"Authorization": "Bearer s3cret"})
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status != 403 {
				return
			}
			if strings.Contains(rec.Body.String(), "his-9") || !strings.Contains(rec.Body.String(), "may not send events of this source") {
				t.Errorf("refusal %s", rec.Body)
			}
			if n := len(streamtest.Messages(t, s.JS, schemas.StreamEvents)); n != 0 {
				t.Errorf("a forbidden request published %d events", n)
			}
		})
	}
	for _, bad := range [][]string{{""}, {" lis"}} {
		if _, err := ingest.NewTokens([]ingest.TokenConfig{{Name: "x", SHA256: ingest.HashToken("s"), Sources: bad}}); err == nil || !strings.Contains(err.Error(), "ingest.tokens[0] (x): sources") {
			t.Errorf("sources %q: %v", bad, err)
		}
	}
}

func TestNATSDownAnswers503(t *testing.T) {
	in, s := newIngester(t)
	h := in.Handler(nil, nil)
	if rec, sum := post(t, h, []byte(goodCase), nil); rec.Code != 200 || sum.Accepted != 1 {
		t.Fatalf("before outage: %d", rec.Code)
	}
	s.Embedded.Shutdown()
	s.Embedded = nil
	rec, _ := post(t, h, []byte(goodBeds), nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "retry") {
		t.Fatalf("during outage: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

// TestEventIDStoredOnce: an event_id is stored once, for ever. The same
// content again is a duplicate; other content under it — a different
// count, type or region, in the same request or a later one, inside the
// stream's duplicate window or after it — is rejected with a reason and
// dead-lettered, and the stored event stays as it was.
func TestEventIDStoredOnce(t *testing.T) {
	const (
		first   = `{"event_id":"x.1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`
		sameAs  = first
		newDate = `{"event_id":"x.1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-02"}`
		newKind = `{"event_id":"x.1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f1","snapshot_time":"2020-07-01T08:00:00Z","bed_kind":"infectious","total":10,"occupied":5}`
		other   = `{"event_id":"x:1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`
		// Another producer's x.1: ids are scoped to their source.
		otherSource = `{"event_id":"x.1","type":"case","region":"KZ-75","source":"u","person":{"national_id":"900101300017"},"report_date":"2020-07-02"}`
	)
	tests := []struct {
		name        string
		later       []string // the second request, after [first]
		afterWindow bool     // the duplicate window has passed before it
		want        []string // statuses of the second request
	}{
		{"retry", []string{sameAs}, false, []string{"duplicate"}},
		{"retry after the window", []string{sameAs}, true, []string{"duplicate"}},
		{"other content", []string{newDate}, false, []string{"rejected"}},
		{"other content after the window", []string{newDate}, true, []string{"rejected"}},
		{"other type and region", []string{newKind}, false, []string{"rejected"}},
		{"other type and region after the window", []string{newKind}, true, []string{"rejected"}},
		{"repeats in one request", []string{other, other, newDate, other}, false, []string{"accepted", "duplicate", "rejected", "duplicate"}},
		{"a similar id is another event", []string{other}, true, []string{"accepted"}},
		{"another source's equal id is another event", []string{otherSource, otherSource}, false, []string{"accepted", "duplicate"}},
		{"another source's equal id after the window", []string{otherSource, newDate}, true, []string{"accepted", "rejected"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, s := newIngester(t)
			if tc.afterWindow {
				updateEvents(t, s, func(c *jetstream.StreamConfig) { c.Duplicates = 200 * time.Millisecond })
			}
			h := in.Handler(nil, nil)
			if rec, sum := post(t, h, []byte(first), nil); rec.Code != 200 || sum.Accepted != 1 {
				t.Fatalf("first: %d %s", rec.Code, rec.Body)
			}
			if tc.afterWindow {
				time.Sleep(500 * time.Millisecond)
			}
			rec, sum := post(t, h, []byte(strings.Join(tc.later, "\n")), nil)
			if rec.Code != 200 {
				t.Fatalf("second: %d %s", rec.Code, rec.Body)
			}
			rejected := 0
			for i, w := range tc.want {
				r := sum.Results[i]
				if r.Status != w {
					t.Errorf("event %d: %s (%s), want %s", i, r.Status, r.Reason, w)
				}
				if w == "rejected" {
					rejected++
					if !strings.Contains(r.Reason, "already accepted with different content") {
						t.Errorf("event %d: reason %q", i, r.Reason)
					}
				}
			}
			// One stored event per source and event_id, the first content
			// kept, on the subject and with the message id of its ref.
			refs := s.Refs()
			events := streamtest.Messages(t, s.JS, schemas.StreamEvents)
			byID := map[string][]byte{}
			for _, m := range events {
				var e schemas.Event
				if err := json.Unmarshal(m.Data, &e); err != nil {
					t.Fatal(err)
				}
				key := e.Source + "/" + e.EventID
				if _, dup := byID[key]; dup {
					t.Fatalf("%s stored twice", key)
				}
				byID[key] = m.Data
				ref := refs.Ref(e.Source, e.EventID)
				if id := m.Header.Get("Nats-Msg-Id"); id != ref {
					t.Errorf("%s: Nats-Msg-Id %s, want its ref %s", key, id, ref)
				}
				if want := refs.Subject(e.Source, e.EventID, e.Type, e.Region); m.Subject != want {
					t.Errorf("%s: subject %s, want %s", key, m.Subject, want)
				}
			}
			if !bytes.Contains(byID["t/x.1"], []byte(`"report_date":"2020-07-01"`)) {
				t.Errorf("stored x.1 = %s", byID["t/x.1"])
			}
			if dl := streamtest.Messages(t, s.JS, schemas.StreamDeadLetter); len(dl) != rejected {
				t.Errorf("%d dead letters, want %d", len(dl), rejected)
			}
		})
	}
}

// TestAtomicBatches: a request's events are stored as atomic batches of at
// most stream.MaxAtomicBatch (one acknowledgement and, under sync "always",
// one fsync each), or one by one if so configured; a stream that does not
// allow atomic publish, or a batch refused as a whole for one stored
// event_id, is published event by event with the same answers.
func TestAtomicBatches(t *testing.T) {
	event := func(i int, region string) string {
		return fmt.Sprintf(`{"event_id":"a%d","type":"case","region":"%s","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`, i, region)
	}
	body := func(from, to int, region string) []byte {
		var lines []string
		for i := from; i < to; i++ {
			lines = append(lines, event(i, region))
		}
		return []byte(strings.Join(lines, "\n"))
	}
	tests := []struct {
		name        string
		noAtomic    bool
		each        bool   // Config.PublishEach
		before      []byte // posted first
		body        []byte
		accepted    int
		duplicates  int
		rejected    int
		batches     int    // distinct Nats-Batch-Id among the stored events
		fallbackFor string // the metric's reason label, if any
	}{
		{name: "one batch", body: body(0, 700, "KZ-75"), accepted: 700, batches: 1},
		{name: "split at the limit", body: body(0, 2500, "KZ-75"), accepted: 2500, batches: 3},
		{name: "configured one by one", each: true, body: body(0, 300, "KZ-75"), accepted: 300},
		{name: "stream without atomic publish", noAtomic: true, body: body(0, 300, "KZ-75"), accepted: 300, fallbackFor: "atomic_disabled"},
		{name: "a retry inside the window", before: body(0, 10, "KZ-75"), body: body(5, 20, "KZ-75"), accepted: 10, duplicates: 5, fallbackFor: "duplicate_id"},
		{name: "a reused id", before: body(0, 1, "KZ-75"), body: []byte(event(0, "KZ-71") + "\n" + event(1, "KZ-71")), accepted: 1, rejected: 1, fallbackFor: "duplicate_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			in, s := newIngesterWith(t, ingest.Config{MaxBodyBytes: 8 << 20, MaxBatch: 5000, PublishEach: tc.each}, reg)
			if tc.noAtomic {
				updateEvents(t, s, func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false })
			}
			h := in.Handler(nil, nil)
			if tc.before != nil {
				if rec, _ := post(t, h, tc.before, nil); rec.Code != 200 {
					t.Fatalf("first: %d %s", rec.Code, rec.Body)
				}
			}
			rec, sum := post(t, h, tc.body, nil)
			if rec.Code != 200 || sum.Accepted != tc.accepted || sum.Duplicates != tc.duplicates || sum.Rejected != tc.rejected {
				t.Fatalf("answer %d: %d accepted, %d duplicates, %d rejected, want %d, %d, %d",
					rec.Code, sum.Accepted, sum.Duplicates, sum.Rejected, tc.accepted, tc.duplicates, tc.rejected)
			}
			ids := map[string]bool{}
			msgs := streamtest.Messages(t, s.JS, schemas.StreamEvents)
			for _, m := range msgs[len(msgs)-tc.accepted:] {
				if id := m.Header.Get("Nats-Batch-Id"); id != "" {
					ids[id] = true
				}
			}
			if len(ids) != tc.batches {
				t.Errorf("the request's events came in %d atomic batches, want %d", len(ids), tc.batches)
			}
			fallbacks := map[string]float64{}
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "epiwatch_ingest_batch_fallbacks_total" {
					for _, m := range mf.GetMetric() {
						fallbacks[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
			if (tc.fallbackFor == "") != (len(fallbacks) == 0) || tc.fallbackFor != "" && fallbacks[tc.fallbackFor] == 0 {
				t.Errorf("fallbacks %v, want %q", fallbacks, tc.fallbackFor)
			}
		})
	}
}

// updateEvents changes the events stream's configuration.
func updateEvents(t *testing.T, s *streamtest.Server, change func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	change(&cfg)
	if _, err := s.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestCorrections: a retraction or a new version is accepted only for an
// event accepted before (or earlier in the same request), from the same
// source, of a type that can be corrected; each refusal says why, and the
// valid events of the request still land.
func TestCorrections(t *testing.T) {
	in, _ := newIngester(t)
	h := in.Handler(nil, nil)
	lab := `{"event_id":"t1","type":"lab_test","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"sample_date":"2020-07-01","result_date":"2020-07-02","test_kind":"pcr","result":"positive"}`
	// Another producer's c1, in another region: ids are scoped to their
	// source, so corrections of "c1" find the one of their own source.
	otherC1 := `{"event_id":"c1","type":"case","region":"KZ-71","source":"u","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`
	if _, sum := post(t, h, []byte(goodCase+"\n"+goodBeds+"\n"+lab+"\n"+otherC1+"\n"), nil); sum.Accepted != 4 {
		t.Fatalf("setup: %+v", sum)
	}
	retract := func(id, region, source, target string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"retraction","region":%q,"source":%q,"retracts":%q,"retraction_reason":"discarded","report_date":"2020-07-03"}`, id, region, source, target)
	}
	newCase := `{"event_id":"c2","type":"case","region":"KZ-71","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","supersedes":"c1"}`
	batch := []string{
		retract("r-ok", "KZ-75", "t", "t1"), // accepted
		newCase,                             // accepted: moved to KZ-71
		retract("r-unknown", "KZ-75", "t", "nope"),  // no such event
		retract("r-source", "KZ-75", "other", "c1"), // another source
		retract("r-beds", "KZ-71", "t", "b1"),       // not correctable
		retract("r-region", "KZ-71", "t", "c1"),     // wrong region
		`{"event_id":"c3","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","supersedes":"t1"}`, // other type
		`{"event_id":"c4","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-02"}`,
		retract("r-batch", "KZ-75", "t", "c4"), // its target came earlier in the request
		retract("r-u", "KZ-71", "u", "c1"),     // u's c1 (t's is in KZ-75)
		`{"event_id":"c5","type":"case","region":"KZ-75","source":"u","person":{"national_id":"900101300017"},"report_date":"2020-07-02","supersedes":"c4"}`, // t's c4, not u's
	}
	_, sum := post(t, h, []byte(strings.Join(batch, "\n")+"\n"), nil)
	want := map[string]string{
		"r-ok": "", "c2": "", "c4": "", "r-batch": "", "r-u": "",
		"r-unknown": `retracts: no event of source "t" with that event_id was accepted before`,
		"r-source":  `no event of source "other" with that event_id`,
		"c5":        `supersedes: no event of source "u" with that event_id`,
		"r-beds":    "only cases and lab tests can be retracted",
		"r-region":  `the retracted event is in KZ-75`,
		"c3":        "is a lab_test, not a case",
	}
	for _, r := range sum.Results {
		w, ok := want[r.EventID]
		if !ok {
			t.Errorf("unexpected result %+v", r)
			continue
		}
		if w == "" && r.Status != ingest.StatusAccepted || w != "" && (r.Status != ingest.StatusRejected || !strings.Contains(r.Reason, w)) {
			t.Errorf("%s: %s %q, want %q", r.EventID, r.Status, r.Reason, w)
		}
	}
	if sum.Accepted != 5 || sum.Rejected != 6 {
		t.Errorf("accepted %d, rejected %d; want 5 and 6", sum.Accepted, sum.Rejected)
	}
}
