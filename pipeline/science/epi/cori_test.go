package epi

import (
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestRatio(t *testing.T) {
	tests := []struct {
		name      string
		total     []float64
		end, days int
		want      float64
		ok        bool
	}{
		{"doubling", []float64{1, 1, 1, 1, 2, 2, 2, 2}, 7, 4, 2, true},
		{"halving", []float64{4, 4, 4, 4, 2, 2, 2, 2}, 7, 4, 0.5, true},
		{"end inside series", []float64{1, 1, 1, 1, 3, 3, 3, 3, 99}, 7, 4, 3, true},
		{"uneven", []float64{0, 1, 2, 3, 4, 5}, 5, 3, 12.0 / 3, true},
		{"not rounded", []float64{3, 3, 1}, 2, 1, 1.0 / 3, true},
		{"earlier days without cases", []float64{0, 0, 0, 0, 5, 5, 5, 5}, 7, 4, 0, false},
		{"nothing at all", make([]float64, 8), 7, 4, 0, false},
		{"recent days without cases", []float64{1, 1, 1, 1, 0, 0, 0, 0}, 7, 4, 0, true},
		{"one day short", []float64{1, 1, 1, 2, 2, 2, 2}, 6, 4, 0, false},
		{"end beyond series", []float64{1, 1, 1, 1, 2, 2, 2, 2}, 8, 4, 0, false},
		{"zero days", []float64{1, 2}, 1, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Ratio(tt.total, tt.end, tt.days)
			if ok != tt.ok || got != tt.want {
				t.Errorf("Ratio(%v, %d, %d) = %v, %v; want %v, %v", tt.total, tt.end, tt.days, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestValidateSI(t *testing.T) {
	tests := []struct {
		name    string
		w       []float64
		wantErr string // substring; "" = valid
	}{
		{"valid", []float64{0, 0.25, 0.5, 0.25}, ""},
		{"sum 0.995 is inside the tolerance", []float64{0, 0.5, 0.495}, ""},
		{"sum 1.005 is inside the tolerance", []float64{0, 0.5, 0.505}, ""},
		// In doubles |0.99 - 1| is 0.010000000000000009 > 0.01, so EpiEstim's
		// abs(sum(si_distr) - 1) > 0.01 rejects it too.
		{"sum 0.99 is just outside, as in EpiEstim", []float64{0, 0.5, 0.49}, "sum to 0.99"},
		{"empty", nil, "empty"},
		{"w0 not zero", []float64{0.1, 0.9}, "start with 0"},
		{"negative", []float64{0, 1.2, -0.2}, "w[2] = -0.2"},
		{"NaN", []float64{0, math.NaN(), 1}, "w[1] = NaN"},
		{"sum too small", []float64{0, 0.5, 0.4}, "sum to 0.9"},
		{"sum too large", []float64{0, 0.6, 0.6}, "sum to 1.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSI(tt.w)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateSI(%v) = %v, want nil", tt.w, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ValidateSI(%v) = %v, want an error containing %q", tt.w, err, tt.wantErr)
			}
		})
	}
}

func TestDiscreteSIErrors(t *testing.T) {
	tests := []struct {
		mean, sd float64
		n        int
		wantErr  string
	}{
		{1, 1, 5, "above 1 day"},
		{0.5, 1, 5, "above 1 day"},
		{math.NaN(), 1, 5, "above 1 day"},
		{4.7, 0, 5, "sd must be a positive"},
		{4.7, -1, 5, "sd must be a positive"},
		{4.7, 2.9, 0, "at least 1"},
	}
	for _, tt := range tests {
		_, err := DiscreteSI(tt.mean, tt.sd, tt.n)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("DiscreteSI(%v, %v, %d) = %v, want an error containing %q", tt.mean, tt.sd, tt.n, err, tt.wantErr)
		}
	}
}

// TestDiscreteSISupport: the support vector, zero-padded, is DiscreteSI of
// any longer length bit for bit, and nothing non-zero was cut.
func TestDiscreteSISupport(t *testing.T) {
	for _, p := range [][2]float64{{4.7, 2.9}, {2.6, 1.5}, {1.5, 0.2}, {15, 10}, {6.48, 3.83}} {
		sup, err := DiscreteSISupport(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		n := len(sup) + 200
		full, err := DiscreteSI(p[0], p[1], n)
		if err != nil {
			t.Fatal(err)
		}
		for k := range full {
			want := 0.0
			if k < len(sup) {
				want = sup[k]
			}
			if full[k] != want {
				t.Fatalf("SI(%v, %v): w[%d] = %v, support gives %v (support length %d)", p[0], p[1], k, full[k], want, len(sup))
			}
		}
		if sup[len(sup)-1] == 0 {
			t.Errorf("SI(%v, %v): support ends in a zero", p[0], p[1])
		}
		if err := ValidateSI(sup); err != nil {
			t.Errorf("SI(%v, %v): %v", p[0], p[1], err)
		}
	}
}

func TestSlidingWindows(t *testing.T) {
	tests := []struct {
		T, days int
		want    []Window
	}{
		{9, 7, []Window{{2, 8}, {3, 9}}},
		{8, 7, []Window{{2, 8}}},
		{7, 7, nil},
		{4, 1, []Window{{2, 2}, {3, 3}, {4, 4}}},
		{5, 0, nil},
	}
	for _, tt := range tests {
		got := SlidingWindows(tt.T, tt.days)
		if len(got) != len(tt.want) {
			t.Errorf("SlidingWindows(%d, %d) = %v, want %v", tt.T, tt.days, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("SlidingWindows(%d, %d) = %v, want %v", tt.T, tt.days, got, tt.want)
				break
			}
		}
	}
}

func TestEstimateRErrors(t *testing.T) {
	si := []float64{0, 0.5, 0.5}
	cases := []float64{1, 2, 3, 4, 5}
	tests := []struct {
		name            string
		local, imported []float64
		si              []float64
		windows         []Window
		prior           Prior
		wantErr         string
	}{
		{"window from day 1", cases, nil, si, []Window{{1, 3}}, DefaultPrior(), "2 ≤ t_start"},
		{"window past the end", cases, nil, si, []Window{{2, 6}}, DefaultPrior(), "≤ 5"},
		{"reversed window", cases, nil, si, []Window{{4, 3}}, DefaultPrior(), "window 1 [4, 3]"},
		{"negative count", []float64{1, 2, -1, 4, 5}, nil, si, []Window{{2, 5}}, DefaultPrior(), "local cases on day 3 = -1"},
		{"negative import", cases, []float64{0, 0, 0, -2, 0}, si, []Window{{2, 5}}, DefaultPrior(), "imported cases on day 4"},
		{"length mismatch", cases, []float64{0}, si, []Window{{2, 5}}, DefaultPrior(), "imported has 1"},
		{"SI not starting at 0", cases, nil, []float64{0.5, 0.5}, []Window{{2, 5}}, DefaultPrior(), "start with 0"},
		{"bad prior", cases, nil, si, []Window{{2, 5}}, Prior{Mean: 5, SD: 0}, "prior"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EstimateR(tt.local, tt.imported, tt.si, tt.windows, tt.prior)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("EstimateR = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestEstimateRByHand: one window worked through METHOD.md's formulas.
func TestEstimateRByHand(t *testing.T) {
	si := []float64{0, 0.5, 0.5}          // mean 1.5
	local := []float64{0, 2, 4, 6}        // day 1's cases are imported
	imported := []float64{10, 0, 0, 0}    // Λ: -, 5, 6, 3
	w := []Window{{2, 3}, {3, 4}, {2, 4}} // Λ sums 11, 9, 14
	got, err := EstimateR(local, imported, si, w, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct{ shape, lam float64 }{{1 + 6, 11}, {1 + 10, 9}, {1 + 12, 14}} {
		scale := 1 / (1.0/5 + tt.lam)
		if !got[i].OK || got[i].Mean != tt.shape*scale || got[i].SD != math.Sqrt(tt.shape)*scale {
			t.Errorf("window %v: %+v, want mean %v sd %v", w[i], got[i], tt.shape*scale, math.Sqrt(tt.shape)*scale)
		}
	}
}

// TestNARule: a window is NA exactly when it ends on or before the SI mean.
func TestNARule(t *testing.T) {
	si := []float64{0, 0, 0, 0.5, 0.5} // mean 3.5
	local := []float64{0, 1, 1, 1, 1, 1, 1}
	got, err := EstimateR(local, nil, si, []Window{{2, 2}, {2, 3}, {3, 3}, {2, 4}, {4, 4}, {2, 7}}, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if want := float64(e.End) > 3.5; e.OK != want {
			t.Errorf("window %v: OK = %v, want %v", e.Window, e.OK, want)
		}
		if !e.OK && (e.Mean != 0 || e.Quantiles != [7]float64{}) {
			t.Errorf("NA window %v carries numbers: %+v", e.Window, e)
		}
	}
	si = []float64{0, 1} // mean 1: day 2 can be estimated
	got, err = EstimateR([]float64{0, 1}, nil, si, []Window{{2, 2}}, DefaultPrior())
	if err != nil || !got[0].OK {
		t.Errorf("window [2,2] with SI mean 1: %+v, %v; want an estimate", got, err)
	}
}

// TestNaNCountsAsZero: EpiEstim turns NA incidence into 0.
func TestNaNCountsAsZero(t *testing.T) {
	si := []float64{0, 0.3, 0.7}
	withNaN := []float64{3, 2, math.NaN(), 5, 1, 4}
	zero := []float64{3, 2, 0, 5, 1, 4}
	ws := SlidingWindows(6, 3)
	a, err := EstimateR(withNaN, nil, si, ws, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := EstimateR(zero, nil, si, ws, DefaultPrior())
	c, _ := NewCori(si, DefaultPrior())
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("window %v: %+v with NaN, %+v with 0", ws[i], a[i], b[i])
		}
		if got := c.Window(withNaN, nil, ws[i].End-1, 3); got != b[i] {
			t.Errorf("Window %v: %+v with NaN, %+v with 0", ws[i], got, b[i])
		}
	}
	if withNaN[2] == 0 {
		t.Error("EstimateR changed its input")
	}
}

// TestWindowMatchesEstimateR: the live paths (Window, Range,
// EstimateWindow) agree with the batch path bit for bit on random series
// with imports, and windows that cannot exist are NA.
func TestWindowMatchesEstimateR(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	si, err := DiscreteSISupport(4.7, 2.9)
	if err != nil {
		t.Fatal(err)
	}
	T := 200
	local, imported := make([]float64, T), make([]float64, T)
	for i := range local {
		local[i] = float64(rng.IntN(50))
		imported[i] = float64(rng.IntN(3))
	}
	c, err := NewCori(si, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	for _, days := range []int{1, 7, 14} {
		ws := SlidingWindows(T, days)
		want, err := c.Windows(local, imported, ws)
		if err != nil {
			t.Fatal(err)
		}
		rng := c.Range(nil, local, imported, 0, T-1, days)
		if len(rng) != T {
			t.Fatalf("Range gave %d estimates, want %d", len(rng), T)
		}
		for end := 0; end < days; end++ {
			if rng[end].OK {
				t.Errorf("days %d: window ending at index %d includes day 1 but was estimated", days, end)
			}
		}
		for i, w := range ws {
			end := w.End - 1
			if got := c.Window(local[:end+1], imported[:end+1], end, days); got != want[i] {
				t.Fatalf("days %d window %v: Window %+v, Windows %+v", days, w, got, want[i])
			}
			if got := EstimateWindow(local, imported, si, end, days, DefaultPrior()); got != want[i] {
				t.Fatalf("days %d window %v: EstimateWindow %+v, Windows %+v", days, w, got, want[i])
			}
			if rng[end] != want[i] {
				t.Fatalf("days %d window %v: Range %+v, Windows %+v", days, w, rng[end], want[i])
			}
		}
	}
}

// TestAffected: changing one day's count changes no window outside
// Affected's range.
func TestAffected(t *testing.T) {
	si := []float64{0, 0.2, 0.5, 0.3}
	c, err := NewCori(si, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	T, days := 40, 7
	base := make([]float64, T)
	for i := range base {
		base[i] = float64(10 + i%5)
	}
	before := c.Range(nil, base, nil, 0, T-1, days)
	for day := 0; day < T; day++ {
		late := append([]float64(nil), base...)
		late[day] += 3
		after := c.Range(nil, late, nil, 0, T-1, days)
		from, to := c.Affected(day, T, days)
		for end := range after {
			changed := after[end] != before[end]
			if changed && (end < from || end > to) {
				t.Errorf("day %d changed window ending %d, outside Affected [%d, %d]", day, end, from, to)
			}
			if !changed && end >= from && end <= to {
				t.Errorf("day %d: window ending %d in Affected [%d, %d] did not change", day, end, from, to)
			}
		}
	}
}

// TestPureImports keeps the science free of I/O (STYLE.md rule 2).
func TestPureImports(t *testing.T) {
	allowed := map[string]bool{"errors": true, "fmt": true, "math": true, "gonum.org/v1/gonum/mathext": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %s; pipeline/science/epi takes values and returns values", f, path)
			}
		}
	}
}

// TestWithLevels: a Cori restricted to some quantiles computes those bit for
// bit as the full one, and NaN (never a stale number) for the others.
func TestWithLevels(t *testing.T) {
	si, err := DiscreteSISupport(4.7, 2.9)
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewCori(si, DefaultPrior())
	if err != nil {
		t.Fatal(err)
	}
	local := make([]float64, 60)
	for i := range local {
		local[i] = float64(3 + i%11)
	}
	tests := []struct {
		levels []float64
		want   []int // indices of QuantileLevels computed
	}{
		{[]float64{0.025, 0.5, 0.975}, []int{0, 3, 6}},
		{[]float64{0.05}, []int{1}},
		{nil, nil},
		{[]float64{0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975}, []int{0, 1, 2, 3, 4, 5, 6}},
	}
	all := full.Range(nil, local, nil, 0, len(local)-1, 7)
	for _, tc := range tests {
		c, err := full.WithLevels(tc.levels...)
		if err != nil {
			t.Fatalf("%v: %v", tc.levels, err)
		}
		got := c.Range(nil, local, nil, 0, len(local)-1, 7)
		for end, e := range got {
			w := all[end]
			if e.Mean != w.Mean || e.SD != w.SD || e.OK != w.OK || e.Window != w.Window {
				t.Fatalf("%v, window ending %d: %+v, full %+v", tc.levels, end, e, w)
			}
			if !e.OK {
				continue
			}
			for i := range e.Quantiles {
				computed := slices.Contains(tc.want, i)
				switch {
				case computed && e.Quantiles[i] != w.Quantiles[i]:
					t.Fatalf("%v, window ending %d: quantile %d = %v, full %v", tc.levels, end, i, e.Quantiles[i], w.Quantiles[i])
				case !computed && !math.IsNaN(e.Quantiles[i]):
					t.Fatalf("%v, window ending %d: quantile %d = %v, want NaN (not asked for)", tc.levels, end, i, e.Quantiles[i])
				}
			}
		}
	}
	if _, err := full.WithLevels(0.9); err == nil || !strings.Contains(err.Error(), "0.9") {
		t.Errorf("WithLevels(0.9): err %v, want one naming the level", err)
	}
	// The original is untouched.
	if e := full.Window(local, nil, 30, 7); math.IsNaN(e.Quantiles[1]) {
		t.Error("WithLevels changed the Cori it was called on")
	}
}

// TestTrendOf: EpiNow2's cut-offs of P(R < 1), edges included on the side
// EpiNow2 puts them.
func TestTrendOf(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want Trend
	}{
		{0, TrendIncreasing}, {0.0499, TrendIncreasing}, {0.05, TrendLikelyIncreasing}, {0.39, TrendLikelyIncreasing},
		{0.4, TrendStable}, {0.5, TrendStable}, {0.5999, TrendStable}, {0.6, TrendLikelyDecreasing},
		{0.9499, TrendLikelyDecreasing}, {0.95, TrendDecreasing}, {1, TrendDecreasing}, {math.NaN(), ""},
	} {
		if got := TrendOf(tc.p); got != tc.want {
			t.Errorf("TrendOf(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestGrowthRate: Wallinga & Lipsitch's R = (1 + rθ)^k, back and forth; R = 1
// is no growth; an exponential serial interval (k = 1) gives r = (R − 1)/mean.
func TestGrowthRate(t *testing.T) {
	const mean, sd = 4.7, 2.9
	k, theta := (mean/sd)*(mean/sd), sd*sd/mean
	for _, r0 := range []float64{0.5, 0.9, 1, 1.3, 2.5} {
		r := GrowthRate(r0, mean, sd)
		if back := math.Pow(1+r*theta, k); math.Abs(back-r0) > 1e-12 {
			t.Errorf("R %v: r %v gives back R %v", r0, r, back)
		}
		if (r0 > 1) != (r > 0) || r0 == 1 && r != 0 {
			t.Errorf("R %v: growth rate %v has the wrong sign", r0, r)
		}
	}
	if r := GrowthRate(2, 5, 5); math.Abs(r-0.2) > 1e-15 {
		t.Errorf("exponential SI: r = %v, want (2-1)/5", r)
	}
	if d := DoublingTime(GrowthRate(1.3, mean, sd)); !(d > 10 && d < 20) {
		t.Errorf("R 1.3: doubling time %v days", d)
	}
	if !math.IsNaN(GrowthRate(0, mean, sd)) {
		t.Error("R 0 has a growth rate")
	}
}
