package simulate

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// discreteSI returns the serial-interval weights w_0..w_K of a gamma
// distribution with the given mean and sd, discretised the way EpiEstim's
// discr_si does (Cori et al. 2013, Web Appendix 11; the formula is written out
// in the reference's METHOD.md): a gamma shifted by one day, so that w_0 = 0,
// with
//
//	a = ((μ-1)/σ)², b = σ²/(μ-1)
//	w_k = k·G(k) + (k-2)·G(k-2) - 2(k-1)·G(k-1) + a·b·[2·G₊(k-1) - G₊(k-2) - G₊(k)]
//
// where G is the gamma(a, b) CDF and G₊ the gamma(a+1, b) CDF. Using the
// estimator's own discretisation means an unbiased estimator recovers the
// simulated R. The vector is cut where its tail mass is below 1e-6 and
// renormalised to sum to one (a renewal process needs Σw = 1 for R to mean
// offspring per case). mean must exceed 1 and sd be positive.
func discreteSI(mean, sd float64) []float64 {
	a := ((mean - 1) / sd) * ((mean - 1) / sd)
	b := sd * sd / (mean - 1)
	g := distuv.Gamma{Alpha: a, Beta: 1 / b}
	g1 := distuv.Gamma{Alpha: a + 1, Beta: 1 / b}
	cdf := func(d distuv.Gamma, x float64) float64 {
		if x <= 0 {
			return 0
		}
		return d.CDF(x)
	}
	w := []float64{0}
	sum := 0.0
	for k := 1; k < 400; k++ {
		kf := float64(k)
		v := kf*cdf(g, kf) + (kf-2)*cdf(g, kf-2) - 2*(kf-1)*cdf(g, kf-1) +
			a*b*(2*cdf(g1, kf-1)-cdf(g1, kf-2)-cdf(g1, kf))
		v = math.Max(0, v)
		w = append(w, v)
		sum += v
		if 1-sum < 1e-6 && kf > mean {
			break
		}
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// gammaDays returns the cumulative distribution over whole days 0..max of a
// gamma with the given mean and sd rounded to the nearest day: P(d) =
// G(d+½) - G(d-½). The last entry is 1 (the tail is folded into max). A zero
// mean gives "always 0".
func gammaDays(mean, sd float64, max int) []float64 {
	if mean <= 0 {
		return []float64{1}
	}
	if sd <= 0 {
		sd = mean / 2
	}
	shape := (mean / sd) * (mean / sd)
	g := distuv.Gamma{Alpha: shape, Beta: shape / mean}
	cdf := make([]float64, max+1)
	for d := 0; d < max; d++ {
		cdf[d] = g.CDF(float64(d) + 0.5)
	}
	cdf[max] = 1
	return cdf
}

// drawDays draws a day count from a cumulative distribution made by gammaDays.
func drawDays(r *rand.Rand, cdf []float64) int {
	u := r.Float64()
	for d, c := range cdf {
		if u < c {
			return d
		}
	}
	return len(cdf) - 1
}

// poisson draws a Poisson count; a non-positive mean gives 0.
func poisson(r *rand.Rand, mean float64) int {
	if !(mean > 0) {
		return 0
	}
	return int(distuv.Poisson{Lambda: mean, Src: r}.Rand())
}

// newRand returns the random stream named name of one region: streams are
// independent of each other and of other regions, so that, for instance,
// switching reporting delays off leaves the epidemic curve unchanged, and
// fixing one region's R schedule leaves the other regions as they were.
func newRand(seed int64, region, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(region))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// pick returns an index drawn with the given weights (not necessarily
// normalised).
func pick(r *rand.Rand, weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	u := r.Float64() * total
	for i, w := range weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(weights) - 1
}
