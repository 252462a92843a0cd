package simulate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// day is one emitted day.
type day struct {
	date   schemas.Date
	events []schemas.Event
}

func runSim(t testing.TB, cfg simulate.Config) (*simulate.Sim, []day) {
	t.Helper()
	s, err := simulate.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var days []day
	err = s.Run(context.Background(), func(d schemas.Date, events []schemas.Event) error {
		days = append(days, day{d, events})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, days
}

// smallConfig covers both countries, a big and a small region, with every
// optional feature and scenario on.
func smallConfig() simulate.Config {
	cfg := simulate.DefaultConfig()
	cfg.Regions = []string{"KZ-75", "KZ-62", "KG-GB", "KG-B"}
	cfg.Days = 70
	cfg.Seed = 7
	cfg.StaleFacilities = true
	cfg.CloseFacility = true
	cfg.DuplicateShare, cfg.RetractShare = 0.05, 0.03
	cfg.LateRegion, cfg.LateFromDay, cfg.LateDays = "KZ-62", 20, 3
	cfg.SporadicRegion = "KG-B"
	return cfg
}

// plainConfig is smallConfig with every scenario off (the default producer:
// report_complete and the facility registry, nothing else).
func plainConfig() simulate.Config {
	cfg := smallConfig()
	cfg.StaleFacilities, cfg.CloseFacility = false, false
	cfg.DuplicateShare, cfg.RetractShare = 0, 0
	cfg.LateRegion, cfg.LateFromDay, cfg.LateDays = "", 0, 0
	cfg.SporadicRegion = ""
	return cfg
}

// sent is an event as it was sent: its day and its place in the send order.
type sent struct {
	day schemas.Date
	n   int
	e   *schemas.Event
}

// sentByID indexes every event of a run by event_id.
func sentByID(days []day) map[string]sent {
	out := map[string]sent{}
	n := 0
	for _, d := range days {
		for i := range d.events {
			out[d.events[i].EventID] = sent{d.date, n, &d.events[i]}
			n++
		}
	}
	return out
}

// epidemicCases returns the case events that are cases of the epidemic
// once every correction is applied: the producer's own (not a hospital's
// duplicate), neither retracted nor superseded.
func epidemicCases(cfg simulate.Config, days []day) []*schemas.Event {
	gone := map[string]bool{}
	for _, d := range days {
		for _, e := range d.events {
			if c := e.Corrects(); c != "" {
				gone[c] = true
			}
		}
	}
	var out []*schemas.Event
	for _, d := range days {
		for i := range d.events {
			e := &d.events[i]
			if e.Type == schemas.TypeCase && e.Source == cfg.Source && !gone[e.EventID] {
				out = append(out, e)
			}
		}
	}
	return out
}

func writeAll(t *testing.T, cfg simulate.Config, dir, format string) {
	t.Helper()
	s, err := simulate.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := simulate.NewFileWriter(dir, format)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), func(_ schemas.Date, ev []schemas.Event) error { return w.Write(ev) }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := simulate.WriteTruthCSV(f, s.Truth()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func dirBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestReproducible(t *testing.T) {
	cfg := smallConfig()
	for _, format := range []string{simulate.FormatNDJSON, simulate.FormatCSV} {
		a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
		writeAll(t, cfg, a, format)
		writeAll(t, cfg, b, format)
		other := cfg
		other.Seed++
		writeAll(t, other, c, format)
		fa, fb, fc := dirBytes(t, a), dirBytes(t, b), dirBytes(t, c)
		// Every scenario is on: every event type has events, so a file.
		if len(fa) != len(schemas.EventTypes)+1 {
			t.Fatalf("%s: %d files, want %d event types + truth.csv", format, len(fa), len(schemas.EventTypes))
		}
		for _, typ := range schemas.EventTypes {
			if _, ok := fa[string(typ)+"."+format]; !ok {
				t.Errorf("%s: no file of %s", format, typ)
			}
		}
		for name, ba := range fa {
			if !bytes.Equal(ba, fb[name]) {
				t.Errorf("%s: %s differs between two runs with the same seed", format, name)
			}
			if len(ba) < 100 {
				t.Errorf("%s: %s is almost empty (%d bytes)", format, name, len(ba))
			}
			if bytes.Equal(ba, fc[name]) {
				t.Errorf("%s: %s is the same with another seed", format, name)
			}
		}
	}
}

// Every event passes the JSON Schema and the validator as ingest runs them,
// on the day it is delivered, carries consistent national IDs, and every
// correction follows the event it corrects, from the same source; with
// every scenario on, every event type appears. Each scenario's events
// appear when it is on, and not when it is off.
func TestEventsValid(t *testing.T) {
	for _, delays := range []bool{true, false} {
		cfg := smallConfig()
		cfg.Delays = delays
		_, days := runSim(t, cfg)
		stats := checkEvents(t, cfg, days)
		for _, typ := range schemas.EventTypes {
			if stats.ByType[typ] == 0 {
				t.Errorf("delays=%v: no %s events (%s)", delays, typ, stats)
			}
		}
		t.Logf("delays=%v: %s", delays, stats)
	}

	count := func(days []day, match func(d schemas.Date, e *schemas.Event) bool) int {
		n := 0
		for _, d := range days {
			for i := range d.events {
				if match(d.date, &d.events[i]) {
					n++
				}
			}
		}
		return n
	}
	scenarios := []struct {
		name string
		on   func(c *simulate.Config)
		// events counts the scenario's events (or signs) in a run.
		events func(cfg simulate.Config, days []day) int
	}{
		{"report complete", func(c *simulate.Config) { c.ReportComplete = true }, func(_ simulate.Config, days []day) int {
			return count(days, func(_ schemas.Date, e *schemas.Event) bool { return e.Type == schemas.TypeReportComplete })
		}},
		{"late region", func(c *simulate.Config) { c.LateRegion, c.LateFromDay, c.LateDays = "KZ-62", 20, 3 }, func(_ simulate.Config, days []day) int {
			return count(days, func(d schemas.Date, e *schemas.Event) bool {
				return e.Type == schemas.TypeCase && e.Supersedes == "" && e.ReportDate != d
			})
		}},
		{"sporadic region", func(c *simulate.Config) { c.SporadicRegion = "KG-B" }, func(cfg simulate.Config, days []day) int {
			n := 0
			for _, e := range epidemicCases(cfg, days) {
				if e.Region == "KG-B" {
					n++
				}
			}
			if n < 25 { // a sign, not an event: the outbreak is gone
				return 1
			}
			return 0
		}},
		{"duplicates", func(c *simulate.Config) { c.DuplicateShare = 0.05 }, func(cfg simulate.Config, days []day) int {
			return count(days, func(_ schemas.Date, e *schemas.Event) bool {
				return e.Type == schemas.TypeCase && e.Source != cfg.Source
			})
		}},
		{"retractions", func(c *simulate.Config) { c.RetractShare = 0.03 }, func(_ simulate.Config, days []day) int {
			return count(days, func(_ schemas.Date, e *schemas.Event) bool { return e.Type == schemas.TypeRetraction })
		}},
		{"re-filed cases", func(c *simulate.Config) { c.RetractShare = 0.03 }, func(_ simulate.Config, days []day) int {
			return count(days, func(_ schemas.Date, e *schemas.Event) bool { return e.Supersedes != "" })
		}},
		{"closing facility", func(c *simulate.Config) { c.CloseFacility = true }, func(cfg simulate.Config, days []day) int {
			closed := count(days, func(_ schemas.Date, e *schemas.Event) bool {
				return e.Type == schemas.TypeFacility && e.FacilityStatus == schemas.FacilityClosed
			})
			last := map[string]schemas.Date{}
			for _, d := range days {
				for _, e := range d.events {
					if e.Type == schemas.TypeBedSnapshot {
						last[e.FacilityID] = d.date
					}
				}
			}
			silent := 0
			for _, d := range last {
				if d < days[len(days)-1].date {
					silent++
				}
			}
			return closed + silent
		}},
	}
	base := plainConfig()
	base.ReportComplete = false
	_, offDays := runSim(t, base)
	checkEvents(t, base, offDays)
	for _, sc := range scenarios {
		if n := sc.events(base, offDays); n != 0 {
			t.Errorf("%s: %d of its events with every scenario off", sc.name, n)
		}
		cfg := base
		sc.on(&cfg)
		_, days := runSim(t, cfg)
		checkEvents(t, cfg, days)
		if n := sc.events(cfg, days); n == 0 {
			t.Errorf("%s: no events of it when it is on", sc.name)
		}
	}
}

// checkEvents checks every event of a run as ingest would on the day it is
// sent, and every correction against the event it corrects, and returns
// their counts.
func checkEvents(t *testing.T, cfg simulate.Config, days []day) simulate.Stats {
	t.Helper()
	contract, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	regions := schemas.DefaultRegions()
	ps, err := pseudo.New(pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)}, nil, regions, nil)
	if err != nil {
		t.Fatal(err)
	}
	sentBefore := map[string]*schemas.Event{}
	var stats simulate.Stats
	for _, d := range days {
		now := d.date.Time().Add(12 * time.Hour) // midday UTC: the afternoon in Almaty and Bishkek
		v := &schemas.Validator{Regions: regions, Now: func() time.Time { return now }}
		stats.Add(d.events)
		for i := range d.events {
			e := &d.events[i]
			raw, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := contract.Decode(raw)
			if err != nil {
				t.Fatalf("schema rejects %s: %v", raw, err)
			}
			if err := v.Validate(dec); err != nil {
				t.Fatalf("validator rejects %s on %s: %v", raw, d.date, err)
			}
			if err := ps.Apply(dec); err != nil {
				t.Fatalf("pseudonymiser rejects %s: %v", raw, err)
			}
			if sentBefore[e.EventID] != nil {
				t.Fatalf("event_id %s emitted twice", e.EventID)
			}
			if c := e.Corrects(); c != "" {
				checkCorrection(t, e, sentBefore[c])
			}
			sentBefore[e.EventID] = e
			checkDelivery(t, cfg, d.date, e)
			reg, _ := regions.Get(e.Region)
			for _, p := range e.Persons() {
				checkPerson(t, reg.Country, p, e)
			}
		}
	}
	cases := map[string]bool{}
	for _, e := range epidemicCases(cfg, days) {
		if cases[e.Person.NationalID] {
			t.Fatalf("%s: the same person is a case twice", e.EventID)
		}
		cases[e.Person.NationalID] = true
	}
	return stats
}

// checkCorrection: ingest accepts e, which corrects target (nil: not sent
// before e).
func checkCorrection(t *testing.T, e, target *schemas.Event) {
	t.Helper()
	switch {
	case target == nil:
		t.Fatalf("%s corrects %s, which was not sent before it", e.EventID, e.Corrects())
	case target.Source != e.Source:
		t.Fatalf("%s (source %s) corrects %s of another source, %s", e.EventID, e.Source, target.EventID, target.Source)
	case e.Type == schemas.TypeRetraction && (!target.Type.Correctable() || target.Region != e.Region):
		t.Fatalf("retraction %s in %s of %s %s in %s", e.EventID, e.Region, target.Type, target.EventID, target.Region)
	case e.Type != schemas.TypeRetraction && target.Type != e.Type:
		t.Fatalf("%s %s supersedes %s %s", e.Type, e.EventID, target.Type, target.EventID)
	}
}

// lateWindow returns the days whose case reports the late region holds back,
// [from, until), and sends on until (all zero without a late region).
func lateWindow(cfg simulate.Config) (from, until schemas.Date) {
	if cfg.LateRegion == "" {
		return 0, 0
	}
	from = cfg.Start.AddDays(cfg.LateFromDay)
	return from, from.AddDays(cfg.LateDays)
}

// checkDelivery: each event arrives on the day it belongs to, but for
// corrections (1–5 days after what they correct) and the late region's
// held-back reports (on the day after the late days).
func checkDelivery(t *testing.T, cfg simulate.Config, day schemas.Date, e *schemas.Event) {
	t.Helper()
	from, until := lateWindow(cfg)
	held := func(d schemas.Date) bool { return day == until && d >= from && d < until }
	switch e.Type {
	case schemas.TypeCase:
		switch {
		case held(e.ReportDate):
		case e.Supersedes != "":
			if !(e.ReportDate < day && day <= e.ReportDate.AddDays(5)) {
				t.Fatalf("%s: re-filed on %s, not 1–5 days after its report date %s", e.EventID, day, e.ReportDate)
			}
		case e.ReportDate != day:
			t.Fatalf("%s reported %s, delivered %s", e.EventID, e.ReportDate, day)
		}
		// (A hospital's duplicate comes 0–3 days after the first report.)
		if !cfg.Delays && e.Source == cfg.Source && !e.OnsetDate.IsZero() && e.OnsetDate != e.ReportDate {
			t.Fatalf("%s: without delays onset %s should be the report date %s", e.EventID, e.OnsetDate, e.ReportDate)
		}
	case schemas.TypeLabTest:
		if e.ResultDate != day {
			t.Fatalf("%s resulted %s, delivered %s", e.EventID, e.ResultDate, day)
		}
	case schemas.TypeContact:
		if e.ContactDate > day {
			t.Fatalf("%s: contact on %s delivered before, on %s", e.EventID, e.ContactDate, day)
		}
	case schemas.TypeBedSnapshot:
		if e.Date() != day {
			t.Fatalf("%s: snapshot of %s delivered %s", e.EventID, e.Date(), day)
		}
		if *e.Occupied > *e.Total || *e.Occupied < 0 {
			t.Fatalf("%s: occupied %d of %d", e.EventID, *e.Occupied, *e.Total)
		}
	case schemas.TypeVaccination:
		if e.VaccinationDate != day {
			t.Fatalf("%s given %s, delivered %s", e.EventID, e.VaccinationDate, day)
		}
	case schemas.TypeReportComplete:
		if e.ReportDate != day && !(held(e.ReportDate) && e.Region == cfg.LateRegion && e.Feed == schemas.TypeCase) {
			t.Fatalf("%s: complete for %s, delivered %s", e.EventID, e.ReportDate, day)
		}
	case schemas.TypeRetraction:
		if e.ReportDate != day && !held(e.ReportDate) {
			t.Fatalf("%s: issued %s, delivered %s", e.EventID, e.ReportDate, day)
		}
	case schemas.TypeFacility:
		if e.EffectiveDate != day {
			t.Fatalf("%s: effective %s, delivered %s", e.EventID, e.EffectiveDate, day)
		}
	}
}

func checkPerson(t *testing.T, country string, p *schemas.Person, e *schemas.Event) {
	t.Helper()
	want := 12
	if country == "KG" {
		want = 14
	}
	if len(p.NationalID) != want {
		t.Fatalf("%s: national ID of %d digits in %s", e.EventID, len(p.NationalID), country)
	}
	info, err := nationalid.Parse(country, p.NationalID)
	if err != nil {
		t.Fatalf("%s: national ID invalid: %v", e.EventID, err)
	}
	if p.BirthDate != "" && p.BirthDate != info.Birth.Format(schemas.DateLayout) {
		t.Fatalf("%s: birth date %s disagrees with the national ID (%s)", e.EventID, p.BirthDate, info.Birth.Format(schemas.DateLayout))
	}
	if p.Sex != "" && (p.Sex == "female") != (info.Sex == nationalid.Female) {
		t.Fatalf("%s: sex %s disagrees with the national ID", e.EventID, p.Sex)
	}
	if p.Pseudonym != "" || p.KeyID != "" || p.AgeBand != "" {
		t.Fatalf("%s: producer events carry no pseudonyms", e.EventID)
	}
}

func TestDefaultConfigSize(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the full default configuration")
	}
	s, days := runSim(t, simulate.DefaultConfig())
	var st simulate.Stats
	for _, d := range days {
		st.Add(d.events)
	}
	if len(s.Regions()) != 20 || len(days) != 120 {
		t.Fatalf("%d regions, %d days; want KZ's 20 regions over 120 days", len(s.Regions()), len(days))
	}
	if st.Events < 100_000 || st.Events > 500_000 {
		t.Errorf("default run: %s; want the order of 10^5", st)
	}
	t.Log(st)
}

func TestTruthMatchesSchedule(t *testing.T) {
	cfg := smallConfig()
	fixed := simulate.RSchedule{{FromDay: 0, R: 1.6}, {FromDay: 25, R: 0.6}, {FromDay: 50, R: 1.1}}
	cfg.Schedules = map[string]simulate.RSchedule{"KZ-62": fixed}
	s, days := runSim(t, cfg)
	if got := s.Schedule("KZ-62"); got.String() != fixed.String() {
		t.Fatalf("schedule of KZ-62 = %s, want %s", got, fixed)
	}
	rows := s.Truth()
	if len(rows) != len(s.Regions())*cfg.Days {
		t.Fatalf("%d truth rows, want %d", len(rows), len(s.Regions())*cfg.Days)
	}
	// The truth counts the epidemic's cases: the case events once
	// corrected, without a hospital's duplicates (every scenario is on).
	reported := map[string]map[schemas.Date]int{}
	for _, e := range epidemicCases(cfg, days) {
		if reported[e.Region] == nil {
			reported[e.Region] = map[schemas.Date]int{}
		}
		reported[e.Region][e.ReportDate]++
	}
	for _, r := range rows {
		i := int(r.Date - cfg.Start)
		if want := s.Schedule(r.Region).At(i); r.R != want {
			t.Fatalf("%s %s: truth R %g, schedule %g", r.Region, r.Date, r.R, want)
		}
		if r.RTrue > r.R || r.RTrue < r.R*0.9 {
			t.Fatalf("%s %s: R in force %g far from the schedule's %g (S/N %g)", r.Region, r.Date, r.RTrue, r.R, r.SOverN)
		}
		if r.Reported != reported[r.Region][r.Date] {
			t.Fatalf("%s %s: truth says %d reported, %d case events", r.Region, r.Date, r.Reported, reported[r.Region][r.Date])
		}
		if r.InfectiousOccupied > r.InfectiousBeds || r.ICUOccupied > r.ICUBeds || r.ProvisionalOccupied > r.ProvisionalBeds {
			t.Fatalf("%s %s: occupancy above capacity: %+v", r.Region, r.Date, r)
		}
	}
	var buf bytes.Buffer
	if err := simulate.WriteTruthCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(rows)+1 || !strings.HasPrefix(lines[0], "region,date,r_schedule,r_true,") {
		t.Fatalf("truth CSV: %d lines, header %q", len(lines), lines[0])
	}
}

// meanCases is the mean of cases with onset in days [from, to) of region.
func meanCases(rows []simulate.TruthRow, region string, start schemas.Date, from, to int) float64 {
	sum := 0
	for _, r := range rows {
		if i := int(r.Date - start); r.Region == region && i >= from && i < to {
			sum += r.Local + r.Imported
		}
	}
	return float64(sum) / float64(to-from)
}

// The renewal process does what R says: incidence grows while R > 1 and
// falls while R < 1; a long surge fills the hospitals.
func TestIncidenceFollowsR(t *testing.T) {
	cfg := simulate.DefaultConfig()
	cfg.Regions = []string{"KZ-71"}
	cfg.Days = 90
	cfg.Schedules = map[string]simulate.RSchedule{"KZ-71": {{FromDay: 0, R: 1.5}, {FromDay: 45, R: 0.7}}}
	s, _ := runSim(t, cfg)
	rows := s.Truth()
	early, late := meanCases(rows, "KZ-71", cfg.Start, 10, 20), meanCases(rows, "KZ-71", cfg.Start, 35, 45)
	if !(late > 3*early) {
		t.Errorf("R 1.5: mean cases %.1f/day on days 10–19 and %.1f on 35–44; want growth", early, late)
	}
	down := meanCases(rows, "KZ-71", cfg.Start, 75, 90)
	if !(down < late/3) {
		t.Errorf("R 0.7: mean cases %.1f/day on days 75–89 after %.1f on 35–44; want decline", down, late)
	}
	peak := 0.0
	for _, r := range rows {
		peak = max(peak, r.Occupancy())
	}
	if peak < 90 {
		t.Errorf("a 45-day surge at R 1.5 peaks at %.0f %% infectious-bed occupancy; want ≥ 90 %%", peak)
	}

	// Across the default schedules of every region: over the phases with
	// R > 1 incidence grows, over those with R < 1 it falls.
	if testing.Short() {
		return
	}
	s, _ = runSim(t, simulate.DefaultConfig())
	rows = s.Truth()
	cfg = s.Config()
	var growFirst, growSecond, fallFirst, fallSecond float64
	for _, reg := range s.Regions() {
		sched := s.Schedule(reg)
		for i, st := range sched {
			end := cfg.Days
			if i+1 < len(sched) {
				end = sched[i+1].FromDay
			}
			if end-st.FromDay < 10 {
				continue
			}
			mid := (st.FromDay + end) / 2
			a, b := meanCases(rows, reg, cfg.Start, st.FromDay+2, mid), meanCases(rows, reg, cfg.Start, mid, end)
			if st.R > 1 {
				growFirst, growSecond = growFirst+a, growSecond+b
			} else {
				fallFirst, fallSecond = fallFirst+a, fallSecond+b
			}
		}
	}
	if !(growSecond > 1.2*growFirst) || !(fallSecond < fallFirst/1.2) {
		t.Errorf("R > 1 phases: mean cases %.0f → %.0f; R < 1 phases: %.0f → %.0f", growFirst, growSecond, fallFirst, fallSecond)
	}
}

// Traced contacts become cases: the same national ID in a contact event and
// a later case event of the same region (once corrected).
func TestContactsBecomeCases(t *testing.T) {
	cfg := smallConfig()
	_, days := runSim(t, cfg)
	contacts := map[string]string{} // national ID → region
	linked, local := 0, 0
	for _, d := range days {
		for _, e := range d.events {
			if e.Type == schemas.TypeContact {
				contacts[e.ContactPerson.NationalID] = e.Region
			}
		}
	}
	for _, e := range epidemicCases(cfg, days) {
		if e.Imported {
			continue
		}
		local++
		if r, ok := contacts[e.Person.NationalID]; ok {
			if r != e.Region {
				t.Fatalf("%s: a contact in %s became a case in %s", e.EventID, r, e.Region)
			}
			linked++
		}
	}
	if share := float64(linked) / float64(local); share < 0.25 || share > 0.7 {
		t.Errorf("%d of %d local cases were traced contacts (%.0f %%); want about half", linked, local, 100*share)
	}
}

// CSV and NDJSON files are what the importer reads, event for event: a file
// per event type that has events (every type, with every scenario on) and
// none for a type without, not even one left by an earlier run. CSV leaves
// out a facility's capacities (see FileWriter), and only them.
func TestFilesReadByImporter(t *testing.T) {
	cfg := smallConfig()
	cfg.Days = 40
	_, days := runSim(t, cfg)
	want := map[schemas.EventType][]string{}
	for _, d := range days {
		for i := range d.events {
			e := d.events[i]
			b, _ := json.Marshal(&e)
			want[e.Type] = append(want[e.Type], string(b))
		}
	}
	contract, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) []string {
		t.Helper()
		var got []string
		err := ingest.ReadFile(path, 1000, func(recs []ingest.Record) error {
			for _, r := range recs {
				e, err := contract.Decode(r.Raw)
				if err != nil {
					return errors.New(path + ": " + err.Error() + ": " + string(r.Raw))
				}
				b, _ := json.Marshal(e)
				got = append(got, string(b))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, format := range []string{simulate.FormatNDJSON, simulate.FormatCSV} {
		dir := t.TempDir()
		writeAll(t, cfg, dir, format)
		for _, typ := range schemas.EventTypes {
			path := filepath.Join(dir, string(typ)+"."+format)
			w := want[typ] // both formats carry every field
			if len(w) == 0 {
				t.Fatalf("%s: no events of the type with every scenario on", typ)
			}
			got := read(path)
			if len(got) != len(w) {
				t.Fatalf("%s: read %d events, wrote %d", path, len(got), len(w))
			}
			for i := range got {
				if got[i] != w[i] {
					t.Fatalf("%s line %d:\nread  %s\nwrote %s", path, i+2, got[i], w[i])
				}
			}
		}

		// Again without corrections, into the same directory: the
		// retractions of the first run are gone, not left to be imported.
		plain := plainConfig()
		plain.Days = 40
		writeAll(t, plain, dir, format)
		if _, err := os.Stat(filepath.Join(dir, "retraction."+format)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a run without retractions left retraction.%s (%v)", format, format, err)
		}
		if got := read(filepath.Join(dir, "case."+format)); len(got) == 0 {
			t.Errorf("%s: the second run wrote no cases", format)
		}
	}
}

func TestStaleFacilities(t *testing.T) {
	cfg := simulate.DefaultConfig()
	cfg.Days = 60
	for _, stale := range []bool{false, true} {
		cfg.StaleFacilities = stale
		_, days := runSim(t, cfg)
		seen := map[string][]schemas.Date{}
		for _, d := range days {
			for _, e := range d.events {
				if e.Type == schemas.TypeBedSnapshot && e.BedKind != schemas.BedICU {
					seen[e.FacilityID] = append(seen[e.FacilityID], e.Date())
				}
			}
		}
		gaps := 0
		for _, ds := range seen {
			for i := 1; i < len(ds); i++ {
				if ds[i]-ds[i-1] > 1 {
					gaps++
				}
			}
			if ds[0] != cfg.Start && !stale {
				t.Errorf("facility first reports on %s", ds[0])
			}
		}
		if stale != (gaps > 0) {
			t.Errorf("stale facilities %v: %d reporting gaps", stale, gaps)
		}
	}
}

func TestScale(t *testing.T) {
	total := func(scale float64) (cases, beds int) {
		cfg := simulate.DefaultConfig()
		cfg.Days = 45
		cfg.Scale = scale
		s, _ := runSim(t, cfg)
		for _, r := range s.Truth() {
			cases += r.Local + r.Imported
			if r.Date == cfg.Start {
				beds += r.InfectiousBeds
			}
		}
		return cases, beds
	}
	c1, b1 := total(1)
	c3, b3 := total(3)
	if ratio := float64(c3) / float64(c1); ratio < 2 || ratio > 4.5 {
		t.Errorf("scale 3 gives %.1f× the cases (%d vs %d)", ratio, c3, c1)
	}
	if ratio := float64(b3) / float64(b1); ratio < 2.5 || ratio > 3.5 {
		t.Errorf("scale 3 gives %.1f× the beds (%d vs %d)", ratio, b3, b1)
	}
}

func TestRunStopsOnCancelAndEmitError(t *testing.T) {
	s, err := simulate.New(smallConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = s.Run(ctx, func(schemas.Date, []schemas.Event) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("after cancel: %v, %d days", err, n)
	}
	if got := len(s.Truth()); got != 3*len(s.Regions()) {
		t.Fatalf("truth of an interrupted run: %d rows, want 3 days", got)
	}
	boom := errors.New("boom")
	if err := s.Run(context.Background(), func(schemas.Date, []schemas.Event) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("emit error: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	bad := map[string]func(c *simulate.Config){
		"unknown region":  func(c *simulate.Config) { c.Regions = []string{"KZ-99"} },
		"no such country": func(c *simulate.Config) { c.Country = "XX" },
		"schedule elsewhere": func(c *simulate.Config) {
			c.Regions = []string{"KZ-75"}
			c.Schedules = map[string]simulate.RSchedule{"KZ-71": {{0, 1}}}
		},
		"unordered schedule": func(c *simulate.Config) {
			c.Schedules = map[string]simulate.RSchedule{"KZ-75": {{0, 1}, {0, 2}}}
		},
		"zero days":                  func(c *simulate.Config) { c.Days = 0 },
		"zero scale":                 func(c *simulate.Config) { c.Scale = 0 },
		"early start":                func(c *simulate.Config) { c.Start = schemas.MustDate("2018-12-01") },
		"SI mean ≤ 1":                func(c *simulate.Config) { c.SI.Mean = 1 },
		"share above 1":              func(c *simulate.Config) { c.HospShare = 1.5 },
		"negative rate":              func(c *simulate.Config) { c.ImportRate = -1 },
		"empty source":               func(c *simulate.Config) { c.Source = " " },
		"no ascertained":             func(c *simulate.Config) { c.Ascertainment = 0 },
		"late days without a region": func(c *simulate.Config) { c.LateDays = 3 },
		"late past the run": func(c *simulate.Config) {
			c.LateRegion, c.LateFromDay, c.LateDays = "KZ-75", c.Days-2, 2 // released after the last day
		},
		"no late days": func(c *simulate.Config) { c.LateRegion, c.LateFromDay = "KZ-75", 10 },
		"late region not simulated": func(c *simulate.Config) {
			c.Regions = []string{"KZ-75"}
			c.LateRegion, c.LateFromDay, c.LateDays = "KZ-71", 10, 2
		},
		"sporadic region not simulated": func(c *simulate.Config) {
			c.Regions = []string{"KZ-75"}
			c.SporadicRegion = "KZ-71"
		},
		"sporadic with a schedule": func(c *simulate.Config) {
			c.SporadicRegion = "KZ-75"
			c.Schedules = map[string]simulate.RSchedule{"KZ-75": {{0, 1.2}}}
		},
		"duplicates above 1":       func(c *simulate.Config) { c.DuplicateShare = 1.5 },
		"negative retractions":     func(c *simulate.Config) { c.RetractShare = -0.1 },
		"weekend deferral above 1": func(c *simulate.Config) { c.WeekendDeferral = 1.2 },
		"drift below 0 days":       func(c *simulate.Config) { c.DelayDrift = -c.DelayMean - 1 },
		"drift beyond 20 days":     func(c *simulate.Config) { c.DelayDrift = 18 },
	}
	for name, mut := range bad {
		cfg := simulate.DefaultConfig()
		mut(&cfg)
		if _, err := simulate.New(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := simulate.DefaultConfig()
	cfg.Country = "KG"
	s, err := simulate.New(cfg, nil)
	if err != nil || len(s.Regions()) != 9 {
		t.Fatalf("KG: %v, %v", s.Regions(), err)
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := simulate.ParseSchedule(" 0:1.5, 30:0.7 ,45:1")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "0:1.5,30:0.7,45:1" || s.At(0) != 1.5 || s.At(29) != 1.5 || s.At(30) != 0.7 || s.At(100) != 1 {
		t.Fatalf("parsed %v", s)
	}
	if late := (simulate.RSchedule{{FromDay: 10, R: 2}}); late.At(0) != 2 {
		t.Fatal("before the first step the first R applies")
	}
	for _, bad := range []string{"", "1.5", "0:x", "5:1,5:2", "0:-1", "0:11"} {
		if _, err := simulate.ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

func TestSerialInterval(t *testing.T) {
	s, err := simulate.New(simulate.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := s.SerialInterval()
	sum, mean := 0.0, 0.0
	for k, v := range w {
		sum += v
		mean += float64(k) * v
	}
	if w[0] != 0 || sum < 0.999999 || sum > 1.000001 || mean < 4.6 || mean > 4.8 {
		t.Fatalf("SI: w0 %g, Σw %g, mean %g", w[0], sum, mean)
	}
}

// BenchmarkRun generates the default outbreak (20 regions × 120 days).
func BenchmarkRun(b *testing.B) {
	s, err := simulate.New(simulate.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	events := 0
	b.ResetTimer()
	for b.Loop() {
		if err := s.Run(context.Background(), func(_ schemas.Date, ev []schemas.Event) error {
			events += len(ev)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// The Cori estimator (posterior mean Σ L_t / Σ Λ_t over a week, flat prior)
// recovers the simulated R from the cases by onset, in every phase.
func TestCoriRecoversR(t *testing.T) {
	cfg := simulate.DefaultConfig()
	cfg.Regions = []string{"KZ-75"}
	cfg.Days = 100
	cfg.Scale = 5
	cfg.Schedules = map[string]simulate.RSchedule{"KZ-75": {{FromDay: 0, R: 1.3}, {FromDay: 35, R: 0.85}, {FromDay: 70, R: 1.1}}}
	s, _ := runSim(t, cfg)
	rows := s.Truth()
	for _, win := range [][2]int{{20, 35}, {50, 70}, {85, 100}} {
		var local, lambda float64
		for _, r := range rows[win[0]:win[1]] {
			local += float64(r.Local)
			lambda += r.Lambda
		}
		want := rows[win[0]].RTrue
		if got := local / lambda; got < want*0.9 || got > want*1.1 {
			t.Errorf("days %d–%d: estimated R %.3f, simulated %.3f", win[0], win[1]-1, got, want)
		}
	}
}
