package nowcast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/epiwatch/epiwatch/schemas"
)

// Prior scales of the delay model, on the logit scale of the reverse-time
// hazards (see DelayModel). They are weakly informative: enough to
// keep the sparse long delays smooth and the model identified, far from
// deciding anything a few hundred cases can tell.
const (
	// rw2SD is the sd of the second differences of γ_d: the logit of the
	// reverse hazard bends slowly with the delay (for a gamma-like delay
	// it is nearly linear in the tail), so a delay without data borrows the
	// slope of its neighbours.
	rw2SD = 0.5
	// levelSD is the sd of γ_1 and of γ_2 − γ_1 around 0: a proper but
	// flat prior on the level and slope the random walk leaves free (no
	// prior on each γ_d, which would pull the long delays' tiny hazards,
	// where a few dozen cases tell little, toward g = ½).
	levelSD = 5.0
	// weekdaySD is the sd of each weekday's log odds of reporting, ω_w:
	// effects of a factor of e (a weekend with a third of the reports) are
	// plausible, ten times less or more are not.
	weekdaySD = 1.0
	// poolSD is how far a region's parameters may stray from the pooled
	// model's (FitDelay with a prior): a region with few cases keeps
	// the pooled delay, one with many its own.
	poolSD = 0.5
)

// DelayModel is the posterior of the reporting-delay distribution of one
// stratum (a region, or regions pooled) as known on AsOf: the reverse-time
// hazards of report by delay d = 1..MaxDelay and by weekday of the report,
// with its Laplace (normal) approximation, which Nowcast samples. It is
// immutable once fitted.
//
// The method follows the Bayesian nowcast of Höhle & an der Heiden (2014),
// "Bayesian nowcasting during the STEC O104:H4 outbreak in Germany, 2011",
// Biometrics 70:993–1002: a discrete-time hazard model of the reporting delay
// with a logit link and covariates (there, among others, the weekday of
// reporting), and the eventual count of each onset day predicted as what is
// reported plus a negative binomial remainder, with the uncertainty of the
// delay distribution propagated by sampling.
//
// The hazard here is the reverse-time one (Lawless 1994, "Adjustments for
// reporting delays and the prediction of occurred but not reported events",
// Can J Stat 22:15–31): g(t,d) = P(delay = d | delay ≤ d) for onset day t,
// which, unlike the forward hazard, has a likelihood in the reported cases
// alone (the conditional multinomial of the delays of a day given they are at
// most asOf − t), without the unknown eventual counts; without covariates its
// maximum-likelihood estimate is the chain ladder's development factors, the
// empirical reporting-triangle method of baselinenowcast. Here
//
//	logit g(t,d) = γ_d + ω_{weekday(t+d)},   d = 1..MaxDelay
//
// with ω the day-of-week effect on reporting (the odds of a due report being
// sent that weekday; weekend reports deferred to Monday make ω low on Saturday
// and Sunday and high on Monday). Each onset day of the last DelayWindow days
// contributes binomial trials (the cases reported by delay d, of which those
// at delay d), older days down-weighted with a half-life (DelayHalfLife) so
// that a drifting delay is followed. The priors are weak (the constants above:
// a second-order random walk over d keeps the sparse long delays smooth); the
// posterior is approximated by a normal at its mode (Laplace) and sampled. A
// region's model can take a pooled model (all regions, FitDelay without a
// prior) as its prior: a small region then keeps the pooled delay, a large one
// its own. Completeness — the share of a day's eventual cases reported by asOf
// — is q_t = Π_{d > asOf−t} (1 − g(t,d)), with the weekdays of the future
// report days known.
type DelayModel struct {
	asOf     schemas.Date
	maxDelay int
	weekday  bool
	p        int       // parameters: γ_1..γ_D, then ω_Sunday..ω_Saturday when weekday
	mode     []float64 // posterior mode
	chol     []float64 // lower Cholesky factor of the posterior precision at the mode
	vars     []float64 // posterior variances (the diagonal of the precision's inverse), of a model fitted without a prior
	cases    float64   // cases of the window that informed the fit (weighted)
}

// Cases is the number of cases with an onset and a report within
// MaxDelay that informed the fit (weighted by Config.DelayHalfLife).
func (m *DelayModel) Cases() float64 { return m.cases }

// pmf is the delay distribution p[d] = P(delay = d), d = 0..MaxDelay, from
// logStay's table for an onset on weekday w0: F(D) = 1,
// F(d−1) = F(d)·(1 − g_d), p_d = F(d) − F(d−1).
func (m *DelayModel) pmf(lq []float64, w0 int) []float64 {
	p := make([]float64, m.maxDelay+1)
	f := 1.0
	for d := m.maxDelay; d >= 1; d-- {
		prev := f * math.Exp(lq[d*7+(w0+d)%7])
		p[d] = f - prev
		f = prev
	}
	p[0] = f
	return p
}

// MeanDelay is the mean onset-to-report delay in days at the posterior
// mode, averaged over the seven weekdays of onset.
func (m *DelayModel) MeanDelay() float64 {
	lq := m.logStay(m.mode, nil)
	mean := 0.0
	for w0 := 0; w0 < 7; w0++ {
		for d, p := range m.pmf(lq, w0) {
			mean += float64(d) * p
		}
	}
	return mean / 7
}

// WeekdayEffect returns, for each weekday of the report (Sunday first, as
// time.Weekday), the odds of a due report being sent that day relative to
// the average weekday, at the posterior mode: below 1 at the weekend when
// offices report less. All 1 without Config.Weekday.
func (m *DelayModel) WeekdayEffect() [7]float64 {
	var out [7]float64
	if !m.weekday {
		for i := range out {
			out[i] = 1
		}
		return out
	}
	mean := 0.0
	for w := 0; w < 7; w++ {
		mean += m.mode[m.maxDelay+w] / 7
	}
	for w := 0; w < 7; w++ {
		out[w] = math.Exp(m.mode[m.maxDelay+w] - mean)
	}
	return out
}

// weekdayOf is the weekday of a date, Sunday 0 as time.Weekday (day 0 of
// schemas.Date, 1970-01-01, was a Thursday).
func weekdayOf(d schemas.Date) int { return ((int(d)+4)%7 + 7) % 7 }

// logStay fills lq[d*7+w] with log(1 − g(d, w)), the log probability that
// a case reported by delay d was reported before it, when delay d falls on
// weekday w, for the parameters beta; it returns lq (allocated when nil).
// Without the weekday effect every w has the same value. −log(1 − g) is
// softplus(γ_d + ω_w) = log1p(e^γ_d·e^ω_w): one exponential per parameter,
// not per pair.
func (m *DelayModel) logStay(beta, lq []float64) []float64 {
	if lq == nil {
		lq = make([]float64, (m.maxDelay+1)*7)
	}
	var ew [7]float64
	var w0 [7]float64 // ω_w, 0 without the weekday effect
	for w := range ew {
		if m.weekday {
			w0[w] = beta[m.maxDelay+w]
		}
		ew[w] = math.Exp(w0[w])
	}
	for d := 1; d <= m.maxDelay; d++ {
		g := beta[d-1]
		eg := math.Exp(g)
		for w := 0; w < 7; w++ {
			switch eta := g + w0[w]; {
			case eta < -5: // see softplus
				y := eg * ew[w]
				lq[d*7+w] = -y * (1 - y*(1.0/2-y*(1.0/3-y*(1.0/4))))
			case eta > 35:
				lq[d*7+w] = -eta
			default:
				lq[d*7+w] = -math.Log1p(eg * ew[w])
			}
		}
	}
	return lq
}

// softplus is log(1 + eˣ) without overflow. Below -5 it is the series
// y − y²/2 + y³/3 − y⁴/4 of log1p(y), y = eˣ < 0.0068, whose next term is
// below 5e-10 relative: the long delays' hazards are there, and the
// logarithm is most of the cost of sampling the delay distribution.
func softplus(x float64) float64 {
	switch {
	case x > 35:
		return x
	case x < -5:
		y := math.Exp(x)
		return y * (1 - y*(1.0/2-y*(1.0/3-y*(1.0/4))))
	}
	return math.Log1p(math.Exp(x))
}

// sigmoid is 1/(1 + e⁻ˣ).
func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// draw returns in beta a draw from the normal approximation of the
// posterior, mode + L⁻ᵀz with z standard normal.
func (m *DelayModel) draw(rng *rand.Rand, beta []float64) {
	for i := range beta {
		beta[i] = rng.NormFloat64()
	}
	cholBack(m.chol, m.p, beta)
	for i := range beta {
		beta[i] += m.mode[i]
	}
}

// TooFewCasesError is FitDelay's error when, without a prior, the delay
// window holds too few cases to estimate the delay distribution.
type TooFewCasesError struct {
	Cases  float64 // cases with onset and report dates in the window (weighted)
	Need   int     // Config.MinDelayCases
	Window int     // Config.DelayWindow
	AsOf   schemas.Date
}

func (e *TooFewCasesError) Error() string {
	return fmt.Sprintf("nowcast: only %.0f cases with onset and report dates in the %d days to %s to estimate the reporting delay, need %d: pool regions (fit one model on all of them and pass it as the prior), or widen the delay window",
		e.Cases, e.Window, e.AsOf, e.Need)
}

// triangle accumulates the reporting triangle of the delay window as
// binomial trials of the reverse-time hazards: for onset day t and delay
// d ≥ 1 with t+d ≤ AsOf, y = the cases of t reported by delay d (trials)
// and s = those reported at delay d exactly (successes), summed by (d,
// weekday of the report day t+d) with the weight of t.
type triangle struct {
	y, s  []float64 // [d*7+w]
	cases float64
}

// FitDelay estimates the reporting-delay distribution from the cases known
// on asOf (report ≤ asOf) with an onset within the last Config.DelayWindow
// days. prior, when not nil, is a model fitted on more data on the same day
// (all regions pooled): the region's parameters are then shrunk toward it,
// so that a region with few cases gets the pooled delay and one with many
// its own. Without a prior the estimate needs some cases: it fails with
// fewer than Config.MinDelayCases.
func (n *Nowcaster) FitDelay(cases []Case, asOf schemas.Date, prior *DelayModel) (*DelayModel, error) {
	if asOf.IsZero() {
		return nil, errors.New("nowcast: no as-of date; give the day up to which reports are known")
	}
	if prior != nil && (prior.asOf != asOf || prior.maxDelay != n.cfg.MaxDelay || prior.weekday != n.cfg.Weekday) {
		return nil, fmt.Errorf("nowcast: the prior delay model was fitted as of %s with max delay %d (weekday %v), not as of %s with %d (%v); fit it with the same configuration and day",
			prior.asOf, prior.maxDelay, prior.weekday, asOf, n.cfg.MaxDelay, n.cfg.Weekday)
	}
	tri, err := n.triangle(cases, asOf)
	if err != nil {
		return nil, err
	}
	if prior == nil && tri.cases < float64(n.cfg.MinDelayCases) {
		return nil, &TooFewCasesError{Cases: tri.cases, Need: n.cfg.MinDelayCases, Window: n.cfg.DelayWindow, AsOf: asOf}
	}
	return n.fit(tri, asOf, prior)
}

// triangle builds the weighted reverse-hazard trials of the delay window.
func (n *Nowcaster) triangle(cases []Case, asOf schemas.Date) (*triangle, error) {
	D := n.cfg.MaxDelay
	W := n.cfg.DelayWindow
	// counts[i*(D+1)+d]: cases of onset asOf-W+1+i reported at delay d.
	counts := make([]float64, W*(D+1))
	first := asOf.AddDays(-W + 1)
	for i, c := range cases {
		if c.Report > asOf || c.Onset.IsZero() || c.Onset < first {
			continue
		}
		if err := c.check(i); err != nil {
			return nil, err
		}
		d := int(c.Report - c.Onset)
		if d > D {
			continue // beyond the model: assumed not to happen (see Config.MaxDelay)
		}
		counts[int(c.Onset-first)*(D+1)+d] += c.count()
	}
	rho := 1.0
	if n.cfg.DelayHalfLife > 0 {
		rho = math.Exp2(-1 / n.cfg.DelayHalfLife)
	}
	tri := &triangle{y: make([]float64, (D+1)*7), s: make([]float64, (D+1)*7)}
	for i := 0; i < W; i++ {
		t := first.AddDays(i)
		age := int(asOf - t)
		wt := math.Pow(rho, float64(age))
		row := counts[i*(D+1) : (i+1)*(D+1)]
		top := min(age, D)
		cum := 0.0
		for d := 0; d <= top; d++ {
			cum += row[d]
		}
		tri.cases += wt * cum
		// Down from the top: given the cases reported by delay d, those
		// at d are Binomial(by d, g_d) (Lawless 1994).
		for d := top; d >= 1; d-- {
			if cum > 0 {
				k := d*7 + weekdayOf(t.AddDays(d))
				tri.y[k] += wt * cum
				tri.s[k] += wt * row[d]
			}
			cum -= row[d]
		}
	}
	return tri, nil
}

// fit maximises the log posterior of the reverse-hazard logistic model by
// Newton's method with step halving and factors its precision at the mode
// (the Laplace approximation).
func (n *Nowcaster) fit(tri *triangle, asOf schemas.Date, prior *DelayModel) (*DelayModel, error) {
	D := n.cfg.MaxDelay
	m := &DelayModel{asOf: asOf, maxDelay: D, weekday: n.cfg.Weekday, cases: tri.cases}
	P := D
	if m.weekday {
		P += 7
	}
	m.p = P

	// The prior: mean m0, precision Q.
	m0 := make([]float64, P)
	Q := make([]float64, P*P)
	if prior == nil {
		l := 1 / (levelSD * levelSD)
		Q[0] += l  // γ_1
		if D > 1 { // γ_2 − γ_1
			Q[0] += l
			Q[1*P+1] += l
			Q[0*P+1] -= l
			Q[1*P+0] -= l
		}
		for w := D; w < P; w++ {
			Q[w*P+w] = 1 / (weekdaySD * weekdaySD)
		}
	} else {
		copy(m0, prior.mode)
		vars := prior.vars
		if vars == nil { // a model fitted with a prior itself
			vars = cholInvDiag(prior.chol, P)
		}
		for i := 0; i < P; i++ {
			Q[i*P+i] = 1 / (poolSD*poolSD + vars[i])
		}
	}
	// Second differences of γ: (γ_{d-1} - 2γ_d + γ_{d+1}) ~ N(0, rw2SD²),
	// on the deviation from the prior mean.
	for d := 1; d+1 < D; d++ {
		idx := [3]int{d - 1, d, d + 1}
		c := [3]float64{1, -2, 1}
		for a := 0; a < 3; a++ {
			for b := 0; b < 3; b++ {
				Q[idx[a]*P+idx[b]] += c[a] * c[b] / (rw2SD * rw2SD)
			}
		}
	}

	// Start: the pooled logits of each delay (the chain ladder's
	// development factors), or the prior's mode.
	beta := make([]float64, P)
	if prior != nil {
		copy(beta, m0)
	} else {
		for d := 1; d <= D; d++ {
			ys, ss := 0.0, 0.0
			for w := 0; w < 7; w++ {
				ys += tri.y[d*7+w]
				ss += tri.s[d*7+w]
			}
			pr := (ss + 0.5) / (ys + 1)
			beta[d-1] = math.Log(pr / (1 - pr))
		}
	}

	H := make([]float64, P*P)
	grad := make([]float64, P)
	step := make([]float64, P)
	next := make([]float64, P)
	dev := make([]float64, P)
	obj := func(b []float64) float64 {
		ll := 0.0
		for d := 1; d <= D; d++ {
			for w := 0; w < 7; w++ {
				k := d*7 + w
				if tri.y[k] == 0 {
					continue
				}
				eta := b[d-1]
				if m.weekday {
					eta += b[D+w]
				}
				ll += tri.s[k]*eta - tri.y[k]*softplus(eta)
			}
		}
		for i := range dev {
			dev[i] = b[i] - m0[i]
		}
		for i := 0; i < P; i++ {
			s := 0.0
			for j := 0; j < P; j++ {
				s += Q[i*P+j] * dev[j]
			}
			ll -= 0.5 * dev[i] * s
		}
		return ll
	}
	// hessian fills H with the negative Hessian of the log posterior at b
	// and grad with its gradient.
	hessian := func(b []float64) {
		copy(H, Q)
		for i := range dev {
			dev[i] = b[i] - m0[i]
		}
		for i := 0; i < P; i++ {
			s := 0.0
			for j := 0; j < P; j++ {
				s += Q[i*P+j] * dev[j]
			}
			grad[i] = -s
		}
		for d := 1; d <= D; d++ {
			for w := 0; w < 7; w++ {
				k := d*7 + w
				if tri.y[k] == 0 {
					continue
				}
				eta := b[d-1]
				if m.weekday {
					eta += b[D+w]
				}
				p := sigmoid(eta)
				g := tri.s[k] - tri.y[k]*p
				info := tri.y[k] * p * (1 - p)
				i := d - 1
				grad[i] += g
				H[i*P+i] += info
				if m.weekday {
					j := D + w
					grad[j] += g
					H[j*P+j] += info
					H[i*P+j] += info
					H[j*P+i] += info
				}
			}
		}
	}
	cur := math.NaN()
	converged := false
	for iter := 0; iter < 100; iter++ {
		hessian(beta)
		if err := cholesky(H, P); err != nil {
			return nil, fmt.Errorf("nowcast: fit the delay distribution: %w", err)
		}
		copy(step, grad)
		cholSolve(H, P, step)
		maxStep := 0.0
		for _, s := range step {
			maxStep = max(maxStep, math.Abs(s))
		}
		if maxStep < 0.1 {
			// Near the mode the concave log posterior's Newton step is
			// safe: no line search (the objective costs a quarter of a
			// step).
			for i := range beta {
				beta[i] += step[i]
			}
			cur = math.NaN()
			if maxStep < 1e-4 {
				// Newton converges quadratically: the mode is now within
				// ~1e-8, far below any posterior sd.
				converged = true
				break
			}
			continue
		}
		if math.IsNaN(cur) {
			cur = obj(beta)
		}
		t := 1.0
		var val float64
		for {
			for i := range next {
				next[i] = beta[i] + t*step[i]
			}
			val = obj(next)
			if val >= cur-1e-12*math.Abs(cur) || t < 1e-6 {
				break
			}
			t /= 2
		}
		copy(beta, next)
		cur = val
	}
	if !converged {
		return nil, fmt.Errorf("nowcast: the delay distribution as of %s did not converge in 100 Newton steps; report this with the data", asOf)
	}
	hessian(beta)
	if err := cholesky(H, P); err != nil {
		return nil, fmt.Errorf("nowcast: fit the delay distribution: %w", err)
	}
	m.mode, m.chol = beta, H
	if prior == nil { // a pooled model, likely some region's prior
		m.vars = cholInvDiag(H, P)
	}
	return m, nil
}
