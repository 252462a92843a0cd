package signals

import (
	"errors"
	"math"
)

// This file is R's glm.fit (stats 4.2) for the one model surveillance's
// farringtonFlexible fits: family quasipoisson(link = "log"), no offset,
// optional prior weights, glm.control() defaults (epsilon 1e-8, maxit 25).
// Together with summary.glm's dispersion and t-test, predict.glm's se.fit
// and lm.influence's hat values, it is everything the Farrington and
// Noufaily methods need from a GLM.

// dblEpsilon is R's .Machine$double.eps, the floor of the log link's
// inverse (make.link("log")$linkinv is pmax(exp(eta), .Machine$double.eps)).
const dblEpsilon = 0x1p-52

// glm.control() defaults: stats::glm.control(epsilon = 1e-8, maxit = 25).
const (
	glmEpsilon = 1e-8
	glmMaxit   = 25
)

// glmFit is what farringtonFlexible uses of a fitted glm object.
type glmFit struct {
	p         int       // columns of the design matrix
	coef      []float64 // original column order; NaN where aliased (R's NA)
	mu        []float64 // fitted.values
	y, prior  []float64 // response and prior weights
	weights   []float64 // working weights w², from the last iteration's start
	residuals []float64 // working residuals (y-μ)/μ'(η) at the final η
	qr        *qrDecomp // the last iteration's weighted QR (rows with good)
	good      []bool    // rows in the QR
	dfResid   int
	converged bool
}

// errGLM is a failure R's glm.fit stops with (an error, not a warning).
var errGLM = errors.New("glm.fit cannot fit this baseline")

// linkinv is the log link's inverse, pmax(exp(η), ε).
func linkinv(eta float64) float64 { return max(math.Exp(eta), dblEpsilon) }

// devResid is quasipoisson()$dev.resids for one observation.
func devResid(y, mu, wt float64) float64 {
	if y > 0 {
		return 2 * (wt * (y*math.Log(y/mu) - (y - mu)))
	}
	return 2 * (mu * wt)
}

func deviance(y, mu, wt []float64) float64 {
	var s sum
	for i := range y {
		s.add(devResid(y[i], mu[i], wt[i]))
	}
	return s.value()
}

// sum adds with Neumaier's compensation: R's sum() and mean() accumulate
// in long double, and a compensated double sum comes closer to that than a
// plain one.
type sum struct{ s, c float64 }

func (a *sum) add(x float64) {
	t := a.s + x
	if math.Abs(a.s) >= math.Abs(x) {
		a.c += (a.s - t) + x
	} else {
		a.c += (x - t) + a.s
	}
	a.s = t
}

func (a *sum) value() float64 { return a.s + a.c }

// fitQuasiPoisson is glm.fit(x, y, weights = prior, family =
// quasipoisson()) with x row-major (n rows of p). It returns errGLM where R
// stops with an error; non-convergence is not an error (converged false),
// as in R.
//
// It is ported from R step by step: IRLS from mustart = y + 0.1, R's LINPACK
// QR dqrdc2 (linpack.go), convergence at |Δdeviance|/(|deviance| + 0.1) <
// 1e-8; so are summary.glm's dispersion and t-test, predict.glm's standard
// error, the hat values, and the quantile searches of R's qnbinom and qpois
// (dist.go).
func fitQuasiPoisson(x [][]float64, y, prior []float64) (*glmFit, error) {
	n := len(y)
	p := len(x[0])
	// family$initialize: mustart <- y + 0.1; eta <- linkfun(mustart).
	eta := make([]float64, n)
	mu := make([]float64, n)
	for i := range y {
		eta[i] = math.Log(y[i] + 0.1)
		mu[i] = linkinv(eta[i])
	}
	devold := deviance(y, mu, prior)
	var (
		start, coefold []float64
		conv           bool
		qr             *qrDecomp
		good           = make([]bool, n)
		w              []float64
	)
	for iter := 1; iter <= glmMaxit; iter++ {
		// good <- (weights > 0) & (mu.eta.val != 0); mu.eta is never 0 here.
		ng := 0
		for i := range y {
			good[i] = prior[i] > 0 && linkinv(eta[i]) != 0
			if good[i] {
				ng++
			}
		}
		if ng == 0 {
			conv = false // "no observations informative"
			break
		}
		xw := make([]float64, ng*p) // x[good, ] * w, column-major
		zw := make([]float64, ng)
		w = make([]float64, ng)
		r := 0
		for i := range y {
			if !good[i] {
				continue
			}
			me := linkinv(eta[i]) // mu.eta(eta) for the log link
			z := eta[i] + (y[i]-mu[i])/me
			w[r] = math.Sqrt((prior[i] * me * me) / mu[i]) // variance(mu) = mu
			for j := 0; j < p; j++ {
				xw[r+j*ng] = x[i][j] * w[r]
			}
			zw[r] = z * w[r]
			r++
		}
		// C_Cdqrls(x*w, z*w, min(1e-7, epsilon/1000)).
		qr = dqrdc2(xw, ng, p, min(1e-7, glmEpsilon/1000))
		b, ok := qr.coef(zw)
		if !ok {
			return nil, errGLM
		}
		for _, v := range b {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				// R warns and breaks, then fails on the missing coef.
				return nil, errGLM
			}
		}
		if start == nil {
			start = make([]float64, p)
		}
		for j, c := range qr.pivot {
			start[c] = b[j]
		}
		linpred := func() {
			for i := range y {
				e := 0.0
				for j := 0; j < p; j++ {
					e += x[i][j] * start[j]
				}
				eta[i] = e
				mu[i] = linkinv(e)
			}
		}
		linpred()
		dev := deviance(y, mu, prior)
		if math.IsInf(dev, 0) || math.IsNaN(dev) || !validMu(mu) {
			// Step halving; R stops when there is nothing to halve towards.
			if coefold == nil {
				return nil, errGLM
			}
			for ii := 1; math.IsInf(dev, 0) || math.IsNaN(dev) || !validMu(mu); ii++ {
				if ii > glmMaxit {
					return nil, errGLM
				}
				for j := range start {
					start[j] = (start[j] + coefold[j]) / 2
				}
				linpred()
				dev = deviance(y, mu, prior)
			}
		}
		if math.Abs(dev-devold)/(0.1+math.Abs(dev)) < glmEpsilon {
			conv = true
			break
		}
		devold = dev
		coefold = append(coefold[:0], start...)
	}
	if qr == nil {
		return nil, errGLM
	}
	fit := &glmFit{
		p: p, mu: mu, y: y, prior: prior, qr: qr, good: good, converged: conv,
		coef:      append([]float64(nil), start...),
		weights:   make([]float64, n),
		residuals: make([]float64, n),
	}
	for j := qr.rank; j < p; j++ {
		fit.coef[qr.pivot[j]] = math.NaN()
	}
	r, nOK := 0, 0
	for i := range y {
		fit.residuals[i] = (y[i] - mu[i]) / linkinv(eta[i])
		if good[i] {
			fit.weights[i] = w[r] * w[r]
			r++
		}
		if prior[i] != 0 {
			nOK++
		}
	}
	fit.dfResid = nOK - qr.rank
	return fit, nil
}

// validMu is the quasipoisson family's validmu: finite and positive.
func validMu(mu []float64) bool {
	for _, m := range mu {
		if !(m > 0) || math.IsInf(m, 0) {
			return false
		}
	}
	return true
}

// dispersion is summary.glm's estimate for a quasi family: the working
// weights times the squared working residuals, summed over positive
// weights, over the residual degrees of freedom (NaN when there are none).
func (f *glmFit) dispersion() float64 {
	if f.dfResid <= 0 {
		return math.NaN()
	}
	var s sum
	for i, w := range f.weights {
		if w > 0 {
			s.add(w * f.residuals[i] * f.residuals[i])
		}
	}
	return s.value() / float64(f.dfResid)
}

// unscaledVar returns the diagonal of (RᵀR)⁻¹ (summary.glm's
// chol2inv(Qr$qr[p1, p1])) by original column; NaN for aliased columns.
func (f *glmFit) unscaledVar() []float64 {
	inv := f.qr.rInverse()
	v := make([]float64, f.p)
	for j := range v {
		v[j] = math.NaN()
	}
	for i := range inv {
		s := 0.0
		for j := range inv[i] {
			s += inv[i][j] * inv[i][j]
		}
		v[f.qr.pivot[i]] = s
	}
	return v
}

// predictLink is predict.glm(type = "link", se.fit = TRUE) at the design
// row x0 with dispersion disp: the linear predictor over the first rank
// pivoted columns and its standard error sqrt(x0ᵀ(RᵀR)⁻¹x0 · disp).
func (f *glmFit) predictLink(x0 []float64, disp float64) (eta, se float64) {
	k := f.qr.rank
	for j := 0; j < k; j++ {
		c := f.qr.pivot[j]
		eta += x0[c] * f.coef[c]
	}
	inv := f.qr.rInverse()
	ip := 0.0
	for c := 0; c < k; c++ {
		xr := 0.0 // (X[, piv] %*% Rinv)[c]
		for j := 0; j <= c; j++ {
			xr += x0[f.qr.pivot[j]] * inv[j][c]
		}
		ip += xr * xr * disp
	}
	return eta, math.Sqrt(ip)
}

// hatValues is hatvalues() of the fit, one per row in the QR, with
// lm.influence's rounding of values within 10·ε of 1 to 1.
func (f *glmFit) hatValues() []float64 {
	return f.qr.hat(10 * dblEpsilon)
}
