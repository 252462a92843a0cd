package main

import (
	"fmt"
	"strconv"
	"testing"
)

// signalRun is what one surge scenario showed.
type signalRun struct {
	start, firstAlarm, firstStrengthen string
	// lead is firstStrengthen − firstAlarm in days (0 without both).
	lead int
	// quietCaseAlarms are alarms on the quiet regions' cases; quietAlarms
	// and quietEvaluated count every daily verdict with a bound there.
	quietCaseAlarms, quietAlarms, quietEvaluated int
	weeklySaysWhy                                bool
}

// runSurge runs the quick start on a simulated outbreak in which one
// region surges (R 0.9, then 1.7 from day 60) and three others are held at
// R 0.9, and reads the signals and decisions that landed.
func runSurge(t testing.TB, seed int64) signalRun {
	const surge, surgeDay = "KZ-75", 60
	quiet := "'KZ-71','KZ-55','KZ-35'"
	// Without the weekend effect: the run ends yesterday, so which
	// simulated days are weekends depends on the day the test runs, and
	// EARS on daily cases is not weekday-aware — the Monday catch-up of
	// deferred reports alarms in quiet regions on 4 of the 7 alignments
	// (an open limitation, README "Status and known limits").
	args := []string{"--regions", "KZ-75,KZ-71,KZ-55,KZ-35", "--days", "110", "--seed", strconv.FormatInt(seed, 10),
		"--weekend-deferral", "0", "--schedule", fmt.Sprintf("%s=0:0.9,%d:1.7", surge, surgeDay)}
	for _, q := range []string{"KZ-71", "KZ-55", "KZ-35"} {
		args = append(args, "--schedule", q+"=0:0.9")
	}
	run := runQuickStart(t, args...)
	db := "`" + run.db.Name + "`"
	one := func(q string) string {
		t.Helper()
		var s string
		if err := run.db.Conn.QueryRow(t.Context(), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	num := func(q string) int {
		t.Helper()
		n, err := strconv.Atoi(one(q))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var r signalRun
	r.start = one("SELECT toString(min(date)) FROM " + db + ".indicators_latest WHERE region = '" + surge + "'")
	after := fmt.Sprintf("date >= toDate('%s') + %d", r.start, surgeDay)
	// ClickHouse's min of no rows is the zero date; make it empty.
	zero := func(s string) string {
		if s == "0000-00-00" || s == "1970-01-01" {
			return ""
		}
		return s
	}
	r.firstAlarm = zero(one(fmt.Sprintf("SELECT toString(min(date)) FROM %s.signals WHERE region = '%s' AND stream = 'cases' AND alarm = 1 AND %s", db, surge, after)))
	r.firstStrengthen = zero(one(fmt.Sprintf("SELECT toString(min(date)) FROM %s.decisions WHERE region = '%s' AND level_to > level_from AND %s", db, surge, after)))
	if r.firstAlarm != "" && r.firstStrengthen != "" {
		r.lead = num(fmt.Sprintf("SELECT toString(toDate('%s') - toDate('%s'))", r.firstStrengthen, r.firstAlarm))
	}
	r.quietCaseAlarms = num("SELECT toString(count()) FROM " + db + ".signals WHERE region IN (" + quiet + ") AND stream = 'cases' AND alarm = 1")
	r.quietEvaluated = num("SELECT toString(count()) FROM " + db + ".signals WHERE region IN (" + quiet + ") AND period = 'day' AND isNotNull(upper_bound)")
	r.quietAlarms = num("SELECT toString(countIf(alarm = 1)) FROM " + db + ".signals WHERE region IN (" + quiet + ") AND period = 'day'")
	r.weeklySaysWhy = num("SELECT toString(count()) FROM "+db+".signals WHERE period = 'week' AND isNull(upper_bound) AND note LIKE 'needs % weeks of history%'") > 0
	return r
}

// TestSignalsWarnBeforeTheLevelChanges: the surging region's daily case
// series raises EARS alarms before its restriction level is strengthened,
// and the regions held at R 0.9 raise none on their cases.
func TestSignalsWarnBeforeTheLevelChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	r := runSurge(t, 7)
	t.Logf("surge from %s + 60 days: first cases alarm %s, first strengthening %s (%d days of warning); quiet regions: %d alarms over %d daily verdicts",
		r.start, r.firstAlarm, r.firstStrengthen, r.lead, r.quietAlarms, r.quietEvaluated)
	switch {
	case r.firstAlarm == "":
		t.Fatal("no alarm on the surging region's cases")
	case r.firstStrengthen != "" && r.firstAlarm >= r.firstStrengthen:
		t.Errorf("the first alarm (%s) does not precede the first strengthening (%s)", r.firstAlarm, r.firstStrengthen)
	}
	if r.quietCaseAlarms != 0 {
		t.Errorf("%d alarms on the cases of regions held at R 0.9", r.quietCaseAlarms)
	}
	if r.quietEvaluated == 0 {
		t.Error("no signal evaluated in the quiet regions")
	}
	if !r.weeklySaysWhy {
		t.Error("weekly methods do not say they need three years of history")
	}
}

// BenchmarkSignalLead measures, over several seeds, how many days before
// the plan's rule strengthens a surging region the signals warn, and the
// false-alarm rate in the quiet regions (the README's figures):
//
//	go test -tags chdb -run '^$' -bench SignalLead -benchtime 1x ./cmd/epiwatch
func BenchmarkSignalLead(b *testing.B) {
	for range b.N {
		var lead, leads, alarms, evaluated, caseAlarms, missed int
		for seed := int64(1); seed <= 5; seed++ {
			r := runSurge(b, seed)
			switch {
			case r.firstAlarm == "":
				missed++
			case r.firstStrengthen != "":
				lead += r.lead
				leads++
			}
			alarms += r.quietAlarms
			evaluated += r.quietEvaluated
			caseAlarms += r.quietCaseAlarms
			b.Logf("seed %d: first alarm %s, first strengthening %s, lead %d days; quiet: %d/%d daily verdicts alarmed (%d on cases)",
				seed, r.firstAlarm, r.firstStrengthen, r.lead, r.quietAlarms, r.quietEvaluated, r.quietCaseAlarms)
		}
		if leads > 0 {
			b.ReportMetric(float64(lead)/float64(leads), "lead-days")
		}
		b.ReportMetric(float64(missed), "surges-missed")
		b.ReportMetric(100*float64(alarms)/float64(max(evaluated, 1)), "quiet-alarm-%")
		b.ReportMetric(float64(caseAlarms), "quiet-case-alarms")
	}
}
