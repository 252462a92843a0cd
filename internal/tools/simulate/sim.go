package simulate

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

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

// weekendDeferral returns the days a case report due on date is deferred
// by (Config.WeekendDeferral): to the following Monday for that share of
// the reports due on a Saturday (2 days) or a Sunday (1 day), else 0. It
// draws from the region's own stream, so the effect moves report dates
// only and changes no other draw of the run.
func (rs *regionState) weekendDeferral(cfg *Config, date schemas.Date) int {
	if cfg.WeekendDeferral == 0 {
		return 0
	}
	var days int
	switch date.Time().Weekday() {
	case time.Saturday:
		days = 2
	case time.Sunday:
		days = 1
	default:
		return 0
	}
	if rs.weekday.Float64() < cfg.WeekendDeferral {
		return days
	}
	return 0
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

// facility is a hospital with infectious and ICU beds, or (provisional) a
// temporary hospital.
type facility struct {
	id, name            string
	provisional         bool
	beds, icuBeds       int
	baseBeds, baseICU   float64 // occupancy by other patients
	minute              int     // of the morning report
	staleFrom, staleTil int     // day indexes without reports (staleTil exclusive)
	closed              int     // day index from which it is closed (0: never; it opens on day 0)
}

// open reports whether the facility is open on day d.
func (f *facility) open(d int) bool { return f.closed == 0 || d < f.closed }

type dose struct {
	p       *person
	vaccine string
}

// regionState is one region's epidemic and services.
type regionState struct {
	reg       schemas.Region
	sched     RSchedule
	zone      *time.Location
	place     string
	districts []string
	labs      []string
	labW      []float64
	vaccines  []string
	vaccineW  []float64

	// Independent random streams (see newRand). notices draws the
	// reporting artefacts (duplicates, corrections), sporadic the cases of a
	// sporadic region: neither changes the other streams.
	// weekday draws the weekend deferral of case reports
	// (Config.WeekendDeferral).
	epi, cases, tests, hosp, beds, vax, notices, sporadic, weekday *rand.Rand

	isSporadic   bool
	nextSporadic int    // day index of the sporadic region's next case
	neighbour    string // see Sim.neighbour

	n            float64 // population at risk (scaled)
	perMillion   float64 // population/1e6 · Scale
	inc          []float64
	cum          float64
	contactsMean float64
	pool         [][]*person // traced contacts by contact day + 2

	admit, discharge, icuIn, icuOut []int
	census, icu                     int
	facilities                      []*facility
	dose2                           [][]dose

	nCase, nContact, nTest, nVax int
	nNotice                      int // artefacts: duplicates, false notifications, re-filings, retractions
	truth                        []TruthRow
}

// newRegionState prepares region reg, the index-th simulated region.
func newRegionState(ru *run, reg schemas.Region, sched RSchedule, index int) *regionState {
	cfg := ru.cfg
	seed, code := cfg.Seed, reg.Code
	rs := &regionState{
		reg: reg, sched: sched, zone: time.UTC, place: reg.NameRU,
		epi: newRand(seed, code, "epi"), cases: newRand(seed, code, "cases"), tests: newRand(seed, code, "tests"),
		hosp: newRand(seed, code, "hosp"), beds: newRand(seed, code, "beds"), vax: newRand(seed, code, "vax"),
		notices: newRand(seed, code, "notices"), sporadic: newRand(seed, code, "sporadic"),
		weekday:    newRand(seed, code, "weekday"),
		isSporadic: code == cfg.SporadicRegion, neighbour: ru.s.neighbour[code],
		n:          float64(reg.Population) * cfg.Scale,
		perMillion: float64(reg.Population) / 1e6 * cfg.Scale,
		inc:        make([]float64, cfg.Days),
		pool:       make([][]*person, cfg.Days+horizon),
		admit:      make([]int, cfg.Days+horizon),
		discharge:  make([]int, cfg.Days+horizon),
		icuIn:      make([]int, cfg.Days+horizon),
		icuOut:     make([]int, cfg.Days+horizon),
		dose2:      make([][]dose, cfg.Days),
		truth:      make([]TruthRow, cfg.Days),
	}
	if rs.place == "" {
		rs.place = reg.NameEN
	}
	// Bed snapshots carry local time: Kazakhstan has had one zone, UTC+5,
	// since March 2024 (used here for every date), Kyrgyzstan UTC+6.
	switch reg.Country {
	case "KZ":
		rs.zone = time.FixedZone("+05", 5*3600)
	case "KG":
		rs.zone = time.FixedZone("+06", 6*3600)
	}
	setup := newRand(seed, code, "setup")
	rs.contactsMean = max(0, cfg.ContactsMean-1+2*setup.Float64())
	rs.districts = districtsOf(reg, 3+reg.Population/150000)
	if reg.Country == "KG" {
		rs.labs = []string{"ЦПЗиГСЭН, " + rs.place, "Лаборатория Бонецкого"}
		rs.labW = []float64{0.7, 0.3}
		rs.vaccines = []string{"Sputnik V", "Sinopharm", "AstraZeneca"}
		rs.vaccineW = []float64{0.45, 0.45, 0.1}
	} else {
		rs.labs = []string{"НЦЭ, " + rs.place, "KDL Olymp", "Invivo"}
		rs.labW = []float64{0.6, 0.25, 0.15}
		rs.vaccines = []string{"Sputnik V", "QazVac", "Hayat-Vax", "CoronaVac"}
		rs.vaccineW = []float64{0.55, 0.2, 0.15, 0.1}
	}
	rs.setupFacilities(cfg, setup)
	if cfg.CloseFacility {
		rs.closeFacility(ru, newRand(seed, code, "close"), index%2 == 0)
	}
	rs.register(ru)
	if rs.isSporadic {
		rs.nextSporadic = rs.sporadic.IntN(sporadicMaxGap - sporadicMinGap + 1)
	}
	for d := range rs.truth {
		rs.truth[d] = TruthRow{Region: code, Date: ru.date(d)}
	}
	return rs
}

// register queues the facility registry on the first day, before the
// morning's bed snapshots: every facility open from the first day, with the
// capacity it reports.
func (rs *regionState) register(ru *run) {
	for _, f := range rs.facilities {
		ev := rs.facilityEvent(ru, f, 0, schemas.FacilityOpen)
		if f.provisional {
			ev.CapacityProvisional = ptr(f.beds)
		} else {
			ev.CapacityInfectious, ev.CapacityICU = ptr(f.beds), ptr(f.icuBeds)
		}
		ru.deliver(0, -1, ev)
	}
}

// facilityEvent is a facility registry event of f: status from day d on.
func (rs *regionState) facilityEvent(ru *run, f *facility, d int, status string) schemas.Event {
	date := ru.date(d)
	return schemas.Event{
		EventID: fmt.Sprintf("sim-%d-facility-%s-%s-%s", ru.cfg.Seed, f.id, date.Time().Format("20060102"), status),
		Type:    schemas.TypeFacility, Region: rs.reg.Code, Source: ru.cfg.Source,
		FacilityID: f.id, FacilityName: f.name, FacilityStatus: status, EffectiveDate: date,
	}
}

func ptr(v int) *int { return &v }

// closeFacility closes one of the region's hospitals (not the provisional
// one) on a day in the middle third of the run: from that day it reports
// nothing and its beds leave the region's capacity. When announce, a
// facility event "closed" effective that day follows its last report.
func (rs *regionState) closeFacility(ru *run, r *rand.Rand, announce bool) {
	days := ru.cfg.Days
	if days < 2 {
		return // it must be open on the first day
	}
	var hospitals []*facility
	for _, f := range rs.facilities {
		if !f.provisional {
			hospitals = append(hospitals, f)
		}
	}
	f := hospitals[r.IntN(len(hospitals))]
	f.closed = max(1, days/3+r.IntN(days/3+1))
	if announce {
		ru.deliver(f.closed, 720+r.IntN(120), rs.facilityEvent(ru, f, f.closed, schemas.FacilityClosed))
	}
}

// reportComplete appends to events the region's report_complete events of
// day d: one per feed it uses, after the day's events. A lab test counts on
// its result date (the laboratory has sent every result of day d), a
// contact on the day it is traced, every other feed on the event's own day,
// which is the day it is sent.
func (rs *regionState) reportComplete(ru *run, d int, events []schemas.Event) []schemas.Event {
	cfg := ru.cfg
	date := ru.date(d)
	for _, feed := range schemas.FeedTypes {
		switch {
		case feed == schemas.TypeContact && rs.contactsMean == 0,
			feed == schemas.TypeVaccination && cfg.VaccinationsPerMillion == 0:
			continue // a feed this configuration never produces
		}
		events = append(events, schemas.Event{
			EventID: fmt.Sprintf("sim-%d-complete-%s-%s-%s", cfg.Seed, rs.reg.Code, feed, date.Time().Format("20060102")),
			Type:    schemas.TypeReportComplete, Region: rs.reg.Code, Source: cfg.Source, Feed: feed, ReportDate: date,
		})
	}
	return events
}

// neighbours returns, per region, the nearest other region of the same
// country among regions (by the distance of their reference coordinates),
// or nothing for a region alone of its country.
func neighbours(regions []schemas.Region) map[string]string {
	out := make(map[string]string, len(regions))
	for _, a := range regions {
		best := math.Inf(1)
		for _, b := range regions {
			if b.Code == a.Code || b.Country != a.Country {
				continue
			}
			// An equirectangular approximation: enough to rank neighbours.
			dx := (b.Lon - a.Lon) * math.Cos((a.Lat+b.Lat)/2*math.Pi/180)
			dy := b.Lat - a.Lat
			if dist := dx*dx + dy*dy; dist < best {
				best, out[a.Code] = dist, b.Code
			}
		}
	}
	return out
}

// setupFacilities creates 2–6 hospitals (by population) sharing the
// region's infectious and ICU beds, and one provisional hospital.
func (rs *regionState) setupFacilities(cfg *Config, r *rand.Rand) {
	n := min(6, 2+rs.reg.Population/600000)
	capacity := cfg.BedsPerMillion * rs.perMillion
	w := make([]float64, n)
	sum := 0.0
	for i := range w {
		w[i] = 0.6 + 0.8*r.Float64()
		sum += w[i]
	}
	city := rs.reg.Kind == "city"
	for i := 0; i < n; i++ {
		f := &facility{id: fmt.Sprintf("%s-H%02d", rs.reg.Code, i+1), minute: r.IntN(60), staleFrom: -1, staleTil: -1}
		f.beds = max(4, int(math.Round(capacity*w[i]/sum)))
		f.icuBeds = max(1, int(math.Round(0.15*float64(f.beds))))
		ub, ui := r.Float64(), r.Float64()
		f.baseBeds = float64(f.beds) * (0.12 + 0.1*ub)
		f.baseICU = float64(f.icuBeds) * (0.15 + 0.15*ui)
		if rs.isSporadic {
			// Beds 50–70 % busy with other patients: occupancy that
			// matters without a COVID-19 outbreak (the same draws, so the
			// setup stream stays as it was).
			f.baseBeds = float64(f.beds) * (0.5 + 0.2*ub)
			f.baseICU = float64(f.icuBeds) * (0.5 + 0.2*ui)
		}
		switch {
		case city:
			f.name = fmt.Sprintf("Городская инфекционная больница №%d (%s)", i+1, rs.place)
		case i == 0:
			f.name = fmt.Sprintf("Областная инфекционная больница (%s)", rs.place)
		default:
			f.name = fmt.Sprintf("Многопрофильная больница №%d (%s)", i, rs.place)
		}
		rs.facilities = append(rs.facilities, f)
	}
	rs.facilities = append(rs.facilities, &facility{
		id: rs.reg.Code + "-P01", name: fmt.Sprintf("Временный госпиталь (%s)", rs.place), provisional: true,
		beds: max(2, int(math.Round(0.5*capacity))), minute: r.IntN(60), staleFrom: -1, staleTil: -1,
	})
	if cfg.StaleFacilities && r.Float64() < 0.5 {
		f := rs.facilities[r.IntN(n)]
		f.staleFrom = cfg.Days/4 + r.IntN(cfg.Days/2+1)
		f.staleTil = f.staleFrom + 3 + r.IntN(6)
	}
}

// step simulates day d of the region.
func (rs *regionState) step(ru *run, d int) {
	cfg := ru.cfg
	tr := &rs.truth[d]

	// Renewal: Λ_t = Σ_s w_s I_{t-s} over all cases (local and imported),
	// local cases ~ Poisson(R(t)·S/N·Λ_t), imported ~ Poisson(rate).
	lambda := 0.0
	for k := 1; k < len(ru.s.si) && k <= d; k++ {
		lambda += ru.s.si[k] * rs.inc[d-k]
	}
	// Susceptible depletion: cases are Ascertainment of infections.
	infected := rs.cum / cfg.Ascertainment
	sn := max(0, 1-infected/rs.n)
	r := rs.sched.At(d)
	var local, imported int
	if rs.isSporadic {
		local, imported = rs.sporadicCases(d)
	} else {
		local = poisson(rs.epi, r*sn*lambda)
		local = min(local, int(sn*rs.n*cfg.Ascertainment)) // never more cases than susceptibles
		imported = poisson(rs.epi, cfg.ImportRate*rs.perMillion)
		if d < cfg.SeedDays && cfg.SeedCases > 0 {
			imported += int(max(1, math.Round(cfg.SeedCases*rs.perMillion)))
		}
	}
	rs.inc[d] = float64(local + imported)
	rs.cum += rs.inc[d]
	tr.R, tr.RTrue, tr.Lambda, tr.SOverN = r, r*sn, lambda, sn
	tr.Local, tr.Imported = local, imported

	for i := 0; i < imported; i++ {
		rs.newCase(ru, d, true)
	}
	for i := 0; i < local; i++ {
		rs.newCase(ru, d, false)
	}
	rs.negativeTests(ru, d, local+imported)
	rs.bedsDay(ru, d)
	rs.vaccinate(ru, d)
	// Contacts of day d-14 can no longer fall ill from tomorrow on.
	if i := d - linkMaxLag + 2; i >= 0 {
		rs.pool[i] = nil
	}
}

// sporadicCases returns the cases with onset on day d of a sporadic region:
// one on the days of a sequence with gaps of 3–9 days (so, over a long run,
// one every six days and never a cluster), none otherwise. The first has
// nobody to catch it from, so it is imported; the others are local.
func (rs *regionState) sporadicCases(d int) (local, imported int) {
	if d != rs.nextSporadic {
		return 0, 0
	}
	rs.nextSporadic += sporadicMinGap + rs.sporadic.IntN(sporadicMaxGap-sporadicMinGap+1)
	if rs.cum == 0 {
		return 0, 1
	}
	return 1, 0
}

// Contact settings and their shares among traced contacts (households
// dominate contact tracing of COVID-19).
var (
	settings      = []string{"household", "work", "school", "healthcare", "community", "travel", "other"}
	settingShares = []float64{0.45, 0.20, 0.07, 0.05, 0.15, 0.03, 0.05}
)

// newCase generates a case with onset on day d: the case report, its
// positive test, its traced contacts (some of whom fall ill later) and its
// hospital stay.
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

// bedsDay updates the hospital census and queues the morning bed snapshots:
// each hospital's occupancy is its other patients plus its share of the
// region's COVID-19 patients; what does not fit goes to the provisional
// hospital. Occupied never exceeds total.
func (rs *regionState) bedsDay(ru *run, d int) {
	r := rs.beds
	rs.census += rs.admit[d] - rs.discharge[d]
	rs.icu += rs.icuIn[d] - rs.icuOut[d]
	ward := float64(max(0, rs.census-rs.icu))
	icu := float64(rs.icu)
	totBeds, totICU := 0, 0
	for _, f := range rs.facilities {
		if !f.provisional && f.open(d) {
			totBeds += f.beds
			totICU += f.icuBeds
		}
	}
	tr := &rs.truth[d]
	tr.Hospitalised, tr.ICU = rs.census, rs.icu
	overflow := 0.0
	occupy := func(base, patients float64, total int) int {
		want := base*(1+0.05*r.NormFloat64()) + patients + 0.3*math.Sqrt(patients)*r.NormFloat64()
		if want > float64(total) {
			overflow += want - float64(total)
		}
		return int(min(max(math.Round(want), 0), float64(total)))
	}
	date := ru.date(d)
	y, m, dd := date.Time().Date()
	snapshot := func(f *facility, kind string, total, occupied int) {
		if d >= f.staleFrom && d < f.staleTil {
			return
		}
		t := time.Date(y, m, dd, 8, f.minute, 0, 0, rs.zone)
		tot, occ := total, occupied
		ru.deliver(d, 480+f.minute, schemas.Event{
			EventID: fmt.Sprintf("sim-%d-bed-%s-%s-%s", ru.cfg.Seed, f.id, t.Format("20060102"), kind),
			Type:    schemas.TypeBedSnapshot, Region: rs.reg.Code, Source: ru.cfg.Source,
			FacilityID: f.id, FacilityName: f.name, SnapshotTime: &t, BedKind: kind, Total: &tot, Occupied: &occ,
		})
	}
	for _, f := range rs.facilities {
		if f.provisional || !f.open(d) {
			continue // a closed hospital's patients are in the others
		}
		occ := occupy(f.baseBeds, ward*float64(f.beds)/float64(totBeds), f.beds)
		icuOcc := occupy(f.baseICU, icu*float64(f.icuBeds)/float64(totICU), f.icuBeds)
		tr.InfectiousBeds += f.beds
		tr.InfectiousOccupied += occ
		tr.ICUBeds += f.icuBeds
		tr.ICUOccupied += icuOcc
		snapshot(f, schemas.BedInfectious, f.beds, occ)
		snapshot(f, schemas.BedICU, f.icuBeds, icuOcc)
	}
	for _, f := range rs.facilities {
		if f.provisional {
			occ := int(min(math.Round(overflow), float64(f.beds)))
			tr.ProvisionalBeds += f.beds
			tr.ProvisionalOccupied += occ
			snapshot(f, schemas.BedProvisional, f.beds, occ)
		}
	}
}

// vaccinate queues the day's doses: first doses, second doses 21–28 days
// after the first (85 % come back), and boosters (third doses) of people
// vaccinated before the simulated period.
func (rs *regionState) vaccinate(ru *run, d int) {
	cfg := ru.cfg
	r := rs.vax
	rate := cfg.VaccinationsPerMillion * rs.perMillion
	give := func(p *person, vaccine string, n int) {
		rs.nVax++
		rs.truth[d].Doses++
		ru.deliver(d, 540+r.IntN(540), schemas.Event{
			EventID: ru.id("vax", rs.reg.Code, rs.nVax), Type: schemas.TypeVaccination, Region: rs.reg.Code, Source: cfg.Source,
			Person: p.schema(r, vaxFields), DoseNumber: n, Vaccine: vaccine, VaccinationDate: ru.date(d),
		})
	}
	for _, ds := range rs.dose2[d] {
		give(ds.p, ds.vaccine, 2)
	}
	rs.dose2[d] = nil
	for i, n := 0, poisson(r, 0.5*rate); i < n; i++ {
		p := ru.people.newPerson(r, rs, ru.date(d), true)
		v := rs.vaccines[pick(r, rs.vaccineW)]
		give(p, v, 1)
		if r.Float64() < 0.85 {
			if d2 := d + 21 + r.IntN(8); d2 < len(rs.dose2) {
				rs.dose2[d2] = append(rs.dose2[d2], dose{p, v})
			}
		}
	}
	for i, n := 0, poisson(r, 0.075*rate); i < n; i++ {
		give(ru.people.newPerson(r, rs, ru.date(d), true), rs.vaccines[pick(r, rs.vaccineW)], 3)
	}
}
