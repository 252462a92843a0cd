package simulate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/epiwatch/epiwatch/schemas"
)

// SerialInterval is the gamma distribution of the time between the symptom
// onsets of an infector and their infectee, in days.
type SerialInterval struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// DefaultSI is the serial interval of SARS-CoV-2 used by default: mean 4.7,
// sd 2.9 days (Nishiura, Linton & Akhmetzhanov 2020, "Serial interval of
// novel coronavirus (COVID-19) infections", Int J Infect Dis 93:284–286, the
// lognormal fit's mean and sd), the values the pipeline's R estimator uses.
var DefaultSI = SerialInterval{Mean: 4.7, SD: 2.9}

// RStep starts a period of constant reproduction number: R applies from day
// FromDay (0 = the first simulated day) until the next step.
type RStep struct {
	FromDay int     `json:"from_day"`
	R       float64 `json:"r"`
}

// WeekendDeferralTypical is a realistic Config.WeekendDeferral: 40 % of the
// reports due at a weekend are sent on Monday.
const WeekendDeferralTypical = 0.4

// RSchedule is a piecewise-constant reproduction number R(t), steps in
// increasing FromDay. Before the first step the first R applies.
type RSchedule []RStep

// At returns R on day (0 = the first simulated day).
func (s RSchedule) At(day int) float64 {
	if len(s) == 0 {
		return 0
	}
	r := s[0].R
	for _, st := range s {
		if st.FromDay > day {
			break
		}
		r = st.R
	}
	return r
}

// Validate reports an empty schedule, steps out of order, or an R outside
// 0..10.
func (s RSchedule) Validate() error {
	if len(s) == 0 {
		return errors.New("empty R schedule")
	}
	for i, st := range s {
		if i > 0 && st.FromDay <= s[i-1].FromDay {
			return fmt.Errorf("R schedule step %d: day %d is not after day %d", i+1, st.FromDay, s[i-1].FromDay)
		}
		if st.FromDay < 0 {
			return fmt.Errorf("R schedule step %d: negative day %d", i+1, st.FromDay)
		}
		if !(st.R >= 0 && st.R <= 10) {
			return fmt.Errorf("R schedule step %d: R %g out of range 0..10", i+1, st.R)
		}
	}
	return nil
}

// String formats the schedule as ParseSchedule reads it: "0:1.4,20:0.8".
func (s RSchedule) String() string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = strconv.Itoa(st.FromDay) + ":" + strconv.FormatFloat(st.R, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

// ParseSchedule reads "DAY:R,DAY:R,…", e.g. "0:1.5,30:0.7" (R 1.5 from the
// first day, 0.7 from day 30).
func ParseSchedule(text string) (RSchedule, error) {
	var s RSchedule
	for _, part := range strings.Split(text, ",") {
		day, r, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("R schedule %q: want DAY:R pairs separated by commas, e.g. 0:1.5,30:0.7", text)
		}
		d, err1 := strconv.Atoi(strings.TrimSpace(day))
		v, err2 := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("R schedule %q: bad pair %q (want DAY:R, e.g. 30:0.7)", text, part)
		}
		s = append(s, RStep{FromDay: d, R: v})
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("R schedule %q: %w", text, err)
	}
	return s, nil
}

// Config describes one simulated outbreak. Start from DefaultConfig and
// change what you need: New checks every field and fills in nothing, because
// zero is meaningful for many of them (no imports, no delays, no vaccination).
//
// Rates "per million" are per million inhabitants of the region (its
// population in the region reference) and are multiplied by Scale.
//
// The producer is well behaved by default: after each day's events it sends a
// report_complete per region and feed (see regionState.reportComplete), so a
// small region's day without cases is a real zero, not a missing day; on the
// first day a facility event registers every hospital as open. Scenarios
// reproduce what real reporting does to the data (all off by default):
//
//   - a late region (LateRegion): its case reports of a few days are held
//     back and uploaded together afterwards, while its tests and beds keep
//     coming, so its case feed is stale in between;
//   - a sporadic region (SporadicRegion): a case every six days or so, beds
//     half full with other patients — R from too few cases;
//   - duplicate notifications (DuplicateShare): a hospital notifies a
//     confirmed case again under its own source and event_id;
//   - corrections (RetractShare): a false notification withdrawn by a
//     retraction, or a case filed under a neighbouring region and re-filed
//     under its own by a case that supersedes the first;
//   - a closing facility (CloseFacility): one hospital per region stops
//     reporting in mid-run; half the regions register the closure.
//
// A correction always comes 1–5 days after the event it corrects, from the
// same source. The truth stays the truth of the epidemic: duplicates, false
// notifications and wrong regions are not counted in it (see TruthRow).
type Config struct {
	// Country selects the regions when Regions is empty: every region of
	// the country in the reference ("KZ" or "KG").
	Country string
	// Regions are region codes; empty means every region of Country.
	Regions []string
	// Start is the first simulated day; Days how many days are simulated.
	Start schemas.Date
	Days  int
	// Seed makes the run reproducible: the same Config gives the same bytes.
	Seed int64
	// Scale multiplies the population at risk, the seed and imported cases,
	// test volumes, bed capacity and vaccination rates: counts of every kind
	// grow in proportion while the shape of the epidemic stays the same.
	Scale float64
	// Source is the events' "source" field.
	Source string

	// SI is the serial interval of the renewal process.
	SI SerialInterval
	// Schedules sets a region's R(t); regions without one get a default
	// schedule (waves of growth and decline) drawn from the seed.
	Schedules map[string]RSchedule
	// SeedCases is the imported cases per million on each of the first
	// SeedDays days that start each region's outbreak.
	SeedCases float64
	SeedDays  int
	// ImportRate is the imported cases per day per million (travellers),
	// drawn from a Poisson distribution every day.
	ImportRate float64
	// Ascertainment is the share of infections that become reported cases;
	// the susceptible pool shrinks by cases/Ascertainment, which caps the
	// outbreak (R in force = R(t)·S/N).
	Ascertainment float64

	// Delays switches on the reporting delay (onset to report), laboratory
	// turnaround and contact-tracing lags. Off, every case is reported on
	// its onset day with its test, and contacts the same day.
	Delays bool
	// DelayMean and DelaySD give the onset-to-report delay in days: a gamma
	// rounded to whole days, at most 30 (before WeekendDeferral).
	DelayMean, DelaySD float64
	// DelayDrift makes the delay distribution change over the outbreak: its
	// mean moves linearly from DelayMean on the first simulated day to
	// DelayMean+DelayDrift on the last (by onset day; positive: reporting
	// slows down, negative: it speeds up), and its sd in proportion, so the
	// distribution stretches or shrinks with a constant coefficient of
	// variation (with DelayMean 0 the sd stays DelaySD). 0, the default,
	// keeps one delay distribution throughout. It lets a nowcast be tested
	// against a delay that is not what it was a few weeks earlier, as when a
	// surge overwhelms the notification system.
	DelayDrift float64
	// WeekendDeferral is the day-of-week effect of reporting: the share of
	// case reports due on a Saturday or a Sunday that are sent on the
	// following Monday instead (public-health offices notify less at
	// weekends, and catch up on Monday). Weekend reports are then fewer,
	// Monday's more, and a case's delay depends on the weekday it falls
	// ill. It applies with Delays only, after the gamma delay (which may so
	// exceed 30 days by up to two). 0.4 (WeekendDeferralTypical) is an
	// assumption of the order of the weekend dips of COVID-19 notification
	// series, and the default; 0 turns it off. Only report dates move: cases
	// by onset, the epidemic and its truth are the same with or without it.
	WeekendDeferral float64
	// OnsetMissing is the share of cases reported without an onset date.
	OnsetMissing float64
	// ProbableShare is the share of cases classified "probable" (no
	// positive test); the others are confirmed.
	ProbableShare float64

	// ContactsMean is the mean number of traced contacts per case (Poisson);
	// each region's mean is drawn between ContactsMean-1 and ContactsMean+1.
	ContactsMean float64
	// LinkShare is the share of local cases that are a traced contact of an
	// earlier case (the same person, so the same national ID, in both
	// events), when such a contact is available.
	LinkShare float64
	// ContactTestShare is the share of contacts tested when traced.
	ContactTestShare float64
	// TestsPerMillion is the background testing volume (negative tests per
	// day per million); SymptomaticTests the negative tests per case of
	// people with similar symptoms. Together with the contact tests they
	// make test positivity rise with incidence (about 3 % to 20 %).
	TestsPerMillion  float64
	SymptomaticTests float64
	// AntigenShare is the share of rapid antigen tests (same-day result);
	// the rest are PCR.
	AntigenShare float64

	// HospShare is the share of cases admitted to hospital (1–4 days after
	// onset), ICUShare the share of those who need intensive care, and
	// LengthOfStay the mean stay in days.
	HospShare    float64
	ICUShare     float64
	LengthOfStay float64
	// BedsPerMillion is the infectious-bed capacity per million; ICU beds
	// are 15 % of it and one provisional (temporary) hospital per region adds
	// 50 % more. Capacity scales with Scale like the cases do, so occupancy
	// (ПЗК) spans its plausible range: ~20 % with few cases, full in a surge.
	BedsPerMillion float64
	// StaleFacilities makes some facilities stop reporting for 3–8 days.
	StaleFacilities bool

	// VaccinationsPerMillion is the daily number of doses per million.
	VaccinationsPerMillion float64

	// ReportComplete makes the producer well behaved: after each day's
	// events it sends a report_complete per region and feed the region uses
	// (case, lab_test, bed_snapshot; contact and vaccination when the
	// configuration produces them), so that a day without events of a feed
	// is a real zero rather than missing.
	ReportComplete bool

	// The scenarios below reproduce data-quality situations; each is off at
	// its zero value.

	// LateRegion delays one region's case feed: its case events and case
	// report_complete of days LateFromDay..LateFromDay+LateDays-1 (0 = the
	// first simulated day) are held back and sent with the batch of day
	// LateFromDay+LateDays (a late upload, original report dates kept), while
	// its tests, beds and other feeds keep flowing on time.
	LateRegion  string
	LateFromDay int
	LateDays    int
	// SporadicRegion replaces one region's outbreak by a sporadic trickle:
	// about one case every six days (a gap of 3–9 days), no growth (R 1), no
	// imports or seed cases, and beds 50–70 % occupied by other patients.
	SporadicRegion string
	// DuplicateShare is the share of confirmed cases notified a second time
	// by a hospital: another event_id and source ("hospital-<facility id>"),
	// the same person and region, a report date 0–3 days after the first.
	DuplicateShare float64
	// RetractShare is the share of confirmed cases that bring a notification
	// later corrected, 1–5 days after it and by the same source: mostly a
	// false notification (a person who is not a case), withdrawn by a
	// retraction "discarded"; for 30 % (wrongRegionShare), when a
	// neighbouring region of the same country is simulated, the case itself
	// is first filed under that neighbour and re-filed under its own region
	// by a new case that supersedes the first. Both are reporting artefacts:
	// the truth counts neither the false notification nor the wrong region.
	RetractShare float64
	// CloseFacility closes one hospital of every region on a day in the
	// middle third of the run: it stops reporting bed snapshots and its beds
	// leave the region's capacity. In every other region (the first, third, …
	// in code order) a facility event "closed", effective that day, follows;
	// in the others nothing does, so the pipeline presumes it closed once it
	// has been silent long enough.
	CloseFacility bool
}

// WithDataQuality turns every data-quality situation on for the regions
// codes (sorted, as New sorts them), where the configuration leaves it off:
// the second region's case feed is 3 days late 20 days before the end, the
// last region has sporadic cases, 2 % of cases are notified twice and 0.5 %
// corrected, one hospital per region closes and some stop reporting for a
// few days. It is what the quick start shows on the dashboards.
func (c Config) WithDataQuality(codes []string) Config {
	if c.LateRegion == "" && len(codes) >= 2 && c.Days >= 30 {
		c.LateRegion, c.LateFromDay, c.LateDays = codes[1], c.Days-20, 3
	}
	if c.SporadicRegion == "" && len(codes) >= 3 {
		if last := codes[len(codes)-1]; last != c.LateRegion && c.Schedules[last] == nil {
			c.SporadicRegion = last
		}
	}
	if c.DuplicateShare == 0 {
		c.DuplicateShare = 0.02
	}
	if c.RetractShare == 0 {
		c.RetractShare = 0.005
	}
	c.CloseFacility, c.StaleFacilities = true, true
	return c
}

// DefaultConfig returns a configuration giving, for Kazakhstan's 20 regions
// over 120 days, a few hundred thousand events.
func DefaultConfig() Config {
	return Config{
		Country:       "KZ",
		Start:         schemas.MustDate("2021-06-01"),
		Days:          120,
		Seed:          1,
		Scale:         1,
		Source:        "simulator",
		SI:            DefaultSI,
		SeedCases:     1.5,
		SeedDays:      3,
		ImportRate:    0.3,
		Ascertainment: 0.25,
		Delays:        true,
		// Onset to report: mean 3 days, sd 2 (the order of magnitude of
		// onset-to-notification delays in the COVID-19 literature, e.g.
		// Bi et al. 2020, Lancet Infect Dis 20:911, mean 4.6 days in Shenzhen
		// before tracing scaled up).
		DelayMean:              3,
		DelaySD:                2,
		WeekendDeferral:        WeekendDeferralTypical,
		OnsetMissing:           0.2,
		ProbableShare:          0.04,
		ContactsMean:           4,
		LinkShare:              0.5,
		ContactTestShare:       0.5,
		TestsPerMillion:        20,
		SymptomaticTests:       1.5,
		AntigenShare:           0.2,
		HospShare:              0.075,
		ICUShare:               0.12,
		LengthOfStay:           10,
		BedsPerMillion:         45,
		VaccinationsPerMillion: 8,
		ReportComplete:         true,
		// Duplicate notifications and corrections are realistic (a few
		// per cent of notifications), but off by default: `epiwatch run
		// --simulate` waits for the events of Source only (a hospital's
		// duplicate has its own source), and `epiwatch bench` renames
		// event_ids and sends concurrently, which would orphan corrections.
		DuplicateShare: 0,
		RetractShare:   0,
	}
}

// check reports the first invalid field.
func (c *Config) check() error {
	share := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("simulate: %s must be between 0 and 1, got %g", name, v)
		}
		return nil
	}
	nonneg := func(name string, v float64) error {
		if !(v >= 0) || v > 1e6 {
			return fmt.Errorf("simulate: %s must be between 0 and 1e6, got %g", name, v)
		}
		return nil
	}
	switch {
	case c.Days < 1 || c.Days > 3650:
		return fmt.Errorf("simulate: days must be between 1 and 3650, got %d", c.Days)
	case c.Start < schemas.EarliestDate.AddDays(7):
		return fmt.Errorf("simulate: start %s is too early (events before %s are invalid)", c.Start, schemas.EarliestDate)
	case !(c.Scale > 0 && c.Scale <= 1000):
		return fmt.Errorf("simulate: scale must be in (0, 1000], got %g", c.Scale)
	case strings.TrimSpace(c.Source) == "":
		return errors.New("simulate: source must not be empty")
	case !(c.SI.Mean > 1 && c.SI.Mean < 30 && c.SI.SD > 0 && c.SI.SD < 30):
		return fmt.Errorf("simulate: serial interval mean must be in (1, 30) and sd in (0, 30), got mean %g sd %g", c.SI.Mean, c.SI.SD)
	case c.SeedDays < 0 || c.SeedDays > 3650:
		return fmt.Errorf("simulate: seed days must be between 0 and 3650, got %d", c.SeedDays)
	case !(c.Ascertainment > 0 && c.Ascertainment <= 1):
		return fmt.Errorf("simulate: ascertainment must be in (0, 1], got %g", c.Ascertainment)
	case !(c.DelayMean >= 0 && c.DelayMean <= 20 && c.DelaySD >= 0 && c.DelaySD <= 20):
		return fmt.Errorf("simulate: delay mean and sd must be between 0 and 20 days, got %g and %g", c.DelayMean, c.DelaySD)
	case !(c.DelayMean+c.DelayDrift >= 0 && c.DelayMean+c.DelayDrift <= 20):
		return fmt.Errorf("simulate: delay drift %g takes the mean delay from %g to %g days; the mean must stay between 0 and 20 days", c.DelayDrift, c.DelayMean, c.DelayMean+c.DelayDrift)
	case !(c.LengthOfStay >= 1 && c.LengthOfStay <= 60):
		return fmt.Errorf("simulate: length of stay must be between 1 and 60 days, got %g", c.LengthOfStay)
	case !(c.ContactsMean >= 0 && c.ContactsMean <= 50):
		return fmt.Errorf("simulate: contacts mean must be between 0 and 50, got %g", c.ContactsMean)
	case c.LateRegion == "" && (c.LateDays != 0 || c.LateFromDay != 0):
		return errors.New("simulate: late days given without a late region")
	case c.LateRegion != "" && (c.LateDays < 1 || c.LateFromDay < 0 || c.LateFromDay+c.LateDays >= c.Days):
		return fmt.Errorf("simulate: late region %s: %d late days from day %d must lie within the run and end before its last day %d (the held-back reports are sent on day FROM+DAYS)",
			c.LateRegion, c.LateDays, c.LateFromDay, c.Days-1)
	case c.SporadicRegion != "" && c.Schedules[c.SporadicRegion] != nil:
		return fmt.Errorf("simulate: %s is both sporadic and given an R schedule; choose one", c.SporadicRegion)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"onset missing", c.OnsetMissing}, {"probable share", c.ProbableShare}, {"link share", c.LinkShare},
		{"contact test share", c.ContactTestShare}, {"antigen share", c.AntigenShare}, {"hospitalisation share", c.HospShare}, {"ICU share", c.ICUShare},
		{"duplicate share", c.DuplicateShare}, {"retraction share", c.RetractShare}, {"weekend deferral", c.WeekendDeferral}} {
		if err := share(f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"seed cases", c.SeedCases}, {"import rate", c.ImportRate}, {"tests per million", c.TestsPerMillion},
		{"symptomatic tests", c.SymptomaticTests}, {"beds per million", c.BedsPerMillion}, {"vaccinations per million", c.VaccinationsPerMillion}} {
		if err := nonneg(f.name, f.v); err != nil {
			return err
		}
	}
	for code, s := range c.Schedules {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("simulate: schedule of %s: %w", code, err)
		}
	}
	return nil
}

// defaultSchedule draws a region's R(t): waves that grow and are brought
// under control in turn, like a season of COVID-19 under changing
// restrictions. First a growth phase (R 1.3–1.5 for 14–24 days), then control
// (0.7–0.85 for 20–28), a second wave (1.15–1.3 for 16–24), control
// (0.75–0.9 for 20–30), then alternating 1.05–1.25 and 0.75–0.9.
func defaultSchedule(r *rand.Rand, days int) RSchedule {
	type phase struct {
		lo, hi         float64
		minLen, maxLen int
	}
	phases := []phase{{1.30, 1.50, 14, 24}, {0.70, 0.85, 20, 28}, {1.15, 1.30, 16, 24}, {0.75, 0.90, 20, 30}}
	repeat := []phase{{1.05, 1.25, 14, 22}, {0.75, 0.90, 20, 30}}
	var s RSchedule
	for day, i := 0, 0; day < days; i++ {
		p := repeat[(i-len(phases)+2*len(repeat))%len(repeat)]
		if i < len(phases) {
			p = phases[i]
		}
		rv := p.lo + (p.hi-p.lo)*r.Float64()
		s = append(s, RStep{FromDay: day, R: float64(int(rv*100+0.5)) / 100})
		day += p.minLen + r.IntN(p.maxLen-p.minLen+1)
	}
	return s
}

// ParseLate reads the late-region scenario "REGION:FROM_DAY:DAYS", e.g.
// "KZ-35:80:3": the case reports of KZ-35 for days 80, 81 and 82 (0 = the
// first simulated day) are sent with day 83's.
func ParseLate(text string) (region string, fromDay, days int, err error) {
	parts := strings.Split(strings.TrimSpace(text), ":")
	if len(parts) != 3 {
		return "", 0, 0, fmt.Errorf("late region %q: want REGION:FROM_DAY:DAYS, e.g. KZ-35:80:3", text)
	}
	region = strings.ToUpper(strings.TrimSpace(parts[0]))
	fromDay, err1 := strconv.Atoi(strings.TrimSpace(parts[1]))
	days, err2 := strconv.Atoi(strings.TrimSpace(parts[2]))
	switch {
	case region == "" || err1 != nil || err2 != nil:
		return "", 0, 0, fmt.Errorf("late region %q: want REGION:FROM_DAY:DAYS with whole numbers, e.g. KZ-35:80:3", text)
	case fromDay < 0 || days < 1:
		return "", 0, 0, fmt.Errorf("late region %q: FROM_DAY must be ≥ 0 and DAYS ≥ 1", text)
	}
	return region, fromDay, days, nil
}
