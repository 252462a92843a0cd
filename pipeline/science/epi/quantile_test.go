package epi

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mathext"
)

// TestGammaQuantilesMatchGonum: the fast quantiles are roots of the same
// gonum P(a, x) as gonum's own inverse, so they must agree to rounding over
// every shape a posterior can have (a_prior + a count) and then some.
func TestGammaQuantilesMatchGonum(t *testing.T) {
	var shapes []float64
	for a := 0.05; a < 2e6; a *= 1.07 {
		shapes = append(shapes, a)
	}
	for n := 0.0; n <= 300; n++ {
		shapes = append(shapes, 1+n, 0.25+n) // default prior, prior sd 2×mean
	}
	worst, worstA := 0.0, 0.0
	for _, a := range shapes {
		var q [7]float64
		gammaQuantiles(&q, a, 1, allLevels)
		for i, p := range QuantileLevels() {
			want := mathext.GammaIncRegInv(a, p)
			if e := relErr(q[i], want); e > worst {
				worst, worstA = e, a
			}
			if e := relErr(q[i], want); e > 1e-13 || math.IsNaN(q[i]) {
				t.Errorf("a = %v p = %v: quantile %.17g, gonum %.17g (rel err %.3g)", a, p, q[i], want, e)
			}
		}
	}
	t.Logf("worst rel difference from gonum's GammaIncRegInv: %.3g at a = %.4g", worst, worstA)
}

// TestGammaMedianSeries: from medianSeriesMin up, the median's series is
// gonum's inverse to a few units in the last place.
func TestGammaMedianSeries(t *testing.T) {
	worst := 0.0
	for a := float64(medianSeriesMin); a < 1e8; a *= 1.003 {
		want := mathext.GammaIncRegInv(a, 0.5)
		e := relErr(gammaMedian(a), want)
		worst = max(worst, e)
		if e > 1e-15 {
			t.Fatalf("a = %v: series median %.17g, gonum %.17g (rel err %.3g)", a, gammaMedian(a), want, e)
		}
	}
	t.Logf("worst rel difference from gonum: %.3g", worst)
	// Below the threshold the series is not good enough, which is why it
	// has one.
	if e := relErr(gammaMedian(10), mathext.GammaIncRegInv(10, 0.5)); e < 1e-12 {
		t.Errorf("series at a = 10 within %.3g; the threshold could be lower", e)
	}
}

func TestGammaQuantilesScale(t *testing.T) {
	var q1, q2 [7]float64
	gammaQuantiles(&q1, 37, 1, allLevels)
	gammaQuantiles(&q2, 37, 0.125, allLevels)
	for i := range q1 {
		if q2[i] != q1[i]*0.125 {
			t.Errorf("quantile %d: %v at scale 1/8, want %v", i, q2[i], q1[i]*0.125)
		}
	}
}

// TestChebQuantiles: over the whole interpolated range, the table's
// quantiles are the root finder's (unitGammaQuantile, the path below and
// above the range) to within 1e-14 relative — five orders of magnitude
// inside the 1e-9 the EpiEstim reference asks for.
func TestChebQuantiles(t *testing.T) {
	zs := levelZ()
	worst, worstA := 0.0, 0.0
	for a := float64(chebMinShape); a <= chebMaxShape; a *= 1.0007 {
		var q [7]float64
		largeShapes.quantiles(&q, a, 1, allLevels)
		lg, _ := math.Lgamma(a)
		for i, p := range QuantileLevels() {
			want := unitGammaQuantile(p, zs[i], a, lg)
			e := relErr(q[i], want)
			if e > worst {
				worst, worstA = e, a
			}
			if e > 1e-13 || math.IsNaN(q[i]) {
				t.Fatalf("a = %v p = %v: table %.17g, root finder %.17g (rel err %.3g)", a, p, q[i], want, e)
			}
		}
	}
	t.Logf("worst rel difference from the root finder: %.3g at a = %.6g", worst, worstA)
}
