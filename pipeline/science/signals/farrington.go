package signals

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ThresholdMethod is how the Farrington family turns the GLM's prediction
// into an upper bound (farringtonFlexible's thresholdMethod).
type ThresholdMethod int

const (
	// Delta is Farrington et al. (1996): the 2/3-power transformed
	// prediction ± qnorm(1-α) standard errors by the delta method
	// (thresholdMethod "delta", powertrans "2/3").
	Delta ThresholdMethod = iota
	// NBPlugin is Noufaily et al. (2013): the (1-α) quantile of a negative
	// binomial with the predicted mean and the estimated dispersion
	// (thresholdMethod "nbPlugin"; a Poisson quantile when the dispersion
	// is 1).
	NBPlugin
)

func (m ThresholdMethod) String() string {
	switch m {
	case Delta:
		return "delta"
	case NBPlugin:
		return "nbPlugin"
	}
	return fmt.Sprintf("ThresholdMethod(%d)", int(m))
}

// PastWeeksW, as FarringtonConfig.PastWeeksNotIncluded, leaves out W
// periods, farringtonFlexible's default (its NULL).
const PastWeeksW = -1

// FarringtonConfig is the control list of surveillance::farringtonFlexible
// (surveillance 1.20.3). Populations (populationOffset) are not supported,
// and the power transformation is fixed at R's default "2/3".
type FarringtonConfig struct {
	// Freq is the number of periods per year: 52 for weekly data, 12 for
	// monthly, 365 for daily. The baseline is made of the periods around
	// t − Freq, t − 2·Freq, …
	Freq int
	// B is the number of past years in the baseline (R's b, default 5),
	// W the half-width of the window around each (R's w, default 3).
	B, W int
	// Alpha is the one-sided level of the bound (default 0.05).
	Alpha float64
	// Reweight refits with the weights of Farrington et al. (1996):
	// baseline periods whose Anscombe residual exceeds WeightsThreshold
	// (default 2.58) are down-weighted, as past outbreaks should be.
	Reweight         bool
	WeightsThreshold float64
	// Trend fits a linear time trend, kept only when its p-value is below
	// PThresholdTrend (default 0.05), B ≥ 3, and the prediction does not
	// exceed the baseline's largest count.
	Trend           bool
	PThresholdTrend float64
	// Limit54Cases and Limit54Periods: no bound, and no alarm, unless at
	// least Limit54Cases cases fell in the last Limit54Periods periods
	// (R's limit54, default c(5, 4)).
	Limit54Cases, Limit54Periods int
	// NoPeriods is the number of levels of the seasonal factor (1: none,
	// the original Farrington method; 10: Noufaily et al. 2013). With more
	// than 1, the periods between the windows are split into NoPeriods-1
	// blocks, each with its own level, and the whole past B years enter
	// the fit.
	NoPeriods int
	// PastWeeksNotIncluded is how many periods before t are left out of
	// the fit, in case they hold the start of an outbreak: PastWeeksW (R's
	// default) means W; Noufaily et al. use 26.
	PastWeeksNotIncluded int
	// Threshold is Delta (Farrington) or NBPlugin (Noufaily).
	Threshold ThresholdMethod
	// From is the first period t (1-based) to evaluate; 0 means FirstT,
	// farringtonFlexible's default range start.
	From int
}

// DefaultFarrington is farringtonFlexible's default control for data with
// freq periods per year: b = 5, w = 3, alpha = 0.05, reweight with
// weightsThreshold 2.58, trend with pThresholdTrend 0.05, limit54 c(5, 4),
// noPeriods 1, pastWeeksNotIncluded = w, thresholdMethod "delta".
func DefaultFarrington(freq int) FarringtonConfig {
	return FarringtonConfig{
		Freq: freq, B: 5, W: 3, Alpha: 0.05,
		Reweight: true, WeightsThreshold: 2.58,
		Trend: true, PThresholdTrend: 0.05,
		Limit54Cases: 5, Limit54Periods: 4,
		NoPeriods: 1, PastWeeksNotIncluded: PastWeeksW,
		Threshold: Delta,
	}
}

// DefaultNoufaily is the improved Farrington method of Noufaily et al.
// (2013) as farringtonFlexible runs it: DefaultFarrington with noPeriods =
// 10, pastWeeksNotIncluded = 26, thresholdMethod = "nbPlugin" (and
// weightsThreshold 2.58, the value Noufaily et al. recommend and
// farringtonFlexible's default).
func DefaultNoufaily(freq int) FarringtonConfig {
	c := DefaultFarrington(freq)
	c.NoPeriods = 10
	c.PastWeeksNotIncluded = 26
	c.Threshold = NBPlugin
	return c
}

func (c FarringtonConfig) pastWeeks() int {
	if c.PastWeeksNotIncluded == PastWeeksW {
		return c.W
	}
	return c.PastWeeksNotIncluded
}

// FirstT is the first period with B years of history and a full window
// around the oldest reference period: Freq·B + W + 1,
// farringtonFlexible's default range start.
func (c FarringtonConfig) FirstT() int { return c.Freq*c.B + c.W + 1 }

// Validate checks the parameters against a series of n periods.
func (c FarringtonConfig) Validate(n int) error {
	name := c.name()
	switch {
	case c.Freq < 1:
		return fmt.Errorf("%s needs the number of periods per year (freq): 52 for weekly data, 12 for monthly, 365 for daily", name)
	case c.B < 1:
		return fmt.Errorf("%s b = %d: the baseline needs at least 1 past year (farringtonFlexible's default is 5)", name, c.B)
	case c.W < 0:
		return fmt.Errorf("%s w = %d: the window half-width must be 0 or more (default 3)", name, c.W)
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("%s alpha %v: must be between 0 and 1 (default 0.05)", name, c.Alpha)
	case math.IsNaN(c.WeightsThreshold) || math.IsInf(c.WeightsThreshold, 0):
		return fmt.Errorf("%s weightsThreshold %v: must be a number (default 2.58)", name, c.WeightsThreshold)
	case !(c.PThresholdTrend >= 0 && c.PThresholdTrend <= 1):
		return fmt.Errorf("%s pThresholdTrend %v: must be a probability (default 0.05)", name, c.PThresholdTrend)
	case c.Limit54Cases < 0 || c.Limit54Periods <= 0:
		return fmt.Errorf("%s limit54 (%d cases, %d periods): cases must be ≥ 0 and periods > 0 (default 5 cases in 4 periods)", name, c.Limit54Cases, c.Limit54Periods)
	case c.NoPeriods < 1:
		return fmt.Errorf("%s noPeriods = %d: must be 1 (no seasonal factor) or more (Noufaily: 10)", name, c.NoPeriods)
	case c.NoPeriods > c.Freq:
		// farringtonFlexible's blocks(): "Number of factors too big!"
		return fmt.Errorf("%s noPeriods = %d: more seasonal levels than the %d periods of a year; use at most %d", name, c.NoPeriods, c.Freq, c.Freq)
	case c.PastWeeksNotIncluded < 0 && c.PastWeeksNotIncluded != PastWeeksW:
		return fmt.Errorf("%s pastWeeksNotIncluded = %d: must be 0 or more", name, c.PastWeeksNotIncluded)
	case c.Threshold != Delta && c.Threshold != NBPlugin:
		return fmt.Errorf("%s threshold method %v: use Delta or NBPlugin", name, c.Threshold)
	case c.From != 0 && c.From < c.FirstT():
		return fmt.Errorf("%s with b = %d, w = %d, freq = %d: the first period it can evaluate is t = %d (b years and w periods of history), not %d",
			name, c.B, c.W, c.Freq, c.FirstT(), c.From)
	}
	from := max(c.From, c.FirstT())
	switch {
	case c.pastWeeks() > from:
		return fmt.Errorf("%s pastWeeksNotIncluded = %d reaches before t = 1 at the first period evaluated (t = %d); leave out fewer periods or start later", name, c.pastWeeks(), from)
	case c.Limit54Periods > from:
		return fmt.Errorf("%s limit54 over %d periods reaches before t = 1 at the first period evaluated (t = %d)", name, c.Limit54Periods, from)
	case n < from:
		return fmt.Errorf("series too short for %s with b = %d, w = %d, freq = %d: it has %d periods, the first one evaluated is t = %d (b years and w periods of history); give a longer series or a smaller b",
			name, c.B, c.W, c.Freq, n, from)
	}
	return nil
}

// name is the method's name in messages: Noufaily for the negative
// binomial threshold, else Farrington.
func (c FarringtonConfig) name() string {
	if c.Threshold == NBPlugin {
		return "Noufaily"
	}
	return "Farrington"
}

// Farrington runs surveillance::farringtonFlexible (surveillance 1.20.3)
// on counts, period t = 1..len(counts), and returns one Result for each t
// from cfg.From (or FirstT) to the end. DefaultFarrington gives the
// Farrington et al. (1996) method, DefaultNoufaily that of Noufaily et al.
// (2013).
//
// At each t: the baseline is the periods within W of t−Freq, …, t−B·Freq
// (with NoPeriods > 1, the whole B years, in seasonal blocks), less the
// PastWeeksNotIncluded periods before t; a quasi-Poisson GLM with log link
// (and a time trend, and the seasonal factor) is fitted to it by R's
// IRLS, refitted without the trend if that does not converge; with
// Reweight, refitted with Farrington's weights from its Anscombe
// residuals; the trend is dropped unless significant (see
// FarringtonConfig.Trend); and the prediction at t, with the dispersion
// φ = max(1, Pearson χ²/df), gives the bound by Threshold. As in R, the
// bound is NA unless Limit54Cases cases fell in the last Limit54Periods
// periods, and then there is no alarm; the alarm is NA where no model
// converges (R's warning "The model could not converge with nor without
// time trend"). Where R itself stops with an error for one period (a GLM
// that cannot be fitted at all, R's glm.fit "inner loop" or NA weights),
// that period is NA here instead and the others go on.
//
// The method is Farrington's (Farrington et al. 1996, "A statistical algorithm
// for the early detection of outbreaks of infectious disease", J R Stat Soc A
// 159:547) and its improvement by Noufaily et al. (2013, "An improved
// algorithm for outbreak detection in multiple surveillance systems", Stat Med
// 32:1206), as surveillance::farringtonFlexible computes them: a quasi-Poisson
// GLM fitted to the same season of past years, down-weighting past outbreaks,
// and a bound from its prediction (cfg from DefaultFarrington(freq) or
// DefaultNoufaily(freq), freq being the periods per year).
func Farrington(counts []float64, cfg FarringtonConfig) ([]Result, error) {
	if err := checkCounts(counts); err != nil {
		return nil, err
	}
	if err := cfg.Validate(len(counts)); err != nil {
		return nil, err
	}
	from := max(cfg.From, cfg.FirstT())
	out := make([]Result, 0, len(counts)-from+1)
	for k := from; k <= len(counts); k++ {
		r, err := farringtonAt(counts, k, cfg)
		if err != nil {
			return nil, fmt.Errorf("t = %d: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// farringtonAt is one pass of farringtonFlexible's loop, at 1-based k.
func farringtonAt(counts []float64, k int, cfg FarringtonConfig) (Result, error) {
	y := counts[k-1]
	res := Result{T: k, Observed: y, UpperBound: math.NaN()}
	data, err := farringtonData(counts, k, cfg)
	if err != nil {
		return res, err
	}

	// algo.farrington.glm.
	model := fitFlexible(data, cfg.Trend, cfg)
	if model == nil {
		res.AlarmNA = true // "could not converge with nor without time trend"
		return res, nil
	}
	doTrend := false
	if model.trend {
		pred, _ := model.predictResponse(data.row(k, true))
		pval := model.trendPValue()
		significant := pval < cfg.PThresholdTrend // NaN: not significant
		noExtrapolation := pred <= slices.Max(data.y)
		doTrend = cfg.B >= 3 && significant && noExtrapolation
		if !doTrend {
			if model = fitFlexible(data, false, cfg); model == nil {
				res.AlarmNA = true // R would stop here; see Farrington
				return res, nil
			}
		}
	}
	x0 := data.row(k, doTrend)
	z := qnorm(1 - cfg.Alpha)
	var upper, score float64
	switch cfg.Threshold {
	case Delta:
		mu0, se := model.predictResponse(x0)
		upper, score = thresholdDelta(mu0, se, model.phi, z, y)
	case NBPlugin:
		eta0, _ := model.fit.predictLink(x0, model.disp)
		upper, score = thresholdNBPlugin(eta0, model.phi, cfg.Alpha, y)
	}

	// limit54: enough cases in the last periods, else NA and no alarm.
	recent := 0.0
	for t := k - cfg.Limit54Periods + 1; t <= k; t++ {
		recent += counts[t-1]
	}
	if recent >= float64(cfg.Limit54Cases) {
		res.UpperBound = upper
		res.Alarm = !math.IsNaN(score) && score > 1 && y != 0
	}
	return res, nil
}

// thresholdDelta is algo.farrington.threshold.farrington with
// powertrans "2/3": the upper end of (μ₀^(2/3) ± z·se)^(3/2) with se² =
// 4/9·μ₀^(1/3)·(φ + se(μ₀)²/μ₀) (Farrington et al. 1996, eq. 4), and the
// score (y−μ₀)/(U−μ₀) whose excess over 1 is an alarm.
func thresholdDelta(mu0, seFit, phi, z, y float64) (upper, score float64) {
	const exponent = 2.0 / 3.0
	tau := phi + (seFit*seFit)/mu0
	se := math.Sqrt(4.0 / 9.0 * rpow(mu0, 1.0/3.0) * tau)
	m := rpow(mu0, exponent)
	// sort(c(lo, hi), na.last = FALSE)[2]: the larger, or the one that is
	// not NaN.
	lo := rpow(m+(-1*z)*se, 1/exponent)
	hi := rpow(m+(1*z)*se, 1/exponent)
	switch {
	case math.IsNaN(lo):
		upper = hi
	case math.IsNaN(hi):
		upper = lo
	default:
		upper = max(lo, hi)
	}
	score = math.NaN()
	if !math.IsNaN(upper) {
		score = (y - mu0) / (upper - mu0)
	}
	return upper, score
}

// thresholdNBPlugin is algo.farrington.threshold.noufaily with method
// "nbPlugin": the (1-α) quantile of a negative binomial with mean
// μ₀ = exp(η₀) and variance φμ₀ (size μ₀/(φ−1), prob 1/φ), or of a
// Poisson when φ = 1. The score is R's, (y − η₀)/(U − η₀), with η₀ on the
// link scale.
func thresholdNBPlugin(eta0, phi, alpha, y float64) (upper, score float64) {
	mu0 := math.Exp(eta0)
	if math.IsInf(mu0, 1) {
		return math.NaN(), math.NaN()
	}
	if phi > 1 {
		upper = qnbinom(1-alpha, mu0/(phi-1), 1/phi)
	} else {
		upper = qpois(1-alpha, mu0)
	}
	score = math.NaN()
	if !math.IsNaN(upper) {
		score = (y - eta0) / (upper - eta0)
	}
	return upper, score
}

// rpow is R's x^y: 1 when x is 1 or y is 0, x·x for y = 2, else pow.
func rpow(x, y float64) float64 {
	switch {
	case x == 1 || y == 0:
		return 1
	case y == 2:
		return x * x
	}
	return math.Pow(x, y)
}

// glmData is algo.farrington.data.glm's data frame: the baseline
// periods, their counts and seasonal levels.
type glmData struct {
	t      []float64 // wtime: the 1-based periods
	y      []float64 // response
	season []int     // seasgroups; nil without the factor
	levels []int     // its levels, ascending (the first is the reference)
	p      int       // NoPeriods: the level of the current window
}

// farringtonData builds the baseline of period k (algo.farrington.data.glm
// with blocks() and the pastWeeksNotIncluded cut).
func farringtonData(counts []float64, k int, cfg FarringtonConfig) (*glmData, error) {
	blocks, err := seasonalBlocks(len(counts), k, cfg)
	if err != nil {
		return nil, err
	}
	// blocksID[(k - pastWeeksNotIncluded):k] <- NA
	for _, i := range rSeq(k-cfg.pastWeeks(), k) {
		if i > 0 {
			blocks[i-1] = 0
		}
	}
	d := &glmData{p: cfg.NoPeriods}
	for i, b := range blocks {
		if b == 0 {
			continue
		}
		d.t = append(d.t, float64(i+1))
		d.y = append(d.y, counts[i])
		if cfg.NoPeriods != 1 {
			d.season = append(d.season, b)
		}
	}
	if len(d.y) == 0 {
		return nil, errors.New("the baseline is empty")
	}
	if d.season != nil {
		d.levels = slices.Compact(slices.Sorted(slices.Values(d.season)))
		if !slices.Contains(d.levels, d.p) {
			return nil, fmt.Errorf("the baseline has no period of seasonal level %d, the current window's (R: factor seasgroups has a new level)", d.p)
		}
		if len(d.levels) < 2 {
			return nil, errors.New("the baseline has a single seasonal level (R: contrasts can be applied only to factors with 2 or more levels)")
		}
	}
	return d, nil
}

// row is the design row of period t: intercept, wtime (with trend), the
// treatment contrasts of the seasonal factor; at the current period the
// level is NoPeriods, as predict's newdata has it.
func (d *glmData) row(t int, trend bool) []float64 {
	r := []float64{1}
	if trend {
		r = append(r, float64(t))
	}
	if d.season != nil {
		for _, l := range d.levels[1:] {
			r = append(r, b2f(l == d.p))
		}
	}
	return r
}

// design is the model matrix of the baseline.
func (d *glmData) design(trend bool) [][]float64 {
	x := make([][]float64, len(d.y))
	for i := range x {
		r := []float64{1}
		if trend {
			r = append(r, d.t[i])
		}
		if d.season != nil {
			for _, l := range d.levels[1:] {
				r = append(r, b2f(d.season[i] == l))
			}
		}
		x[i] = r
	}
	return x
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// seasonalBlocks is surveillance's blocks(): for each period of the
// series, 0 (R's NA) outside the baseline, NoPeriods in the windows of
// half-width W around k and its reference periods k−Freq, …, k−B·Freq,
// and, with NoPeriods > 1, levels 1 … NoPeriods−1 in blocks between them.
// The assignments are R's, in R's order and with R's a:b (a descending
// sequence when b < a), so that the rare overlapping cases come out as in
// R too.
func seasonalBlocks(n, k int, cfg FarringtonConfig) ([]int, error) {
	v := make([]int, n)
	p, w := cfg.NoPeriods, cfg.W
	assign := func(from, to, level int) error {
		for _, i := range rSeq(from, to) {
			switch {
			case i < 0 || i > n:
				return fmt.Errorf("the baseline window %d:%d reaches outside the series (t = 1..%d); use a later start or smaller b or w", from, to, n)
			case i > 0: // R drops index 0
				v[i-1] = level
			}
		}
		return nil
	}
	if err := assign(k-w, k, p); err != nil {
		return nil, err
	}
	for i := 1; i <= cfg.B; i++ {
		refWeek := k - i*cfg.Freq
		if err := assign(refWeek-w, refWeek+w, p); err != nil {
			return nil, err
		}
		if p == 1 {
			continue
		}
		period := (k - (i-1)*cfg.Freq) - 2*w - 1 - refWeek
		if period < p-(2*w+1) {
			return nil, fmt.Errorf("noPeriods = %d is too many for freq = %d and w = %d (R: Number of factors too big!)", p, cfg.Freq, w)
		}
		length, rest := floorDiv(period, p-1), floorMod(period, p-1)
		cum := 0 // cumsum(c(0, vectorLengthOfBlocks))[j]
		for j := 1; j <= p-1; j++ {
			l := length
			if j <= rest {
				l++
			}
			if err := assign(refWeek+w+1+cum, refWeek+w+1+cum+l-1, j); err != nil {
				return nil, err
			}
			cum += l
		}
	}
	return v, nil
}

// rSeq is R's from:to for integers: ascending, or descending when to <
// from.
func rSeq(from, to int) []int {
	step := 1
	if to < from {
		step = -1
	}
	s := make([]int, 0, (to-from)*step+1)
	for i := from; ; i += step {
		s = append(s, i)
		if i == to {
			return s
		}
	}
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int { return a - floorDiv(a, b)*b }

// flexModel is what algo.farrington.fitGLM.flexible returns: the final
// fit, whether it has the trend term, φ, and the dispersion that
// summary() and predict() find in the returned object.
type flexModel struct {
	fit   *glmFit
	trend bool
	phi   float64
	// disp is summary.glm's dispersion of the returned model. With
	// reweighting, fitGLM.flexible overwrites model$weights (the working
	// weights summary.glm uses) with the prior weights ω, so the
	// dispersion behind the trend test and the prediction's standard error
	// is Σ ωᵢrᵢ² / df (rᵢ the working residuals), not φ's Pearson
	// statistic. A quirk of surveillance 1.20.3, kept.
	disp float64
}

// fitFlexible is algo.farrington.fitGLM.flexible (populationOffset FALSE):
// fit, retry without the trend if that does not converge (nil if that
// does not either), φ = max(dispersion, 1), and with Reweight a second fit
// with Farrington's weights, whose convergence R does not check. nil too
// where R's glm.fit would stop with an error.
func fitFlexible(d *glmData, trend bool, cfg FarringtonConfig) *flexModel {
	ones := make([]float64, len(d.y))
	for i := range ones {
		ones[i] = 1
	}
	x := d.design(trend)
	fit, err := fitQuasiPoisson(x, d.y, ones)
	if err != nil {
		return nil
	}
	if !fit.converged {
		if trend {
			trend = false
			x = d.design(false)
			if fit, err = fitQuasiPoisson(x, d.y, ones); err != nil {
				return nil
			}
		}
		if !fit.converged {
			return nil
		}
	}
	phi := max(fit.dispersion(), 1) // R's max(NaN, 1) is NaN, as Go's
	if !cfg.Reweight {
		return &flexModel{fit: fit, trend: trend, phi: phi, disp: fit.dispersion()}
	}
	omega, ok := farringtonWeights(anscombeResiduals(fit, phi), cfg.WeightsThreshold)
	if !ok {
		return nil
	}
	if fit, err = fitQuasiPoisson(x, d.y, omega); err != nil {
		return nil
	}
	phi = max(fit.dispersion(), 1)
	// model$weights <- omega, then summary.glm's estimate with them.
	disp := math.NaN()
	if fit.dfResid > 0 {
		var s sum
		for i, w := range omega {
			if w > 0 {
				s.add(w * fit.residuals[i] * fit.residuals[i])
			}
		}
		disp = s.value() / float64(fit.dfResid)
	}
	return &flexModel{fit: fit, trend: trend, phi: phi, disp: disp}
}

// anscombeResiduals is surveillance's anscombe.residuals(m, phi):
// 3/2·(y^(2/3)·μ^(-1/6) − μ^(1/2)) / sqrt(φ(1−h)) with h the hat values.
func anscombeResiduals(f *glmFit, phi float64) []float64 {
	h := f.hatValues()
	s := make([]float64, len(f.y))
	if len(h) != len(s) { // rows left out of the QR: R would recycle; refuse
		for i := range s {
			s[i] = math.NaN()
		}
		return s
	}
	for i, y := range f.y {
		mu := f.mu[i]
		a := 3.0 / 2.0 * (rpow(y, 2.0/3.0)*rpow(mu, -1.0/6.0) - rpow(mu, 1.0/2.0))
		s[i] = a / math.Sqrt(phi*(1-h[i]))
	}
	return s
}

// farringtonWeights is algo.farrington.assign.weights: γ·s⁻² above the
// threshold, γ below, γ making the weights sum to n. ok is false where R
// would stop on NA weights.
func farringtonWeights(s []float64, threshold float64) (omega []float64, ok bool) {
	var den sum
	for _, v := range s {
		if math.IsNaN(v) {
			return nil, false
		}
		if v > threshold {
			den.add(rpow(v, -2))
		} else {
			den.add(1)
		}
	}
	gamma := float64(len(s)) / den.value()
	omega = make([]float64, len(s))
	for i, v := range s {
		if v > threshold {
			omega[i] = gamma * rpow(v, -2)
		} else {
			omega[i] = gamma
		}
	}
	return omega, true
}

// predictResponse is predict.glm(type = "response", se.fit = TRUE) with
// summary.glm's dispersion m.disp (farringtonFlexible passes its φ in
// newdata, where predict does not look for it): μ = exp(η) and se·μ.
func (m *flexModel) predictResponse(x0 []float64) (mu, se float64) {
	eta, seEta := m.fit.predictLink(x0, m.disp)
	me := linkinv(eta)
	return me, seEta * me
}

// trendPValue is summary.glm's Pr(>|t|) of the wtime coefficient (the
// second column), NaN if it is aliased.
func (m *flexModel) trendPValue() float64 {
	v := m.fit.unscaledVar()[1]
	t := m.fit.coef[1] / math.Sqrt(m.disp*v)
	return ptTwoSided(t, float64(m.fit.dfResid))
}
