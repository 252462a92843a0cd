package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/deploy/deploytest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// staleRegion is the scenario of TestStaleCaseFeedEndToEnd: one region,
// days 0..22 before today, whose cases decline (R well below 1) while 40 of
// its 100 infectious beds are occupied — the plan says ease every day.
// Every feed sends a report_complete each day.
type staleRegion struct {
	region string
	first  schemas.Date
}

func (s staleRegion) day(n int) schemas.Date { return s.first.AddDays(n) }

// events of day n: the cases (and their report_complete) if withCases,
// the tests and beds (and theirs) if withRest.
func (s staleRegion) events(n int, withCases, withRest bool) []string {
	d := s.day(n)
	var out []string
	if withCases {
		for i := range int(math.Round(60 * math.Pow(0.93, float64(n)))) {
			// A person each: one person's cases within 90 days are one episode.
			iin := nationalid.GenerateIIN(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), "female", n*100+i)
			out = append(out, fmt.Sprintf(`{"event_id":"sr-c-%s-%d","type":"case","region":%q,"source":"lis","person":{"national_id":%q},"report_date":"%s"}`, d, i, s.region, iin, d))
		}
		out = append(out, fmt.Sprintf(`{"event_id":"sr-rc-case-%s","type":"report_complete","region":%q,"source":"lis","feed":"case","report_date":"%s"}`, d, s.region, d))
	}
	if withRest {
		for i := range 30 {
			res := "negative"
			if i < 3 {
				res = "positive"
			}
			out = append(out, fmt.Sprintf(`{"event_id":"sr-t-%s-%d","type":"lab_test","region":%q,"source":"lis","person":{"national_id":"850505400018"},"sample_date":"%s","result_date":"%s","test_kind":"pcr","result":%q}`, d, i, s.region, d, d, res))
		}
		out = append(out,
			fmt.Sprintf(`{"event_id":"sr-b-%s","type":"bed_snapshot","region":%q,"source":"h","facility_id":"h-1","snapshot_time":"%sT08:00:00Z","bed_kind":"infectious","total":100,"occupied":40}`, d, s.region, d),
			fmt.Sprintf(`{"event_id":"sr-rc-lab-%s","type":"report_complete","region":%q,"source":"lis","feed":"lab_test","report_date":"%s"}`, d, s.region, d),
		)
	}
	return out
}

// post sends lines as one request and fails the test unless every event was
// accepted.
func (p *pipeline) postAll(t *testing.T, lines []string) {
	t.Helper()
	code, body := p.post(t, []byte(strings.Join(lines, "\n")+"\n"))
	var sum ingest.Summary
	if err := json.Unmarshal(body, &sum); code != http.StatusOK || err != nil || sum.Rejected != 0 {
		t.Fatalf("post: %d %s", code, body)
	}
}

// rows runs a query whose columns are all strings (toString them) and
// returns one joined line per row.
func (p *pipeline) rows(t *testing.T, q string) []string {
	t.Helper()
	rows, err := p.db.Conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cols := make([]any, len(rows.Columns()))
		for i := range cols {
			cols[i] = new(string)
		}
		if err := rows.Scan(cols...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, c := range cols {
			parts = append(parts, *c.(*string))
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

// metric returns the value of one series on the pipeline's /metrics.
func (p *pipeline) metric(t *testing.T, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, val, ok := strings.Cut(sc.Text(), " "); ok && name == series {
			var v float64
			fmt.Sscan(val, &v)
			return v, true
		}
	}
	return 0, false
}

// TestStaleCaseFeedEndToEnd: a region stops sending cases for 3 days while
// its tests and beds keep flowing. On those days nothing eases for it (the
// plan would: R < 1, beds at 40 %), the flag and its reason are in
// ClickHouse, the shipped stale-feed alert rule fires on the pipeline's own
// metric, and when the late cases arrive the indicators and every decision
// are what they are in a run where they came on time.
func TestStaleCaseFeedEndToEnd(t *testing.T) {
	const cfg = "decide:\n  mode: data\n  initial_levels: {KZ-35: 4}\n  levels:\n    min_days_before_ease: 4\n"
	s := staleRegion{region: "KZ-35", first: schemas.DateOf(time.Now().UTC()).AddDays(-24)}
	late := startPipeline(t, cfg)
	ref := startPipeline(t, cfg)
	for n := 0; n <= 22; n++ {
		ref.postAll(t, s.events(n, true, true))
	}
	for n := 0; n <= 14; n++ {
		late.postAll(t, s.events(n, true, true))
	}
	for n := 15; n <= 17; n++ {
		late.postAll(t, s.events(n, false, true))
	}
	// The flag and its reason, for each stale day.
	flagged := fmt.Sprintf("SELECT count() FROM `%s`.indicators_latest WHERE region = 'KZ-35' AND date >= '%s' AND has(stale_feeds, 'case') AND r_status = 'stale_feed' AND isNull(r_mean) AND arrayExists(x -> position(x, 'case feed reported through %s') > 0, flag_reasons)",
		late.db.Name, s.day(15), s.day(14))
	late.waitCount(t, flagged, 3, 30*time.Second)
	// Nothing eases on them: data mode waits for the cases.
	time.Sleep(time.Second)
	if n := late.db.Count(t, fmt.Sprintf("SELECT count() FROM `%s`.decisions WHERE region = 'KZ-35' AND date >= '%s'", late.db.Name, s.day(15))); n != 0 {
		t.Errorf("%d decisions on days whose case feed is missing", n)
	}
	// The alert: the pipeline's metric, run through the shipped rule.
	lag, ok := late.metric(t, `epiwatch_feed_lag_seconds{feed="case",region="KZ-35"}`)
	if !ok || lag != 3*86400 {
		t.Fatalf("case feed lag %v (present %v), want 3 days", lag, ok)
	}
	if lab, _ := late.metric(t, `epiwatch_feed_lag_seconds{feed="lab_test",region="KZ-35"}`); lab != 0 {
		t.Errorf("lab feed lag %v, want 0", lab)
	}
	alertFires(t, "EpiwatchFeedStale", fmt.Sprintf(`epiwatch_feed_lag_seconds{region="KZ-35", feed="case"}`), lag)

	// The late upload, then the days after.
	upload := append(s.events(15, true, false), s.events(16, true, false)...)
	upload = append(upload, s.events(17, true, false)...)
	late.postAll(t, append(upload, s.events(18, true, true)...))
	for n := 19; n <= 22; n++ {
		late.postAll(t, s.events(n, true, true))
	}
	decided := "SELECT count() FROM `%s`.decisions WHERE region = 'KZ-35' AND date = '" + s.day(21).String() + "'"
	// Decisions and indicators land through different consumers: wait for
	// both in both pipelines.
	landed := "SELECT count() FROM `%s`.indicators_latest WHERE region = 'KZ-35' AND date = '" + s.day(22).String() + "'"
	for _, p := range []*pipeline{ref, late} {
		p.waitCount(t, fmt.Sprintf(decided, p.db.Name), 1, 60*time.Second)
		p.waitCount(t, fmt.Sprintf(landed, p.db.Name), 1, 60*time.Second)
	}
	compare := func(q string) {
		t.Helper()
		want := ref.rows(t, fmt.Sprintf(q, ref.db.Name))
		got := late.rows(t, fmt.Sprintf(q, late.db.Name))
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s\nlate upload:\n%s\non time:\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	compare("SELECT toString(date), toString(cases), ifNull(toString(round(r_mean, 9)), 'NA'), r_status, ifNull(toString(round(bed_occupancy_pct, 6)), 'NA'), arrayStringConcat(flags, ',') FROM `%s`.indicators_latest WHERE region = 'KZ-35' AND date <= '" + s.day(21).String() + "' ORDER BY date")
	compare("SELECT toString(date), action, toString(level_from), toString(level_to), clause FROM `%s`.decisions WHERE region = 'KZ-35' ORDER BY date")
	// And the reference eased during those days: the test is not vacuous.
	if n := ref.db.Count(t, fmt.Sprintf("SELECT count() FROM `%s`.decisions WHERE region = 'KZ-35' AND action = 'ease' AND level_to < level_from", ref.db.Name)); n == 0 {
		t.Error("the region never eased: the scenario does not test what it should")
	}
}

// alertFires runs the shipped rules on one sample of series at value (as
// Prometheus would scrape it, every minute for two hours) and checks that
// alert fires after its "for" period.
func alertFires(t *testing.T, alert, series string, value float64) {
	t.Helper()
	promtool := deploytest.Tool(t, "promtool")
	rules, err := filepath.Abs("../../deploy/prometheus/rules/epiwatch.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	test := fmt.Sprintf(`rule_files:
  - %s
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: '%s'
        values: "%gx120"
    promql_expr_test:
      - expr: ALERTS{alertname="%s", alertstate="firing"}
        eval_time: 2h
        exp_samples:
          - labels: '%s'
            value: 1
`, rules, series, value, alert, alertLabels(t, series, alert))
	file := filepath.Join(t.TempDir(), "alert.test.yml")
	if err := os.WriteFile(file, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	deploytest.Run(t, promtool, "test", "rules", file)
}

// alertLabels is the label set of a firing ALERTS sample for series.
func alertLabels(t *testing.T, series, alert string) string {
	t.Helper()
	inner := series[strings.Index(series, "{")+1 : strings.LastIndex(series, "}")]
	return fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", category="data-quality", severity="warning", %s}`, alert, inner)
}

// TestManualLevelEndToEnd: a headquarters sets a region's level over the
// API with its token (calls without one, or with a data source's token, are
// refused), an operator with the command line; both land in
// epiwatch.decisions with origin manual and who set them.
func TestManualLevelEndToEnd(t *testing.T) {
	const hqToken, lisToken = "hq-secret-token-0123456789", "lis-secret-token-0123456789"
	p := startPipeline(t, fmt.Sprintf(`ingest:
  tokens:
    - {name: hq-almaty, sha256: %s, regions: [KZ-75], levels: true}
    - {name: lis, sha256: %s}
`, ingest.HashToken(hqToken), ingest.HashToken(lisToken)))
	call := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+p.httpAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{"", "/v1/levels/KZ-75", http.StatusUnauthorized},
		{"wrong", "/v1/levels/KZ-75", http.StatusUnauthorized},
		{lisToken, "/v1/levels/KZ-75", http.StatusForbidden},
		{hqToken, "/v1/levels/KZ-71", http.StatusForbidden},
	} {
		if code, body := call("POST", tc.path, tc.token, `{"level":3,"reason":"x"}`); code != tc.want {
			t.Errorf("POST %s with token %q: %d %s, want %d", tc.path, tc.token, code, body, tc.want)
		}
	}
	until := schemas.DateOf(time.Now()).AddDays(10)
	if code, body := call("POST", "/v1/levels/KZ-75", hqToken, fmt.Sprintf(`{"level":3,"reason":"akimat resolution 12","until":"%s"}`, until)); code != http.StatusOK {
		t.Fatalf("POST with the HQ token: %d %s", code, body)
	}
	var out, errb bytes.Buffer
	natsListen := strings.TrimPrefix(p.natsURL, "nats://")
	if code := realMain(context.Background(), []string{"level", "set", "KZ-71", "2", "--reason", "from the command line", "--by", "duty officer",
		"--config", p.cfgFile, "--nats-listen", natsListen}, &out, &errb); code != 0 {
		t.Fatalf("level set exited %d: %s", code, errb.String())
	}
	if code := realMain(context.Background(), []string{"level", "set", "KZ-71", "9", "--reason", "x", "--config", p.cfgFile}, &out, &errb); code != 2 {
		t.Errorf("level 9 of 4: exit %d, want 2", code)
	}
	q := fmt.Sprintf("SELECT count() FROM `%s`.decisions WHERE origin = 'manual' AND ((region = 'KZ-75' AND level_to = 3 AND set_by = 'token:hq-almaty' AND manual_until = '%s' AND position(reason, 'akimat resolution 12') > 0) OR (region = 'KZ-71' AND level_to = 2 AND set_by = 'duty officer'))",
		p.db.Name, until)
	p.waitCount(t, q, 2, 30*time.Second)
	out.Reset()
	if code := realMain(context.Background(), []string{"level", "show", "KZ-75", "KZ-71", "--config", p.cfgFile}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "3 - high by token:hq-almaty (akimat resolution 12), until "+until.String()) {
		t.Errorf("level show exited %d:\n%s%s", code, out.String(), errb.String())
	}
}

// TestPersonEpisodeAndRetractionEndToEnd: the same person notified by a
// laboratory and by a hospital (the same IIN, so the same pseudonym) is one
// case; a case retracted by its laboratory stops counting; both stay in
// epiwatch.cases, the retracted one with its status.
func TestPersonEpisodeAndRetractionEndToEnd(t *testing.T) {
	p := startPipeline(t, "")
	d := schemas.DateOf(time.Now().UTC()).AddDays(-3)
	p.postAll(t, []string{
		fmt.Sprintf(`{"event_id":"lab-1","type":"case","region":"KZ-75","source":"lis","person":{"national_id":"900101300017"},"report_date":"%s"}`, d),
		fmt.Sprintf(`{"event_id":"hosp-1","type":"case","region":"KZ-75","source":"hospital-7","person":{"national_id":"900101300017"},"report_date":"%s"}`, d.AddDays(1)),
		fmt.Sprintf(`{"event_id":"lab-2","type":"case","region":"KZ-75","source":"lis","person":{"national_id":"850505400018"},"report_date":"%s"}`, d),
		fmt.Sprintf(`{"event_id":"rt-lab-2","type":"retraction","region":"KZ-75","source":"lis","retracts":"lab-2","retraction_reason":"discarded","report_date":"%s"}`, d.AddDays(2)),
	})
	q := func(day schemas.Date, cond string) string {
		return fmt.Sprintf("SELECT count() FROM `%s`.indicators_latest WHERE region = 'KZ-75' AND date = '%s' AND %s", p.db.Name, day, cond)
	}
	p.waitCount(t, q(d, "cases = 1"), 1, 30*time.Second)                                 // lab-1; lab-2 retracted
	p.waitCount(t, q(d.AddDays(1), "cases = 0 AND cases_repeat = 1"), 1, 30*time.Second) // hosp-1 is a repeat
	p.waitCount(t, fmt.Sprintf("SELECT count() FROM `%s`.cases WHERE event_id = 'lab-2' AND status = 'retracted'", p.db.Name), 1, 30*time.Second)
	if n := p.db.Count(t, fmt.Sprintf("SELECT uniqExact(person_pseudonym) FROM `%s`.cases WHERE event_id IN ('lab-1', 'hosp-1')", p.db.Name)); n != 1 {
		t.Errorf("the two notifications have %d pseudonyms", n)
	}
}
