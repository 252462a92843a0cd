// Cases and what follows them: notifications, traced contacts, lab tests
// (positive and negative) and hospital stays.

package simulate

import (
	"math/rand/v2"

	"github.com/epiwatch/epiwatch/schemas"
)

// Contact settings and their shares among traced contacts (households
// dominate contact tracing of COVID-19).
var (
	settings      = []string{"household", "work", "school", "healthcare", "community", "travel", "other"}
	settingShares = []float64{0.45, 0.20, 0.07, 0.05, 0.15, 0.03, 0.05}
)

// newCase generates a case with onset on day d: the case report, its
// positive test, its traced contacts (some of whom fall ill later) and its
// hospital stay.
//
// In detail:
//
//   - a case event reported on onset + a reporting delay (a gamma rounded to
//     whole days, default mean 3 days; none when Config.Delays is off), with
//     the onset date missing for some, imported flagged, mostly confirmed and
//     some probable. Reporting has a day-of-week effect (by default
//     Config.WeekendDeferral 0.4: 40 % of the reports due on a Saturday or
//     Sunday come on the Monday; 0 turns it off), and the delay distribution
//     may drift over the outbreak (Config.DelayDrift); both move report dates
//     only;
//   - for confirmed cases a positive PCR or antigen test sampled on onset or
//     the day after, its result (PCR: 1–2 days later) no later than the report;
//   - Poisson(3–5) traced contacts exposed between two days before onset and
//     the report, traced on the report day or the next, half of them tested
//     (negative). Traced contacts are the pool later local cases come from:
//     about half of the local cases are a contact exposed 3–14 days earlier,
//     the same person with the same national ID in both events;
//   - a hospital stay for 7.5 % (admitted 1–4 days after onset, mean stay 10
//     days), 12 % of them in intensive care for part of it.
func (rs *regionState) newCase(ru *run, d int, imported bool) {
	cfg := ru.cfg
	r := rs.cases
	date := ru.date(d)
	var p *person
	if !imported && r.Float64() < cfg.LinkShare {
		p = rs.takeContact(r, d)
	}
	if p == nil {
		p = ru.people.newPerson(r, rs, date, false)
	}
	// due is the day the case is diagnosed and its report due, report the
	// day it is sent: later when a weekend report is deferred to Monday
	// (Config.WeekendDeferral). The test and the contacts' exposure follow
	// the diagnosis, so the deferral moves the report and the tracing only,
	// and draws nothing else from r: every other draw of the run is the
	// same with or without it.
	delay, deferred := 0, 0
	if cfg.Delays {
		delay = drawDays(r, ru.s.delayAt(d))
		deferred = rs.weekendDeferral(cfg, ru.date(d+delay))
	}
	due := d + delay
	report := due + deferred
	delay += deferred
	rs.nCase++
	ev := schemas.Event{
		EventID: ru.id("case", rs.reg.Code, rs.nCase), Type: schemas.TypeCase, Region: rs.reg.Code, Source: cfg.Source,
		Person: p.schema(r, caseFields), ReportDate: date.AddDays(delay), Imported: imported,
	}
	if r.Float64() >= cfg.OnsetMissing {
		ev.OnsetDate = date
	}
	probable := r.Float64() < cfg.ProbableShare
	switch {
	case probable:
		ev.Classification = schemas.ClassProbable
	case r.Float64() < 0.9: // most systems say so; the rest leave the default
		ev.Classification = schemas.ClassConfirmed
	}
	caseMinute := 600 + r.IntN(600)
	if !probable {
		// Sampled on onset or the day after, the result before the report.
		kind := schemas.TestPCR
		if r.Float64() < cfg.AntigenShare {
			kind = schemas.TestAntigen
		}
		sample, result := d, d
		if cfg.Delays {
			sample += min(due-d, r.IntN(2))
			if kind == schemas.TestPCR {
				result = sample + min(due-sample, 1+r.IntN(2))
			} else {
				result = sample
			}
		}
		m := rs.labTest(ru, r, p, sample, result, kind, schemas.ResultPositive)
		if result == due {
			if m := min(m+15+r.IntN(120), 1439); report == due {
				caseMinute = m
			}
		}
	}
	rs.notify(ru, p, ev, report, caseMinute)

	// Contacts, traced after the report; exposed from two days before onset
	// up to isolation at the diagnosis.
	trace := report
	if cfg.Delays {
		trace += r.IntN(2)
	}
	for i, n := 0, poisson(r, rs.contactsMean); i < n; i++ {
		cp := ru.people.newPerson(r, rs, date, false)
		cday := d - 2 + r.IntN(due-d+3)
		setting := settings[pick(r, settingShares)]
		if imported && r.Float64() < 0.4 {
			setting = "travel"
		}
		rs.nContact++
		ce := schemas.Event{
			EventID: ru.id("contact", rs.reg.Code, rs.nContact), Type: schemas.TypeContact, Region: rs.reg.Code, Source: cfg.Source,
			IndexPerson: p.schema(r, indexFields), ContactPerson: cp.schema(r, contactFields),
			ContactDate: ru.date(cday), Setting: setting,
		}
		ru.deliver(trace, 720+r.IntN(600), ce)
		rs.pool[cday+2] = append(rs.pool[cday+2], cp)
		if r.Float64() < cfg.ContactTestShare {
			kind := schemas.TestPCR
			if r.Float64() < cfg.AntigenShare {
				kind = schemas.TestAntigen
			}
			sample, result := trace, trace
			if cfg.Delays {
				sample += r.IntN(2)
				if kind == schemas.TestPCR {
					result = sample + 1 + r.IntN(2)
				} else {
					result = sample
				}
			}
			rs.labTest(ru, r, cp, sample, result, kind, negativeResult(r))
		}
	}

	// Hospital stay: admitted 1–4 days after onset; some need ICU.
	h := rs.hosp
	if h.Float64() < cfg.HospShare {
		a := d + 1 + h.IntN(4)
		los := max(1, drawDays(h, ru.s.losCDF))
		rs.admit[a]++
		rs.discharge[a+los]++
		if h.Float64() < cfg.ICUShare {
			i0 := a + h.IntN(2)
			rs.icuIn[i0]++
			rs.icuOut[i0+max(1, los*6/10)]++
		}
	}
}

// notify queues the notification ev of a case of person p on day report
// (index) at minute, with the reporting artefacts of Config that come with
// a confirmed case: a duplicate from a hospital (DuplicateShare), a false
// notification later retracted or the case filed under a neighbouring
// region and re-filed under its own (RetractShare). Artefacts are drawn
// from their own stream and created only when their correction falls in the
// simulated period, so that the events, once corrected, are the truth.
//
// The truth counts the case once, in its own region on its report day: a
// duplicate, a false notification and the wrong region are not the
// epidemic (the pipeline counts a person's repeated notifications within an
// episode once and drops retracted and superseded events).
func (rs *regionState) notify(ru *run, p *person, ev schemas.Event, report, minute int) {
	cfg := ru.cfg
	if report >= cfg.Days {
		return // reported after the simulated period
	}
	tr := &rs.truth[report]
	tr.Reported++
	if !ev.Confirmed() {
		ru.deliver(report, minute, ev)
		return
	}
	tr.ReportedConfirmed++
	r := rs.notices
	correct, duplicate := r.Float64() < cfg.RetractShare, r.Float64() < cfg.DuplicateShare
	code := rs.reg.Code
	if correct && rs.neighbour != "" && r.Float64() < wrongRegionShare {
		if day := report + 1 + r.IntN(correctMaxLag); day < cfg.Days {
			// Filed under the neighbour first, then re-filed here by a new
			// version of the same source; the person is copied, not
			// shared, since ingest rewrites persons in place.
			right := ev
			person := *ev.Person
			rs.nNotice++
			right.EventID, right.Supersedes, right.Person = ru.id("case-refile", code, rs.nNotice), ev.EventID, &person
			ev.Region = rs.neighbour
			ru.deliver(report, minute, ev)
			ru.deliver(day, 600+r.IntN(480), right)
			return // the hospital knows the right region: no duplicate
		}
	}
	ru.deliver(report, minute, ev)
	if correct {
		if day := report + 1 + r.IntN(correctMaxLag); day < cfg.Days {
			// A notification of someone who is not a case (a false
			// positive), withdrawn by its source.
			fp := ru.people.newPerson(r, rs, ru.date(report), false)
			rs.nNotice++
			fe := schemas.Event{
				EventID: ru.id("case-fp", code, rs.nNotice), Type: schemas.TypeCase, Region: code, Source: cfg.Source,
				Person: fp.schema(r, caseFields), ReportDate: ru.date(report), Classification: schemas.ClassConfirmed,
			}
			ru.deliver(report, 600+r.IntN(600), fe)
			rs.nNotice++
			ru.deliver(day, 600+r.IntN(480), schemas.Event{
				EventID: ru.id("retract", code, rs.nNotice), Type: schemas.TypeRetraction, Region: code, Source: cfg.Source,
				Retracts: fe.EventID, RetractionReason: schemas.RetractDiscarded, ReportDate: ru.date(day),
			})
		}
	}
	if duplicate {
		if day := report + r.IntN(duplicateMaxLag+1); day < cfg.Days {
			// The admitting hospital notifies the case again: its own
			// source and event_id, its own way of filling the person.
			var hospitals []*facility
			for _, f := range rs.facilities {
				if !f.provisional && f.open(day) {
					hospitals = append(hospitals, f)
				}
			}
			h := hospitals[r.IntN(len(hospitals))]
			de := ev
			rs.nNotice++
			de.EventID, de.Source = ru.id("case-dup", code, rs.nNotice), "hospital-"+h.id
			de.Person, de.ReportDate, de.Classification = p.schema(r, caseFields), ru.date(day), schemas.ClassConfirmed
			ru.deliver(day, 600+r.IntN(600), de)
		}
	}
}

// negativeResult is negative, or inconclusive for 1 % of tests.
func negativeResult(r *rand.Rand) string {
	if r.Float64() < 0.01 {
		return schemas.ResultInconclusive
	}
	return schemas.ResultNegative
}

// takeContact returns a traced contact exposed 3–14 days before day d (and
// removes them from the pool), or nil if there is none.
func (rs *regionState) takeContact(r *rand.Rand, d int) *person {
	lo, hi := max(d-linkMaxLag, -2)+2, d-linkMinLag+2
	n := 0
	for i := lo; i <= hi; i++ {
		n += len(rs.pool[i])
	}
	if n == 0 {
		return nil
	}
	k := r.IntN(n)
	for i := lo; i <= hi; i++ {
		b := rs.pool[i]
		if k < len(b) {
			p := b[k]
			b[k] = b[len(b)-1]
			rs.pool[i] = b[:len(b)-1]
			return p
		}
		k -= len(b)
	}
	return nil
}

// labTest queues a test result of p and returns the minute of its day.
func (rs *regionState) labTest(ru *run, r *rand.Rand, p *person, sample, result int, kind, res string) int {
	if sample < len(rs.truth) {
		tr := &rs.truth[sample]
		tr.Tests++
		if res == schemas.ResultPositive {
			tr.Positive++
		}
	}
	rs.nTest++
	ev := schemas.Event{
		EventID: ru.id("lab", rs.reg.Code, rs.nTest), Type: schemas.TypeLabTest, Region: rs.reg.Code, Source: ru.cfg.Source,
		Person: p.schema(r, labFields), SampleDate: ru.date(sample), ResultDate: ru.date(result),
		TestKind: kind, Result: res, Lab: rs.labs[pick(r, rs.labW)],
	}
	m := 540 + r.IntN(480)
	ru.deliver(result, m, ev)
	return m
}

// negativeTests queues the day's tests of people who are not cases:
// background screening and people with similar symptoms.
func (rs *regionState) negativeTests(ru *run, d, cases int) {
	cfg := ru.cfg
	r := rs.tests
	n := poisson(r, cfg.TestsPerMillion*rs.perMillion+cfg.SymptomaticTests*float64(cases))
	for i := 0; i < n; i++ {
		p := ru.people.newPerson(r, rs, ru.date(d), false)
		kind := schemas.TestPCR
		if r.Float64() < cfg.AntigenShare {
			kind = schemas.TestAntigen
		}
		result := d
		if cfg.Delays && kind == schemas.TestPCR {
			result += 1 + r.IntN(2)
		}
		rs.labTest(ru, r, p, d, result, kind, negativeResult(r))
	}
}
