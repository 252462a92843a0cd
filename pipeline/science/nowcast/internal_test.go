package nowcast

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// The selection-based quantiles are those of the sorted sample.
func TestQuantilesMatchSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	samples := map[string][]float64{}
	for _, n := range []int{1, 2, 3, 7, 40, 199, 200, 1000} {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		samples["normal/"+strconv.Itoa(n)] = x
		c := make([]float64, n)
		for i := range c {
			c[i] = 17 + float64(rng.IntN(6)) // whole numbers with many ties
		}
		samples["counts/"+strconv.Itoa(n)] = c
		w := make([]float64, n)
		for i := range w {
			w[i] = 100 + float64(rng.IntN(3000)) // a wide range: selection, not a histogram
		}
		samples["wide/"+strconv.Itoa(n)] = w
	}
	levels := countLevels()
	for name, x := range samples {
		sorted := slices.Clone(x)
		slices.Sort(sorted)
		a, b, c := quantiles3(slices.Clone(x))
		if a != sortedQuantileLinear(sorted, 0.025) || b != sortedQuantileLinear(sorted, 0.5) || c != sortedQuantileLinear(sorted, 0.975) {
			t.Errorf("%s: quantiles3 = %v %v %v, sorting gives %v %v %v", name, a, b, c,
				sortedQuantileLinear(sorted, 0.025), sortedQuantileLinear(sorted, 0.5), sortedQuantileLinear(sorted, 0.975))
		}
		linear := []float64{0, 0.025, 0.1, 0.5, 0.9, 0.975, 1}
		gotLinear := make([]float64, len(linear))
		linearQuantiles(slices.Clone(x), linear, gotLinear)
		for i, p := range linear {
			if want := sortedQuantileLinear(sorted, p); gotLinear[i] != want {
				t.Errorf("%s: p %v: linearQuantiles %v, sorting %v", name, p, gotLinear[i], want)
			}
		}
		// The tails alone (kept in one pass for up to 32 of each end), and
		// with the median (which falls back to selection).
		for _, ps := range [][]float64{{0, 0.025, 0.1, 0.9, 0.975, 1}, {0.025, 0.5, 0.975}} {
			got := make([]float64, len(ps))
			tailQuantiles(slices.Clone(x), ps, got)
			for i, p := range ps {
				if want := sortedQuantileLinear(sorted, p); got[i] != want {
					t.Errorf("%s: p %v of %v: tailQuantiles %v, sorting %v", name, p, ps, got[i], want)
				}
			}
		}
		var got, gotCount [5]float64
		quantiles(slices.Clone(x), levels[:], got[:])
		if name[0] != 'n' { // whole numbers
			countQuantiles(slices.Clone(x), sorted[0], sorted[len(sorted)-1], levels[:], gotCount[:], nil)
		}
		for i, p := range levels {
			want := sortedQuantile(sorted, p)
			if got[i] != want || (name[0] != 'n' && gotCount[i] != want) {
				t.Errorf("%s: p %v: selection %v, histogram %v, sorting %v", name, p, got[i], gotCount[i], want)
			}
		}
	}
}

// The samplers have the mean and variance of their distributions (within
// five standard errors of 200,000 draws).
func TestSamplerMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const n = 200000
	check := func(name string, draw func() float64, mean, variance float64) {
		t.Helper()
		s, s2 := 0.0, 0.0
		for range n {
			x := draw()
			s += x
			s2 += x * x
		}
		m := s / n
		v := s2/n - m*m
		if se := math.Sqrt(variance / n); math.Abs(m-mean) > 5*se+1e-12 {
			t.Errorf("%s: mean %v, want %v (se %v)", name, m, mean, se)
		}
		// The variance's se is about √(2/n)·σ² (√((κ−1)/n)·σ² in general);
		// a 5 % band is ample at n = 200,000 for these.
		if math.Abs(v-variance) > 0.05*variance+1e-12 {
			t.Errorf("%s: variance %v, want %v", name, v, variance)
		}
	}
	for _, a := range []float64{0.3, 1, 3.7, 50, 2000} {
		check("gamma "+ftoa(a), func() float64 { return gammaRand(rng, a) }, a, a)
	}
	for _, mu := range []float64{0, 0.02, 0.7, 5, 9.99, 10, 37, 600} {
		check("poisson "+ftoa(mu), func() float64 { return poissonRand(rng, mu) }, mu, mu)
	}
	for _, p := range [][3]float64{{5, 2, 0.01}, {50, 10, 0.5}, {100, 20, 1.5}, {30, 1, 0.9}, {400, 4, 0.6}} {
		a, b, c := p[0], p[1], p[2]
		mean := a * c / b
		check("negbin "+ftoa(mean), func() float64 { return negBinRand(rng, a, b, c) }, mean, mean*(1+c/b))
	}
}

func TestLogFactorialAndSoftplus(t *testing.T) {
	for k := 0.0; k <= 300; k++ {
		want, _ := math.Lgamma(k + 1)
		if got := logFactorial(k); math.Abs(got-want) > 1e-12*max(1, want) {
			t.Errorf("logFactorial(%v) = %v, want %v", k, got, want)
		}
	}
	for x := -40.0; x <= 40; x += 0.01 {
		want := math.Log1p(math.Exp(x))
		if got := softplus(x); math.Abs(got-want) > 1e-9*want {
			t.Errorf("softplus(%v) = %v, want %v", x, got, want)
		}
	}
}

// cholesky, cholSolve and cholInvDiag agree with the definitions on a
// random positive-definite matrix.
func TestCholesky(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const n = 12
	b := make([]float64, n*n)
	for i := range b {
		b[i] = rng.NormFloat64()
	}
	a := make([]float64, n*n) // BᵀB + I
	for i := range n {
		for j := range n {
			for k := range n {
				a[i*n+j] += b[k*n+i] * b[k*n+j]
			}
		}
		a[i*n+i]++
	}
	l := slices.Clone(a)
	if err := cholesky(l, n); err != nil {
		t.Fatal(err)
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i) - 3
	}
	rhs := make([]float64, n)
	for i := range n {
		for j := range n {
			rhs[i] += a[i*n+j] * x[j]
		}
	}
	cholSolve(l, n, rhs)
	for i := range x {
		if math.Abs(rhs[i]-x[i]) > 1e-9 {
			t.Fatalf("solve: x[%d] = %v, want %v", i, rhs[i], x[i])
		}
	}
	v := cholInvDiag(l, n)
	for j := range n {
		e := make([]float64, n)
		e[j] = 1
		cholSolve(l, n, e)
		if math.Abs(v[j]-e[j]) > 1e-12 {
			t.Errorf("inverse diagonal %d: %v, want %v", j, v[j], e[j])
		}
	}
	bad := []float64{1, 2, 2, 1}
	if err := cholesky(bad, 2); err == nil {
		t.Error("an indefinite matrix factored")
	}
}

// The trend fit recovers a known log-linear trend from partly reported
// counts, within its own uncertainty.
func TestTrendRecovered(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const days = 14
	for _, tc := range []struct{ a, b float64 }{{math.Log(200), 0.05}, {math.Log(80), -0.08}, {math.Log(500), 0}} {
		hitsA, hitsB, runs := 0, 0, 400
		for range runs {
			n, q, x := make([]float64, days), make([]float64, days), make([]float64, days)
			for i := range days {
				x[i] = float64(i - days + 1)
				q[i] = min(1, 0.1+0.15*float64(days-1-i)) // the newest days barely reported
				n[i] = poissonRand(rng, q[i]*math.Exp(tc.a+tc.b*x[i]))
			}
			tr := fitTrend(n, q, x, 0, nil)
			if math.Abs(tr.a-tc.a) <= 1.96*tr.l11 {
				hitsA++
			}
			if math.Abs(tr.b-tc.b) <= 1.96*math.Hypot(tr.l21, tr.l22) {
				hitsB++
			}
		}
		ca, cb := float64(hitsA)/float64(runs), float64(hitsB)/float64(runs)
		t.Logf("a %.2f b %.2f: 95 %% intervals cover a on %.1f %%, b on %.1f %%", tc.a, tc.b, 100*ca, 100*cb)
		if ca < 0.9 || cb < 0.9 {
			t.Errorf("a %.2f, b %.2f: intervals cover a on %.1f %%, b on %.1f %% of runs, want ≥ 90 %%", tc.a, tc.b, 100*ca, 100*cb)
		}
	}
}
