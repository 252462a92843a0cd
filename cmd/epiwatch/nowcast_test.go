package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/nowcastcsv"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// runNowcastCmd runs `epiwatch nowcast args...` and returns its standard
// output and error and the exit code realMain would give (0, or the
// exitError's code, else 1).
func runNowcastCmd(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	c := newNowcastCmd()
	var out, errb bytes.Buffer
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errb)
	c.SilenceUsage, c.SilenceErrors = true, true
	err = c.Execute()
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), errb.String(), code, err
}

// nowcastSim writes a simulated outbreak of three regions (weekday effect
// and delays on, 20 % of onsets missing, some corrections) as dir/case.ndjson
// or dir/case.csv with the other event types beside, and returns the case
// file and the last simulated day.
func nowcastSim(t *testing.T, format string) (string, schemas.Date) {
	t.Helper()
	cfg := simulate.DefaultConfig()
	cfg.WeekendDeferral = simulate.WeekendDeferralTypical
	cfg.Regions = []string{"KZ-75", "KZ-71", "KZ-62"}
	cfg.Days = 70
	cfg.Seed = 3
	cfg.Scale = 2
	cfg.RetractShare = 0.02
	cfg.ContactsMean, cfg.ContactTestShare, cfg.TestsPerMillion, cfg.VaccinationsPerMillion = 0, 0, 0, 0
	sim, err := simulate.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := simulate.NewFileWriter(dir, format)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(context.Background(), func(_ schemas.Date, ev []schemas.Event) error { return w.Write(ev) }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "case."+format), sim.End()
}

func nowcastRows(t *testing.T, out string) [][]string {
	t.Helper()
	rows := csvTable(t, out)
	if len(rows) == 0 || strings.Join(rows[0], ",") != nowcastcsv.Header {
		t.Fatalf("header %v, want %s", rows[0], nowcastcsv.Header)
	}
	return rows[1:]
}

// TestNowcastCommand: one row per region and onset day, the last --days
// days up to --as-of; the numbers ordered and integral; complete days as
// reported; R numbers or NA; the same output from the same seed, from the
// CSV as from the NDJSON, and for one region as within all of them.
func TestNowcastCommand(t *testing.T) {
	ndjson, end := nowcastSim(t, simulate.FormatNDJSON)
	asOf := end.AddDays(-10).String()
	out, stderr, code, err := runNowcastCmd(t, ndjson, "--as-of", asOf, "--days", "35")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	if !strings.Contains(stderr, "without onset date") || !strings.Contains(stderr, "mean onset-to-report delay") {
		t.Errorf("stderr does not say how many cases lack an onset, or the delay:\n%s", stderr)
	}
	rows := nowcastRows(t, out)
	if len(rows) != 3*35 {
		t.Fatalf("%d rows, want 3 regions × 35 days", len(rows))
	}
	num := func(row []string, i int) float64 {
		v, err := strconv.ParseFloat(row[i], 64)
		if err != nil {
			t.Fatalf("row %v column %d: %v", row, i, err)
		}
		return v
	}
	for i, row := range rows {
		region, date := row[0], row[1]
		if want := []string{"KZ-62", "KZ-71", "KZ-75"}[i/35]; region != want {
			t.Fatalf("row %d: region %s, want %s (sorted)", i, region, want)
		}
		d, err := schemas.ParseDate(date)
		if err != nil {
			t.Fatal(err)
		}
		age := int(schemas.MustDate(asOf) - d)
		if age != 34-i%35 {
			t.Fatalf("row %d: date %s, %d days before --as-of; want the 35 days up to %s in order", i, date, age, asOf)
		}
		rep, med, lo, hi, q25, q75, compl := num(row, 2), num(row, 3), num(row, 4), num(row, 5), num(row, 6), num(row, 7), num(row, 8)
		if !(rep <= lo && lo <= q25 && q25 <= med && med <= q75 && q75 <= hi) || med != float64(int(med)) {
			t.Errorf("row %v: want reported ≤ q025 ≤ q25 ≤ median ≤ q75 ≤ q975, whole numbers", row)
		}
		if age >= 28 && (lo != rep || hi != rep || compl != 1) {
			t.Errorf("row %v: a day older than --max-delay is complete: its nowcast is its reported count", row)
		}
		if row[9] != "NA" {
			m, l, md, h := num(row, 9), num(row, 10), num(row, 11), num(row, 12)
			if !(l <= md && md <= h && l > 0) || !(m > 0) {
				t.Errorf("row %v: R mean %v, q025 %v, median %v, q975 %v", row, m, l, md, h)
			}
		}
	}

	again, _, _, _ := runNowcastCmd(t, ndjson, "--as-of", asOf, "--days", "35")
	if again != out {
		t.Error("the same file and seed gave different output")
	}
	other, _, _, _ := runNowcastCmd(t, ndjson, "--as-of", asOf, "--days", "35", "--seed", "2")
	if other == out {
		t.Error("another seed gave the same draws")
	}
	one, _, code, err := runNowcastCmd(t, ndjson, "--as-of", asOf, "--days", "35", "--region", "kz-71")
	if code != 0 {
		t.Fatalf("--region: exit %d: %v", code, err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.HasPrefix(line, "KZ-71,") {
			want = append(want, line)
		}
	}
	if got := strings.Split(strings.TrimSpace(one), "\n")[1:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("--region KZ-71 differs from its rows in the run of all regions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	csvFile, _ := nowcastSim(t, simulate.FormatCSV)
	fromCSV, _, code, err := runNowcastCmd(t, csvFile, "--as-of", asOf, "--days", "35")
	if code != 0 {
		t.Fatalf("CSV: exit %d: %v", code, err)
	}
	if fromCSV != out {
		t.Error("the CSV of the same events gave another nowcast than the NDJSON")
	}
}

// TestNowcastCorrections: a retraction withdraws its case and a case that
// supersedes another replaces it, once they are known by --as-of; probable
// cases and reports after --as-of do not count.
func TestNowcastCorrections(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	person := `"person":{"national_id":"900101300017"}`
	asOf := schemas.MustDate("2021-07-30")
	n := 0
	add := func(extra string, onset, report schemas.Date) string {
		n++
		id := "c-" + strconv.Itoa(n)
		b.WriteString(`{"event_id":"` + id + `","type":"case","region":"KZ-75","source":"lab",` + person +
			`,"report_date":"` + report.String() + `","onset_date":"` + onset.String() + `"` + extra + "}\n")
		return id
	}
	// A steady background: 20 cases a day, reported two days after onset.
	for d := 0; d < 60; d++ {
		for range 20 {
			add("", asOf.AddDays(-61+d), asOf.AddDays(-59+d))
		}
	}
	day := asOf.AddDays(-30)
	retracted := add("", day, day.AddDays(1))
	superseded := add("", day, day.AddDays(1))
	add(`,"supersedes":"`+superseded+`"`, day.AddDays(-1), day.AddDays(1)) // the corrected onset: a day earlier
	add(`,"classification":"probable"`, day, day.AddDays(1))
	lateRetracted := add("", day, day.AddDays(1))
	b.WriteString(`{"event_id":"r-1","type":"retraction","region":"KZ-75","source":"lab","retracts":"` + retracted + `","retraction_reason":"discarded","report_date":"` + day.AddDays(3).String() + "\"}\n")
	b.WriteString(`{"event_id":"r-2","type":"retraction","region":"KZ-75","source":"lab","retracts":"` + lateRetracted + `","retraction_reason":"discarded","report_date":"` + asOf.AddDays(1).String() + "\"}\n")
	b.WriteString(`{"event_id":"c-1","type":"case","region":"KZ-75","source":"lab",` + person + `,"report_date":"2021-06-01"}` + "\n") // a duplicate event_id: ignored
	path := filepath.Join(dir, "events.ndjson")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code, err := runNowcastCmd(t, path, "--as-of", asOf.String(), "--days", "40")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	reported := map[string]string{}
	for _, row := range nowcastRows(t, out) {
		reported[row[1]] = row[2]
	}
	// day: 20 + the superseded one's replacement moved away + the one
	// retracted after --as-of (still counts) = 21; the day before: 20 + the
	// corrected onset = 21.
	if got := reported[day.String()]; got != "21" {
		t.Errorf("%s: %s reported, want 21 (20, plus the case retracted only after --as-of; not the retracted, superseded or probable ones)", day, got)
	}
	if got := reported[day.AddDays(-1).String()]; got != "21" {
		t.Errorf("%s: %s reported, want 21 (20 and the superseding case's onset)", day.AddDays(-1), got)
	}
}

// TestNowcastBadInput: bad input and usage exit with 2 and a one-line
// message naming the file and line, or the flag, and what to do.
func TestNowcastBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"event_id":"c-1","type":"case","region":"KZ-75","source":"lab","person":{"national_id":"900101300017"},"report_date":"2021-07-02","onset_date":"2021-06-30"}` + "\n"
	invalid := write("invalid.ndjson", good+`{"event_id":"c-2","type":"case","region":"KZ-75","source":"lab","report_date":"2021-07-02"}`+"\n")
	onsetLate := write("onset.ndjson", good+`{"event_id":"c-3","type":"case","region":"KZ-75","source":"lab","person":{"national_id":"900101300017"},"report_date":"2021-07-02","onset_date":"2021-07-05"}`+"\n")
	broken := write("broken.ndjson", good+"{not json\n")
	few := write("few.ndjson", good)
	badCSV := write("case.csv", "event_id,region,source,person.national_id,report_date,onset_date\nc-1,KZ-75,lab,900101300017,2021-07-02,2021-06-30\nc-2,KZ-75,lab,900101300017,02.07.2021,\n")
	tests := []struct {
		name string
		args []string
		want []string // substrings of the message
	}{
		{"no file", []string{"--as-of", "2021-07-10"}, []string{"one event file"}},
		{"two files", []string{few, few, "--as-of", "2021-07-10"}, []string{"one event file"}},
		{"no --as-of", []string{few}, []string{"--as-of is required"}},
		{"bad --as-of", []string{few, "--as-of", "10.07.2021"}, []string{"--as-of", "YYYY-MM-DD"}},
		{"bad --days", []string{few, "--as-of", "2021-07-10", "--days", "0"}, []string{"--days"}},
		{"bad flag value", []string{few, "--as-of", "2021-07-10", "--days", "x"}, []string{"days"}},
		{"bad --max-delay", []string{few, "--as-of", "2021-07-10", "--max-delay", "50"}, []string{"delay window", "--max-delay"}},
		{"bad serial interval", []string{few, "--as-of", "2021-07-10", "--si-mean", "0.5"}, []string{"--si-mean"}},
		{"missing file", []string{filepath.Join(dir, "nope.ndjson"), "--as-of", "2021-07-10"}, []string{"nope.ndjson: no such file"}},
		{"invalid event", []string{invalid, "--as-of", "2021-07-10"}, []string{"invalid.ndjson:2:", "person", "fix or remove"}},
		{"onset after report", []string{onsetLate, "--as-of", "2021-07-10"}, []string{"onset.ndjson:2:", "after its report_date"}},
		{"broken JSON", []string{broken, "--as-of", "2021-07-10"}, []string{"broken.ndjson:2:"}},
		{"bad CSV date", []string{badCSV, "--as-of", "2021-07-10"}, []string{"case.csv:3:", "report_date"}},
		{"nothing by --as-of", []string{few, "--as-of", "2021-06-01"}, []string{"no confirmed case reported by 2021-06-01"}},
		{"unknown region", []string{few, "--as-of", "2021-07-10", "--region", "KZ-71"}, []string{"no confirmed case of region KZ-71", "KZ-75"}},
		{"too few cases", []string{few, "--as-of", "2021-07-10"}, []string{"few.ndjson", "only 1 confirmed cases", "--delay-window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, code, err := runNowcastCmd(t, tt.args...)
			if code != 2 || err == nil {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			msg := oneLine(err.Error())
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
		})
	}
}

// TestNowcastHelp: the help names the method, its citation, the columns
// and the exit status.
func TestNowcastHelp(t *testing.T) {
	out, _, code, err := runNowcastCmd(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, w := range []string{"Höhle & an der Heiden 2014", "Biometrics 70:993", "McGough et al. 2020", "Lawless 1994",
		"region,date,reported,median,q025,q975", "r_nowcast_mean", "without onset_date", "status 2", "--as-of"} {
		if !strings.Contains(out, w) {
			t.Errorf("help does not mention %q", w)
		}
	}
}
