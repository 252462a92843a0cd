package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// eraseFixture is the events of the erasure test: cases, tests and contacts
// of many people in two regions, among them everything about one person
// (erased), including a retraction of one of their cases by its producer
// and an ingest dead letter (an unknown region) that keeps their pseudonym.
type eraseFixture struct {
	first  schemas.Date
	person string // the national ID to erase
	before []string
	// erased are the events of before that name the person or correct
	// them; after is posted after the erasure.
	erased map[string]bool
	after  []string
}

func newEraseFixture() eraseFixture {
	f := eraseFixture{first: schemas.DateOf(time.Now().UTC()).AddDays(-12), erased: map[string]bool{}}
	birth := time.Date(1985, 5, 5, 0, 0, 0, 0, time.UTC)
	iin := func(i int) string {
		return nationalid.GenerateIIN(birth.AddDate(0, 0, i), []string{"male", "female"}[i%2], 100+i)
	}
	f.person = iin(0)
	regions := []string{"KZ-75", "KZ-71"}
	caseLine := func(id, region, nid string, day int) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"case","region":%q,"source":"lis","person":{"national_id":%q,"district":"Medeu"},"report_date":"%s","onset_date":"%s"}`,
			id, region, nid, f.first.AddDays(day), f.first.AddDays(day-2))
	}
	testLine := func(id, region, nid string, day int, result string) string {
		return fmt.Sprintf(`{"event_id":%q,"type":"lab_test","region":%q,"source":"lis","person":{"national_id":%q},"sample_date":"%s","result_date":"%s","test_kind":"pcr","result":%q,"lab":"NCL"}`,
			id, region, nid, f.first.AddDays(day-1), f.first.AddDays(day), result)
	}
	for day := 0; day < 8; day++ {
		for k := 0; k < 6; k++ {
			i := 1 + day*6 + k
			r := regions[k%2]
			f.before = append(f.before, caseLine(fmt.Sprintf("c-%d", i), r, iin(i), day))
			f.before = append(f.before, testLine(fmt.Sprintf("t-%d", i), r, iin(i), day, []string{"positive", "negative"}[k%2]))
		}
	}
	// The person: two cases (one later retracted by the lab), a test, a
	// contact of another case, and a rejected event.
	mine := []string{
		caseLine("p-case-1", "KZ-75", f.person, 2),
		caseLine("p-case-2", "KZ-71", f.person, 5),
		testLine("p-test-1", "KZ-75", f.person, 2, "positive"),
		fmt.Sprintf(`{"event_id":"p-contact-1","type":"contact","region":"KZ-75","source":"tracing","index_person":{"national_id":%q},"contact_person":{"national_id":%q},"contact_date":"%s","setting":"household"}`,
			iin(3), f.person, f.first.AddDays(1)),
		fmt.Sprintf(`{"event_id":"p-rt-2","type":"retraction","region":"KZ-71","source":"lis","retracts":"p-case-2","retraction_reason":"discarded","report_date":"%s"}`, f.first.AddDays(6)),
	}
	f.before = append(f.before, mine...)
	for _, id := range []string{"p-case-1", "p-case-2", "p-test-1", "p-contact-1", "p-rt-2"} {
		f.erased[id] = true
	}
	for day := 8; day < 11; day++ {
		for k := 0; k < 4; k++ {
			i := 100 + day*4 + k
			f.after = append(f.after, caseLine(fmt.Sprintf("c-%d", i), regions[k%2], iin(i), day))
		}
	}
	return f
}

// kept is before without the erased events.
func (f eraseFixture) kept() []string {
	var out []string
	for _, l := range f.before {
		var e struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal([]byte(l), &e)
		if !f.erased[e.EventID] {
			out = append(out, l)
		}
	}
	return out
}

// TestEraseEndToEnd erases a person in the middle of a run of `epiwatch
// run`: afterwards no stream, key-value bucket or ClickHouse table holds
// their pseudonym, the processor's checkpoint was rewritten whole, the audit
// record names neither the person nor their events, and the indicators
// equal those of a run that never saw the person's events.
func TestEraseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("two pipelines end to end")
	}
	f := newEraseFixture()
	p := startPipeline(t, "")
	p.postAll(t, f.before)
	dl := fmt.Sprintf(`{"event_id":"p-case-x","type":"case","region":"KZ-99","source":"lis","person":{"national_id":%q},"report_date":"%s"}`, f.person, f.first.AddDays(3))
	if code, body := p.post(t, []byte(dl+"\n")); code != 200 || !bytes.Contains(body, []byte(`"rejected":1`)) {
		t.Fatalf("dead letter: %d %s", code, body)
	}
	db := "`" + p.db.Name + "`"
	p.waitCount(t, "SELECT count() FROM "+db+".events_v2_store", uint64(len(f.before)), 60*time.Second)
	var pseudonym string
	if err := p.db.Conn.QueryRow(context.Background(), "SELECT person_pseudonym FROM "+db+".events_v2_store WHERE event_id = 'p-case-1'").Scan(&pseudonym); err != nil || len(pseudonym) < 16 {
		t.Fatalf("pseudonym of p-case-1: %q %v", pseudonym, err)
	}
	// The processor has counted the person (KZ-75's cases on day 2: three
	// of the six plus theirs).
	p.waitCount(t, fmt.Sprintf("SELECT count() FROM %s.indicators_latest WHERE region = 'KZ-75' AND date = '%s' AND cases = 4", db, f.first.AddDays(2)), 1, 60*time.Second)

	nc, js, err := stream.Connect(p.natsURL, "erase-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !anyContains(streamContents(t, js, schemas.StreamDeadLetter), pseudonym) {
		t.Fatal("the dead letter does not keep the pseudonym: the test would not show it erased")
	}

	// A dry run deletes nothing; the ID comes on standard input (--person -).
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs([]string{"erase", "--config", p.cfgFile, "--person", "-", "--dry-run"})
	root.SetIn(strings.NewReader(f.person + "\n"))
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("erase --person - --dry-run: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "found 5 events (1 of them corrections of the others) in 2 regions (KZ-71 KZ-75), and 1 dead letters") {
		t.Fatalf("erase --dry-run said:\n%s", out.String())
	}
	if n := p.db.Count(t, "SELECT count() FROM "+db+".events_v2_store WHERE person_pseudonym = '"+pseudonym+"'"); n != 3 {
		t.Fatalf("after the dry run ClickHouse has %d rows of the person, want 3", n)
	}
	// No reason, no erasure.
	out.Reset()
	errOut.Reset()
	if code := realMain(context.Background(), []string{"erase", "--config", p.cfgFile, "--person", f.person, "--yes"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--reason is required") {
		t.Fatalf("erase without --reason: exit %d\n%s", code, errOut.String())
	}

	erasedAt := time.Now()
	out.Reset()
	errOut.Reset()
	if code := realMain(context.Background(), []string{"erase", "--config", p.cfgFile, "--person", f.person, "--reason", "DPO request 2026-114", "--by", "dpo", "--yes"}, &out, &errOut); code != 0 {
		t.Fatalf("erase: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), f.person) || strings.Contains(out.String()+errOut.String(), pseudonym) {
		t.Errorf("erase printed the national ID or the pseudonym:\n%s%s", out.String(), errOut.String())
	}
	// A producer's mistake: one event, by source and event_id.
	out.Reset()
	errOut.Reset()
	if code := realMain(context.Background(), []string{"erase", "--config", p.cfgFile, "--source", "lis", "--event-id", "c-7", "--reason", "wrong patient, ticket 881", "--by", "lis-admin", "--yes"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "found 1 events (0 of them corrections of the others) in 1 regions (KZ-75), and 0 dead letters") {
		t.Fatalf("erase --event-id: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	f.erased["c-7"] = true
	// The run goes on.
	p.postAll(t, f.after)

	// ClickHouse: the person's rows are gone at once (erase waits for the
	// mutation); the audit row is there.
	for _, col := range []string{"person_pseudonym", "index_pseudonym", "contact_pseudonym"} {
		if n := p.db.Count(t, "SELECT count() FROM "+db+".events_v2_store WHERE "+col+" = '"+pseudonym+"'"); n != 0 {
			t.Errorf("events_v2_store still has %d rows with %s of the person", n, col)
		}
	}
	if n := p.db.Count(t, "SELECT count() FROM "+db+".events_v2_store WHERE event_id LIKE 'p-%' OR event_id = 'c-7'"); n != 0 {
		t.Errorf("events_v2_store still has %d of the person's events (or their retraction)", n)
	}
	if n := p.db.Count(t, "SELECT count() FROM "+db+".erasures WHERE kind = 'person' AND erased_by = 'dpo' AND reason = 'DPO request 2026-114' AND events = 5 AND dead_letters = 1 AND rows_deleted = 5"); n != 1 {
		t.Errorf("erasures has %d matching audit rows, want 1:\n%s", n, strings.Join(p.rows(t, "SELECT concat(kind, ' ', erased_by, ' ', toString(events), ' ', toString(dead_letters), ' ', toString(rows_deleted)) FROM "+db+".erasures"), "\n"))
	}

	// Streams: neither the pseudonym nor the national ID anywhere; the
	// audit record names no event of the person either.
	for _, name := range []string{schemas.StreamEvents, schemas.StreamDeadLetter, schemas.StreamIndicators, schemas.StreamDecisions, schemas.StreamErasures} {
		for _, m := range streamContents(t, js, name) {
			if strings.Contains(m, pseudonym) || strings.Contains(m, f.person) {
				t.Errorf("%s still holds the person: %.200s", name, m)
			}
		}
	}
	recs := streamContents(t, js, schemas.StreamErasures)
	if len(recs) != 2 || anyContains(recs, "p-case") || anyContains(recs, "p-test") || anyContains(recs, "c-7") {
		t.Errorf("erasure log: %q", recs)
	}
	if n := p.db.Count(t, "SELECT count() FROM "+db+".erasures WHERE kind = 'event' AND erased_by = 'lis-admin' AND events = 1 AND rows_deleted = 1"); n != 1 {
		t.Errorf("erasures has %d audit rows of the event erasure, want 1", n)
	}

	// The processor rebuilds, and its next checkpoint replaces every part
	// of the one that knew the person.
	if !waitFor(60*time.Second, func() bool { return checkpointAfter(t, js, erasedAt) }) {
		t.Fatal("the processor wrote no checkpoint reflecting the erasure, or parts of the old one remain, after 60 s")
	}
	assertNoValue(t, js, pseudonym, f.person)

	// Indicators: those of a run that never saw the person's events.
	want := startPipeline(t, "")
	want.postAll(t, f.kept())
	want.postAll(t, f.after)
	total := uint64(len(f.kept()) + len(f.after))
	want.waitCount(t, "SELECT count() FROM `"+want.db.Name+"`.events_v2_store", total, 60*time.Second)
	p.waitCount(t, "SELECT count() FROM "+db+".events_v2_store", total, 60*time.Second)
	var diffs []string
	waitFor(60*time.Second, func() bool {
		// Versions differ (stream sequences of two runs); all else may not.
		cols, wantRows := dropColumn(indicatorTable(t, want.db))("version")
		_, gotRows := dropColumn(indicatorTable(t, p.db))("version")
		diffs = diffTables(cols, wantRows, gotRows, 10)
		return len(wantRows) > 0 && len(diffs) == 0
	})
	if len(diffs) > 0 {
		t.Errorf("indicators differ from a run without the person:\n%s", strings.Join(diffs, "\n"))
	}
}

// dropColumn removes a column from an indicatorTable.
func dropColumn(cols []string, rows [][]string) func(name string) ([]string, [][]string) {
	return func(name string) ([]string, [][]string) {
		i := -1
		for k, c := range cols {
			if c == name {
				i = k
			}
		}
		if i < 0 {
			return cols, rows
		}
		out := make([][]string, len(rows))
		for r, row := range rows {
			out[r] = append(append([]string{}, row[:i]...), row[i+1:]...)
		}
		return append(append([]string{}, cols[:i]...), cols[i+1:]...), out
	}
}

func anyContains(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// waitFor polls ok until it holds (true) or within passes (false).
func waitFor(within time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(within); !ok(); time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// checkpointAfter reports whether the processor's checkpoint manifest
// reflects an erasure and every part of the bucket was written after at.
func checkpointAfter(t *testing.T, js jetstream.JetStream, at time.Time) bool {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	man, err := kv.Get(ctx, "process.manifest")
	if err != nil {
		return false
	}
	var m struct {
		Erasures uint64 `json:"erasures_seq"`
	}
	if json.Unmarshal(man.Value(), &m) != nil || m.Erasures == 0 || man.Created().Before(at) {
		return false
	}
	fresh := true
	eachEntry(t, kv, func(_ string, e jetstream.KeyValueEntry) { fresh = fresh && !e.Created().Before(at) })
	return fresh
}

// eachEntry calls fn with every key of kv and its current entry.
func eachEntry(t *testing.T, kv jetstream.KeyValue, fn func(string, jetstream.KeyValueEntry)) {
	t.Helper()
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		if e, err := kv.Get(context.Background(), k); err == nil { // else purged meanwhile
			fn(k, e)
		}
	}
}

// assertNoValue fails if any key-value bucket holds any of secrets in a key
// or a value.
func assertNoValue(t *testing.T, js jetstream.JetStream, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	for name := range js.KeyValueStoreNames(ctx).Name() {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		eachEntry(t, kv, func(k string, e jetstream.KeyValueEntry) {
			for _, s := range secrets {
				if strings.Contains(k, s) || bytes.Contains(e.Value(), []byte(s)) {
					t.Errorf("bucket %s key %s holds %q", name, k, s)
				}
			}
		})
	}
}
