package simulate_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// The late region's case events and case report_complete of the late days
// are sent with the batch of the day after them, first and in the order they
// were due, unchanged (their report dates are the original ones); so are
// corrections of a held-back case, which must not overtake it. Everything
// else — the region's tests and beds included — is sent on time.
func TestLateRegion(t *testing.T) {
	cfg := plainConfig()
	cfg.DuplicateShare, cfg.RetractShare = 0.1, 0.1 // duplicates and corrections of held-back cases
	onTime := cfg
	cfg.LateRegion, cfg.LateFromDay, cfg.LateDays = "KZ-75", 30, 4
	_, late := runSim(t, cfg)
	_, plain := runSim(t, onTime)
	from, until := lateWindow(cfg)
	lateAt, plainAt := sentByID(late), sentByID(plain)
	if len(lateAt) != len(plainAt) {
		t.Fatalf("%d events with a late region, %d without", len(lateAt), len(plainAt))
	}
	var moved []sent // in the order they were due
	heldCases, onTimeRegion := 0, map[schemas.EventType]int{}
	for id, p := range plainAt {
		l, ok := lateAt[id]
		if !ok {
			t.Fatalf("%s is sent only without a late region", id)
		}
		if a, b := mustJSON(t, l.e), mustJSON(t, p.e); a != b {
			t.Fatalf("a late region changes an event:\n%s\n%s", a, b)
		}
		e := p.e
		due := p.day >= from && p.day < until
		caseFeed := e.Region == cfg.LateRegion && (e.Type == schemas.TypeCase || e.Type == schemas.TypeReportComplete && e.Feed == schemas.TypeCase)
		target := e.Corrects()
		correctsHeld := target != "" && lateAt[target].day != plainAt[target].day
		wantHeld := due && (caseFeed || correctsHeld)
		switch isMoved := l.day != p.day; {
		case isMoved != wantHeld:
			t.Fatalf("%s %s of %s due %s: sent %s (held back %v, want %v)", e.Type, id, e.Region, p.day, l.day, isMoved, wantHeld)
		case isMoved && l.day != until:
			t.Fatalf("%s due %s sent %s, not with the late upload on %s", id, p.day, l.day, until)
		case isMoved:
			moved = append(moved, p)
			if e.Type == schemas.TypeCase && e.Region == cfg.LateRegion {
				heldCases++
			}
		case due && e.Region == cfg.LateRegion:
			onTimeRegion[e.Type]++
		}
	}
	t.Logf("late region: %d events held back (%d case events); on time: %v", len(moved), heldCases, onTimeRegion)
	if heldCases < 10 || onTimeRegion[schemas.TypeLabTest] == 0 || onTimeRegion[schemas.TypeBedSnapshot] == 0 || onTimeRegion[schemas.TypeReportComplete] == 0 {
		t.Fatalf("late days: %d case events held back, on time %v; want both", heldCases, onTimeRegion)
	}
	slices.SortFunc(moved, func(a, b sent) int { return a.n - b.n })
	var release []schemas.Event
	for _, d := range late {
		if d.date == until {
			release = d.events
		}
	}
	for i, m := range moved {
		if release[i].EventID != m.e.EventID {
			t.Fatalf("late upload event %d is %s, want %s: held-back events first, in the order they were due", i, release[i].EventID, m.e.EventID)
		}
	}
	checkEvents(t, cfg, late)
}

// A sporadic region has about one case every six days — about ten in 60
// days, never more than two reported on a day —, R 1, and beds 50–70 %
// occupied; the other regions' epidemics stay as they were.
func TestSporadicRegion(t *testing.T) {
	cfg := plainConfig()
	cfg.Regions, cfg.Days = []string{"KZ-75", "KZ-43"}, 60
	outbreak := cfg
	cfg.SporadicRegion = "KZ-43"
	s, days := runSim(t, cfg)
	s0, _ := runSim(t, outbreak)

	perDay := map[schemas.Date]int{}
	total := 0
	for _, e := range epidemicCases(cfg, days) {
		if e.Region == "KZ-43" && e.Confirmed() {
			perDay[e.ReportDate]++
			total++
		}
	}
	t.Logf("sporadic region: %d confirmed cases on %d days", total, len(perDay))
	if total < 6 || total > 15 {
		t.Errorf("sporadic region: %d confirmed cases in 60 days, want about 10", total)
	}
	for d, n := range perDay {
		if n > 2 {
			t.Errorf("sporadic region: %d cases reported on %s, want at most 2", n, d)
		}
	}
	if got := s.Schedule("KZ-43"); got.String() != "0:1" {
		t.Errorf("sporadic region: R schedule %s, want a steady 0:1", got)
	}
	var occ []float64
	for _, d := range days {
		for _, e := range d.events {
			if e.Region == "KZ-43" && e.Type == schemas.TypeBedSnapshot && e.BedKind == schemas.BedInfectious {
				occ = append(occ, float64(*e.Occupied)/float64(*e.Total))
			}
		}
	}
	mean := 0.0
	for _, o := range occ {
		mean += o / float64(len(occ))
	}
	t.Logf("sporadic region: beds %.1f %% occupied on average", 100*mean)
	if mean < 0.5 || mean > 0.72 {
		t.Errorf("sporadic region: beds %.0f %% occupied on average, want 50–70 %%", 100*mean)
	}
	if !reflect.DeepEqual(truthOf(s, "KZ-75"), truthOf(s0, "KZ-75")) {
		t.Error("a sporadic KZ-43 changed the epidemic of KZ-75")
	}
}

func truthOf(s *simulate.Sim, region string) []simulate.TruthRow {
	var out []simulate.TruthRow
	for _, r := range s.Truth() {
		if r.Region == region {
			out = append(out, r)
		}
	}
	return out
}

// A hospital's duplicate notification names the same person in the same
// region under another event_id and source, 0–3 days after the producer's;
// the truth, which counts the epidemic, is the same as without duplicates.
func TestDuplicates(t *testing.T) {
	cfg := plainConfig()
	none := cfg
	cfg.DuplicateShare = 0.1
	s, days := runSim(t, cfg)
	s0, _ := runSim(t, none)

	first := map[string]*schemas.Event{} // national ID → the producer's case
	confirmed := 0
	for _, d := range days {
		for i, e := range d.events {
			if e.Type == schemas.TypeCase && e.Source == cfg.Source {
				first[e.Person.NationalID] = &d.events[i]
				if e.Confirmed() {
					confirmed++
				}
			}
		}
	}
	dups := 0
	for _, d := range days {
		for _, e := range d.events {
			if e.Type != schemas.TypeCase || e.Source == cfg.Source {
				continue
			}
			dups++
			orig := first[e.Person.NationalID]
			if orig == nil {
				t.Fatalf("duplicate %s: no first notification of the person", e.EventID)
			}
			switch lag := int(e.ReportDate - orig.ReportDate); {
			case !strings.HasPrefix(e.Source, "hospital-"+e.Region+"-"):
				t.Fatalf("duplicate %s: source %q is not a hospital of %s", e.EventID, e.Source, e.Region)
			case e.EventID == orig.EventID || e.Region != orig.Region || !orig.Confirmed() || !e.Confirmed():
				t.Fatalf("duplicate %s of %s: want another event_id, the same region, both confirmed", e.EventID, orig.EventID)
			case lag < 0 || lag > 3:
				t.Fatalf("duplicate %s reported %s, %d days after the first (%s); want 0–3", e.EventID, e.ReportDate, lag, orig.ReportDate)
			}
		}
	}
	t.Logf("%d duplicates of %d confirmed cases", dups, confirmed)
	if share := float64(dups) / float64(confirmed); share < 0.06 || share > 0.14 {
		t.Errorf("%d duplicates of %d confirmed cases (%.1f %%), want about 10 %%", dups, confirmed, 100*share)
	}
	if !reflect.DeepEqual(s.Truth(), s0.Truth()) {
		t.Error("duplicates changed the truth")
	}
	checkEvents(t, cfg, days)
}

// Each retraction withdraws an earlier case of the same source and region,
// 1–5 days after it was sent, as discarded; each re-filed case supersedes an
// earlier case of the same source and person filed under a neighbouring
// region of the same country. The truth is the same as without corrections,
// and once corrected the cases are the truth's.
func TestRetractions(t *testing.T) {
	cfg := plainConfig()
	none := cfg
	cfg.RetractShare = 0.1
	s, days := runSim(t, cfg)
	s0, _ := runSim(t, none)

	at := sentByID(days)
	confirmed := 0
	for _, e := range epidemicCases(cfg, days) {
		if e.Confirmed() {
			confirmed++
		}
	}
	retracted, refiled := 0, 0
	for _, d := range days {
		for _, e := range d.events {
			target, ok := at[e.Corrects()]
			switch {
			case e.Corrects() == "":
				continue
			case !ok || target.n >= at[e.EventID].n:
				t.Fatalf("%s corrects %s, not sent before it", e.EventID, e.Corrects())
			case target.e.Type != schemas.TypeCase || target.e.Source != e.Source:
				t.Fatalf("%s corrects %s %s of source %s", e.EventID, target.e.Type, target.e.EventID, target.e.Source)
			}
			if lag := int(d.date - target.day); lag < 1 || lag > 5 {
				t.Fatalf("%s sent %d days after %s, want 1–5", e.EventID, lag, target.e.EventID)
			}
			if e.Type == schemas.TypeRetraction {
				retracted++
				if e.Region != target.e.Region || e.RetractionReason != schemas.RetractDiscarded || e.ReportDate != d.date {
					t.Fatalf("retraction %s (%s, %s, issued %s) of %s in %s", e.EventID, e.Region, e.RetractionReason, e.ReportDate, target.e.EventID, target.e.Region)
				}
				continue
			}
			refiled++
			wrong, _ := schemas.DefaultRegions().Get(target.e.Region)
			right, _ := schemas.DefaultRegions().Get(e.Region)
			if e.Type != schemas.TypeCase || e.Person.NationalID != target.e.Person.NationalID || e.Region == target.e.Region ||
				wrong.Country != right.Country || e.ReportDate != target.e.ReportDate {
				t.Fatalf("re-filed case %s in %s (person %s, reported %s) of %s in %s (person %s, reported %s): want the same person and report date, another region of the country",
					e.EventID, e.Region, e.Person.NationalID, e.ReportDate, target.e.EventID, target.e.Region, target.e.Person.NationalID, target.e.ReportDate)
			}
		}
	}
	t.Logf("%d confirmed cases: %d false notifications retracted, %d re-filed", confirmed, retracted, refiled)
	if retracted == 0 || refiled == 0 {
		t.Fatalf("%d retractions, %d re-filed cases; want both", retracted, refiled)
	}
	if share := float64(retracted+refiled) / float64(confirmed); share < 0.06 || share > 0.14 {
		t.Errorf("%d corrections of %d confirmed cases (%.1f %%), want about 10 %%", retracted+refiled, confirmed, 100*share)
	}
	if !reflect.DeepEqual(s.Truth(), s0.Truth()) {
		t.Error("corrections changed the truth")
	}
	reported := map[string]int{}
	for _, e := range epidemicCases(cfg, days) {
		reported[e.Region+" "+e.ReportDate.String()]++
	}
	for _, r := range s.Truth() {
		if n := reported[r.Region+" "+r.Date.String()]; n != r.Reported {
			t.Fatalf("%s %s: %d cases once corrected, truth %d", r.Region, r.Date, n, r.Reported)
		}
	}
	checkEvents(t, cfg, days)
}

// One report_complete per region, feed it uses and day, sent that day after
// the region's events of the feed: case, lab_test and bed_snapshot always,
// contact where contacts are traced, vaccination not when nobody is
// vaccinated. A small region's day without cases is thereby a zero.
func TestReportComplete(t *testing.T) {
	cfg := plainConfig()
	cfg.Days = 30
	cfg.VaccinationsPerMillion = 0
	_, days := runSim(t, cfg)
	traced := map[string]bool{}
	for _, d := range days {
		for _, e := range d.events {
			if e.Type == schemas.TypeContact {
				traced[e.Region] = true
			}
		}
	}
	zeroDays := 0
	for _, d := range days {
		complete := map[string]int{} // region/feed → index in the batch
		for i, e := range d.events {
			if e.Type != schemas.TypeReportComplete {
				continue
			}
			key := e.Region + "/" + string(e.Feed)
			if _, twice := complete[key]; twice {
				t.Fatalf("%s: two report_complete of %s", d.date, key)
			}
			if e.ReportDate != d.date {
				t.Fatalf("%s: report_complete %s for %s", d.date, e.EventID, e.ReportDate)
			}
			complete[key] = i
		}
		cases := map[string]int{}
		for i, e := range d.events {
			if !e.Type.IsFeed() {
				continue
			}
			if e.Type == schemas.TypeCase {
				cases[e.Region]++
			}
			if j, ok := complete[e.Region+"/"+string(e.Type)]; ok && i > j {
				t.Fatalf("%s: %s %s sent after the report_complete of its feed", d.date, e.Type, e.EventID)
			}
		}
		for _, region := range cfg.Regions {
			for _, feed := range schemas.FeedTypes {
				_, got := complete[region+"/"+string(feed)]
				want := feed != schemas.TypeVaccination && (feed != schemas.TypeContact || traced[region])
				if got != want {
					t.Fatalf("%s %s: report_complete of %s %v, want %v", d.date, region, feed, got, want)
				}
			}
			if cases[region] == 0 {
				zeroDays++
			}
		}
	}
	if zeroDays == 0 {
		t.Error("no region had a day without cases: the test shows no real zero")
	}
	cfg.ReportComplete = false
	_, days = runSim(t, cfg)
	for _, d := range days {
		for _, e := range d.events {
			if e.Type == schemas.TypeReportComplete {
				t.Fatalf("report_complete %s sent with ReportComplete off", e.EventID)
			}
		}
	}
}

// Every facility is registered on the first day, before its first
// snapshot, with the capacity its snapshots report. With CloseFacility one
// hospital per region stops reporting in the middle third of the run for
// good and its beds leave the truth's capacity; every other region (the
// first, third, … in code order) registers the closure on that day.
func TestClosingFacility(t *testing.T) {
	cfg := plainConfig()
	cfg.Days = 60
	cfg.CloseFacility = true
	s, days := runSim(t, cfg)
	end := days[len(days)-1].date

	registry := map[string]*schemas.Event{}
	closedEvent := map[string]*schemas.Event{} // region → its closed event
	lastSnap := map[string]schemas.Date{}
	region := map[string]string{}
	for _, d := range days {
		for i, e := range d.events {
			switch {
			case e.Type == schemas.TypeFacility && e.FacilityStatus == schemas.FacilityOpen:
				if d.date != cfg.Start || e.EffectiveDate != cfg.Start || registry[e.FacilityID] != nil {
					t.Fatalf("facility %s registered on %s effective %s, or twice", e.FacilityID, d.date, e.EffectiveDate)
				}
				registry[e.FacilityID] = &d.events[i]
			case e.Type == schemas.TypeFacility:
				if closedEvent[e.Region] != nil {
					t.Fatalf("%s: two closures", e.Region)
				}
				closedEvent[e.Region] = &d.events[i]
			case e.Type == schemas.TypeBedSnapshot:
				reg := registry[e.FacilityID]
				if reg == nil {
					t.Fatalf("snapshot %s of a facility not registered before it", e.EventID)
				}
				capacity := map[string]*int{schemas.BedInfectious: reg.CapacityInfectious, schemas.BedICU: reg.CapacityICU, schemas.BedProvisional: reg.CapacityProvisional}[e.BedKind]
				if capacity == nil || *capacity != *e.Total {
					t.Fatalf("snapshot %s: %d %s beds, registered %v", e.EventID, *e.Total, e.BedKind, capacity)
				}
				if last, ok := lastSnap[e.FacilityID]; ok && e.Date() != last && e.Date() != last.AddDays(1) {
					t.Fatalf("facility %s silent from %s to %s, then reports again", e.FacilityID, last, e.Date())
				}
				lastSnap[e.FacilityID] = e.Date()
				region[e.FacilityID] = e.Region
			}
		}
	}
	closed := map[string]string{} // region → facility
	for f, last := range lastSnap {
		if last == end {
			continue
		}
		r := region[f]
		if closed[r] != "" {
			t.Fatalf("%s: %s and %s closed", r, closed[r], f)
		}
		closed[r] = f
		day := int(last-cfg.Start) + 1
		if day < cfg.Days/3 || day > 2*cfg.Days/3 {
			t.Errorf("%s closes on day %d, not in the middle third", f, day)
		}
		if strings.HasSuffix(f, "-P01") {
			t.Errorf("the provisional hospital %s closes", f)
		}
	}
	truth := map[string]map[schemas.Date]simulate.TruthRow{}
	for _, r := range s.Truth() {
		if truth[r.Region] == nil {
			truth[r.Region] = map[schemas.Date]simulate.TruthRow{}
		}
		truth[r.Region][r.Date] = r
	}
	for i, r := range s.Regions() {
		f := closed[r]
		if f == "" {
			t.Fatalf("%s: no facility closes", r)
		}
		on := lastSnap[f].AddDays(1)
		ev := closedEvent[r]
		switch {
		case i%2 == 0 && (ev == nil || ev.FacilityID != f || ev.EffectiveDate != on):
			t.Errorf("%s: %s closes on %s; closure registered %v", r, f, on, ev)
		case i%2 == 1 && ev != nil:
			t.Errorf("%s: closure of %s registered; this region should leave it silent", r, ev.FacilityID)
		}
		if drop := truth[r][on.AddDays(-1)].InfectiousBeds - truth[r][on].InfectiousBeds; drop != *registry[f].CapacityInfectious {
			t.Errorf("%s: the truth's infectious beds drop by %d when %s (%d beds) closes", r, drop, f, *registry[f].CapacityInfectious)
		}
	}
	checkEvents(t, cfg, days)
}

func TestParseLate(t *testing.T) {
	region, from, days, err := simulate.ParseLate(" kz-35:80:3 ")
	if err != nil || region != "KZ-35" || from != 80 || days != 3 {
		t.Fatalf("ParseLate: %q %d %d %v", region, from, days, err)
	}
	for _, bad := range []string{"", "KZ-35", "KZ-35:80", "KZ-35:x:3", "KZ-35:80:0", "KZ-35:-1:3", ":80:3", "KZ-35:80:3:1"} {
		if _, _, _, err := simulate.ParseLate(bad); err == nil {
			t.Errorf("ParseLate(%q) accepted", bad)
		}
	}
}

func mustJSON(t *testing.T, e *schemas.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(fmt.Errorf("encode %s: %w", e.EventID, err))
	}
	return string(b)
}
