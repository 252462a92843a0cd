package epi

import (
	"fmt"
	"math"
)

// Window is an estimation window: 1-based days, both ends included, as
// EpiEstim's t_start and t_end.
type Window struct{ Start, End int }

// Days is the window's length in days.
func (w Window) Days() int { return w.End - w.Start + 1 }

// SlidingWindows returns EpiEstim's default windows for a series of T days:
// t_start = 2..T-days+1, t_end = t_start+days-1. Day 1 is never in a window
// because nothing before it can explain its cases. It returns nil when the
// series is too short for one window.
func SlidingWindows(T, days int) []Window {
	if days < 1 || T < days+1 {
		return nil
	}
	ws := make([]Window, 0, T-days)
	for s := 2; s+days-1 <= T; s++ {
		ws = append(ws, Window{Start: s, End: s + days - 1})
	}
	return ws
}

// Prior is the gamma prior on R, given by its mean and sd.
type Prior struct{ Mean, SD float64 }

// DefaultPrior is EpiEstim's prior, mean 5 and sd 5 (Cori et al. 2013):
// deliberately wide, so the data dominate once a window holds a few cases.
func DefaultPrior() Prior { return Prior{Mean: 5, SD: 5} }

// Validate reports a prior that is not a proper gamma.
func (p Prior) Validate() error {
	if !(p.Mean > 0) || !(p.SD > 0) || math.IsInf(p.Mean, 0) || math.IsInf(p.SD, 0) {
		return fmt.Errorf("prior mean and sd must be positive numbers, got mean %v sd %v (EpiEstim's defaults are 5 and 5)", p.Mean, p.SD)
	}
	return nil
}

// shapeScale is EpiEstim's a_prior = (μ/σ)², b_prior = σ²/μ.
func (p Prior) shapeScale() (a, b float64) {
	r := p.Mean / p.SD
	return r * r, (p.SD * p.SD) / p.Mean
}

// QuantileLevels are the probabilities of Estimate.Quantiles, EpiEstim's
// columns Quantile.0.025(R) … Quantile.0.975(R) with the median in the
// middle.
func QuantileLevels() [7]float64 {
	return [7]float64{0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975}
}

// Estimate is the posterior of R over one window.
type Estimate struct {
	Window
	// Mean and SD of the gamma posterior.
	Mean, SD float64
	// Quantiles at QuantileLevels: 0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975.
	Quantiles [7]float64
	// OK is false where EpiEstim gives NA; the numbers are then 0.
	OK bool
}

// Median is the posterior median.
func (e Estimate) Median() float64 { return e.Quantiles[3] }

// Lambda returns the total infectiousness Λ_t = Σ_{k≥1} si[k]·I[t-k] for each
// day (EpiEstim's overall_infectivity): NaN on day 1, whose past is unknown
// (EpiEstim's NA). incidence is the total of local and imported cases; si is
// taken as 0 beyond its end.
func Lambda(incidence []float64, si []float64) []float64 {
	out := make([]float64, len(incidence))
	if len(out) == 0 {
		return out
	}
	out[0] = math.NaN()
	si = trimSI(si)
	for t := 1; t < len(incidence); t++ {
		out[t] = lambdaAt(incidence, nil, si, t)
	}
	return out
}

// lambdaAt is Λ at 0-based day t from local+imported (imported may be nil),
// summed over increasing lags as R does.
func lambdaAt(local, imported, si []float64, t int) float64 {
	K := min(len(si)-1, t)
	s := 0.0
	if imported == nil {
		for k := 1; k <= K; k++ {
			s += float64(si[k] * local[t-k])
		}
		return s
	}
	for k := 1; k <= K; k++ {
		s += float64(si[k] * (local[t-k] + imported[t-k]))
	}
	return s
}

// Cori is the Cori et al. (2013) estimator with its serial interval and
// prior prepared once; use it when estimating many windows, as the live
// processor does. It is immutable and safe for concurrent use.
type Cori struct {
	si     []float64 // trailing zeros trimmed
	siMean float64   // EpiEstim's final_mean_si
	a0, b0 float64   // prior shape and scale
	levels levelMask // the quantiles computed (see WithLevels)
	interp bool      // quantiles of large shapes interpolated (see WithInterpolatedQuantiles)
}

// NewCori prepares the estimator. si must start with 0 and be non-negative;
// it need not sum to 1 (EpiEstim's parametric SI, truncated to a short
// series, does not), but a given SI should pass ValidateSI first. The SI's
// mean decides which windows are estimated, so pass the vector EpiEstim
// would use: DiscreteSI(mean, sd, T) for a series of T days, or
// DiscreteSISupport for one vector that fits every long series.
func NewCori(si []float64, prior Prior) (*Cori, error) {
	if err := checkSIShape(si); err != nil {
		return nil, err
	}
	if err := prior.Validate(); err != nil {
		return nil, err
	}
	c := &Cori{si: trimSI(si), siMean: SIMean(si), levels: allLevels}
	c.a0, c.b0 = prior.shapeScale()
	return c, nil
}

// WithLevels returns a copy of c that computes only the posterior quantiles
// at the given probabilities, each one of QuantileLevels; the other entries
// of Estimate.Quantiles are NaN. Each quantile is a root-finding on the
// incomplete gamma function and costs far more than the rest of a window's
// estimate, so a consumer that publishes only the median and the 95 %
// credible interval (the live processor) asks for those three and estimates
// more than twice as fast. The computed ones are bit for bit the same.
func (c *Cori) WithLevels(ps ...float64) (*Cori, error) {
	var m levelMask
	all := QuantileLevels()
next:
	for _, p := range ps {
		for i, l := range all {
			if p == l {
				m |= 1 << i
				continue next
			}
		}
		return nil, fmt.Errorf("quantile level %v: EpiEstim's levels are %v", p, all)
	}
	cp := *c
	cp.levels = m
	return &cp, nil
}

// WithInterpolatedQuantiles returns a copy of c that takes the posterior
// quantiles of windows with 50 to 100,000 cases (gamma shapes in that range)
// from a Chebyshev interpolant of the root finder's quantiles, built once
// when the package loads: far cheaper than a root per quantile (README,
// "Performance"), and within 1e-13 relative of the root finder
// (TestChebQuantiles; EpiEstim's reference asks for 1e-9). For bulk
// recomputation — the live processor, a
// replay. Without it (EstimateR, `epiwatch rt`) every quantile is a root of
// gonum's incomplete gamma, the closest to R's qgamma.
func (c *Cori) WithInterpolatedQuantiles() *Cori {
	cp := *c
	cp.interp = true
	return &cp
}

// SIMean is the mean of the serial interval: windows ending on or before it
// are not estimated.
func (c *Cori) SIMean() float64 { return c.siMean }

// EstimateR estimates R in each window exactly as EpiEstim 2.2.4's
// estimate_R does (method parametric_si or non_parametric_si; the method only
// changes where si comes from). local are the locally infected cases per day,
// imported the imported ones (nil: none); both count in the total
// infectiousness Λ, only local cases in the numerator. Day 1's cases count
// as imported (EpiEstim moves them); since no window includes day 1 and Λ
// uses totals, that changes nothing here. A window ending on or before the
// SI mean is not estimated (OK false), EpiEstim's only NA rule. Negative or
// infinite counts are an error, NaN counts 0 (EpiEstim's NA).
func EstimateR(local, imported []float64, si []float64, windows []Window, prior Prior) ([]Estimate, error) {
	c, err := NewCori(si, prior)
	if err != nil {
		return nil, err
	}
	return c.Windows(local, imported, windows)
}

// Windows is EstimateR with the prepared serial interval and prior.
func (c *Cori) Windows(local, imported []float64, windows []Window) ([]Estimate, error) {
	local, imported, err := cleanCounts(local, imported)
	if err != nil {
		return nil, err
	}
	T := len(local)
	for i, w := range windows {
		if w.Start < 2 || w.Start > w.End || w.End > T {
			return nil, fmt.Errorf("window %d [%d, %d]: need 2 ≤ t_start ≤ t_end ≤ %d (the series length)", i+1, w.Start, w.End, T)
		}
	}
	// Λ once for every day any window covers, then each window sums its
	// share: O(T·K + Σ window lengths).
	lambda := make([]float64, T)
	need := make([]bool, T)
	for _, w := range windows {
		for t := w.Start - 1; t < w.End; t++ {
			need[t] = true
		}
	}
	for t, ok := range need {
		if ok {
			lambda[t] = lambdaAt(local, imported, c.si, t)
		}
	}
	out := make([]Estimate, len(windows))
	for i, w := range windows {
		out[i] = c.posterior(w, local[w.Start-1:w.End], lambda[w.Start-1:w.End])
	}
	return out, nil
}

// cleanCounts checks the counts and returns them with NaN replaced by 0,
// copying only when there is a NaN.
func cleanCounts(local, imported []float64) ([]float64, []float64, error) {
	if imported != nil && len(imported) != len(local) {
		return nil, nil, fmt.Errorf("local has %d days but imported has %d; give both for every day", len(local), len(imported))
	}
	clean := func(name string, x []float64) ([]float64, error) {
		copied := false
		for i, v := range x {
			switch {
			case math.IsNaN(v):
				if !copied {
					x, copied = append([]float64(nil), x...), true
				}
				x[i] = 0
			case v < 0 || math.IsInf(v, 0):
				return nil, fmt.Errorf("%s cases on day %d = %v; counts must be non-negative numbers", name, i+1, v)
			}
		}
		return x, nil
	}
	var err error
	if local, err = clean("local", local); err != nil {
		return nil, nil, err
	}
	if imported, err = clean("imported", imported); err != nil {
		return nil, nil, err
	}
	return local, imported, nil
}

// posterior is the gamma posterior for one window from its local cases and Λ.
func (c *Cori) posterior(w Window, local, lambda []float64) Estimate {
	e := Estimate{Window: w}
	if !(float64(w.End) > c.siMean) {
		return e
	}
	var sumI, sumL float64
	for i := range local {
		sumI += local[i]
		sumL += lambda[i]
	}
	return c.fill(e, sumI, sumL)
}

// fill completes e from the window's sums of local cases and of Λ, in
// EpiEstim's order: shape a_prior + sum(local), scale 1/(1/b_prior +
// sum(lambda)).
func (c *Cori) fill(e Estimate, sumI, sumL float64) Estimate {
	a := c.a0 + sumI
	b := 1 / (1/c.b0 + sumL)
	e.Mean = a * b
	e.SD = math.Sqrt(a) * b
	if c.interp && largeShapes.covers(a) {
		largeShapes.quantiles(&e.Quantiles, a, b, c.levels)
	} else {
		gammaQuantiles(&e.Quantiles, a, b, c.levels)
	}
	e.OK = true
	return e
}

// EstimateWindow estimates R over the days-day window ending at 0-based
// index end of the series (1-based days end-days+2 … end+1), as EstimateR
// would for that window. OK is false when EpiEstim would not estimate the
// window, and also for arguments out of range (the window must not include
// day 1). si is not validated here (see NewCori); prepare a Cori to
// estimate many windows.
func EstimateWindow(local, imported, si []float64, end, days int, prior Prior) Estimate {
	c := Cori{si: trimSI(si), siMean: SIMean(si), levels: allLevels}
	c.a0, c.b0 = prior.shapeScale()
	return c.Window(local, imported, end, days)
}

// Window is EstimateWindow with the prepared serial interval and prior. It
// costs O(days·len(si)) plus the quantiles and allocates nothing, so a
// processor can call it for every day an event touches. Counts are assumed
// non-negative (EstimateR checks them); NaN counts 0, as EpiEstim's NA.
func (c *Cori) Window(local, imported []float64, end, days int) Estimate {
	var e [1]Estimate
	return c.Range(e[:0], local, imported, end, end, days)[0]
}

// Affected returns the 0-based end indices [from, to] of the days-day
// windows whose estimate can change when the counts of 0-based day change in
// a series of T days: the windows holding the day itself, and those holding
// a day whose Λ uses it (up to the SI's last non-zero lag after it). to <
// from when none can.
func (c *Cori) Affected(day, T, days int) (from, to int) {
	from = max(day, days) // a window must not include day 1 (index 0)
	to = min(T-1, day+len(c.si)-1+days-1)
	return from, to
}

// Range appends to dst the estimates of the days-day windows ending at
// 0-based indices from..to, computing each day's Λ once: after a late event
// (see Affected) it costs O((to-from+days)·len(si)) plus the quantiles. The
// results equal Window's and EstimateR's bit for bit (same sums in the same
// order).
func (c *Cori) Range(dst []Estimate, local, imported []float64, from, to, days int) []Estimate {
	na := func(end int) { dst = append(dst, Estimate{Window: Window{Start: end - days + 2, End: end + 1}}) }
	if days < 1 || to >= len(local) || (imported != nil && len(imported) != len(local)) {
		for end := from; end <= to; end++ {
			na(end)
		}
		return dst
	}
	for ; from <= to && from < days; from++ {
		na(from) // the window would include day 1
	}
	if to < from {
		return dst
	}
	first := from - days + 1 // 0-based first day of the first window, ≥ 1
	var buf [64]float64
	lam := buf[:0]
	if n := to - first + 1; n > len(buf) {
		lam = make([]float64, 0, n)
	}
	count := func(x float64) bool { return x >= 0 && x <= math.MaxFloat64 }
	for t := first; t <= to; t++ {
		l := lambdaAt(local, imported, c.si, t)
		if !count(l) || !count(local[t]) || (imported != nil && !count(imported[t])) {
			return c.slowRange(dst, local, imported, from, to, days)
		}
		lam = append(lam, l)
	}
	for end := from; end <= to; end++ {
		w := Window{Start: end - days + 2, End: end + 1}
		dst = append(dst, c.posterior(w, local[w.Start-1:w.End], lam[w.Start-1-first:w.End-first]))
	}
	return dst
}

// slowRange is Range by way of Windows, for series holding NaN (counted as
// 0) or negative counts (not estimated); live series hold neither.
func (c *Cori) slowRange(dst []Estimate, local, imported []float64, from, to, days int) []Estimate {
	ws := make([]Window, 0, to-from+1)
	for end := from; end <= to; end++ {
		ws = append(ws, Window{Start: end - days + 2, End: end + 1})
	}
	es, err := c.Windows(local[:to+1], sliceOrNil(imported, to+1), ws)
	if err != nil {
		for _, w := range ws {
			dst = append(dst, Estimate{Window: w})
		}
		return dst
	}
	return append(dst, es...)
}

func sliceOrNil(x []float64, n int) []float64 {
	if x == nil {
		return nil
	}
	return x[:n]
}

// Ratio is the officials' ratio R: the cases of the days days ending at
// 0-based index end, divided by the cases of the days days before them. ok is
// false when the series is too short for both periods or the earlier period
// has no cases (the ratio is undefined, not infinite).
func Ratio(total []float64, end, days int) (float64, bool) {
	if days < 1 || end >= len(total) || end-2*days+1 < 0 {
		return 0, false
	}
	var recent, earlier float64
	for t := end - days + 1; t <= end; t++ {
		recent += total[t]
	}
	for t := end - 2*days + 1; t <= end-days; t++ {
		earlier += total[t]
	}
	if !(earlier > 0) || math.IsNaN(recent) {
		return 0, false
	}
	return recent / earlier, true
}
