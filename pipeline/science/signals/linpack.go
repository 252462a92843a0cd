package signals

import "math"

// This file ports the least-squares kernel under R's glm.fit: the LINPACK
// routines dqrdc2 (R's modified Householder QR with limited column
// pivoting, src/appl/dqrdc2.f), dqrsl (src/appl/dqrsl.f) and dqrls
// (src/appl/dqrls.f, called through stats' C_Cdqrls), and the hat values of
// lminfl (src/library/stats/src/lminfl.f). They are ported loop for loop,
// in R's order of floating-point operations, because a GLM refitted
// hundreds of times per series amplifies no difference by itself but the
// alarm decisions and the negative binomial quantiles of Noufaily are
// step functions of it: the closer the arithmetic, the fewer borderline
// disagreements. Matrices are column-major with leading dimension n, as in
// Fortran.

// qrDecomp is a QR decomposition as dqrdc2 leaves it: R in the upper
// triangle of qr, the Householder vectors below it and in qraux.
type qrDecomp struct {
	qr    []float64 // n×p, column-major
	n, p  int
	qraux []float64
	pivot []int // 0-based original column of each pivoted column
	rank  int
}

// dnrm2 is the Euclidean norm as reference BLAS 3.11 (R's on Debian)
// computes it for numbers of ordinary size: the squares summed in order.
func dnrm2(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s)
}

// ddot is the reference BLAS dot product (its unrolling keeps the
// left-to-right order of the sum).
func ddot(x, y []float64) float64 {
	s := 0.0
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

// daxpy is y += a·x.
func daxpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}

// dqrdc2 factors the n×p column-major x in place with tolerance tol, as
// R's dqrdc2: columns whose norm falls below tol times their original norm
// are moved to the right and not counted in the rank.
func dqrdc2(x []float64, n, p int, tol float64) *qrDecomp {
	col := func(j int) []float64 { return x[j*n : (j+1)*n] }
	qraux := make([]float64, p)
	work1 := make([]float64, p)
	work2 := make([]float64, p)
	pivot := make([]int, p)
	for j := 0; j < p; j++ {
		pivot[j] = j
		if n > 0 {
			qraux[j] = dnrm2(col(j))
			work1[j] = qraux[j]
			work2[j] = qraux[j]
			if work2[j] == 0 {
				work2[j] = 1
			}
		}
	}
	lup := min(n, p)
	k := p + 1 // Fortran's k: one more than the columns still in play
	for l := 0; l < lup; l++ {
		// Cycle negligible columns to the right end (l+1 < k in 1-based terms).
		for l+1 < k && qraux[l] < work2[l]*tol {
			for i := 0; i < n; i++ {
				t := x[i+l*n]
				for j := l + 1; j < p; j++ {
					x[i+(j-1)*n] = x[i+j*n]
				}
				x[i+(p-1)*n] = t
			}
			i, t, tt, ttt := pivot[l], qraux[l], work1[l], work2[l]
			for j := l + 1; j < p; j++ {
				pivot[j-1], qraux[j-1], work1[j-1], work2[j-1] = pivot[j], qraux[j], work1[j], work2[j]
			}
			pivot[p-1], qraux[p-1], work1[p-1], work2[p-1] = i, t, tt, ttt
			k--
		}
		if l == n-1 {
			continue // the last row: no transformation
		}
		xl := x[l+l*n : (l+1)*n] // x(l:n, l)
		nrmxl := dnrm2(xl)
		if nrmxl == 0 {
			continue
		}
		if xl[0] != 0 {
			nrmxl = math.Copysign(nrmxl, xl[0])
		}
		s := 1 / nrmxl
		for i := range xl {
			xl[i] *= s
		}
		xl[0] = 1 + xl[0]
		for j := l + 1; j < p; j++ {
			xj := x[l+j*n : (j+1)*n]
			t := -ddot(xl, xj) / xl[0]
			daxpy(t, xl, xj)
			if qraux[j] != 0 {
				r := math.Abs(xj[0]) / qraux[j]
				tt := max(1-r*r, 0)
				if math.Abs(tt) >= 1e-6 {
					qraux[j] *= math.Sqrt(tt)
				} else {
					qraux[j] = dnrm2(xj[1:])
					work1[j] = qraux[j]
				}
			}
		}
		qraux[l] = xl[0]
		xl[0] = -nrmxl
	}
	rank := min(k-1, n)
	return &qrDecomp{qr: x, n: n, p: p, qraux: qraux, pivot: pivot, rank: rank}
}

// householder applies the j-th Householder reflection to v (length n), as
// dqrsl does for both Qᵀy and Qy.
func (d *qrDecomp) householder(j int, v []float64) {
	if d.qraux[j] == 0 {
		return
	}
	n := d.n
	xj := d.qr[j+j*n : (j+1)*n]
	temp := xj[0]
	xj[0] = d.qraux[j]
	t := -ddot(xj, v[j:]) / xj[0]
	daxpy(t, xj, v[j:])
	xj[0] = temp
}

// qty overwrites y with Qᵀy (dqrsl, job 1000) using the first rank
// reflections.
func (d *qrDecomp) qty(y []float64) {
	ju := min(d.rank, d.n-1)
	for j := 0; j < ju; j++ {
		d.householder(j, y)
	}
}

// qy overwrites y with Qy (dqrsl, job 10000).
func (d *qrDecomp) qy(y []float64) {
	ju := min(d.rank, d.n-1)
	for j := ju - 1; j >= 0; j-- {
		d.householder(j, y)
	}
}

// coef returns the least-squares coefficients of y in pivoted order,
// zero beyond the rank, as dqrls gives them (dqrsl job 1110 then zeros).
// ok is false when R has an exactly zero diagonal (dqrsl's info ≠ 0).
func (d *qrDecomp) coef(y []float64) (b []float64, ok bool) {
	n, k := d.n, d.rank
	qty := append([]float64(nil), y...)
	d.qty(qty)
	b = make([]float64, d.p)
	copy(b, qty[:k])
	for j := k - 1; j >= 0; j-- {
		if d.qr[j+j*n] == 0 {
			return b, false
		}
		b[j] /= d.qr[j+j*n]
		if j > 0 {
			daxpy(-b[j], d.qr[j*n:j*n+j], b[:j])
		}
	}
	return b, true
}

// rInverse returns R⁻¹ of the leading rank×rank block, row-major: what
// predict.lm's qr.solve(qr.R(qr)[p1, p1]) computes.
func (d *qrDecomp) rInverse() [][]float64 {
	k, n := d.rank, d.n
	inv := make([][]float64, k)
	for i := range inv {
		inv[i] = make([]float64, k)
	}
	// Solve R·X = I column by column, by back substitution.
	for c := 0; c < k; c++ {
		for i := c; i >= 0; i-- {
			s := 0.0
			if i == c {
				s = 1
			}
			for j := i + 1; j <= c; j++ {
				s -= d.qr[i+j*n] * inv[j][c]
			}
			inv[i][c] = s / d.qr[i+i*n]
		}
	}
	return inv
}

// hat returns the diagonal of the hat matrix Q₁Q₁ᵀ, as lminfl computes it
// (Q e_j for each j ≤ rank, squared and summed), with values within tol of
// 1 set to 1; lm.influence then applies 10·ε, the tolerance passed here.
func (d *qrDecomp) hat(tol float64) []float64 {
	h := make([]float64, d.n)
	v := make([]float64, d.n)
	for j := 0; j < d.rank; j++ {
		clear(v)
		v[j] = 1
		d.qy(v)
		for i := range h {
			h[i] += v[i] * v[i]
		}
	}
	for i := range h {
		if h[i] >= 1-tol {
			h[i] = 1
		}
	}
	return h
}
