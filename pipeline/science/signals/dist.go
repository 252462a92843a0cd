package signals

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// The distribution functions R calls, computed as R's nmath does them
// where the algorithm decides the result (qnorm's rational approximation;
// the left-continuous search of the discrete quantiles), on gonum's
// incomplete beta and gamma functions elsewhere.

// qnorm is R's qnorm(p) for the standard normal, lower tail: Wichura's
// algorithm AS 241 (Applied Statistics 37:477, 1988), with R's arithmetic
// (1-p as 0.5-p+0.5, the Horner order of src/nmath/qnorm.c).
func qnorm(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0 || p > 1:
		return math.NaN()
	case p == 0:
		return math.Inf(-1)
	case p == 1:
		return math.Inf(1)
	}
	q := p - 0.5
	if math.Abs(q) <= .425 { // 0.075 <= p <= 0.925
		r := .180625 - q*q
		return q * (((((((r*2509.0809287301226727+33430.575583588128105)*r+67265.770927008700853)*r+
			45921.953931549871457)*r+13731.693765509461125)*r+1971.5909503065514427)*r+133.14166789178437745)*r +
			3.387132872796366608) /
			(((((((r*5226.495278852854561+28729.085735721942674)*r+39307.89580009271061)*r+
				21213.794301586595867)*r+5394.1960214247511077)*r+687.1870074920579083)*r+42.313330701600911252)*r + 1.)
	}
	r := p
	if q > 0 {
		r = 0.5 - p + 0.5 // R_DT_CIv(p)
	}
	r = math.Sqrt(-math.Log(r))
	var val float64
	if r <= 5. {
		r += -1.6
		val = (((((((r*7.7454501427834140764e-4+.0227238449892691845833)*r+.24178072517745061177)*r+
			1.27045825245236838258)*r+3.64784832476320460504)*r+5.7694972214606914055)*r+4.6303378461565452959)*r +
			1.42343711074968357734) /
			(((((((r*1.05075007164441684324e-9+5.475938084995344946e-4)*r+.0151986665636164571966)*r+
				.14810397642748007459)*r+.68976733498510000455)*r+1.6763848301838038494)*r+2.05319162663775882187)*r + 1.)
	} else {
		r += -5.
		val = (((((((r*2.01033439929228813265e-7+2.71155556874348757815e-5)*r+.0012426609473880784386)*r+
			.026532189526576123093)*r+.29656057182850489123)*r+1.7848265399172913358)*r+5.4637849111641143699)*r +
			6.6579046435011037772) /
			(((((((r*2.04426310338993978564e-15+1.4215117583164458887e-7)*r+1.8463183175100546818e-5)*r+
				7.868691311456132591e-4)*r+.0148753612908506148525)*r+.13692988092273580531)*r+.59983220655588793769)*r + 1.)
	}
	if q < 0 {
		val = -val
	}
	return val
}

// ptTwoSided is 2·pt(-|t|, df), summary.glm's p-value for a quasi family:
// the regularised incomplete beta I_{df/(df+t²)}(df/2, 1/2) (Abramowitz &
// Stegun 26.7.1), as R's pt computes it for moderate df.
func ptTwoSided(t, df float64) float64 {
	if math.IsNaN(t) || !(df > 0) {
		return math.NaN()
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return mathext.RegIncBeta(df/2, 0.5, df/(df+t*t))
}

// pnbinom is R's pnbinom(x, size, prob) for whole x ≥ 0: the regularised
// incomplete beta I_prob(size, x+1).
func pnbinom(x, size, prob float64) float64 {
	if x < 0 {
		return 0
	}
	if size == 0 {
		return 1
	}
	return mathext.RegIncBeta(size, x+1, prob)
}

// ppois is R's ppois(x, lambda) for whole x ≥ 0: the upper regularised
// incomplete gamma Q(x+1, lambda).
func ppois(x, lambda float64) float64 {
	if x < 0 {
		return 0
	}
	if lambda == 0 {
		return 1
	}
	return mathext.GammaIncRegComp(x+1, lambda)
}

// qDiscrete is the p-quantile of a distribution on 0, 1, 2, … with CDF
// cdf, searched from the Cornish-Fisher start y0 as R's qnbinom and qpois
// do (src/nmath/qDiscrete_search.h): the smallest y with cdf(y) ≥
// p·(1−8ε), the fuzz that keeps R's quantiles left-continuous; from far
// out (y0 ≥ 4096) in steps of y0/64, each pass 8 times finer. A NaN from
// cdf ends the search where it is, as in R.
func qDiscrete(p, y0 float64, cdf func(float64) float64) float64 {
	y := math.Max(0, math.RoundToEven(y0)) // R_forceint, then the 0 floor
	z := cdf(y)
	p *= 1 - 8*dblEpsilon
	// search is R's do_search with increment incr.
	search := func(y, incr float64) float64 {
		if z >= p { // to the left
			for {
				newz := math.NaN()
				if y > 0 {
					newz = cdf(y - incr)
				}
				if y == 0 || math.IsNaN(newz) || newz < p {
					return y
				}
				y = math.Max(0, y-incr)
				z = newz
			}
		}
		for { // to the right
			y += incr
			z = cdf(y)
			if math.IsNaN(z) || z >= p {
				return y
			}
		}
	}
	if y < 4096 {
		return search(y, 1)
	}
	incr := math.Floor(y / 64)
	for {
		old := incr
		y = search(y, incr)
		incr = math.Max(1, math.Floor(incr/8))
		if !(old > 1 && incr > y*1e-15) {
			return y
		}
	}
}

// qnbinom is R's qnbinom(p, size, prob), lower tail.
func qnbinom(p, size, prob float64) float64 {
	switch {
	case math.IsNaN(p) || math.IsNaN(size) || math.IsNaN(prob):
		return math.NaN()
	case prob == 0 && size == 0:
		return 0
	case prob <= 0 || prob > 1 || size < 0 || p < 0 || p > 1:
		return math.NaN()
	case prob == 1 || size == 0 || p == 0:
		return 0
	case p == 1:
		return math.Inf(1)
	}
	Q := 1.0 / prob
	P := (1.0 - prob) * Q
	mu := size * P
	sigma := math.Sqrt(size * P * Q)
	gamma := (Q + P) / sigma
	z := qnorm(p)
	return qDiscrete(p, mu+sigma*(z+gamma*(z*z-1)/6), func(y float64) float64 { return pnbinom(y, size, prob) })
}

// qpois is R's qpois(p, lambda), lower tail.
func qpois(p, lambda float64) float64 {
	switch {
	case math.IsNaN(p) || math.IsNaN(lambda):
		return math.NaN()
	case math.IsInf(lambda, 0) || lambda < 0 || p < 0 || p > 1:
		return math.NaN()
	case lambda == 0 || p == 0:
		return 0
	case p == 1:
		return math.Inf(1)
	}
	sigma := math.Sqrt(lambda)
	gamma := 1 / sigma
	z := qnorm(p)
	return qDiscrete(p, lambda+sigma*(z+gamma*(z*z-1)/6), func(y float64) float64 { return ppois(y, lambda) })
}
