package epi

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// ProbAbove is the posterior probability that R exceeds x: for Cori's gamma
// posterior (shape a, scale b) 1 − P(a, x/b), R's 1 - pgamma(x, shape, scale).
// The shape and scale are read back from the mean and sd (a = (mean/sd)²,
// b = sd²/mean). NaN where the estimate is not available.
func (e Estimate) ProbAbove(x float64) float64 {
	if !e.OK || !(e.SD > 0) || !(e.Mean > 0) {
		return math.NaN()
	}
	shape := (e.Mean / e.SD) * (e.Mean / e.SD)
	scale := e.SD * e.SD / e.Mean
	if x <= 0 {
		return 1
	}
	return mathext.GammaIncRegComp(shape, x/scale)
}

// GrowthRate is the epidemic's exponential growth rate r per day that goes
// with reproduction number r0 under a gamma-distributed serial interval of
// the given mean and sd: Wallinga & Lipsitch (2007), "How generation
// intervals shape the relationship between growth rates and reproductive
// numbers", Proc R Soc B 274:599–604, eq. 3.2: with a gamma generation
// interval of shape k and scale θ, R = (1 + r·θ)^k, so r = (R^(1/k) − 1)/θ.
// (The serial interval stands in for the generation interval, as EpiEstim's
// renewal equation does.) NaN for R ≤ 0 or a bad interval.
func GrowthRate(r0, siMean, siSD float64) float64 {
	if !(r0 > 0) || !(siMean > 0) || !(siSD > 0) {
		return math.NaN()
	}
	k := (siMean / siSD) * (siMean / siSD)
	theta := siSD * siSD / siMean
	return (math.Pow(r0, 1/k) - 1) / theta
}

// DoublingTime is ln 2 / r, in days, for a growing epidemic (r > 0); for a
// declining one (r < 0) it is negative and its magnitude is the halving time.
// ±Inf at r = 0 (neither), NaN for NaN.
func DoublingTime(r float64) float64 { return math.Ln2 / r }

// Trend is a five-level label of where R stands relative to 1, from the
// posterior probability that R is below 1, with the cut-offs the R package
// EpiNow2 uses for its "expected change in daily cases" (its function
// map_prob_change; Abbott et al., EpiNow2): below 0.05 increasing, below 0.4
// likely increasing, below 0.6 stable, below 0.95 likely decreasing, else
// decreasing.
type Trend string

// Trend labels.
const (
	TrendIncreasing       Trend = "increasing"
	TrendLikelyIncreasing Trend = "likely increasing"
	TrendStable           Trend = "stable"
	TrendLikelyDecreasing Trend = "likely decreasing"
	TrendDecreasing       Trend = "decreasing"
)

// TrendOf labels probBelow1 = P(R < 1); "" for NaN.
func TrendOf(probBelow1 float64) Trend {
	switch {
	case math.IsNaN(probBelow1):
		return ""
	case probBelow1 < 0.05:
		return TrendIncreasing
	case probBelow1 < 0.4:
		return TrendLikelyIncreasing
	case probBelow1 < 0.6:
		return TrendStable
	case probBelow1 < 0.95:
		return TrendLikelyDecreasing
	}
	return TrendDecreasing
}
