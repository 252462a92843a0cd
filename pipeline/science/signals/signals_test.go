package signals

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// near reports |got-want| ≤ tol·|want| (or both equal, zeros and
// infinities included).
func near(got, want, tol float64) bool {
	return got == want || math.Abs(got-want) <= tol*math.Abs(want)
}

// TestRMath checks the distribution functions against R 4.2.2's values,
// printed with sprintf("%.17g", …):
//
//	qnorm(c(0.5, 0.9, 0.95, 0.975, 0.99, 0.999, 1-1e-12, 0.01, 1e-300))
//	qnbinom(0.95, 3.2, 0.4); qnbinom(0.99, 0.05, 0.9); qnbinom(0.95, 1200, 0.3)
//	qnbinom(0.5, 1e-3, 0.5); qnbinom(0.975, 7.5, 1/1.8)
//	qpois(0.95, 3.2); qpois(0.99, 0.01); qpois(0.95, 2500.5); qpois(0.5, 1e-6)
//	qpois(0.99, 1e5); qnbinom(0.99, 50, 0.001); qnbinom(0.01, 3, 1e-4); qpois(0.5, 12345.6)
//	2*pt(-2.1, 30); 2*pt(-0.3, 5); 2*pt(-4, 100); 2*pt(-1.96, 1000)
func TestRMath(t *testing.T) {
	qnormCases := []struct{ p, want float64 }{
		{0.5, 0}, {0.9, 1.2815515655446008}, {0.95, 1.6448536269514715}, {0.975, 1.9599639845400536},
		{0.99, 2.3263478740408408}, {0.999, 3.0902323061678132}, {1 - 1e-12, 7.0344869100478356},
		{0.01, -2.3263478740408408}, {1e-300, -37.047096299361201},
	}
	for _, c := range qnormCases {
		if got := qnorm(c.p); !near(got, c.want, 4e-16) {
			t.Errorf("qnorm(%v) = %.17g, R %.17g", c.p, got, c.want)
		}
	}
	discrete := []struct {
		name      string
		got, want float64
	}{
		{"qnbinom(0.95, 3.2, 0.4)", qnbinom(0.95, 3.2, 0.4), 11},
		{"qnbinom(0.99, 0.05, 0.9)", qnbinom(0.99, 0.05, 0.9), 0},
		{"qnbinom(0.95, 1200, 0.3)", qnbinom(0.95, 1200, 0.3), 2961},
		{"qnbinom(0.5, 1e-3, 0.5)", qnbinom(0.5, 1e-3, 0.5), 0},
		{"qnbinom(0.975, 7.5, 1/1.8)", qnbinom(0.975, 7.5, 1/1.8), 14},
		{"qpois(0.95, 3.2)", qpois(0.95, 3.2), 6},
		{"qpois(0.99, 0.01)", qpois(0.99, 0.01), 0},
		{"qpois(0.95, 2500.5)", qpois(0.95, 2500.5), 2583},
		{"qpois(0.5, 1e-6)", qpois(0.5, 1e-6), 0},
		// From 4096 up, R searches in coarse steps first.
		{"qpois(0.99, 1e5)", qpois(0.99, 1e5), 100736},
		{"qnbinom(0.99, 50, 0.001)", qnbinom(0.99, 50, 0.001), 67844},
		{"qnbinom(0.01, 3, 1e-4)", qnbinom(0.01, 3, 1e-4), 4359},
		{"qpois(0.5, 12345.6)", qpois(0.5, 12345.6), 12345},
	}
	for _, c := range discrete {
		if c.got != c.want {
			t.Errorf("%s = %v, R %v", c.name, c.got, c.want)
		}
	}
	ptCases := []struct{ t, df, want float64 }{
		{2.1, 30, 0.044242471262323529}, {0.3, 5, 0.77624904226327451},
		{4, 100, 0.00012152364430076165}, {1.96, 1000, 0.050273184955748722},
	}
	for _, c := range ptCases {
		if got := ptTwoSided(c.t, c.df); !near(got, c.want, 1e-12) {
			t.Errorf("2*pt(-%v, %v) = %.17g, R %.17g", c.t, c.df, got, c.want)
		}
	}
}

// TestGLM fits a small quasi-Poisson GLM and compares it with R's
//
//	y <- c(3, 0, 5, 2, 8, 4, 1, 6, 9, 2, 4, 7); t <- seq_along(y)
//	m <- glm(y ~ 1 + t, family = quasipoisson)
//	coef(m); summary(m)$dispersion; m$iter; hatvalues(m)
//	predict(m, newdata = data.frame(t = 13), se.fit = TRUE, type = "link")
//	summary(m)$coefficients["t", 4]
//	w <- c(1, 1, 0.5, 1, 2, 1, 1, 1, 0.25, 1, 1, 1)
//	m2 <- glm(y ~ 1 + t, family = quasipoisson, weights = w); coef(m2); summary(m2)$dispersion
func TestGLM(t *testing.T) {
	y := []float64{3, 0, 5, 2, 8, 4, 1, 6, 9, 2, 4, 7}
	x := make([][]float64, len(y))
	ones := make([]float64, len(y))
	for i := range y {
		x[i] = []float64{1, float64(i + 1)}
		ones[i] = 1
	}
	fit, err := fitQuasiPoisson(x, y, ones)
	if err != nil || !fit.converged {
		t.Fatalf("fit: %v, converged %v", err, fit != nil && fit.converged)
	}
	const tol = 1e-12
	check := func(name string, got, want float64) {
		t.Helper()
		if !near(got, want, tol) {
			t.Errorf("%s = %.17g, R %.17g", name, got, want)
		}
	}
	check("intercept", fit.coef[0], 0.95723418776750024)
	check("slope", fit.coef[1], 0.070772274130996876)
	check("dispersion", fit.dispersion(), 1.8560671995732219)
	hat := []float64{0.24606495700416534, 0.20440387905591709, 0.16629488652962723, 0.13328872259818858,
		0.10720356524398533, 0.090160245697940761, 0.084621511931411583, 0.093435764393330206,
		0.11988573379648597, 0.16774261744608177, 0.24132624174881678, 0.34557187455404881}
	for i, h := range fit.hatValues() {
		check("hat["+strconv.Itoa(i+1)+"]", h, hat[i])
	}
	eta, se := fit.predictLink([]float64{1, 13}, fit.dispersion())
	check("predicted eta", eta, 1.8772737514704596)
	check("its se", se, 0.37154962295281607)
	m := &flexModel{fit: fit, disp: fit.dispersion()}
	check("trend p-value", m.trendPValue(), 0.23702813134024239)

	w := []float64{1, 1, 0.5, 1, 2, 1, 1, 1, 0.25, 1, 1, 1}
	fit2, err := fitQuasiPoisson(x, y, w)
	if err != nil {
		t.Fatal(err)
	}
	check("weighted intercept", fit2.coef[0], 1.1026812087261735)
	check("weighted slope", fit2.coef[1], 0.051158012918607706)
	check("weighted dispersion", fit2.dispersion(), 1.9578601321031734)
}

// TestSeasonalBlocks pins blocks() where R's a:b runs backwards: monthly
// data (freq 12), w = 2 and 10 levels leave 7 periods for 9 blocks, so
// blocks 8 and 9 are written over the periods before the next window. R:
//
//	surveillance:::blocks(seq(60, by = -12, length.out = 5), 1:70, "none", 60, b = 4, w = 2, p = 10, FALSE)
func TestSeasonalBlocks(t *testing.T) {
	want := []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 1, 2, 3, 4, 5, 6, 9, 9, 10, 10, 10, 10, 1, 2,
		3, 4, 5, 6, 9, 9, 10, 10, 10, 10, 1, 2, 3, 4, 5, 6, 9, 9, 10, 10, 10, 10, 1, 2, 3, 4, 5, 6, 9, 9, 10, 10,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	cfg := DefaultNoufaily(12)
	cfg.B, cfg.W = 4, 2
	got, err := seasonalBlocks(70, 60, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("blocks\n got %v\nwant %v", got, want)
	}
}

// TestOptions compares farringtonFlexible options that the command line
// does not reach with R's output (testdata/surveillance/options, made by
// make_reference.R): salmonella.agona, b = 4, w = 2, alpha = 0.05.
func TestOptions(t *testing.T) {
	counts := readInput(t, filepath.Join("testdata", "surveillance", "runs", "salmonella.agona-ears-c1-a0.01-b10", "input.csv"))
	base := DefaultFarrington(52)
	base.B, base.W = 4, 2
	tests := []struct {
		id     string
		change func(*FarringtonConfig)
	}{
		{"no-reweight", func(c *FarringtonConfig) { c.Reweight = false }},
		{"no-trend", func(c *FarringtonConfig) { c.Trend = false }},
		{"trend-p1", func(c *FarringtonConfig) { c.PThresholdTrend = 1 }},
		{"weights-threshold-1", func(c *FarringtonConfig) { c.WeightsThreshold = 1 }},
		{"limit54-8-3", func(c *FarringtonConfig) { c.Limit54Cases, c.Limit54Periods = 8, 3 }},
		{"periods4-past0", func(c *FarringtonConfig) { c.NoPeriods, c.PastWeeksNotIncluded = 4, 0 }},
		{"nbplugin-periods1", func(c *FarringtonConfig) { c.Threshold = NBPlugin }},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "surveillance", "options", "*.csv"))
	if len(files) != len(tests) {
		t.Errorf("%d option files, %d cases: keep make_reference.R and this table in step", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			got, err := Farrington(counts, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := readRows(t, filepath.Join("testdata", "surveillance", "options", tt.id+".csv"))
			if len(got) != len(want) {
				t.Fatalf("%d rows, R %d", len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				ub := math.NaN()
				if w[2] != "NA" {
					ub, _ = strconv.ParseFloat(w[2], 64)
				}
				alarm := map[bool]string{true: "1", false: "0"}[g.Alarm]
				if g.AlarmNA {
					alarm = "NA"
				}
				if strconv.Itoa(g.T) != w[0] || math.IsNaN(ub) != math.IsNaN(g.UpperBound) ||
					!math.IsNaN(ub) && !near(g.UpperBound, ub, 1e-6) || alarm != w[3] {
					t.Errorf("t = %d: bound %.15g alarm %s; R: t = %s, bound %s, alarm %s", g.T, g.UpperBound, alarm, w[0], w[2], w[3])
				}
			}
		})
	}
}

func readInput(t *testing.T, path string) []float64 {
	t.Helper()
	var counts []float64
	for _, r := range readRows(t, path) {
		c, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, c)
	}
	return counts
}

// readRows reads a CSV file's rows after its header.
func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%s: %v (%d records)", path, err, len(recs))
	}
	return recs[1:]
}

// TestEARSByHand checks small cases worked out from earsC's formulas.
func TestEARSByHand(t *testing.T) {
	z001 := qnorm(1 - 0.001)
	z025 := qnorm(1 - 0.025)
	sd := func(x ...float64) float64 { _, s := meanSD(x); return s }
	tests := []struct {
		name   string
		counts []float64
		cfg    EARSConfig
		want   []Result // UpperBound NaN: NA
	}{
		{
			// Baseline 1,2,3 (mean 2, sd 1), then 2,3,9.
			name: "C1", counts: []float64{1, 2, 3, 9, 0}, cfg: EARSConfig{Method: C1, Baseline: 3, Alpha: 0.001},
			want: []Result{{T: 4, Observed: 9, UpperBound: 2 + z001, Alarm: true}, {T: 5, Observed: 0, UpperBound: 14.0/3 + z001*sd(2, 3, 9)}},
		},
		{
			// A constant baseline: sd 0, the bound is the mean; minSigma lifts it.
			name: "C1 constant", counts: []float64{4, 4, 4, 5}, cfg: EARSConfig{Method: C1, Baseline: 3, Alpha: 0.001},
			want: []Result{{T: 4, Observed: 5, UpperBound: 4, Alarm: true}},
		},
		{
			name: "C1 minSigma", counts: []float64{4, 4, 4, 5}, cfg: EARSConfig{Method: C1, Baseline: 3, Alpha: 0.001, MinSigma: 0.5},
			want: []Result{{T: 4, Observed: 5, UpperBound: 4 + z001*0.5}},
		},
		{
			// C2 skips two periods: the baseline of t = 6 is t = 1..3.
			name: "C2", counts: []float64{1, 2, 3, 50, 50, 7}, cfg: EARSConfig{Method: C2, Baseline: 3, Alpha: 0.001},
			want: []Result{{T: 6, Observed: 7, UpperBound: 2 + z001, Alarm: true}},
		},
		{
			// C3 at t = 8: C2 at 6 and 7 are (7-2)/1 and (0-(2+3+50)/3)/sd; only the first exceeds 1,
			// by enough to take the bound below 0, where it is floored: any count alarms.
			name: "C3", counts: []float64{1, 2, 3, 50, 50, 7, 0, 4}, cfg: EARSConfig{Method: C3, Baseline: 3, Alpha: 0.025},
			want: []Result{{T: 8, Observed: 4, UpperBound: max(0, 4+sd(3, 50, 50)*(z025-(5-1))), Alarm: true}},
		},
		{
			// A constant baseline before a different count: C2 = ±Inf, and
			// sd 0 times it is NaN: R's NA, alarm NA.
			name: "C3 NA", counts: []float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, cfg: EARSConfig{Method: C3, Baseline: 3, Alpha: 0.025},
			want: []Result{
				{T: 8, Observed: 0, UpperBound: math.NaN(), AlarmNA: true}, // C2(6), C2(7) = 0/0
				{T: 9, Observed: 1, UpperBound: math.NaN(), AlarmNA: true},
				{T: 10, Observed: 0, UpperBound: math.NaN(), AlarmNA: true},
				{T: 11, Observed: 0, UpperBound: math.NaN(), AlarmNA: true}, // C2(9) = +Inf
				{T: 12, Observed: 0, UpperBound: math.NaN(), AlarmNA: true},
			},
		},
		{
			name: "from", counts: []float64{1, 2, 3, 9, 0}, cfg: EARSConfig{Method: C1, Baseline: 3, Alpha: 0.001, From: 5},
			want: []Result{{T: 5, Observed: 0, UpperBound: 14.0/3 + z001*sd(2, 3, 9)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EARS(tt.counts, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.T != w.T || g.Observed != w.Observed || g.Alarm != w.Alarm || g.AlarmNA != w.AlarmNA ||
					g.Computable() != w.Computable() || w.Computable() && !near(g.UpperBound, w.UpperBound, 1e-14) {
					t.Errorf("got %+v, want %+v", g, w)
				}
			}
		})
	}
}

// TestErrors: bad parameters and counts are errors that say what to do.
func TestErrors(t *testing.T) {
	weekly := make([]float64, 3*52+10)
	ears := func(change func(*EARSConfig)) func([]float64) error {
		return func(c []float64) error {
			cfg := DefaultEARS(C1)
			change(&cfg)
			_, err := EARS(c, cfg)
			return err
		}
	}
	farr := func(change func(*FarringtonConfig)) func([]float64) error {
		return func(c []float64) error {
			cfg := DefaultFarrington(52)
			cfg.B = 3
			change(&cfg)
			_, err := Farrington(c, cfg)
			return err
		}
	}
	tests := []struct {
		name    string
		counts  []float64
		run     func([]float64) error
		wantErr string
	}{
		{"negative count", []float64{1, -2, 3}, ears(func(*EARSConfig) {}), "count -2 at t = 2"},
		{"NaN count", []float64{1, math.NaN()}, farr(func(*FarringtonConfig) {}), "count NaN at t = 2"},
		{"no method", weekly, ears(func(c *EARSConfig) { c.Method = 0 }), "use C1, C2 or C3"},
		{"small baseline", weekly, ears(func(c *EARSConfig) { c.Baseline = 2 }), "at least 3 periods"},
		{"alpha", weekly, ears(func(c *EARSConfig) { c.Alpha = 1 }), "between 0 and 1"},
		{"min sigma", weekly, ears(func(c *EARSConfig) { c.MinSigma = -1 }), "minSigma"},
		{"EARS from", weekly, ears(func(c *EARSConfig) { c.From = 7 }), "first period it can evaluate is t = 8"},
		{"EARS short", make([]float64, 7), ears(func(*EARSConfig) {}), "series too short for EARS C1 with baseline 7: it has 7 periods"},
		{"no freq", weekly, farr(func(c *FarringtonConfig) { c.Freq = 0 }), "periods per year"},
		{"b", weekly, farr(func(c *FarringtonConfig) { c.B = 0 }), "b = 0"},
		{"w", weekly, farr(func(c *FarringtonConfig) { c.W = -1 }), "w = -1"},
		{"Farrington alpha", weekly, farr(func(c *FarringtonConfig) { c.Alpha = 0 }), "alpha 0"},
		{"limit54", weekly, farr(func(c *FarringtonConfig) { c.Limit54Periods = 0 }), "limit54"},
		{"noPeriods", weekly, farr(func(c *FarringtonConfig) { c.NoPeriods = 60 }), "more seasonal levels"},
		{"past weeks", weekly, farr(func(c *FarringtonConfig) { c.PastWeeksNotIncluded = 200 }), "reaches before t = 1"},
		{"Farrington from", weekly, farr(func(c *FarringtonConfig) { c.From = 100 }), "first period it can evaluate is t = 160"},
		{"Farrington short", make([]float64, 159), farr(func(*FarringtonConfig) {}), "it has 159 periods, the first one evaluated is t = 160"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(tt.counts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDefaults pins the defaults to surveillance's (earsC,
// farringtonFlexible's formals) and the reference runs' Noufaily.
func TestDefaults(t *testing.T) {
	if c := DefaultEARS(C3); c.Baseline != 7 || c.Alpha != 0.025 || c.MinSigma != 0 || c.FirstT() != 12 {
		t.Errorf("DefaultEARS(C3) = %+v, FirstT %d", c, c.FirstT())
	}
	if c := DefaultEARS(C2); c.Alpha != 0.001 || c.FirstT() != 10 {
		t.Errorf("DefaultEARS(C2) = %+v", c)
	}
	f := DefaultFarrington(52)
	if f.B != 5 || f.W != 3 || f.Alpha != 0.05 || !f.Reweight || f.WeightsThreshold != 2.58 || !f.Trend ||
		f.PThresholdTrend != 0.05 || f.Limit54Cases != 5 || f.Limit54Periods != 4 || f.NoPeriods != 1 ||
		f.pastWeeks() != 3 || f.Threshold != Delta || f.FirstT() != 52*5+3+1 {
		t.Errorf("DefaultFarrington(52) = %+v", f)
	}
	n := DefaultNoufaily(52)
	if n.NoPeriods != 10 || n.pastWeeks() != 26 || n.Threshold != NBPlugin || n.WeightsThreshold != 2.58 {
		t.Errorf("DefaultNoufaily(52) = %+v", n)
	}
}
