package main

import (
	"fmt"
	"strconv"
	"testing"
)

// TestSignalsWarnBeforeTheLevelChanges runs the quick start on a simulated
// outbreak in which one region surges (R 0.9, then 1.7 from day 60) and
// others are held at R 0.9: the surging region's daily case series raises
// EARS alarms before its restriction level is strengthened, and the quiet
// regions raise none on their cases. The figures (days of warning, false
// alarms over the quiet region-days) are the README's.
func TestSignalsWarnBeforeTheLevelChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	const surge, surgeDay = "KZ-75", 60
	quiet := []string{"KZ-71", "KZ-55", "KZ-35"}
	args := []string{"--regions", surge + "," + quiet[0] + "," + quiet[1] + "," + quiet[2], "--days", "110", "--seed", "7",
		"--schedule", fmt.Sprintf("%s=0:0.9,%d:1.7", surge, surgeDay)}
	for _, q := range quiet {
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
	start := one("SELECT toString(min(date)) FROM " + db + ".indicators_latest WHERE region = '" + surge + "'")
	firstAlarm := one(fmt.Sprintf("SELECT toString(min(date)) FROM %s.signals WHERE region = '%s' AND stream = 'cases' AND alarm = 1 AND date >= toDate('%s') + %d", db, surge, start, surgeDay))
	firstStrengthen := one(fmt.Sprintf("SELECT toString(min(date)) FROM %s.decisions WHERE region = '%s' AND level_to > level_from AND date >= toDate('%s') + %d", db, surge, start, surgeDay))
	t.Logf("surge from %s + %d days: first cases alarm %s, first strengthening %s", start, surgeDay, firstAlarm, firstStrengthen)
	if firstAlarm == "0000-00-00" || firstAlarm == "1970-01-01" {
		t.Fatalf("no alarm on %s's cases after its surge", surge)
	}
	if firstStrengthen != "0000-00-00" && firstStrengthen != "1970-01-01" && firstAlarm >= firstStrengthen {
		t.Errorf("the first alarm (%s) does not precede the first strengthening (%s)", firstAlarm, firstStrengthen)
	}
	lead := one(fmt.Sprintf("SELECT toString(toDate('%s') - toDate('%s'))", firstStrengthen, firstAlarm))
	t.Logf("signals warned %s days before the plan's rule strengthened", lead)

	// Quiet regions: no alarm on their cases; the false-alarm rate over every
	// evaluated quiet region-day, series and daily method.
	in := "('" + quiet[0] + "','" + quiet[1] + "','" + quiet[2] + "')"
	if n := one("SELECT toString(count()) FROM " + db + ".signals WHERE region IN " + in + " AND stream = 'cases' AND alarm = 1"); n != "0" {
		t.Errorf("%s alarms on the cases of regions held at R 0.9", n)
	}
	evaluated, _ := strconv.Atoi(one("SELECT toString(count()) FROM " + db + ".signals WHERE region IN " + in + " AND period = 'day' AND isNotNull(upper_bound)"))
	alarms, _ := strconv.Atoi(one("SELECT toString(countIf(alarm = 1)) FROM " + db + ".signals WHERE region IN " + in + " AND period = 'day'"))
	if evaluated == 0 {
		t.Fatal("no signal evaluated in the quiet regions")
	}
	t.Logf("quiet regions: %d alarms over %d evaluated region-day-series-methods (%.2f %%)", alarms, evaluated, 100*float64(alarms)/float64(evaluated))
	// Weekly methods say why they have no verdict on four months.
	if n := one("SELECT toString(count()) FROM " + db + ".signals WHERE period = 'week' AND isNull(upper_bound) AND note LIKE 'needs % weeks of history%'"); n == "0" {
		t.Error("weekly methods do not say they need three years of history")
	}
}
