package simulate_test

import (
	"math"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// reportingConfig is an outbreak with enough cases to measure reporting
// (two large regions, a few thousand cases) and only the case feed and
// its tests besides: contacts, background tests and doses come from
// streams of their own and change nothing measured here.
func reportingConfig() simulate.Config {
	cfg := simulate.DefaultConfig()
	cfg.Regions = []string{"KZ-75", "KZ-71"}
	cfg.Days = 100
	cfg.Seed = 11
	cfg.Scale = 2
	cfg.Schedules = map[string]simulate.RSchedule{
		"KZ-75": {{FromDay: 0, R: 1.4}, {FromDay: 40, R: 0.9}},
		"KZ-71": {{FromDay: 0, R: 1.3}, {FromDay: 50, R: 1}},
	}
	cfg.ContactsMean, cfg.ContactTestShare, cfg.TestsPerMillion, cfg.SymptomaticTests = 0, 0, 0, 0
	cfg.VaccinationsPerMillion = 0
	return cfg
}

// producerCases returns the case events of the producer (no duplicates or
// corrections are configured here) by event_id.
func producerCases(cfg simulate.Config, days []day) map[string]schemas.Event {
	out := map[string]schemas.Event{}
	for _, d := range days {
		for _, e := range d.events {
			if e.Type == schemas.TypeCase && e.Source == cfg.Source {
				out[e.EventID] = e
			}
		}
	}
	return out
}

// TestWeekendDeferral: with the day-of-week effect, reports due at the
// weekend are partly deferred to Monday: fewer reports on Saturdays and
// Sundays, more on Mondays, and nothing else changes — the same cases with
// the same onsets, each report moved only to the next Monday, and the
// truth by onset identical.
func TestWeekendDeferral(t *testing.T) {
	base := reportingConfig()
	base.WeekendDeferral = 0
	s0, days0 := runSim(t, base)
	cases0 := producerCases(base, days0)

	tests := []struct {
		name     string
		deferral float64
		// bounds on the mean reports of a weekend day, and of a Monday,
		// relative to the mean of Tuesday–Friday
		weekendLo, weekendHi, mondayLo, mondayHi float64
	}{
		{"off", 0, 0.85, 1.15, 0.85, 1.15},
		{"typical 0.4", simulate.WeekendDeferralTypical, 0.45, 0.75, 1.5, 2.1},
		{"all deferred", 1, 0, 0.01, 2.2, 3.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.WeekendDeferral = tt.deferral
			s, days := runSim(t, cfg)
			cases := producerCases(cfg, days)
			// The same cases, but those whose report is deferred past the
			// last day (not emitted: due after the simulated period).
			last := cfg.Start.AddDays(cfg.Days - 2)
			for id, e0 := range cases0 {
				if _, ok := cases[id]; !ok && e0.ReportDate < last {
					t.Fatalf("%s (reported %s without the effect) is missing", id, e0.ReportDate)
				}
			}
			if len(cases) > len(cases0) || len(cases) < 2000 {
				t.Fatalf("%d cases, %d without the effect; want no more, and ≥ 2000 to measure", len(cases), len(cases0))
			}
			// Reports per weekday over the whole weeks of the run, away
			// from its start (few cases) and end.
			var perDay [7]float64
			var nDays [7]int
			for _, d := range days[14:] {
				n := 0
				for _, e := range d.events {
					if e.Type == schemas.TypeCase && e.Source == cfg.Source {
						n++
					}
				}
				perDay[d.date.Time().Weekday()] += float64(n)
				nDays[d.date.Time().Weekday()]++
			}
			mean := func(w time.Weekday) float64 { return perDay[w] / float64(nDays[w]) }
			weekday := (mean(time.Tuesday) + mean(time.Wednesday) + mean(time.Thursday) + mean(time.Friday)) / 4
			weekend := (mean(time.Saturday) + mean(time.Sunday)) / 2 / weekday
			monday := mean(time.Monday) / weekday
			t.Logf("deferral %.1f: reports per day relative to Tue–Fri: weekend %.2f, Monday %.2f", tt.deferral, weekend, monday)
			if weekend < tt.weekendLo || weekend > tt.weekendHi {
				t.Errorf("weekend reports %.2f of a weekday's, want %.2f–%.2f", weekend, tt.weekendLo, tt.weekendHi)
			}
			if monday < tt.mondayLo || monday > tt.mondayHi {
				t.Errorf("Monday reports %.2f of a weekday's, want %.2f–%.2f", monday, tt.mondayLo, tt.mondayHi)
			}

			// Only report dates move, and only to the next Monday.
			moved := 0
			for id, e := range cases {
				e0, ok := cases0[id]
				switch {
				case !ok:
					// Deferred past the last day: not emitted. Its
					// undeferred report must have been at the end.
					continue
				case e.OnsetDate != e0.OnsetDate || e.Imported != e0.Imported || e.Person.NationalID != e0.Person.NationalID:
					t.Fatalf("%s: the case changed beyond its report date: %+v, without the effect %+v", id, e, e0)
				case e.ReportDate == e0.ReportDate:
				case e.ReportDate.Time().Weekday() == time.Monday && e.ReportDate > e0.ReportDate && e.ReportDate <= e0.ReportDate.AddDays(2):
					moved++
				default:
					t.Fatalf("%s: reported %s (%s) instead of %s (%s); only a weekend report may move, to the Monday",
						id, e.ReportDate, e.ReportDate.Time().Weekday(), e0.ReportDate, e0.ReportDate.Time().Weekday())
				}
			}
			if (moved > 0) != (tt.deferral > 0) {
				t.Errorf("%d reports moved with deferral %g", moved, tt.deferral)
			}
			// The epidemic is the same; the truth by report date follows
			// the events (TestTruthMatchesSchedule checks that in general).
			rows, rows0 := s.Truth(), s0.Truth()
			reported := map[string]map[schemas.Date]int{}
			for _, e := range cases {
				if reported[e.Region] == nil {
					reported[e.Region] = map[schemas.Date]int{}
				}
				reported[e.Region][e.ReportDate]++
			}
			for i, r := range rows {
				r0 := rows0[i]
				if r.Local != r0.Local || r.Imported != r0.Imported || r.RTrue != r0.RTrue || r.Lambda != r0.Lambda {
					t.Fatalf("%s %s: truth by onset changed: %+v, without the effect %+v", r.Region, r.Date, r, r0)
				}
				if r.Reported != reported[r.Region][r.Date] {
					t.Fatalf("%s %s: truth says %d reported, the events %d", r.Region, r.Date, r.Reported, reported[r.Region][r.Date])
				}
			}
		})
	}
}

// TestDelayDrift: with DelayDrift the mean onset-to-report delay moves
// linearly over the run (by onset day), in both directions, while the
// cases by onset stay as they are.
func TestDelayDrift(t *testing.T) {
	base := reportingConfig()
	base.WeekendDeferral = 0 // the gamma's own mean, without the weekend's extra days
	s0, _ := runSim(t, base)
	tests := []struct {
		name  string
		drift float64
	}{
		{"none", 0},
		{"slower by 4 days", 4},
		{"faster by 2 days", -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.DelayDrift = tt.drift
			s, days := runSim(t, cfg)
			// Mean delay of the cases with onset in days [from, to); they
			// are all reported by the last day (≥ 20 days later, beyond the
			// delays' 99.9th percentile).
			meanDelay := func(from, to int) (float64, float64) {
				sum, n := 0.0, 0.0
				for _, e := range producerCases(cfg, days) {
					if e.OnsetDate.IsZero() {
						continue
					}
					if i := int(e.OnsetDate - cfg.Start); i >= from && i < to {
						sum += float64(e.ReportDate - e.OnsetDate)
						n++
					}
				}
				return sum / n, n
			}
			early, n1 := meanDelay(5, 25)
			late, n2 := meanDelay(60, 80)
			// The gamma's mean at the middle of each period (days 14.5 and
			// 69.5 of 0..99); rounding to whole days shifts both alike.
			want := tt.drift * (69.5 - 14.5) / float64(cfg.Days-1)
			t.Logf("drift %+g days: mean delay %.2f days (onsets 5–24, %0.f cases) → %.2f (onsets 60–79, %.0f cases); change %.2f, expected %.2f",
				tt.drift, early, n1, late, n2, late-early, want)
			if n1 < 300 || n2 < 300 {
				t.Fatalf("too few cases to measure: %.0f and %.0f", n1, n2)
			}
			if got := late - early; math.Abs(got-want) > 0.35 {
				t.Errorf("mean delay changed by %.2f days, want %.2f ± 0.35", got, want)
			}
			if want := cfg.DelayMean + tt.drift*14.5/float64(cfg.Days-1); math.Abs(early-want) > 0.4 {
				t.Errorf("mean delay %.2f days early in the run, want about %.2f", early, want)
			}
			for i, r := range s.Truth() {
				if r0 := s0.Truth()[i]; r.Local != r0.Local || r.Imported != r0.Imported {
					t.Fatalf("%s %s: cases by onset changed with the drift", r.Region, r.Date)
				}
			}
		})
	}
}
