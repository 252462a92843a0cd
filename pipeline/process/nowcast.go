package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// NowcastConfig turns on the live nowcast of the recent onset days
// (pipeline/science/nowcast): each region's records of the last Days onset days get
// the nowcast of their eventual case count and R on it (the nowcast_* and
// r_nowcast_* fields), beside the R of the reported counts, which stays
// EpiEstim's. It needs cases with onset dates.
type NowcastConfig struct {
	Enabled bool `json:"enabled" mapstructure:"enabled"`
	// Days are the recent onset days nowcast, up to the as-of day (the
	// region's case feed's last day); at most MaxDelay (older days are
	// complete).
	Days int `json:"days" mapstructure:"days"`
	// MaxDelay, DelayWindow, DelayHalfLife and Weekday: the delay model
	// (nowcast.Config); below 30 days, the longest delay the processor
	// tells apart.
	MaxDelay      int     `json:"max_delay" mapstructure:"max_delay"`
	DelayWindow   int     `json:"delay_window" mapstructure:"delay_window"`
	DelayHalfLife float64 `json:"delay_half_life" mapstructure:"delay_half_life"`
	Weekday       bool    `json:"weekday" mapstructure:"weekday"`
	// MinCases: a region with fewer cases (weighted by DelayHalfLife) with
	// an onset date in three delay windows is not nowcast: its own reports
	// cannot tell its delay. Each region is fitted alone, so that its
	// records depend on its own events only (epiwatch nowcast shrinks each
	// region toward all regions pooled, which would make every region's
	// records change with any region's events): the recent window's fit is
	// shrunk toward the region's own fit over three windows (longLook).
	// The default, 30, is the nowcast package's MinDelayCases. It was 100,
	// which left every region's first weeks of an outbreak without a
	// nowcast — the weeks its first strengthening is decided in. A thin
	// fit is not trusted blindly: its delay uncertainty widens the
	// intervals, and a nowcast R on few local cases is uncertain
	// (fillNowcast), so decisions wait for such days as before.
	MinCases int `json:"min_cases" mapstructure:"min_cases"`
	// Draws: completed series sampled per region (nowcast.Config.Draws).
	Draws int `json:"draws" mapstructure:"draws"`
}

// DefaultNowcastConfig returns the back-tested settings
// (nowcast.DefaultConfig), off: with it on, a record whose day leaves the
// nowcast days is republished at its earlier version, and a sink that
// crashes can land the republication before an older redelivered one, so
// an old day may keep a stale nowcast in indicators_latest
// (TestCrashSinkAndProcessor found it); it also slows the processor
// several-fold (BenchmarkEngine; README, "Performance"). Both are open in
// issue 22.
func DefaultNowcastConfig() NowcastConfig {
	d := nowcast.DefaultConfig()
	return NowcastConfig{
		Enabled:       false,
		Days:          d.MaxDelay,
		MaxDelay:      d.MaxDelay,
		DelayWindow:   d.DelayWindow,
		DelayHalfLife: d.DelayHalfLife,
		Weekday:       d.Weekday,
		MinCases:      d.MinDelayCases,
		Draws:         d.Draws,
	}
}

// model returns the nowcast configuration, checked.
func (c NowcastConfig) model() (nowcast.Config, error) {
	m := nowcast.DefaultConfig()
	m.MaxDelay, m.DelayWindow, m.DelayHalfLife, m.Weekday = c.MaxDelay, c.DelayWindow, c.DelayHalfLife, c.Weekday
	m.MinDelayCases, m.Draws = c.MinCases, c.Draws
	m.DelayDraws = min(m.DelayDraws, max(c.Draws, 1))
	var errs []error
	if c.MaxDelay >= maxDelay {
		errs = append(errs, fmt.Errorf("process.nowcast.max_delay: must be below %d days, got %d", maxDelay, c.MaxDelay))
	}
	if c.Days < 1 || c.Days > c.MaxDelay {
		errs = append(errs, fmt.Errorf("process.nowcast.days: must be 1..max_delay (%d), got %d", c.MaxDelay, c.Days))
	}
	if err := m.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("process.nowcast: %w", err))
	}
	return m, errors.Join(errs...)
}

// longLook is how many delay windows the prior's fit looks back.
const longLook = 3

// ncModel is the engine's nowcaster: nil when nowcasting is off.
type ncModel struct {
	nc *nowcast.Nowcaster
	// long fits the region's delay over longLook times the delay window:
	// the prior the recent window's fit is shrunk toward (in place of
	// the command's pool of every region, see NowcastConfig.MinCases).
	long *nowcast.Nowcaster
	rcfg nowcast.RConfig
	days int
	// span is how many onset days up to the as-of day a region's nowcast
	// reads: the nowcast days, R's window before the first of them and the
	// serial interval's support before that, so R on the complete days
	// equals the indicators' (Λ sees every lag it weighs).
	span int
}

func newNcModel(cfg Config) (*ncModel, error) {
	if !cfg.Nowcast.Enabled {
		return nil, nil
	}
	m, err := cfg.Nowcast.model()
	if err != nil {
		return nil, err
	}
	nc, err := nowcast.New(m)
	if err != nil {
		return nil, err
	}
	lm := m
	lm.DelayWindow, lm.DelayHalfLife = longLook*m.DelayWindow, longLook*m.DelayHalfLife
	long, err := nowcast.New(lm)
	if err != nil {
		return nil, err
	}
	si, ok := cfg.SerialInterval()
	if !ok {
		return nil, fmt.Errorf("process.pathogen: no serial interval for %q", cfg.Pathogen)
	}
	w, err := epi.DiscreteSISupport(si.Mean, si.SD)
	if err != nil {
		return nil, err
	}
	return &ncModel{
		nc:   nc,
		long: long,
		rcfg: nowcast.RConfig{SI: w, Prior: epi.Prior{Mean: cfg.PriorMean, SD: cfg.PriorSD}, Window: cfg.RWindowDays},
		days: cfg.Nowcast.Days,
		span: max(cfg.Nowcast.Days+cfg.RWindowDays+len(w), longLook*m.DelayWindow),
	}, nil
}

// nowcastAsOf is the day region r is nowcast as of: the last day its case
// feed reported through, never a later one (days the feed has not reached
// are missing, not reports of zero), and never after the newest data day.
// 0: not nowcast (off, or no case with an onset date).
func (g *engine) nowcastAsOf(r *regionState) schemas.Date {
	if g.nc == nil || len(r.tri) == 0 {
		return 0
	}
	return min(r.feedThrough(tCase), g.last)
}

// nowcastFrom is the first day of region r whose record carries a
// nowcast (0: none). Every record from it on depends on the whole
// reporting triangle, so any change to the region republishes them all.
func (g *engine) nowcastFrom(r *regionState) schemas.Date {
	asOf := g.nowcastAsOf(r)
	if asOf == 0 {
		return 0
	}
	return max(asOf.AddDays(-g.nc.days+1), r.base)
}

// nowcastCases are region r's cases with an onset date of the span up to
// asOf, one entry per cell of its reporting triangle.
func (g *engine) nowcastCases(r *regionState, asOf schemas.Date, out []nowcast.Case) []nowcast.Case {
	for o := asOf.AddDays(-g.nc.span + 1); o <= asOf; o++ {
		t := r.tri[o]
		if t == nil {
			continue
		}
		for k, imported := range []bool{false, true} {
			for lag, n := range t[k] {
				if n > 0 {
					out = append(out, nowcast.Case{Onset: o, Report: o.AddDays(lag), Imported: imported, N: int(n)})
				}
			}
		}
	}
	return out
}

// regionNowcast is a region's nowcast as the records carry it.
//
// A record's Version stays the highest sequence among the rows up to its
// day: the nowcast depends on later rows too, so a record republished as of
// a later day, or without its nowcast once the day leaves the nowcast
// days, may carry the same version with other numbers. The later
// publication wins (ClickHouse's ReplacingMergeTree keeps the last insert
// of equal versions, the decider the last record), as for the provisional
// flag; epiwatch.nowcast keeps each as-of day's numbers apart.
type regionNowcast struct {
	asOf  schemas.Date
	first schemas.Date // the first nowcast day
	days  []nowcast.Day
	r     []nowcast.REstimate
}

// triangleSeed is the nowcast's random seed: a digest of the as-of day and
// the reporting triangle, so that the same cases give the same draws
// however they arrived (a replay, or a run with a retracted case left out,
// publishes the same numbers), and a changed triangle gives fresh ones.
func triangleSeed(asOf schemas.Date, cases []nowcast.Case) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	put(uint64(asOf))
	for _, c := range cases {
		put(uint64(c.Onset)<<32 | uint64(uint32(c.Report)))
		imp := uint64(0)
		if c.Imported {
			imp = 1
		}
		put(uint64(c.N)<<1 | imp)
	}
	return h.Sum64()
}

// nowcastRegion nowcasts region r as of its nowcastAsOf; nil when it is
// not nowcast (off, no case with an onset date, or too few of them to tell
// the region's delay: its records then carry no nowcast, and decisions
// wait for complete days). Its random stream is seeded by the day and the
// version, so the same events give the same records (a replay republishes
// identical bytes).
func (g *engine) nowcastRegion(sc *scratch, r *regionState) *regionNowcast {
	asOf := g.nowcastAsOf(r)
	if asOf == 0 {
		return nil
	}
	out := &regionNowcast{asOf: asOf}
	sc.cases = g.nowcastCases(r, asOf, sc.cases[:0])
	prior, err := g.nc.long.FitDelay(sc.cases, asOf, nil)
	if err != nil {
		return nil
	}
	reg, err := g.nc.nc.Region(r.code, sc.cases, asOf, g.nc.days, prior, g.nc.rcfg, triangleSeed(asOf, sc.cases))
	if err != nil {
		// Too few cases (nowcast.TooFewCasesError) is the only error
		// cases the triangle built can give: no nowcast, as with none.
		return nil
	}
	out.days, out.r = reg.Result.Days, reg.R
	if len(out.days) > 0 {
		out.first = out.days[0].Date
	}
	return out
}

// uncertainNowcastR are the nowcast R metrics withheld from decisions when
// the nowcast R rests on too few cases.
var uncertainNowcastR = []string{"r_nowcast_mean", "r_nowcast_q025", "r_nowcast_median", "r_nowcast_q975", "r_nowcast_final_q025", "r_nowcast_final_q10", "r_nowcast_final_q90", "r_nowcast_final_q975"}

// fillNowcast sets record in's nowcast fields from nw. The nowcast R is
// held to the same bar as R (RMinCases local cases in the window, RMaxCV),
// with the window's local cases at their 2.5 % quantile over the
// completions: the final data's R must be expected to clear the bar too,
// or a decision on the nowcast R would be overturned by a final R too
// uncertain to decide on. (Counting the nowcast medians, imported cases
// included, let R on 10 local cases decide; TestDecisionModes found most
// of its contradicted nowcast decisions there.)
func (g *engine) fillNowcast(in *schemas.Indicator, nw *regionNowcast, fs *floats) {
	i := int(in.Date - nw.first)
	if i < 0 || i >= len(nw.days) {
		return
	}
	day, est := nw.days[i], nw.r[i]
	in.NowcastAsOf = nw.asOf
	in.CasesNowcastMedian, in.CasesNowcastQ025, in.CasesNowcastQ975 = fs.p(day.Median), fs.p(day.Q025), fs.p(day.Q975)
	in.NowcastCompleteness = fs.p(day.Completeness)
	if !est.OK {
		return
	}
	in.RNowcastMean, in.RNowcastQ025, in.RNowcastMedian, in.RNowcastQ975 = fs.p(est.Mean), fs.p(est.Q025), fs.p(est.Median), fs.p(est.Q975)
	in.RNowcastFinalQ025, in.RNowcastFinalQ10 = fs.p(est.FinalQ025), fs.p(est.FinalQ10)
	in.RNowcastFinalQ90, in.RNowcastFinalQ975 = fs.p(est.FinalQ90), fs.p(est.FinalQ975)
	// The mixture's sd, from its 95 % interval as if normal: the CV test
	// needs only its order of magnitude.
	sd := (est.Q975 - est.Q025) / (2 * 1.959964)
	if est.LocalQ025 < float64(g.cfg.RMinCases) || sd > g.cfg.RMaxCV*est.Mean || math.IsNaN(sd) {
		in.Uncertain = append(in.Uncertain, uncertainNowcastR...)
	}
}
