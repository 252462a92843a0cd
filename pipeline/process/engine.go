package process

import (
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/epi"
	"github.com/epiwatch/epiwatch/schemas"
)

// Indicator flags (schemas.Indicator.Flags) set by the processor.
const (
	// FlagBedsStale: at least one facility's bed report was too old to count
	// (StaleFacilities > 0); ПЗК covers the fresh facilities only.
	FlagBedsStale = "beds_stale"
	// FlagNoPopulation: the region is not in the region reference, so the
	// per-100k and coverage figures are not available.
	FlagNoPopulation = "no_population"
)

// engine is the processor's pure core: events in, indicator records out. It
// has no clock and no I/O, which is what lets the crash test and the
// benchmark drive it with or without NATS.
type engine struct {
	cfg     Config
	regions *schemas.Regions
	r       rModel
	states  map[string]*regionState
	codes   []string // keys of states, sorted: deterministic output order

	// last is the last day with data in any region: every region's
	// indicators run up to it. published is what last was when indicators
	// were last published, so days added since are published too.
	last, published schemas.Date

	scratch scratch // computeRegion's buffers when computing on one goroutine
	// double is a test hook: events applied twice on purpose (the negative
	// control of the crash test).
	double func(eventID string) bool
}

func newEngine(cfg Config, regions *schemas.Regions, r rModel) *engine {
	return &engine{cfg: cfg, regions: regions, r: r, states: make(map[string]*regionState)}
}

func (g *engine) region(code string) *regionState {
	r, ok := g.states[code]
	if !ok {
		r = newRegionState(code)
		g.addRegion(r)
	}
	return r
}

func (g *engine) addRegion(r *regionState) {
	g.states[r.code] = r
	i := sort.SearchStrings(g.codes, r.code)
	g.codes = append(g.codes, "")
	copy(g.codes[i+1:], g.codes[i:])
	g.codes[i] = r.code
}

// applyMsg decodes and applies one event stored at stream sequence seq and
// time ts. applied is false for an event_id seen before. A non-nil error is
// permanent (errPermanent): the event can never be applied.
func (g *engine) applyMsg(data []byte, seq uint64, ts time.Time) (e *schemas.Event, applied bool, err error) {
	e, err = decodeEvent(data, ts)
	if err != nil {
		return nil, false, err
	}
	r := g.region(e.Region)
	nanos := ts.UnixNano()
	applied = r.apply(e, seq, nanos, g.cfg.ContactFollowUpDays)
	if !applied && g.double != nil && g.double(e.EventID) {
		r.changeEvent(e, seq, nanos, g.cfg.ContactFollowUpDays) // deliberately wrong
		applied = true
	}
	if l := r.last(); l > g.last {
		g.last = l
	}
	return e, applied, nil
}

// dirty reports whether anything waits to be published.
func (g *engine) dirty() bool {
	if g.last > g.published {
		return true
	}
	for _, r := range g.states {
		if r.dirtyFrom != 0 {
			return true
		}
	}
	return false
}

// pending computes the indicator records of every (region, day) changed since
// the last markPublished, in region then date order. Calling it again without
// markPublished returns the same records (a failed publish is retried).
func (g *engine) pending(out []schemas.Indicator) []schemas.Indicator {
	var jobs []regionJob
	days := 0
	for _, code := range g.codes {
		r := g.states[code]
		if len(r.days) == 0 {
			continue
		}
		from := r.dirtyFrom
		if g.last > g.published && (from == 0 || g.published+1 < from) {
			from = g.published + 1
		}
		if from == 0 || from > g.last {
			continue
		}
		from = max(from, r.base)
		jobs = append(jobs, regionJob{r: r, from: from})
		days += int(g.last-from) + 1
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	if workers < 2 || days < parallelDays {
		for _, j := range jobs {
			out = g.computeRegion(&g.scratch, j.r, j.from, g.last, out)
		}
		return out
	}
	return g.computeParallel(jobs, workers, out)
}

// parallelDays is the number of (region, day) records from which pending
// spreads regions over the cores: a restart's catch-up, a replay, a
// configuration change. A live batch touches a few days of a few regions,
// where starting goroutines would cost more than it saves.
const parallelDays = 512

// regionJob is one region's records to compute, from its day from to the
// engine's last day.
type regionJob struct {
	r    *regionState
	from schemas.Date
}

// computeParallel is pending's loop on workers goroutines. Regions are
// independent and read-only here; each job writes its own slice, joined in
// job (region) order, so the output is the same as the sequential loop's.
func (g *engine) computeParallel(jobs []regionJob, workers int, out []schemas.Indicator) []schemas.Indicator {
	parts := make([][]schemas.Indicator, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc scratch
			for i := range next {
				j := jobs[i]
				buf := make([]schemas.Indicator, 0, int(g.last-j.from)+1)
				parts[i] = g.computeRegion(&sc, j.r, j.from, g.last, buf)
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	n := len(out)
	for _, p := range parts {
		n += len(p)
	}
	out = slices.Grow(out, n-len(out))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// scratch holds computeRegion's series buffers, one per goroutine.
type scratch struct {
	local, imported, total []float64
	ests                   []epi.Estimate
}

// markPublished records that everything pending was published.
func (g *engine) markPublished() {
	for _, r := range g.states {
		r.dirtyFrom = 0
	}
	g.published = g.last
}

// floats hands out the *float64 of a run of records from shared backing
// arrays: a record has up to 17 optional numbers, and one allocation each
// was a good part of a large recompute's cost (and of the GC's).
type floats struct {
	buf   []float64
	chunk int
}

// newFloats sizes the arrays for about records records.
func newFloats(records int) floats {
	return floats{chunk: min(max(records, 1)*17, 4096)}
}

func (f *floats) p(v float64) *float64 {
	if len(f.buf) == cap(f.buf) {
		// A fresh array, never a grown copy: the pointers already handed
		// out keep the old one alive and correct.
		f.buf = make([]float64, 0, f.chunk)
	}
	f.buf = append(f.buf, v)
	return &f.buf[len(f.buf)-1]
}

func (f *floats) ratioPct(num, den int64) *float64 {
	if den <= 0 {
		return nil
	}
	return f.p(100 * float64(num) / float64(den))
}

func (f *floats) per100k(n int64, pop int) *float64 {
	if pop <= 0 {
		return nil
	}
	return f.p(float64(n) * 1e5 / float64(pop))
}

// computeRegion appends the records of days from..to of one region. Each
// record depends only on the region's rows up to its date, and its Version
// is the highest stream sequence among them, so a record's content is a
// function of its Version: a replay republishes identical bytes.
func (g *engine) computeRegion(sc *scratch, r *regionState, from, to schemas.Date, out []schemas.Indicator) []schemas.Indicator {
	pop := 0
	if reg, ok := g.regions.Get(r.code); ok {
		pop = reg.Population
	}
	n := int(to-r.base) + 1
	local, imported, total := resize(sc.local, n), resize(sc.imported, n), resize(sc.total, n)
	sc.local, sc.imported, sc.total = local, imported, total
	onset := g.cfg.RDate == RByOnset
	for i := 0; i < n; i++ {
		row := r.at(r.base + schemas.Date(i))
		if onset {
			local[i], imported[i] = float64(row.onsetLocal), float64(row.onsetImported)
		} else {
			local[i], imported[i] = float64(row.casesLocal), float64(row.casesImported)
		}
		total[i] = local[i] + imported[i]
	}
	// R for every day of from..to in one pass: ests[i] is the window ending
	// on day from+i.
	first := int(from - r.base)
	sc.ests = g.r.estimates(sc.ests[:0], local, imported, first, n-1)
	ests := sc.ests
	fs := newFloats(int(to-from) + 1)
	bedCfg := g.cfg.bedConfig()
	method := g.r.method()

	var vax [3]int64
	var version uint64
	var versionTS int64
	for d := r.base; d <= to; d++ {
		row := r.at(d)
		for k := range vax {
			vax[k] += int64(row.vaxFirst[k])
		}
		if row.seq > version {
			version, versionTS = row.seq, row.ts
		}
		if d < from {
			continue
		}
		in := schemas.Indicator{
			Region:        r.code,
			Date:          d,
			Version:       version,
			Cases:         int(row.casesLocal + row.casesImported),
			CasesLocal:    int(row.casesLocal),
			CasesImported: int(row.casesImported),
			CasesByOnset:  int(row.onsetLocal + row.onsetImported),
			RMethod:       method,
			ComputedAt:    time.Unix(0, versionTS).UTC(),
		}
		// 7-day windows end on d (the day itself and the 6 before).
		var cases7, tests7, pos7, contacts7, became7 int64
		for w := d - 6; w <= d; w++ {
			x := r.at(w)
			cases7 += int64(x.casesLocal + x.casesImported)
			tests7 += int64(x.tests)
			pos7 += int64(x.testsPositive)
			contacts7 += int64(x.contacts)
			became7 += int64(x.contactsBecame)
		}
		in.Cases7d = int(cases7)
		in.Tests7d, in.TestsPositive7d = int(tests7), int(pos7)
		in.Contacts7d = int(contacts7)
		// Rates are "not available" (nil) before the region's first event of
		// their type: no data is not the same as zero.
		has := func(t int) bool { return r.first[t] != 0 && r.first[t] <= d }
		if has(tCase) {
			in.Cases7dPer100k = fs.per100k(cases7, pop)
		}
		if has(tLabTest) {
			in.Tests7dPer100k = fs.per100k(tests7, pop)
		}
		in.Positivity7dPct = fs.ratioPct(pos7, tests7)
		if cases7 > 0 {
			in.ContactsPerCase = fs.p(float64(contacts7) / float64(cases7))
		}
		in.ContactsBecameCasesPct = fs.ratioPct(became7, contacts7)

		i := int(d - r.base)
		if e := ests[i-first]; e.OK {
			in.RMean, in.RSD, in.RQ025, in.RMedian, in.RQ975 = fs.p(e.Mean), fs.p(e.SD), fs.p(e.Quantiles[0]), fs.p(e.Median()), fs.p(e.Quantiles[6])
		}
		if v, ok := g.r.ratio(total[:i+1]); ok {
			in.RRatio = fs.p(v)
		}

		occ := r.beds.AsOf(d, bedCfg)
		in.BedsTotal, in.BedsOccupied = occ.Infectious.Total, occ.Infectious.Occupied
		in.ICUTotal, in.ICUOccupied = occ.ICU.Total, occ.ICU.Occupied
		in.ProvTotal, in.ProvOccupied = occ.Provisional.Total, occ.Provisional.Occupied
		if v, ok := occ.Infectious.Pct(); ok {
			in.BedOccupancyPct = fs.p(v)
		}
		if v, ok := occ.ICU.Pct(); ok {
			in.ICUOccupancyPct = fs.p(v)
		}
		if v, ok := occ.Provisional.Pct(); ok {
			in.ProvOccupancyPct = fs.p(v)
		}
		in.StaleFacilities = occ.StaleFacilities()

		in.VaccinatedDose1, in.VaccinatedDose2, in.VaccinatedDose3Plus = int(vax[0]), int(vax[1]), int(vax[2])
		if has(tVaccination) && pop > 0 {
			in.VaccinationDose1Pct = fs.ratioPct(vax[0], int64(pop))
			in.VaccinationDose2Pct = fs.ratioPct(vax[1], int64(pop))
			in.VaccinationDose3PlusPct = fs.ratioPct(vax[2], int64(pop))
		}

		if in.StaleFacilities > 0 {
			in.Flags = append(in.Flags, FlagBedsStale)
		}
		if pop <= 0 {
			in.Flags = append(in.Flags, FlagNoPopulation)
		}
		out = append(out, in)
	}
	return out
}

func resize(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n, n+n/2)
	}
	return b[:n]
}
