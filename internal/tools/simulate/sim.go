package simulate

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/epiwatch/epiwatch/schemas"
)

// Sim is a configured outbreak. Run generates it; it can be run any number of
// times (one at a time) and always produces the same events.
type Sim struct {
	cfg       Config
	regions   []schemas.Region
	schedules map[string]RSchedule
	si        []float64
	// delayCDF is the onset-to-report delay by onset day index: one
	// distribution for every day, or one a day with Config.DelayDrift.
	delayCDF [][]float64
	losCDF   []float64
	// neighbour is, per region, the nearest other simulated region of its
	// country ("" for none): where a case filed under the wrong region goes.
	neighbour map[string]string
	truth     []TruthRow
}

// Horizons of the generator, in days.
const (
	maxDelay   = 30 // onset to report
	maxLOS     = 60 // hospital stay
	horizon    = maxDelay + maxLOS + 10
	linkMinLag = 3  // a traced contact falls ill 3–14 days after the contact
	linkMaxLag = 14 // (the incubation period of SARS-CoV-2 is up to 14 days)

	// A sporadic region has a case every sporadicMinGap..sporadicMaxGap
	// days: one every six days on average.
	sporadicMinGap = 3
	sporadicMaxGap = 9
	// correctMaxLag: a correction follows its notification 1–5 days later.
	correctMaxLag = 5
	// duplicateMaxLag: a hospital's duplicate notification comes 0–3 days
	// after the first.
	duplicateMaxLag = 3
)

// wrongRegionShare is the share of Config.RetractShare's corrections that
// are a case filed under a neighbouring region and re-filed under its own
// (when a neighbour is simulated) rather than a false notification.
const wrongRegionShare = 0.3

// New checks cfg and prepares the simulation of its regions, taken from
// regions (nil: schemas.DefaultRegions()).
func New(cfg Config, regions *schemas.Regions) (*Sim, error) {
	if regions == nil {
		regions = schemas.DefaultRegions()
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	codes := slices.Clone(cfg.Regions)
	if len(codes) == 0 {
		for _, r := range regions.Country(cfg.Country) {
			codes = append(codes, r.Code)
		}
		if len(codes) == 0 {
			return nil, fmt.Errorf("simulate: no regions of country %q in the region reference (want KZ or KG, or list regions)", cfg.Country)
		}
	}
	sort.Strings(codes)
	codes = slices.Compact(codes)
	s := &Sim{cfg: cfg, schedules: make(map[string]RSchedule, len(codes))}
	for _, c := range codes {
		r, ok := regions.Get(c)
		if !ok {
			return nil, fmt.Errorf("simulate: unknown region %q (want a code of the region reference, e.g. KZ-75)", c)
		}
		s.regions = append(s.regions, r)
		switch sc, ok := cfg.Schedules[c]; {
		case ok:
			s.schedules[c] = slices.Clone(sc)
		case c == cfg.SporadicRegion:
			// A steady trickle: as many cases as infectiousness, R 1.
			s.schedules[c] = RSchedule{{FromDay: 0, R: 1}}
		default:
			s.schedules[c] = defaultSchedule(newRand(cfg.Seed, c, "schedule"), cfg.Days)
		}
	}
	for c := range cfg.Schedules {
		if _, ok := s.schedules[c]; !ok {
			return nil, fmt.Errorf("simulate: R schedule given for %s, which is not simulated", c)
		}
	}
	for _, sc := range []struct{ what, code string }{{"late region", cfg.LateRegion}, {"sporadic region", cfg.SporadicRegion}} {
		if _, ok := s.schedules[sc.code]; sc.code != "" && !ok {
			return nil, fmt.Errorf("simulate: %s %s is not simulated (add it to the regions)", sc.what, sc.code)
		}
	}
	s.neighbour = neighbours(s.regions)
	s.si = discreteSI(cfg.SI.Mean, cfg.SI.SD)
	s.delayCDF = delayCDFs(cfg)
	// Length of stay: gamma with sd half the mean, at least one day.
	s.losCDF = gammaDays(cfg.LengthOfStay, cfg.LengthOfStay/2, maxLOS)
	return s, nil
}

// delayCDFs returns the onset-to-report delay distributions of cfg: one for
// every onset day, or, with DelayDrift, one per day whose mean moves
// linearly from DelayMean to DelayMean+DelayDrift over the run and whose sd
// keeps the coefficient of variation DelaySD/DelayMean.
func delayCDFs(cfg Config) [][]float64 {
	if cfg.DelayDrift == 0 || cfg.Days < 2 {
		return [][]float64{gammaDays(cfg.DelayMean, cfg.DelaySD, maxDelay)}
	}
	out := make([][]float64, cfg.Days)
	for d := range out {
		mean := cfg.DelayMean + cfg.DelayDrift*float64(d)/float64(cfg.Days-1)
		sd := cfg.DelaySD
		if cfg.DelayMean > 0 {
			sd *= mean / cfg.DelayMean
		}
		out[d] = gammaDays(mean, sd, maxDelay)
	}
	return out
}

// delayAt is the delay distribution of cases with onset on day index d.
func (s *Sim) delayAt(d int) []float64 {
	if len(s.delayCDF) == 1 {
		return s.delayCDF[0]
	}
	return s.delayCDF[min(max(d, 0), len(s.delayCDF)-1)]
}

// Config returns the configuration.
func (s *Sim) Config() Config { return s.cfg }

// Regions returns the simulated regions' codes, sorted.
func (s *Sim) Regions() []string {
	out := make([]string, len(s.regions))
	for i, r := range s.regions {
		out[i] = r.Code
	}
	return out
}

// Schedule returns the R schedule of a region (configured or drawn).
func (s *Sim) Schedule(region string) RSchedule { return slices.Clone(s.schedules[region]) }

// SerialInterval returns the discretised serial interval w_0..w_K (w_0 = 0).
func (s *Sim) SerialInterval() []float64 { return slices.Clone(s.si) }

// End returns the last simulated day.
func (s *Sim) End() schemas.Date { return s.cfg.Start.AddDays(s.cfg.Days - 1) }

// Truth returns the ground truth of the last Run, by region then date.
//
// Per region and day it holds the R in force, Λ, the cases by onset and by
// report, tests, hospital census and bed occupancy (ПЗК), to compare with what
// the pipeline computes; WriteTruthCSV writes it. FileWriter writes the events
// as NDJSON or the importer's CSV, and Sender posts them to the ingest API.
func (s *Sim) Truth() []TruthRow { return slices.Clone(s.truth) }

// Run simulates the outbreak day by day and calls emit once per day with the
// events a producer would deliver that day (cases on their report date, test
// results on their result date, contacts when traced, bed snapshots and
// vaccinations on their day), in the order of the day: on the first day the
// facility registry, then bed snapshots in the morning, results, cases,
// contacts, vaccinations and corrections interleaved across regions, and
// last the day's report_complete events (Config.ReportComplete). A late
// region's held-back case reports come first in the batch that releases
// them (Config.LateRegion). A correction (a retraction, a case that
// supersedes another) always comes after the event it corrects: on a later
// day, or later in the same batch. emit owns the slice. Events due after
// the last day are dropped (they would be reported after the simulated
// period). Run stops at the first error of emit or when ctx ends.
//
// Everything is drawn from random streams seeded by (Seed, region, purpose),
// so the same Config gives byte-identical output; the streams are independent,
// so switching delays off or fixing one region's schedule leaves the epidemic
// of the others unchanged, and the reporting artefacts (duplicates,
// corrections) come from streams of their own, so switching them on leaves the
// epidemic as it was. Event IDs are deterministic
// (sim-<seed>-<kind>-<region>-<n>,
// sim-<seed>-bed-<facility>-<yyyymmdd>-<kind>,
// sim-<seed>-complete-<region>-<feed>-<yyyymmdd>,
// sim-<seed>-facility-<facility>-<yyyymmdd>-<status>), so re-sending a run is
// harmless: ingest de-duplicates by event_id.
func (s *Sim) Run(ctx context.Context, emit func(day schemas.Date, events []schemas.Event) error) error {
	ru := &run{s: s, cfg: &s.cfg, people: newPeople(), out: make([][]pending, s.cfg.Days)}
	states := make([]*regionState, len(s.regions))
	for i, reg := range s.regions {
		states[i] = newRegionState(ru, reg, s.schedules[reg.Code], i)
	}
	done := 0 // days simulated, for the truth of an interrupted run
	defer func() {
		s.truth = nil
		for _, rs := range states {
			s.truth = append(s.truth, rs.truth[:done]...)
		}
	}()
	for d := 0; d < s.cfg.Days; d++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, rs := range states {
			rs.step(ru, d)
		}
		day := ru.out[d]
		ru.out[d] = nil
		slices.SortFunc(day, func(a, b pending) int {
			if c := cmp.Compare(a.minute, b.minute); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		events := make([]schemas.Event, len(day), len(day)+len(states)*len(schemas.FeedTypes))
		for i := range day {
			events[i] = day[i].ev
		}
		if s.cfg.ReportComplete {
			for _, rs := range states {
				events = rs.reportComplete(ru, d, events)
			}
		}
		events = ru.holdLate(d, events)
		done = d + 1
		if err := emit(ru.date(d), events); err != nil {
			return err
		}
	}
	return nil
}

// pending is an event waiting for its day; minute orders the day.
type pending struct {
	minute int
	seq    int64
	ev     schemas.Event
}

// run is the state of one Run shared by the regions.
type run struct {
	s      *Sim
	cfg    *Config
	people *people
	out    [][]pending // by day index
	seq    int64
	// held are the late region's events held back (Config.LateRegion), in
	// the order they were due; heldIDs their event_ids.
	held    []schemas.Event
	heldIDs map[string]bool
}

// holdLate applies the late-region scenario to day d's events: on the late
// days it holds back the late region's case events (of any source) and its
// case report_complete, and every correction of an event held back (which
// must not overtake it); on the day after them it sends what it held first,
// in the order it was due.
func (ru *run) holdLate(d int, events []schemas.Event) []schemas.Event {
	cfg := ru.cfg
	from, until := cfg.LateFromDay, cfg.LateFromDay+cfg.LateDays
	switch {
	case cfg.LateRegion == "":
		return events
	case d >= from && d < until:
		if ru.heldIDs == nil {
			ru.heldIDs = make(map[string]bool)
		}
		kept := events[:0]
		for _, e := range events {
			late := e.Region == cfg.LateRegion &&
				(e.Type == schemas.TypeCase || e.Type == schemas.TypeReportComplete && e.Feed == schemas.TypeCase)
			if late || (e.Corrects() != "" && ru.heldIDs[e.Corrects()]) {
				ru.held = append(ru.held, e)
				ru.heldIDs[e.EventID] = true
				continue
			}
			kept = append(kept, e)
		}
		return kept
	case d == until:
		out := append(ru.held, events...)
		ru.held, ru.heldIDs = nil, nil
		return out
	}
	return events
}

func (ru *run) date(d int) schemas.Date { return ru.cfg.Start.AddDays(d) }

// deliver queues ev for day d at minute of the day; it reports false when d
// is outside the simulated period (the event is dropped).
func (ru *run) deliver(d, minute int, ev schemas.Event) bool {
	if d < 0 || d >= len(ru.out) {
		return false
	}
	ru.seq++
	ru.out[d] = append(ru.out[d], pending{minute: minute, seq: ru.seq, ev: ev})
	return true
}

// id returns a deterministic event_id: sim-<seed>-<kind>-<region>-<n>.
func (ru *run) id(kind, region string, n int) string {
	return fmt.Sprintf("%s%s-%s-%d", IDPrefix(ru.cfg.Seed), kind, region, n)
}

// IDPrefix begins the event_id of every event a run with this seed makes,
// whatever its source (a hospital's duplicate notification has its own):
// how `run --simulate` counts what its simulation landed.
func IDPrefix(seed int64) string { return fmt.Sprintf("sim-%d-", seed) }
