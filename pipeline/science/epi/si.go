package epi

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// SITolerance is how far the weights of a given (non-parametric) serial
// interval may sum from 1: EpiEstim's check_si_distr accepts |Σw - 1| ≤ 0.01.
const SITolerance = 0.01

// maxSISupport bounds DiscreteSISupport; no real pathogen comes near it.
const maxSISupport = 1 << 16

// DiscreteSI returns the serial interval discretised as EpiEstim 2.2.4's
// discr_si(0:(n-1), mean, sd) does: a gamma with mean mean-1 and sd sd,
// shifted by one day, integrated against a triangular kernel (Cori et al.
// 2013, Web Appendix 11). w[0] is 0. The weights are not renormalised, as in
// EpiEstim, so for small n they sum to less than 1.
func DiscreteSI(mean, sd float64, n int) ([]float64, error) {
	if err := checkSIParams(mean, sd); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("serial interval length must be at least 1, got %d", n)
	}
	a, b := siShapeScale(mean, sd)
	w := make([]float64, n)
	for k := range w {
		w[k] = discrSI(k, a, b)
	}
	return w, nil
}

// DiscreteSISupport returns discr_si(0:(K-1), mean, sd) for the smallest K
// beyond which every weight is exactly 0 in double precision (the gamma CDFs
// have reached 1). Padding it with zeros to any length n gives exactly
// DiscreteSI(mean, sd, n) for n ≥ K, so one vector serves every series length
// and Λ loops stop at K lags instead of t.
func DiscreteSISupport(mean, sd float64) ([]float64, error) {
	if err := checkSIParams(mean, sd); err != nil {
		return nil, err
	}
	a, b := siShapeScale(mean, sd)
	var w []float64
	for k := 0; k < maxSISupport; k++ {
		// Once both CDFs at k-2 are 1, all three terms of every later
		// weight are 1 and the weight is k + (k-2) - 2(k-1) = 0 exactly.
		if k >= 2 && gammaCDF(float64(k-2), a, b) == 1 && gammaCDF(float64(k-2), a+1, b) == 1 {
			for len(w) > 1 && w[len(w)-1] == 0 {
				w = w[:len(w)-1]
			}
			return w, nil
		}
		w = append(w, discrSI(k, a, b))
	}
	return nil, fmt.Errorf("serial interval mean %v sd %v: weights still non-zero after %d days", mean, sd, maxSISupport)
}

func checkSIParams(mean, sd float64) error {
	switch {
	case math.IsNaN(mean) || math.IsInf(mean, 0) || mean <= 1:
		// discr_si: "mu should be > 1" (the gamma is shifted by one day).
		return fmt.Errorf("serial interval mean must be a number above 1 day, got %v", mean)
	case math.IsNaN(sd) || math.IsInf(sd, 0) || sd <= 0:
		return fmt.Errorf("serial interval sd must be a positive number of days, got %v", sd)
	}
	return nil
}

// siShapeScale is discr_si's a = ((μ-1)/σ)², b = σ²/(μ-1); R's x^2 is x*x.
func siShapeScale(mean, sd float64) (a, b float64) {
	r := (mean - 1) / sd
	return r * r, (sd * sd) / (mean - 1)
}

// discrSI is one weight of discr_si, with R's order of operations; the
// explicit float64 conversions forbid fused multiply-adds, which would change
// the last bits on some architectures.
func discrSI(k int, a, b float64) float64 {
	x := float64(k)
	res := float64(x*gammaCDF(x, a, b)) + float64((x-2)*gammaCDF(x-2, a, b)) - float64(2*(x-1)*gammaCDF(x-1, a, b))
	ab := a * b
	res += float64(ab * (2*gammaCDF(x-1, a+1, b) - gammaCDF(x-2, a+1, b) - gammaCDF(x, a+1, b)))
	return math.Max(0, res)
}

// gammaCDF is R's pgamma(x, shape = a, scale = b): 0 for x ≤ 0, else the
// regularised lower incomplete gamma P(a, x/b). R divides by the scale, so do
// we (multiplying by a rate would round differently).
func gammaCDF(x, a, b float64) float64 {
	if x <= 0 {
		return 0
	}
	return mathext.GammaIncReg(a, x/b)
}

// ValidateSI checks a given (non-parametric) serial interval the way
// EpiEstim's check_si_distr does: w[0] is 0 (nobody infects on the day of
// their own onset), no weight is negative, and the weights sum to 1 within
// SITolerance.
func ValidateSI(w []float64) error {
	if len(w) == 0 {
		return errors.New("serial interval is empty; give weights w[0]=0, w[1], … summing to 1")
	}
	if w[0] != 0 {
		return fmt.Errorf("serial interval must start with 0 at lag 0, got w[0] = %v", w[0])
	}
	sum := 0.0
	for k, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return fmt.Errorf("serial interval weight w[%d] = %v; weights must be non-negative numbers", k, x)
		}
		sum += x
	}
	if math.Abs(sum-1) > SITolerance {
		return fmt.Errorf("serial interval weights sum to %v; they must sum to 1 within %v", sum, SITolerance)
	}
	return nil
}

// SIMean is Σ k·w[k], the mean of the discretised serial interval (EpiEstim's
// final_mean_si): windows ending on or before it are not estimated.
func SIMean(w []float64) float64 {
	m := 0.0
	for k, x := range w {
		m += float64(float64(k) * x)
	}
	return m
}

// SISD is the standard deviation of the discretised serial interval,
// √(Σ k²·w[k] − mean²).
func SISD(w []float64) float64 {
	m, m2 := 0.0, 0.0
	for k, x := range w {
		m += float64(k) * x
		m2 += float64(k*k) * x
	}
	return math.Sqrt(max(m2-m*m, 0))
}

// trimSI drops trailing zero weights: they add exact zeros to Λ, so leaving
// them out changes no bit of the result and saves the loop.
func trimSI(w []float64) []float64 {
	for len(w) > 1 && w[len(w)-1] == 0 {
		w = w[:len(w)-1]
	}
	return w
}

// checkSIShape is the structural part of ValidateSI that also holds for a
// parametric vector, which EpiEstim does not require to sum to 1 (a short
// series truncates it).
func checkSIShape(w []float64) error {
	if len(w) == 0 {
		return errors.New("serial interval is empty")
	}
	if w[0] != 0 {
		return fmt.Errorf("serial interval must start with 0 at lag 0, got w[0] = %v", w[0])
	}
	for k, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return fmt.Errorf("serial interval weight w[%d] = %v; weights must be non-negative numbers", k, x)
		}
	}
	return nil
}
