// A region's day in the simulation: its state, facilities and beds,
// vaccination, sporadic cases and the weekend deferral of its reports.

package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

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
//
// Each region runs a renewal process on cases by symptom-onset day (the model
// the Cori estimator inverts):
//
//	Λ_t = Σ_{s≥1} w_s I_{t-s}                  total infectiousness
//	L_t ~ Poisson(R(t) · S_t/N · Λ_t)           local cases
//	M_t ~ Poisson(import rate) (+ seed cases)   imported cases
//	I_t = L_t + M_t
//
// w is the serial interval, a gamma (default mean 4.7, sd 2.9 days)
// discretised exactly as EpiEstim does, so an unbiased estimator recovers
// R(t). R(t) is piecewise constant per region (RSchedule): given in
// Config.Schedules, or drawn from the seed as waves of growth and control (R
// 1.3–1.5 for two to three weeks, 0.7–0.85 for three to four, a second wave
// 1.15–1.3, and so on). Each region starts with a few imported seed cases on
// its first days. S/N is the susceptible share: cases are a fraction
// (Ascertainment) of infections, and the pool of N = population·Scale shrinks
// by cases/Ascertainment, which keeps a long R > 1 plausible.
//
// Besides the cases: negative tests (background screening per population and
// people with similar symptoms per case, so that positivity rises with
// incidence between a few and about 20 %); bed snapshots every morning at
// 08:xx local time from 2–6 hospitals per region (infectious and ICU beds;
// occupancy = other patients + the region's COVID-19 patients; what does not
// fit goes to the region's provisional hospital; occupied never exceeds total;
// optionally a facility goes silent for 3–8 days); and first, second (21–28
// days later) and booster vaccine doses at a slow daily rate.
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
