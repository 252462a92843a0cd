package nowcast

import (
	"math"
	"math/rand/v2"
)

// Trend model constants.
const (
	// trendMinCases: with fewer cases reported over the trend days, no
	// slope is fitted (a level only): a growth rate from a handful of cases
	// is noise.
	trendMinCases = 10
	// slopeSD is the prior sd of the daily growth rate b: ±0.2 a day
	// (doubling or halving in 3.5 days) is the fastest plausible; the data
	// decide within that.
	slopeSD = 0.2
	// tau2Max bounds the extra-Poisson variance of the daily expectation
	// (CV² of λ_t): a CV of 100 % is already no trend at all.
	tau2Max = 1.0
)

// trend is the model of the eventual counts N_t of the trend days t (x_t =
// t − asOf ≤ 0) that gives the unreported remainder its prior:
//
//	λ_t ~ Gamma(shape 1/τ², mean e^(a + b·x_t)),  n_t | λ_t ~ Poisson(q_t·λ_t)
//
// with n_t the cases reported so far and q_t the completeness, so that n_t
// is negative binomial with mean q_t·e^(a+b·x_t) and variance μ + τ²μ²
// (a log-linear NB regression with offset log q_t). (a, b) is fitted by
// maximum likelihood and its uncertainty taken as normal with the inverse
// information; τ² by moments from the Poisson fit, at least the
// configured floor.
//
// Höhle & an der Heiden give each day's expected count an independent gamma
// prior; here the prior comes from the recent trend, as NobBS (McGough et al.
// 2020, "Nowcasting by Bayesian Smoothing", PLoS Comput Biol 16:e1007735) lets
// a random walk on log λ_t carry information from the older, complete days to
// the newest, nearly empty ones. Given (a, b), λ_t's posterior is Gamma(1/τ² +
// n_t, rate 1/(τ²μ_t) + q_t) and the cases still to come are Poisson((1 −
// q_t)·λ_t) — a negative binomial on the not-yet-reported fraction. A day
// older than MaxDelay is complete: its nowcast is its reported count, interval
// width 0.
type trend struct {
	a, b          float64
	l11, l21, l22 float64 // Cholesky factor of Cov(a, b)
	tau2          float64
}

// fitTrend fits the trend to the counts n, completeness q and day offsets
// x of the trend days; tau2Min is the floor of τ². start, when not nil, is
// the fit to the same counts with another draw of the completeness: its
// (a, b) start Newton's method, which then converges in a step or two.
func fitTrend(n, q, x []float64, tau2Min float64, start *trend) trend {
	sumN, sumQ := 0.0, 0.0
	for i := range n {
		sumN += n[i]
		sumQ += q[i]
	}
	if sumQ <= 0 {
		sumQ = 1e-9
	}
	if sumN < trendMinCases {
		// A level only: Poisson with a Jeffreys half case, so that no
		// case is "probably a few", not "none for sure".
		v := 1 / (sumN + 0.5)
		return trend{a: math.Log((sumN + 0.5) / sumQ), l11: math.Sqrt(v), tau2: tau2Min}
	}
	tr := trend{a: math.Log(sumN / sumQ)}
	if start != nil && start.l22 > 0 {
		// Another completeness draw of the same counts: τ² is kept (a
		// nuisance parameter, estimated once) and Newton starts from
		// the previous (a, b).
		tr.a, tr.b, tr.tau2 = start.a, start.b, start.tau2
	} else {
		newton(&tr, n, q, x, 0)
		num, den := 0.0, 0.0
		for i := range n {
			mu := q[i] * math.Exp(tr.a+tr.b*x[i])
			r := n[i] - mu
			num += r*r - mu
			den += mu * mu
		}
		tr.tau2 = tau2Min
		if den > 0 {
			tr.tau2 = min(max(num/den, tau2Min), tau2Max)
		}
	}
	i11, i12, i22 := newton(&tr, n, q, x, tr.tau2)
	// Cov = I⁻¹; its Cholesky factor.
	det := i11*i22 - i12*i12
	c11, c12, c22 := i22/det, -i12/det, i11/det
	tr.l11 = math.Sqrt(c11)
	tr.l21 = c12 / tr.l11
	tr.l22 = math.Sqrt(max(c22-tr.l21*tr.l21, 0))
	return tr
}

// newton maximises the NB (τ² > 0) or Poisson (τ² = 0) log-likelihood of
// the trend, with the normal prior on the slope, from tr's values, and
// returns the information matrix at the maximum.
func newton(tr *trend, n, q, x []float64, tau2 float64) (i11, i12, i22 float64) {
	// The days are consecutive (x[i+1] = x[i] + 1): e^(a+b·x) is carried
	// along by multiplying by e^b.
	obj := func(a, b float64) float64 {
		ll := -0.5 * b * b / (slopeSD * slopeSD)
		e, g := math.Exp(a+b*x[0]), math.Exp(b)
		for i := range n {
			if i > 0 {
				e *= g
			}
			if q[i] <= 0 {
				continue
			}
			mu := q[i] * e
			if tau2 > 0 {
				ll += n[i]*math.Log(mu) - (n[i]+1/tau2)*math.Log1p(tau2*mu)
			} else {
				ll += n[i]*math.Log(mu) - mu
			}
		}
		return ll
	}
	info := func(a, b float64) (g1, g2, i11, i12, i22 float64) {
		g2 = -b / (slopeSD * slopeSD)
		i22 = 1 / (slopeSD * slopeSD)
		e, g := math.Exp(a+b*x[0]), math.Exp(b)
		for i := range n {
			if i > 0 {
				e *= g
			}
			if q[i] <= 0 {
				continue
			}
			mu := q[i] * e
			w := 1 / (1 + tau2*mu)
			r := (n[i] - mu) * w
			g1 += r
			g2 += r * x[i]
			mw := mu * w
			i11 += mw
			i12 += mw * x[i]
			i22 += mw * x[i] * x[i]
		}
		return
	}
	// Newton's method; the objective is only evaluated (for step halving)
	// while the steps are large: near the maximum the concave likelihood's
	// Newton steps are safe, and the fit is repeated for every delay draw.
	cur := math.NaN()
	for iter := 0; iter < 50; iter++ {
		g1, g2, i11, i12, i22 := info(tr.a, tr.b)
		det := i11*i22 - i12*i12
		if !(det > 0) {
			break
		}
		da := (i22*g1 - i12*g2) / det
		db := (i11*g2 - i12*g1) / det
		if math.Abs(da)+math.Abs(db) < 0.01 {
			tr.a, tr.b, cur = tr.a+da, tr.b+db, math.NaN()
			if math.Abs(da)+math.Abs(db) < 1e-9 {
				break
			}
			continue
		}
		if math.IsNaN(cur) {
			cur = obj(tr.a, tr.b)
		}
		t := 1.0
		var na, nb, val float64
		for {
			na, nb = tr.a+t*da, tr.b+t*db
			val = obj(na, nb)
			if val >= cur-1e-12*math.Abs(cur) || t < 1e-6 {
				break
			}
			t /= 2
		}
		tr.a, tr.b, cur = na, nb, val
	}
	_, _, i11, i12, i22 = info(tr.a, tr.b)
	return i11, i12, i22
}

// draw returns (a, b) drawn from their approximate posterior.
func (tr *trend) draw(rng *rand.Rand) (a, b float64) {
	z1, z2 := rng.NormFloat64(), rng.NormFloat64()
	return tr.a + tr.l11*z1, tr.b + tr.l21*z1 + tr.l22*z2
}
