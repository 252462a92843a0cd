package process

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/beds"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// engine is the processor's pure core: events in, indicator records out. It
// has no clock and no I/O, which is what lets the crash test and the
// benchmark drive it with or without NATS.
//
// The state is a function of the set of distinct events applied, keyed by
// event_id: a duplicate (published again past JetStream's duplicate window) or
// a redelivery changes nothing. Every day row remembers the highest stream
// sequence among the events that changed it; a record's Version is the highest
// over the days it depends on (the region's days up to its date), and its
// ComputedAt is that event's JetStream timestamp. The content of a record is
// therefore a function of (region, date, Version): however the stream is cut
// into batches, and however often the processor crashes and replays, the same
// record is published with the same bytes and the same Nats-Msg-Id
// (Indicator.MsgID). Nothing reads the wall clock except metrics and the
// checkpoint schedule.
//
// A late event (a case reported today for ten days ago) or a corrected bed
// snapshot marks its day and every later day for recomputation: 7-day windows,
// R (whose infectiousness term reaches back through the whole serial
// interval), cumulative coverage and "latest snapshot as of" all depend on
// earlier days, never on later ones.
type engine struct {
	cfg     Config
	regions *schemas.Regions
	r       rModel
	nc      *ncModel // nil: no nowcast
	states  map[string]*regionState
	codes   []string // keys of states, sorted: deterministic output order

	// last is the last day with data in any region: every region's
	// indicators run up to it. published is what last was when indicators
	// were last published, so days added since are published too.
	last, published schemas.Date

	scratch scratch // computeRegion's buffers when computing on one goroutine
	dec     schemas.EventDecoder
	// done is the set of events-stream sequences the state holds (applied,
	// skipped as a copy, or dead-lettered by the processor): a message
	// delivered again changes nothing. Checkpointed with the state.
	done doneSeqs
	// lookup reads a corrected event back from the events stream (nil: no
	// stream; a correction then only marks its target retracted).
	lookup lookupFunc
	// floor is the lowest version of every record (an erasure's
	// versionFloor; zero before any). Checkpointed in the manifest.
	floor versionFloor
	// double is a test hook: events applied twice on purpose (the negative
	// control of the crash test).
	double func(eventID string) bool
}

// versionFloor is the version (an events-stream sequence) and time every
// record has at least once an erasure rebuilt the state: the stream's last
// sequence when the erased events were deleted, and the erasure's time.
type versionFloor struct {
	seq   uint64
	nanos int64
}

func newEngine(cfg Config, regions *schemas.Regions, r rModel) (*engine, error) {
	nc, err := newNcModel(cfg)
	if err != nil {
		return nil, err
	}
	return &engine{cfg: cfg, regions: regions, r: r, nc: nc, states: make(map[string]*regionState)}, nil
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
// time ts. applied is false for a sequence applied before (e is nil then:
// it is not decoded again) or an event_id applied within the dedup window.
// An errPermanent means the event can never be applied; any other error (the
// lookup of a corrected event failed) is worth retrying.
func (g *engine) applyMsg(data []byte, seq uint64, ts time.Time) (e *schemas.Event, applied bool, err error) {
	if seq != 0 && g.done.has(seq) {
		return nil, false, nil
	}
	e, err = decodeEvent(&g.dec, data, ts)
	if err != nil {
		return nil, false, err
	}
	applied, err = g.applyEvent(e, seq, ts.UnixNano())
	return e, applied, err
}

// applyEvent applies a decoded event: first what it corrects (a retraction,
// or the earlier event a new version supersedes), then the event itself.
// Sequence 0 means "not from the stream": only the event_id tells copies.
func (g *engine) applyEvent(e *schemas.Event, seq uint64, nanos int64) (bool, error) {
	if seq != 0 && g.done.has(seq) {
		return false, nil
	}
	r := g.region(e.Region)
	c := g.applyCfg()
	if !r.isRecent(eventKey(e.Source, e.EventID), nanos, c.dedup) {
		if target := e.Corrects(); target != "" {
			if err := g.correct(e, target, seq, nanos); err != nil {
				return false, err
			}
		}
	}
	applied := r.apply(e, seq, nanos, c)
	g.done.mark(seq)
	if g.double != nil && g.double(e.EventID) {
		r.changeEvent(e, seq, nanos, c) // deliberately wrong
		applied = true
	}
	if l := r.last(); l > g.last {
		g.last = l
	}
	return applied, nil
}

func (g *engine) applyCfg() applyCfg {
	return applyCfg{followUp: g.cfg.ContactFollowUpDays, episodeDays: g.cfg.EpisodeDays, dedup: g.cfg.DedupWindow}
}

// lookupFunc returns the event of source with the given event_id as the
// events stream stores it and its sequence, nil if the stream does not hold
// it. The processor reads the stream (the event's own subject); tests give
// a map.
type lookupFunc func(source, eventID string) (*schemas.Event, uint64, error)

// correct withdraws target, the event e retracts or supersedes, in the
// target's own region (a case re-filed under the right region corrects one
// in another): if it was applied its counts are undone, and either way it
// is marked retracted, so that it never counts if it is (re)delivered later.
// The target is an event of e's own source (ingest accepts no other).
// Idempotency key: the target's (source, event_id) in its region's
// retracted set; correcting it again changes nothing.
//
// Undoing needs the target's content, read back from the events stream
// (g.lookup) rather than kept for every event; whether it was applied is
// whether its sequence is done (with no stream to ask, whether its event_id
// is recent).
func (g *engine) correct(e *schemas.Event, target string, seq uint64, nanos int64) error {
	var t *schemas.Event
	var tseq uint64
	if g.lookup != nil {
		var err error
		if t, tseq, err = g.lookup(e.Source, target); err != nil {
			return fmt.Errorf("look up the event this one corrects: %w", err)
		}
	}
	tr := g.region(e.Region)
	if t != nil && t.Region != e.Region {
		tr = g.region(t.Region)
	}
	tk := eventKey(e.Source, target)
	if _, done := tr.retracted[tk]; done {
		return nil
	}
	var applied bool
	switch {
	case t != nil && tseq != 0:
		applied = g.done.has(tseq)
	case t == nil && tseq != 0:
		// Stored but undecodable: dead-lettered, never counted.
	case g.lookup != nil:
		// Ingest accepts a correction only of a stored event: the target
		// has left the stream since (retention). It was almost surely
		// counted, and what it counted is gone with it.
		return permanentf("this %s corrects an event of its source that is no longer in the events stream (retention): its counts cannot be taken back", e.Type)
	default: // no stream to ask (tests, a replay without lookup)
		_, applied = tr.recent[tk]
	}
	if applied {
		if t == nil {
			return permanentf("this %s corrects an event of its source that was counted but is no longer in the events stream: its counts cannot be taken back", e.Type)
		}
		tr.unapply(t, seq, nanos, g.applyCfg())
	}
	tr.retracted[tk] = struct{}{}
	return nil
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
	g.setHorizons()
	for _, code := range g.codes {
		r := g.states[code]
		if len(r.days) == 0 {
			continue
		}
		from := r.dirtyFrom
		if g.last > g.published && (from == 0 || g.published+1 < from) {
			from = g.published + 1
		}
		// Days that became complete, or provisional again (the delays grew),
		// since the last publication are published again.
		if nb := g.provFrom(r); r.provFrom != 0 && nb != r.provFrom {
			if b := min(nb, r.provFrom); from == 0 || b < from {
				from = b
			}
		}
		if from == 0 || from > g.last {
			continue
		}
		// The nowcast days depend on everything the region reported, and
		// the days that left them since the last publication are
		// published again without a nowcast.
		if nf := g.nowcastFrom(r); nf != 0 && nf < from {
			from = nf
		}
		if r.ncFrom != 0 && r.ncFrom < from {
			from = r.ncFrom
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
	dumps                  []string
	cases                  []nowcast.Case
}

func resizeStrings(b []string, n int) []string {
	if cap(b) < n {
		return make([]string, n, n+n/2)
	}
	return b[:n]
}

// backlogDump describes day x of r when it is a backlog dump (see
// Config.BacklogFactor), else "". It reads only rows up to x, so a
// record's flag follows from the rows its version covers.
func (g *engine) backlogDump(r *regionState, x schemas.Date) string {
	if g.cfg.BacklogFactor <= 0 || x < r.base {
		return ""
	}
	row := r.at(x)
	cases := int(row.casesLocal + row.casesImported)
	if cases < g.cfg.BacklogMinCases || cases == 0 || row.delayN == 0 {
		return ""
	}
	lag := float64(row.delaySum) / float64(row.delayN)
	if lag < g.cfg.BacklogDelayDays {
		return ""
	}
	var prev [14]int
	n := 0
	for y := max(x-14, r.base); y < x; y++ {
		p := r.at(y)
		prev[n] = int(p.casesLocal + p.casesImported)
		n++
	}
	if n < 7 {
		return "" // too little history to tell a dump from the start of an outbreak
	}
	slices.Sort(prev[:n])
	med := float64(prev[n/2])
	if n%2 == 0 {
		med = float64(prev[n/2-1]+prev[n/2]) / 2
	}
	if float64(cases) < g.cfg.BacklogFactor*math.Max(med, 1) {
		return ""
	}
	return fmt.Sprintf("%s reported %d cases, %.1f× the median of the %d days before (%g), %.1f days after onset on average (%d with an onset date)",
		x, cases, float64(cases)/math.Max(med, 1), n, med, lag, row.delayN)
}

// reportedBefore reports whether r has a case or test dated before day.
func reportedBefore(r *regionState, day schemas.Date) bool {
	for _, t := range []int{tCase, tLabTest} {
		if f := r.first[t]; f != 0 && f < day {
			return true
		}
	}
	return false
}

func correctionReason(cs []beds.Correction) string {
	if len(cs) == 0 {
		return "a bed snapshot was corrected down"
	}
	c := cs[0]
	s := fmt.Sprintf("bed snapshot of %s (%s) at %s corrected from %d to %d occupied", c.FacilityID, c.Kind, c.Time.Format(time.RFC3339), c.From, c.To)
	if len(cs) > 1 {
		s += fmt.Sprintf(", and %d more", len(cs)-1)
	}
	return s
}

// feedLags reports, for every region and every feed it has used, how many
// days the feed lags the newest data day of any region (0: reported
// through it). The stale-feed alert rule reads it.
func (g *engine) feedLags(fn func(region, feed string, days int)) {
	for _, code := range g.codes {
		r := g.states[code]
		for _, t := range schemas.FeedTypes {
			ti := typeIndex(t)
			if through := r.feedThrough(ti); through != 0 {
				fn(code, string(t), max(int(g.last-through), 0))
			}
		}
	}
}

// markPublished records that everything pending was published.
func (g *engine) markPublished() {
	for _, r := range g.states {
		r.dirtyFrom = 0
		r.provFrom = g.provFrom(r)
		r.ncFrom = g.nowcastFrom(r)
	}
	g.published = g.last
}

// restored sets what the last publication saw after a checkpoint was loaded
// (a checkpoint holds nothing unpublished).
func (g *engine) restored() {
	g.setHorizons()
	for _, r := range g.states {
		r.provFrom = g.provFrom(r)
		r.ncFrom = g.nowcastFrom(r)
	}
	g.published = g.last
}

// setHorizons sets each region's provisional horizon: the Completeness
// quantile of its reporting delays — test turnaround, and onset to report
// when R counts cases by onset — from its own events when it has
// DelayMinReports of them, else from every region's.
func (g *engine) setHorizons() {
	var all [2]delays
	for _, r := range g.states {
		all[0].add(&r.testDelay)
		all[1].add(&r.caseDelay)
	}
	for _, r := range g.states {
		r.horizon = 0
		if g.cfg.Completeness <= 0 {
			continue
		}
		for i, h := range []*delays{&r.testDelay, &r.caseDelay} {
			if i == 1 && g.cfg.RDate != RByOnset {
				continue // cases count on their report date: complete on arrival
			}
			if h.n() < g.cfg.DelayMinReports {
				h = &all[i]
			}
			r.horizon = max(r.horizon, h.quantile(g.cfg.Completeness))
		}
	}
}

// provFrom is region r's first provisional day: the days younger than its
// horizon, counted back from the newest day with data in any region.
func (g *engine) provFrom(r *regionState) schemas.Date {
	return g.last - schemas.Date(r.horizon) + 1
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
	// Backlog dumps of every day the records' 7-day windows reach.
	dumpFrom := from - 6
	sc.dumps = resizeStrings(sc.dumps, int(to-dumpFrom)+1)
	dumps := sc.dumps
	for i := range dumps {
		dumps[i] = g.backlogDump(r, dumpFrom+schemas.Date(i))
	}
	bedCfg := g.cfg.bedConfig()
	method := g.r.method()
	caseThrough, labThrough := r.feedThrough(tCase), r.feedThrough(tLabTest)

	var nw *regionNowcast
	if nf := g.nowcastFrom(r); nf != 0 && nf <= to {
		nw = g.nowcastRegion(sc, r)
	}

	// The loop below asks for the bed occupancy and the corrections of
	// every day it does not skip, in order: one cursor sweeps them instead
	// of looking each day up from the newest snapshot back (days² ×
	// facilities).
	bedDays := r.beds.Cursor(max(from, r.base), bedCfg)

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
		if version < g.floor.seq {
			// After an erasure the rebuilt counts must replace the ones
			// published with the erased events (the highest version wins
			// downstream), whose versions may exceed every remaining row's.
			version, versionTS = g.floor.seq, g.floor.nanos
		}
		if d < from {
			continue
		}
		in := schemas.Indicator{
			Region:        r.code,
			Date:          d,
			Version:       version,
			Cases:         int(row.casesLocal + row.casesImported),
			CasesRepeat:   int(row.casesRepeat),
			CasesLocal:    int(row.casesLocal),
			CasesImported: int(row.casesImported),
			CasesByOnset:  int(row.onsetLocal + row.onsetImported),
			Tests:         int(row.tests),
			TestsPositive: int(row.testsPositive),
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
		// A feed that has not reported through d leaves its days missing,
		// not zero: what is computed from them is not available (nil).
		caseStale := caseThrough != 0 && caseThrough < d
		labStale := labThrough != 0 && labThrough < d
		if caseStale {
			in.StaleFeeds = append(in.StaleFeeds, string(schemas.TypeCase))
		}
		if labStale {
			in.StaleFeeds = append(in.StaleFeeds, string(schemas.TypeLabTest))
		}
		// Rates are "not available" (nil) before the region's first event of
		// their type: no data is not the same as zero.
		has := func(t int) bool { return r.first[t] != 0 && r.first[t] <= d }
		if has(tCase) && !caseStale {
			in.Cases7dPer100k = fs.per100k(cases7, pop)
		}
		if has(tLabTest) && !labStale {
			in.Tests7dPer100k = fs.per100k(tests7, pop)
			in.Positivity7dPct = fs.ratioPct(pos7, tests7)
		}
		if cases7 > 0 {
			in.ContactsPerCase = fs.p(float64(contacts7) / float64(cases7))
		}
		in.ContactsBecameCasesPct = fs.ratioPct(became7, contacts7)

		i := int(d - r.base)
		for w := max(i-g.cfg.RWindowDays+1, 0); w <= i; w++ {
			in.RCases += int(local[w])
		}
		e := ests[i-first]
		switch {
		case caseStale:
			in.RStatus = schemas.RStatusStaleFeed
		case !e.OK:
			in.RStatus = schemas.RStatusNotEstimable
		default:
			in.RMean, in.RSD, in.RQ025, in.RMedian, in.RQ975 = fs.p(e.Mean), fs.p(e.SD), fs.p(e.Quantiles[0]), fs.p(e.Median()), fs.p(e.Quantiles[6])
			in.RStatus = schemas.RStatusOK
			if in.RCases < g.cfg.RMinCases || e.SD > g.cfg.RMaxCV*e.Mean {
				in.RStatus = schemas.RStatusFewCases
			}
			g.growth(&in, e, &fs)
		}
		if v, ok := g.r.ratio(total[:i+1]); ok && !caseStale {
			in.RRatio = fs.p(v)
		}
		if in.RStatus == schemas.RStatusFewCases {
			in.Uncertain = append(in.Uncertain, uncertainR...)
		}
		fewTests := in.Positivity7dPct != nil && tests7 < int64(g.cfg.PositivityMinTests)
		if fewTests {
			in.Uncertain = append(in.Uncertain, "positivity_7d_pct")
		}

		occ := bedDays.Next() // as of d: the cursor started at the first day not skipped
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
		in.ClosedFacilities = len(occ.Closed)
		in.PresumedClosedFacilities = occ.PresumedClosedFacilities()
		in.UnknownFacilities = len(occ.Unknown)

		in.VaccinatedDose1, in.VaccinatedDose2, in.VaccinatedDose3Plus = int(vax[0]), int(vax[1]), int(vax[2])
		if has(tVaccination) && pop > 0 {
			in.VaccinationDose1Pct = fs.ratioPct(vax[0], int64(pop))
			in.VaccinationDose2Pct = fs.ratioPct(vax[1], int64(pop))
			in.VaccinationDose3PlusPct = fs.ratioPct(vax[2], int64(pop))
		}

		if nw != nil && d >= nw.first && d <= nw.asOf {
			g.fillNowcast(&in, nw, &fs)
		}

		in.Provisional = int(to-d) < r.horizon
		// One reason per flag: a flag raised twice (two stale feeds, two
		// kinds of missing input) gets both reasons in one line.
		flag := func(name, format string, args ...any) {
			why := fmt.Sprintf(format, args...)
			if i := slices.Index(in.Flags, name); i >= 0 {
				in.FlagReasons[i] += "; " + why
				return
			}
			in.Flags = append(in.Flags, name)
			in.FlagReasons = append(in.FlagReasons, name+": "+why)
		}
		if caseStale {
			flag(schemas.FlagStaleFeed, "case feed reported through %s (no case and no report_complete since): R and incidence not computed from missing days", caseThrough)
		}
		if labStale {
			flag(schemas.FlagStaleFeed, "lab_test feed reported through %s (no result and no report_complete since): positivity not computed", labThrough)
		}
		if in.RStatus == schemas.RStatusFewCases {
			flag(schemas.FlagFewCases, "R %.2f from %d local cases in its %d-day window, CV %.2f (needs at least %d cases and CV at most %.2f): R unknown for decisions",
				e.Mean, in.RCases, g.cfg.RWindowDays, e.SD/e.Mean, g.cfg.RMinCases, g.cfg.RMaxCV)
		}
		if fewTests {
			flag(schemas.FlagFewTests, "positivity from %d tests in 7 days (fewer than %d): unknown for decisions", tests7, g.cfg.PositivityMinTests)
		}
		if in.StaleFacilities > 0 {
			flag(schemas.IndicatorFlagStaleBeds, "%d facility bed reports older than %s at the end of the day, left out of ПЗК", in.StaleFacilities, bedCfg.MaxAge)
		}
		if len(occ.PresumedClosed) > 0 {
			flag(schemas.FlagPresumedClosed, "%s silent for more than %s: presumed closed, left out of ПЗК and not counted as stale; confirm with a facility event",
				facilityList(occ.PresumedClosed), bedCfg.PresumedClosedAfter)
		}
		if len(occ.Unknown) > 0 {
			flag(schemas.FlagUnknownFacility, "bed reports from %s, not in the region's facility registry: counted, register them with a facility event", strings.Join(occ.Unknown, ", "))
		}
		if len(occ.OverCapacity) > 0 {
			flag(schemas.FlagOverCapacity, "%s reported more beds than registered capacity", strings.Join(occ.OverCapacity, ", "))
		}
		for w := d - 6; w <= d; w++ {
			if why := dumps[int(w-dumpFrom)]; why != "" {
				flag(schemas.FlagBacklogDump, "%s", why)
				break
			}
		}
		if row.bedCorrections > 0 {
			flag(schemas.FlagNegativeCorrection, "%s", correctionReason(bedDays.Corrections())) // of d, as r.beds.Corrections(d)
		}
		if since := d.AddDays(-6); cases7 == 0 && tests7 == 0 && reportedBefore(r, since) {
			flag(schemas.FlagMissingInput, "no case or test report dated %s to %s", since, d)
		}
		if b := r.first[tBedSnapshot]; b != 0 && b <= d && occ.Infectious.Facilities == 0 {
			flag(schemas.FlagMissingInput, "no fresh infectious-bed snapshot (%d facilities stale)", len(occ.Stale))
		}
		if pop <= 0 {
			flag(schemas.FlagNoPopulation, "region %s is not in the region reference", r.code)
		}
		out = append(out, in)
	}
	return out
}

// uncertainR are the R metrics withheld from decisions when R rests on too
// few cases.
var uncertainR = []string{"r_mean", "r_sd", "r_q025", "r_median", "r_q975", "r_ratio", "r_prob_above_1", "growth_rate", "doubling_days", "halving_days"}

// growth fills what R says in plain words: P(R > 1), the growth rate with
// the doubling or halving time, and the trend label (only for an R that can
// be relied on: a few-cases R leaves the label empty).
func (g *engine) growth(in *schemas.Indicator, e epi.Estimate, fs *floats) {
	p := e.ProbAbove(1)
	in.RProbAbove1 = fs.p(p)
	si, _ := g.cfg.SerialInterval() // checked by Config.Validate
	if r := epi.GrowthRate(e.Mean, si.Mean, si.SD); !math.IsNaN(r) {
		in.GrowthRate = fs.p(r)
		switch {
		case r > 0:
			in.DoublingDays = fs.p(epi.DoublingTime(r))
		case r < 0:
			in.HalvingDays = fs.p(-epi.DoublingTime(r))
		}
	}
	if in.RStatus == schemas.RStatusOK {
		in.Trend = string(epi.TrendOf(1 - p))
	}
}

// facilityList names the facilities of a list of (facility, kind) entries,
// each once.
func facilityList(units []beds.Stale) string {
	var names []string
	for _, u := range units {
		if !slices.Contains(names, u.FacilityID) {
			names = append(names, u.FacilityID)
		}
	}
	return strings.Join(names, ", ")
}

func resize(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n, n+n/2)
	}
	return b[:n]
}
