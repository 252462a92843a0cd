package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// syncBuffer is a log sink shared by the components' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEventIDsScopedToSource runs ingest, the processor and the sink on
// one embedded NATS and ClickHouse: two producers using the same event_id
// send two events — both accepted, stored, counted and in ClickHouse —; a
// retry is still a duplicate and a changed event under a used (source,
// event_id) still refused; each producer's corrections reach its own event
// only. The raw event_id (case-secret-123) is in no subject, Nats-Msg-Id or
// dead-letter header of any stream, and in no log line.
func TestEventIDsScopedToSource(t *testing.T) {
	const secret = "case-secret-123"
	s := streamtest.New(t)
	db := chtest.New(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pseudo.New(pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)}, nil, schemas.DefaultRegions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := stream.LoadEventRefs(ctx, s.Bus)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{}, ingest.Deps{
		Contract: c, Validator: &schemas.Validator{Regions: schemas.DefaultRegions()}, Pseudo: ps,
		Bus: s.Bus, Refs: refs, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	event := func(id, source, day, extra string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"case","region":"KZ-75","source":%q,"person":{"national_id":"900101300017"},"report_date":%q%s}`, id, source, day, extra)
	}
	submit := func(want []string, events ...string) {
		t.Helper()
		raws := make([][]byte, len(events))
		for i, e := range events {
			raws[i] = []byte(e)
		}
		sum, err := in.Submit(ctx, raws)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range sum.Results {
			if r.Status != want[i] {
				t.Errorf("event %d (%s): %s %q, want %s", i, r.EventID, r.Status, r.Reason, want[i])
			}
		}
	}
	a1 := event(secret, "lab-a", "2020-07-01", "")
	b1 := event(secret, "lab-b", "2020-07-01", `,"onset_date":"2020-06-29"`)
	submit([]string{"accepted", "accepted"}, a1, b1)
	submit([]string{"duplicate", "duplicate", "rejected"}, a1, b1, event(secret, "lab-a", "2020-07-02", ""))

	// The processor applies both rather than skipping the second as a copy
	// (same national ID: one counts as a case, the other as a repeat of the
	// person's episode).
	p, err := process.New(processConfig(), process.Deps{Bus: s.Bus, Regions: schemas.DefaultRegions(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pstop := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- p.Run(pctx) }()
	defer func() {
		pstop()
		if err := <-pdone; err != nil {
			t.Errorf("processor: %v", err)
		}
	}()
	sink, err := chsink.New(chsink.SinkConfig{FlushInterval: 100 * time.Millisecond}, chsink.Deps{Conn: db.Conn, Database: db.Name, Bus: s.Bus, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chsink.Migrate(ctx, db.Conn, db.Name, "", schemas.DefaultRegions()); err != nil {
		t.Fatal(err)
	}
	sctx, sstop := context.WithCancel(ctx)
	sdone := make(chan error, 1)
	go func() { sdone <- sink.Run(sctx) }()
	defer func() {
		sstop()
		if err := <-sdone; err != nil {
			t.Errorf("sink: %v", err)
		}
	}()
	waitIndicator(t, s, "2020-07-01", func(in schemas.Indicator) bool { return in.Cases+in.CasesRepeat == 2 })

	// Corrections: lab-a retracts its event, lab-b supersedes its own with
	// a new version on another day. Each reaches only its own source's.
	submit([]string{"accepted", "accepted"},
		fmt.Sprintf(`{"event_id":"r1","type":"retraction","region":"KZ-75","source":"lab-a","retracts":%q,"retraction_reason":"entered_in_error","report_date":"2020-07-03"}`, secret),
		event("case-secret-124", "lab-b", "2020-07-02", fmt.Sprintf(`,"supersedes":%q`, secret)))
	// A third producer cannot retract either: it has no event of that id.
	submit([]string{"rejected"},
		fmt.Sprintf(`{"event_id":"r2","type":"retraction","region":"KZ-75","source":"lab-c","retracts":%q,"retraction_reason":"entered_in_error","report_date":"2020-07-03"}`, secret))
	waitIndicator(t, s, "2020-07-01", func(in schemas.Indicator) bool { return in.Cases+in.CasesRepeat == 0 })
	waitIndicator(t, s, "2020-07-02", func(in schemas.Indicator) bool { return in.Cases == 1 })

	// ClickHouse: both producers' rows, each with its own status.
	status := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(status) < 3 && time.Now().Before(deadline) {
		rows, err := db.Conn.Query(ctx, "SELECT source, event_id, status FROM `"+db.Name+"`.cases ORDER BY source, event_id")
		if err != nil {
			t.Fatal(err)
		}
		status = map[string]string{}
		for rows.Next() {
			var src, id, st string
			if err := rows.Scan(&src, &id, &st); err != nil {
				t.Fatal(err)
			}
			status[src+"/"+id] = st
		}
		rows.Close()
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]string{"lab-a/" + secret: "retracted", "lab-b/" + secret: "superseded", "lab-b/case-secret-124": "current"}
	if fmt.Sprint(status) != fmt.Sprint(want) {
		t.Errorf("cases in ClickHouse: %v, want %v", status, want)
	}
	var n uint64
	if err := db.Conn.QueryRow(ctx, "SELECT count() FROM `"+db.Name+"`.events WHERE event_id = ?", secret).Scan(&n); err != nil || n != 2 {
		t.Errorf("events rows of %s: %d, %v; want 2 (one per source)", secret, n, err)
	}

	// The raw event_id stays inside payloads.
	for _, name := range []string{schemas.StreamEvents, schemas.StreamDeadLetter} {
		msgs := streamtest.Messages(t, s.JS, name)
		if len(msgs) == 0 {
			t.Errorf("%s is empty", name)
		}
		for _, m := range msgs {
			if strings.Contains(m.Subject, "secret") {
				t.Errorf("%s: subject %s carries the event_id", name, m.Subject)
			}
			for k, vs := range m.Header {
				for _, v := range vs {
					if strings.Contains(v, "secret") {
						t.Errorf("%s: header %s: %s carries the event_id", name, k, v)
					}
				}
			}
		}
	}
	if !strings.Contains(logs.String(), "component=process") {
		t.Errorf("nothing logged by the processor: the check below would prove nothing:\n%s", logs)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("the logs carry the event_id:\n%s", logs)
	}
}

// TestOldLayoutRefused: an events stream written with event_id subjects,
// and no id key yet, is refused by every process that needs the key, with
// an error that names the stream and what to do.
func TestOldLayoutRefused(t *testing.T) {
	s := streamtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r := s.Bus.Publisher().Publish(ctx, stream.Msg{Subject: "epi.events.c1.case.KZ-75", ID: "c1", Data: []byte(`{}`)}); r.Err != nil {
		t.Fatal(r.Err)
	}
	_, err := stream.LoadEventRefs(ctx, s.Bus)
	var old *stream.OldLayoutError
	if !errors.As(err, &old) {
		t.Fatalf("LoadEventRefs on an old stream: %v, want an OldLayoutError", err)
	}
	for _, want := range []string{schemas.StreamEvents, "old subject layout", "nats stream rm " + schemas.StreamEvents, "re-import"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	p, err := process.New(processConfig(), process.Deps{Bus: s.Bus, Regions: schemas.DefaultRegions()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); !errors.As(err, &old) {
		t.Errorf("processor on an old stream: %v, want an OldLayoutError", err)
	}
}

func processConfig() process.Config {
	cfg := process.DefaultConfig()
	cfg.BatchSize = 100
	cfg.MaxWait = 50 * time.Millisecond
	cfg.AckWait = 4 * time.Second
	cfg.PublishInterval = 100 * time.Millisecond
	return cfg
}

// waitIndicator waits until the newest indicator record of KZ-75 on day
// satisfies ok.
func waitIndicator(t *testing.T, s *streamtest.Server, day string, ok func(schemas.Indicator) bool) {
	t.Helper()
	var last schemas.Indicator
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, m := range streamtest.Messages(t, s.JS, schemas.StreamIndicators) {
			var in schemas.Indicator
			if err := json.Unmarshal(m.Data, &in); err != nil {
				t.Fatal(err)
			}
			if in.Region == "KZ-75" && in.Date.String() == day {
				last = in
			}
		}
		if ok(last) {
			return
		}
	}
	t.Fatalf("KZ-75 on %s: last indicator %+v", day, last)
}
