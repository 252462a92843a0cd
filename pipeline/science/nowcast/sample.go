package nowcast

import (
	"math"
	"math/rand/v2"
)

// gammaRand draws from the gamma distribution with shape a > 0 and scale
// 1 by Marsaglia & Tsang (2000), "A simple method for generating gamma
// variables", ACM TOMS 26:363, with their boost U^(1/a) for a < 1. About
// one normal and one uniform a draw: the nowcast draws thousands per
// region, which gonum's distuv (same method, behind an interface and a
// source adapter) would make several times slower.
func gammaRand(rng *rand.Rand, a float64) float64 {
	if a < 1 {
		u := rng.Float64()
		return gammaRand(rng, a+1) * math.Pow(u, 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for {
			x = rng.NormFloat64()
			v = 1 + c*x
			if v > 0 {
				break
			}
		}
		v = v * v * v
		u := rng.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 {
			return d * v
		}
		if math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// poissonRand draws from the Poisson distribution with mean mu ≥ 0: by
// inversion for small means, otherwise by Hörmann's (1993) transformed
// rejection with squeeze, PTRS ("The transformed rejection method for
// generating Poisson random variables", Insurance: Mathematics and
// Economics 12:39), as numpy does.
func poissonRand(rng *rand.Rand, mu float64) float64 {
	switch {
	case !(mu > 0):
		return 0
	case mu < 10:
		// Inversion: P(0) = e^-mu, P(k) = P(k-1)·mu/k.
		u := rng.Float64()
		p := math.Exp(-mu)
		k := 0.0
		for u > p {
			u -= p
			k++
			p *= mu / k
			if p == 0 { // far in the tail: rounding
				break
			}
		}
		return k
	}
	slam := math.Sqrt(mu)
	loglam := math.Log(mu)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + mu + 0.43)
		if us >= 0.07 && v <= vr {
			return k
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -mu+k*loglam-logFactorial(k) {
			return k
		}
	}
}

// negBinRand draws U ~ Poisson(c·λ) with λ ~ Gamma(shape a, rate b): the
// negative binomial number of cases still to come of a day whose expected
// count λ has that posterior and a share c of which is not reported yet.
// Small means (most days, and every nearly complete one) are drawn by
// inversion of the negative binomial, P(0) = (b/(b+c))^a and P(k) =
// P(k−1)·(a+k−1)/k·c/(b+c): one uniform, where the gamma and the Poisson
// would take three to five draws and a logarithm; larger ones as the
// mixture.
func negBinRand(rng *rand.Rand, a, b, c float64) float64 {
	if !(c > 0) {
		return 0
	}
	if mean := a * c / b; mean < 8 {
		u := rng.Float64()
		// P(0) = (1 + c/b)^−a ≥ 1 − a·c/b = 1 − mean (Bernoulli's
		// inequality): below that bound the draw is 0 without computing
		// P(0), which saves the logarithm and the exponential on nearly
		// every draw of a nearly complete day.
		if u <= 1-mean {
			return 0
		}
		r := c / (b + c)
		p := math.Exp(-a * math.Log1p(c/b))
		k := 0.0
		for u > p {
			u -= p
			k++
			p *= (a + k - 1) / k * r
			if p == 0 { // far in the tail: rounding
				break
			}
		}
		return k
	}
	return poissonRand(rng, c*gammaRand(rng, a)/b)
}

// logFactorial is log k! for a whole k ≥ 0: exact sums below 10, else
// Stirling's series to the k⁻⁷ term, whose error is below 1e-13 there —
// as numpy's Poisson sampler does, for math.Lgamma costs as much as the
// rest of a draw.
func logFactorial(k float64) float64 {
	if k < 10 {
		s := 0.0
		for i := 2.0; i <= k; i++ {
			s += math.Log(i)
		}
		return s
	}
	x := k + 1
	x2 := 1 / (x * x)
	series := (1.0/12 - x2*(1.0/360-x2*(1.0/1260-x2*(1.0/1680)))) / x
	return (x-0.5)*math.Log(x) - x + 0.5*math.Log(2*math.Pi) + series
}

// selectK reorders x so that x[k] is its k-th smallest value (0-based),
// nothing larger before it and nothing smaller after it: Hoare's
// quickselect with a median-of-three pivot, O(len(x)) on average. Three
// quantiles of 200 draws cost a third of a sort.
func selectK(x []float64, k int) {
	lo, hi := 0, len(x)-1
	for hi > lo {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// quantiles fills out[i] with the ps[i]-quantile of x, ps increasing, as
// sortedQuantile would on the sorted x, reordering x by selection instead
// of sorting it.
func quantiles(x []float64, ps []float64, out []float64) {
	n := len(x)
	lo := 0 // x[:lo] holds only values ≤ every order statistic still wanted
	for i, p := range ps {
		k := max(min(max(int(math.Ceil(p*float64(n)))-1, 0), n-1), lo)
		selectK(x[lo:], k-lo)
		out[i] = x[k]
		lo = k
	}
}

// linearQuantiles sets out[i] to the ps[i]-quantile of x as
// sortedQuantileLinear would on the sorted x (type 7), ps ascending, by
// selection: each order statistic is selected among the values at or
// above the previous one, and the next one up is their minimum. x is
// reordered.
func linearQuantiles(x []float64, ps []float64, out []float64) {
	n := len(x)
	lo := 0 // x[:lo] holds only values ≤ every order statistic still wanted
	for i, p := range ps {
		k, f := typ7(p, n)
		k = min(max(k, lo), n-1)
		selectK(x[lo:], k-lo)
		v := x[k]
		if f > 0 && k+1 < n {
			next := x[k+1]
			for _, y := range x[k+2:] {
				next = min(next, y)
			}
			v += f * (next - v)
		}
		out[i] = v
		lo = k
	}
}

// tailQuantiles is linearQuantiles for levels in the tails (below 0.5 or
// above), in one pass without reordering x: it keeps the few smallest and
// largest values the levels need (for 200 draws and the 10 and 90 %
// levels, 21 of each) instead of selecting four times. Levels reaching
// further in fall back to linearQuantiles.
func tailQuantiles(x []float64, ps []float64, out []float64) {
	n := len(x)
	tl, th := 0, 0 // how many of the smallest and of the largest are needed
	for _, p := range ps {
		k, _ := typ7(p, n)
		if p < 0.5 {
			tl = max(tl, min(k+2, n))
		} else {
			th = max(th, n-k)
		}
	}
	const most = 32
	if tl > most || th > most || n == 0 {
		linearQuantiles(x, ps, out)
		return
	}
	var lo, hi [most]float64 // the smallest ascending, the largest descending
	nl, nh := 0, 0
	for _, v := range x {
		if tl > 0 && (nl < tl || v < lo[nl-1]) {
			i := min(nl, tl-1)
			for i > 0 && lo[i-1] > v {
				lo[i] = lo[i-1]
				i--
			}
			lo[i] = v
			nl = min(nl+1, tl)
		}
		if th > 0 && (nh < th || v > hi[nh-1]) {
			i := min(nh, th-1)
			for i > 0 && hi[i-1] < v {
				hi[i] = hi[i-1]
				i--
			}
			hi[i] = v
			nh = min(nh+1, th)
		}
	}
	for i, p := range ps {
		k, f := typ7(p, n)
		// order statistic j (0-based): lo[j] from below, hi[n-1-j] from above
		at := func(j int) float64 {
			if p < 0.5 {
				return lo[j]
			}
			return hi[n-1-j]
		}
		v := at(k)
		if f > 0 && k+1 < n {
			v += f * (at(k+1) - v)
		}
		out[i] = v
	}
}

// quantiles3 returns the 2.5, 50 and 97.5 % quantiles of x as
// sortedQuantileLinear would on the sorted x: the tails from the few
// smallest and largest values, kept in one pass (tailQuantiles; for 200
// draws the 5th and 6th of each end), then the median by selection. x is
// reordered.
func quantiles3(x []float64) (q025, median, q975 float64) {
	var q [2]float64
	tailQuantiles(x, []float64{0.025, 0.975}, q[:])
	var m [1]float64
	linearQuantiles(x, []float64{0.5}, m[:])
	return q[0], m[0], q[1]
}

// typ7 is the order statistic (0-based) and interpolation weight of the
// type-7 p-quantile of n values.
func typ7(p float64, n int) (int, float64) {
	h := p * float64(n-1)
	k := int(math.Floor(h))
	return k, h - float64(k)
}

// countQuantiles is quantiles (type 1) for whole-number draws x, all at
// least base: by a histogram of x − base when their range is small (one
// pass instead of a selection per level), else by selection. hist is
// scratch space, grown as needed and returned.
func countQuantiles(x []float64, base, top float64, ps []float64, out []float64, hist []int32) []int32 {
	if !(top-base <= float64(4*len(x))) { // a wide range (or one past int)
		quantiles(x, ps, out)
		return hist
	}
	span := int(top - base)
	if cap(hist) < span+1 {
		hist = make([]int32, span+1)
	}
	hist = hist[:span+1]
	clear(hist)
	for _, v := range x {
		hist[int(v-base)]++
	}
	n := len(x)
	cum, v := 0, 0
	for i, p := range ps {
		k := min(max(int(math.Ceil(p*float64(n))), 1), n) // the k-th smallest, 1-based
		for cum+int(hist[v]) < k {
			cum += int(hist[v])
			v++
		}
		out[i] = base + float64(v)
	}
	return hist
}

// sortedQuantile is the p-quantile of the sorted sample x as the inverse of
// its empirical distribution function (Hyndman & Fan 1996, type 1): the
// smallest value with at least p of the sample at or below it. Counts stay
// whole numbers, and the interval between the q025 and q975 of M draws
// holds a new draw with probability (M+1-2⌈0.025M⌉)/(M+1), 0.95 for M = 200.
func sortedQuantile(x []float64, p float64) float64 {
	k := int(math.Ceil(p*float64(len(x)))) - 1
	return x[min(max(k, 0), len(x)-1)]
}

// sortedQuantileLinear is the p-quantile of the sorted sample x
// interpolated between order statistics (Hyndman & Fan type 7, R's
// default), for continuous quantities such as R.
func sortedQuantileLinear(x []float64, p float64) float64 {
	h := p * float64(len(x)-1)
	i := int(math.Floor(h))
	if i+1 >= len(x) {
		return x[len(x)-1]
	}
	return x[i] + (h-float64(i))*(x[i+1]-x[i])
}
