package nowcast

import (
	"fmt"
	"math"
)

// cholesky factors the symmetric positive-definite n×n matrix a (row-major,
// only its lower triangle read) in place into its lower Cholesky factor L,
// a = L·Lᵀ; the strict upper triangle is zeroed. The matrices here are the
// posterior precisions of at most a few dozen parameters, so a plain
// O(n³/3) loop beats any library call with its allocations.
func cholesky(a []float64, n int) error {
	for j := 0; j < n; j++ {
		s := a[j*n+j]
		for k := 0; k < j; k++ {
			s -= a[j*n+k] * a[j*n+k]
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("posterior precision not positive definite at parameter %d (pivot %g)", j, s)
		}
		d := math.Sqrt(s)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = s / d
		}
		for k := j + 1; k < n; k++ {
			a[j*n+k] = 0
		}
	}
	return nil
}

// cholSolve solves L·Lᵀ·x = b in place (b becomes x) with the factor of
// cholesky.
func cholSolve(l []float64, n int, b []float64) {
	for i := 0; i < n; i++ { // L·y = b
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i*n+k] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
	cholBack(l, n, b)
}

// cholBack solves Lᵀ·x = b in place. With b standard normal, x is a draw
// from N(0, (L·Lᵀ)⁻¹): how the posterior of the delay parameters is sampled
// from the factor of its precision.
func cholBack(l []float64, n int, b []float64) {
	for i := n - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
}

// cholInvDiag returns the diagonal of (L·Lᵀ)⁻¹, the posterior variances:
// Σ_k (L⁻¹)_{ki}², from the triangular inverse (n³/6 operations).
func cholInvDiag(l []float64, n int) []float64 {
	inv := make([]float64, n*n) // L⁻¹, lower triangular
	for j := 0; j < n; j++ {
		inv[j*n+j] = 1 / l[j*n+j]
		for i := j + 1; i < n; i++ {
			s := 0.0
			for k := j; k < i; k++ {
				s -= l[i*n+k] * inv[k*n+j]
			}
			inv[i*n+j] = s / l[i*n+i]
		}
	}
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		for k := i; k < n; k++ {
			out[i] += inv[k*n+i] * inv[k*n+i]
		}
	}
	return out
}
