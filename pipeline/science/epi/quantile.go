package epi

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Standard normal quantiles Φ⁻¹(p) of QuantileLevels, for the starting
// guesses only (Halley's steps make the result exact whatever their error).
const (
	z975 = 1.959963984540054
	z95  = 1.6448536269514722
	z75  = 0.6744897501960817
)

// levelZ are Φ⁻¹ of QuantileLevels, in their order.
func levelZ() [7]float64 { return [7]float64{-z975, -z95, -z75, 0, z75, z95, z975} }

// gammaQuantiles fills q with the quantiles of the gamma (shape a, scale b)
// at QuantileLevels, as R's qgamma(p, shape = a, scale = b).
//
// Why not just gonum: distuv.Gamma.Quantile (mathext.GammaIncRegInv) agrees
// with R on the reference cases, but is slow (its p < 0.25 branch is a
// false-position search, and its Newton starts from a rough guess), too
// slow for a full recompute of every region and day. Here each
// quantile starts from the Cornish–Fisher expansion of DiDonato & Morris
// (1986, ACM TOMS 12:377, eq. 31) and takes Halley steps on gonum's own
// P(a, x) or Q(a, x) until the step is below 1e-6 relative; Halley's cubic
// convergence leaves ~1e-18 after that. Usually that is one evaluation of
// P or Q. The answer is the root of the same gonum function gonum's
// inverse uses, so it agrees with it to rounding (tested to 1e-13 over a
// grid), and with EpiEstim to the reference tolerance. Small shapes (a < 1,
// possible only with a non-default prior and no cases) go to gonum directly.
//
// Only the levels in mask are computed (bit i: QuantileLevels()[i]); the
// others are set to NaN, never left stale.
func gammaQuantiles(q *[7]float64, a, b float64, mask levelMask) {
	small := !(a >= 1) || math.IsInf(a, 0)
	var lg float64
	if !small {
		lg, _ = math.Lgamma(a)
	}
	zs := levelZ()
	for i, p := range QuantileLevels() {
		switch {
		case !mask.has(i):
			q[i] = math.NaN()
		case small:
			q[i] = mathext.GammaIncRegInv(a, p) * b
		case p == 0.5 && a >= medianSeriesMin:
			q[i] = gammaMedian(a) * b
		default:
			q[i] = unitGammaQuantile(p, zs[i], a, lg) * b
		}
	}
}

// levelMask selects posterior quantiles by their index in QuantileLevels.
type levelMask uint8

const allLevels levelMask = 1<<7 - 1

func (m levelMask) has(i int) bool { return m&(1<<i) != 0 }

// medianSeriesMin is the smallest shape for which gammaMedian is exact to
// rounding (its first omitted term is below 1e-16 relative there; tested
// against gonum's inverse over a grid). Posteriors reach it once a 7-day
// window holds 200 cases, which is most of a large region's windows.
const medianSeriesMin = 200

// gammaMedian is the median of the unit gamma with shape a ≥
// medianSeriesMin from its asymptotic series in 1/a (Choi 1994, Proc. AMS
// 121:245, eq. 1.2, confirming Ramanujan; Berg & Pedersen 2006): no
// incomplete gamma evaluation, a third of the cost of the median and
// 95 % interval the processor publishes.
func gammaMedian(a float64) float64 {
	u := 1 / a
	return a - 1.0/3 + u*(8.0/405+u*(184.0/25515+u*(2248.0/3444525-u*(19006408.0/15345358875))))
}

// unitGammaQuantile is the p-quantile of the gamma with shape a ≥ 1 and
// scale 1; z ≈ Φ⁻¹(p) and lg = lgamma(a).
func unitGammaQuantile(p, z, a, lg float64) float64 {
	x := cornishFisher(z, a)
	if !(x > 0) {
		// Wilson–Hilferty, positive for every p used here once a ≥ 1
		// but checked anyway.
		c := 1 / (9 * a)
		y := 1 - c + z*math.Sqrt(c)
		x = a * y * y * y
		if !(x > 0) {
			return mathext.GammaIncRegInv(a, p)
		}
	}
	upper := p > 0.5
	q := 1 - p // exact for p ≥ 0.5 (Sterbenz)
	for range 20 {
		// f(x) = P(a,x) - p, computed from the upper tail when p is there
		// so that no digits cancel.
		var f float64
		if upper {
			f = q - mathext.GammaIncRegComp(a, x)
		} else {
			f = mathext.GammaIncReg(a, x) - p
		}
		// f' is the gamma density, f''/f' = (a-1)/x - 1.
		d := math.Exp((a-1)*math.Log(x) - x - lg)
		if d == 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			break
		}
		u := f / d
		step := u / (1 - 0.5*u*((a-1)/x-1))
		next := x - step
		if !(next > 0) {
			next = x / 2 // stay in the domain; the next step recovers
		}
		if math.Abs(step) <= 1e-6*x {
			return next
		}
		x = next
	}
	return mathext.GammaIncRegInv(a, p)
}

// cornishFisher is DiDonato & Morris (1986) eq. 31: the p-quantile of the
// unit gamma as a + s√a + … in powers of 1/√a, s = Φ⁻¹(p).
func cornishFisher(s, a float64) float64 {
	ra := math.Sqrt(a)
	s2 := s * s
	s3 := s2 * s
	w := a + s*ra + (s2-1)/3
	w += (s3 - 7*s) / (36 * ra)
	w -= (3*s2*s2 + 7*s2 - 16) / (810 * a)
	w += (9*s3*s2 + 256*s3 - 433*s) / (38880 * a * ra)
	return w
}

// With Cori.WithInterpolatedQuantiles, shapes from chebMinShape to
// chebMaxShape — every window with 50 to 100,000 cases, most of a live
// region's windows — take their quantiles from largeShapes instead of
// root-finding.
const (
	chebMinShape = 50
	chebMaxShape = 1e5
	chebNodes    = 16
)

// largeShapes interpolates the unit gamma quantile for shapes in
// [chebMinShape, chebMaxShape], built once from the root finder
// (unitGammaQuantile) when the package loads and read-only after that, like
// a CRC table.
var largeShapes = newChebTables()

// chebTables holds, for each of QuantileLevels, the Chebyshev coefficients
// of the quantile's remainder after its first Cornish–Fisher terms,
//
//	g(t) = (x_p(a) − a − z√a − (z²−1)/3) / t,  t = 1/√a,  z = Φ⁻¹(p),
//
// over t ∈ [1/√chebMaxShape, 1/√chebMinShape]. g is smooth and slowly
// varying there (it tends to (z³−7z)/36 as a grows), and it enters the
// quantile multiplied by t, so an interpolation error of ε in g is an error
// of ε·t/x_p ≲ ε/a^1.5 relative in the quantile. Evaluating it costs a
// square root and chebNodes multiply-adds, far less than one incomplete
// gamma evaluation. TestChebQuantiles bounds the error against the root
// finder over the whole range (below 1e-13 relative).
type chebTables struct {
	c    [7][chebNodes]float64
	tMin float64
	tMax float64
}

func newChebTables() *chebTables {
	ts := &chebTables{}
	ts.tMin, ts.tMax = 1/math.Sqrt(chebMaxShape), 1/math.Sqrt(chebMinShape)
	var g [chebNodes]float64
	zs := levelZ()
	for i, p := range QuantileLevels() {
		z := zs[i]
		for k := range g {
			u := math.Cos(math.Pi * (float64(k) + 0.5) / chebNodes)
			t := ts.tMin + (u+1)/2*(ts.tMax-ts.tMin)
			a := 1 / (t * t)
			lg, _ := math.Lgamma(a)
			g[k] = (unitGammaQuantile(p, z, a, lg) - cfBase(z, a, math.Sqrt(a))) / t
		}
		for j := range ts.c[i] {
			sum := 0.0
			for k := range g {
				sum += g[k] * math.Cos(math.Pi*float64(j)*(float64(k)+0.5)/chebNodes)
			}
			ts.c[i][j] = 2 * sum / chebNodes
		}
	}
	return ts
}

// cfBase is the quantile's Cornish–Fisher expansion up to its constant
// term: a + z√a + (z²−1)/3, ra = √a.
func cfBase(z, a, ra float64) float64 { return a + z*ra + (z*z-1)/3 }

// covers reports whether the table interpolates shape a.
func (ts *chebTables) covers(a float64) bool { return a >= chebMinShape && a <= chebMaxShape }

// quantiles is gammaQuantiles for chebMinShape ≤ a ≤ chebMaxShape.
func (ts *chebTables) quantiles(q *[7]float64, a, b float64, mask levelMask) {
	ra := math.Sqrt(a)
	t := 1 / ra
	u := (2*t - ts.tMin - ts.tMax) / (ts.tMax - ts.tMin)
	zs := levelZ()
	for i := range q {
		if !mask.has(i) {
			q[i] = math.NaN()
			continue
		}
		c := &ts.c[i]
		// Clenshaw's recurrence for Σ' c_j T_j(u).
		var b1, b2 float64
		for j := chebNodes - 1; j >= 1; j-- {
			b1, b2 = 2*u*b1-b2+c[j], b1
		}
		g := u*b1 - b2 + c[0]/2
		q[i] = (cfBase(zs[i], a, ra) + g*t) * b
	}
}
