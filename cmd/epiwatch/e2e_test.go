package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/proc"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/golden"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// pipeline is `epiwatch run` started in-process by realMain, exactly as the
// binary runs, on embedded NATS and the real local ClickHouse.
type pipeline struct {
	db       *chtest.DB
	httpAddr string
	natsURL  string
	logs     *proc.Buffer
	cfgFile  string
	args     []string // extra flags of `epiwatch run`
	stop     func() int
}

// startPipeline writes a config file and starts `epiwatch run` with it.
// extra is appended to the YAML (more sections); without a decide section
// of its own, decisions are made in data mode, and without a pseudonym
// section of its own the pipeline uses a fixed test key.
func startPipeline(t *testing.T, extra string, args ...string) *pipeline {
	t.Helper()
	has := func(section string) bool {
		return strings.HasPrefix(extra, section+":") || strings.Contains(extra, "\n"+section+":")
	}
	if !has("decide") {
		extra = "decide:\n  mode: data\n" + extra
	}
	if !has("pseudonym") {
		extra = "pseudonym:\n  key_id: e2e\n  key: e2e-test-key-0123456789abcdef0123456789abcdef\n" + extra
	}
	db := chtest.New(t)
	dir := t.TempDir()
	p := &pipeline{db: db, httpAddr: proc.FreeAddr(t), logs: &proc.Buffer{}}
	natsListen := proc.FreeAddr(t)
	p.natsURL = "nats://" + natsListen
	cfg := fmt.Sprintf(`data_dir: %s
log_level: debug
nats:
  listen: %s
http:
  addr: %s
metrics:
  addr: %s
clickhouse:
  addr: %s
  database: %s
  sink:
    flush_interval: 200ms
process:
  publish_interval: 0s
  max_wait: 50ms
%s`, dir, natsListen, p.httpAddr, proc.FreeAddr(t), chtest.Addr(), db.Name, extra)
	p.cfgFile = filepath.Join(dir, "epiwatch.yaml")
	if err := os.WriteFile(p.cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.args = args
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("epiwatch run log (last 200 lines):\n%s", tailLines(p.logs.String(), 200))
		}
	})
	p.run(t)
	return p
}

// run starts `epiwatch run` on p's configuration and waits until it is
// ready; p.stop stops it (and the test's end does). Run again after a stop,
// it restarts on the same data directory, NATS store and database.
func (p *pipeline) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- realMain(ctx, append([]string{"run", "--config", p.cfgFile}, p.args...), io.Discard, p.logs)
	}()
	var once sync.Once
	code := 0
	p.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("epiwatch run did not stop within 60 s")
			}
		})
		return code
	}
	t.Cleanup(func() { p.stop() })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + p.httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case c := <-done:
			t.Fatalf("epiwatch run exited with %d before it was ready:\n%s", c, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("epiwatch run not ready within 60 s:\n%s", p.logs.String())
		}
	}
}

func (p *pipeline) post(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post("http://"+p.httpAddr+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitCount polls a count query until it reaches want.
func (p *pipeline) waitCount(t *testing.T, query string, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var n uint64
	for time.Now().Before(deadline) {
		n = p.db.Count(t, query)
		if n == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s = %d after %s, want %d", query, n, within, want)
}

// rawPersonalData are the identifiers and names in testdata/e2e/mixed.ndjson:
// none may appear anywhere downstream of the ingest worker.
var rawPersonalData = []string{"900101300017", "850505400018", "721123400177", "900101300009", "21201199000123", "Aidar", "Nurlanov", "Saule", "+77010000001", "Abay ave"}

func TestEndToEndMixedBatch(t *testing.T) {
	p := startPipeline(t, "")
	body, err := os.ReadFile("testdata/e2e/mixed.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	code, answer := p.post(t, body)
	if code != 200 {
		t.Fatalf("POST answered %d: %s", code, answer)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, answer, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden.Check(t, "testdata/e2e/answer.json", pretty.Bytes())

	// Exactly the five valid events land, once each, pseudonymised.
	p.waitCount(t, "SELECT count() FROM `"+p.db.Name+"`.events", 5, 60*time.Second)
	rows, err := p.db.Conn.Query(context.Background(), "SELECT event_id, type, region, toString(event_date), source, person_pseudonym != '', key_id, age_band, sex FROM `"+p.db.Name+"`.events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for rows.Next() {
		var id, typ, region, day, source, keyID, age, sex string
		var pseudo bool
		if err := rows.Scan(&id, &typ, &region, &day, &source, &pseudo, &keyID, &age, &sex); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "%s %s %s %s %s pseudonym=%v key=%s age=%s sex=%s\n", id, typ, region, day, source, pseudo, keyID, age, sex)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/e2e/clickhouse_events.txt", got.Bytes())

	// The contact links to the case: the same person, the same pseudonym.
	if n := p.db.Count(t, "SELECT count() FROM `"+p.db.Name+"`.contacts c ANY INNER JOIN (SELECT person_pseudonym AS index_pseudonym FROM `"+p.db.Name+"`.cases) USING index_pseudonym"); n != 1 {
		t.Errorf("contact does not link to its index case by pseudonym (%d matches)", n)
	}

	// Every rejected event is in the dead-letter stream with its reason.
	nc, js, err := stream.Connect(p.natsURL, "e2e-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	dls, err := stream.NewBus(js).ListDeadLetters(context.Background(), 0, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var dlText bytes.Buffer
	for _, d := range dls {
		// The event_id is read from the data: a dead letter's headers
		// carry its ref (a keyed digest), never the event_id.
		var v struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(d.Data, &v)
		fmt.Fprintf(&dlText, "event_id=%s ref=%t stage=%s type=%s reason=%s\n", v.EventID, schemas.IsEventRef(d.Ref), d.Stage, d.Type, d.Reason)
	}
	golden.Check(t, "testdata/e2e/deadletters.txt", dlText.Bytes())

	// Indicators follow for the region and day of the case.
	p.waitCount(t, "SELECT count() FROM `"+p.db.Name+"`.indicators_latest WHERE region = 'KZ-75' AND date = '2020-07-01' AND cases = 1 AND tests_positive_7d = 1 AND beds_occupied = 312", 1, 60*time.Second)

	// No raw personal data anywhere: ClickHouse, every stream, logs.
	var stored []string
	for _, q := range []string{
		"SELECT concat(event_id, ' ', person_pseudonym, ' ', index_pseudonym, ' ', contact_pseudonym, ' ', district, ' ', payload) FROM `" + p.db.Name + "`.events_v2_store",
	} {
		rs, err := p.db.Conn.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var s string
			if err := rs.Scan(&s); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, s)
		}
		rs.Close()
	}
	for _, name := range []string{schemas.StreamEvents, schemas.StreamDeadLetter, schemas.StreamIndicators} {
		stored = append(stored, streamContents(t, js, name)...)
	}
	stored = append(stored, p.logs.String())
	// Nor does the pseudonym key, anywhere (logs included).
	for _, s := range stored {
		if strings.Contains(s, "e2e-test-key-0123456789abcdef") {
			t.Errorf("the pseudonym key leaked downstream: %.300s", s)
		}
	}
	for _, s := range stored {
		for _, raw := range rawPersonalData {
			if strings.Contains(s, raw) {
				t.Errorf("raw personal data %q found downstream of ingest: %.300s", raw, s)
			}
		}
	}
	// Posting the same request again adds nothing.
	code, again := p.post(t, body)
	var sum struct{ Accepted, Duplicates, Rejected int }
	if err := json.Unmarshal(again, &sum); code != 200 || err != nil || sum.Accepted != 0 || sum.Duplicates != 5 || sum.Rejected != 7 {
		t.Errorf("re-post answered %d %s, want 0 accepted, 5 duplicates, 7 rejected", code, again)
	}
	p.waitCount(t, "SELECT count() FROM `"+p.db.Name+"`.events", 5, 10*time.Second)

	if code := p.stop(); code != 0 {
		t.Errorf("epiwatch run exited with %d on shutdown", code)
	}
}

// TestImportSameFilesTwice imports simulated CSV and NDJSON files twice into
// a running pipeline: the second import adds nothing.
func TestImportSameFilesTwice(t *testing.T) {
	p := startPipeline(t, "")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	for _, format := range []string{"ndjson", "csv"} {
		sub := filepath.Join(dir, format)
		args := []string{"simulate", "--config", p.cfgFile, "--out", sub, "--format", format, "--regions", "KZ-75,KZ-71", "--days", "20", "--scale", "0.2", "--start", "2021-03-01"}
		if format == "csv" {
			args = append(args, "--seed", "2") // other event ids than the NDJSON run
		}
		if c := realMain(context.Background(), args, &out, &errb); c != 0 {
			t.Fatalf("simulate exited %d: %s", c, errb.String())
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.*"))
	var inputs []string
	for _, f := range files {
		if !strings.HasSuffix(f, "truth.csv") {
			inputs = append(inputs, f)
		}
	}
	// 7 event types × csv+ndjson: the five feeds, report_complete and the
	// facility registry (no retractions: off by default).
	if len(inputs) != 14 {
		t.Fatalf("simulated files: %v", inputs)
	}
	imp := func() string {
		out.Reset()
		errb.Reset()
		if c := realMain(context.Background(), append([]string{"import", "--config", p.cfgFile}, inputs...), &out, &errb); c != 0 {
			t.Fatalf("import exited %d: %s%s", c, out.String(), errb.String())
		}
		return out.String()
	}
	first := imp()
	// Wait until the count is stable: everything imported has landed.
	deadline := time.Now().Add(60 * time.Second)
	var landed uint64
	for time.Now().Before(deadline) {
		c := p.db.Count(t, "SELECT count() FROM `"+p.db.Name+"`.events")
		if c > 0 && c == landed {
			break
		}
		landed = c
		time.Sleep(2 * time.Second)
	}
	if landed < 1000 {
		t.Fatalf("only %d events landed from the first import:\n%s", landed, first)
	}
	second := imp()
	time.Sleep(3 * time.Second) // give a wrongly duplicated batch time to land
	if after := p.db.Count(t, "SELECT count() FROM `"+p.db.Name+"`.events"); after != landed {
		t.Errorf("second import changed the count: %d → %d\nfirst: %s\nsecond: %s", landed, after, first, second)
	}
	if ids := p.db.Count(t, "SELECT uniqExact(event_id) FROM `"+p.db.Name+"`.events"); ids != landed {
		t.Errorf("%d distinct event ids for %d rows", ids, landed)
	}
}

// streamContents returns every message (headers and data) of a stream.
func streamContents(t *testing.T, js jetstream.JetStream, name string) []string {
	t.Helper()
	var out []string
	for _, m := range streamtest.Messages(t, js, name) {
		out = append(out, fmt.Sprint(m.Header)+" "+string(m.Data))
	}
	return out
}
