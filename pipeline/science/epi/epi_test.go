package epi

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// referenceDir holds EpiEstim 2.2.4's outputs and the script that made them
// (see its README.md).
var referenceDir = filepath.Join("testdata", "epiestim")

// Tolerances from the reference README: EpiEstim's arithmetic is reproduced
// to about 1e-12 (mean, sd, Λ, w), the gamma quantiles to about 1e-9.
const (
	tolExact    = 1e-12
	tolQuantile = 1e-9
)

type refParams struct {
	Case   string            `json:"case"`
	Method string            `json:"method"`
	MeanSI *float64          `json:"mean_si"`
	StdSI  *float64          `json:"std_si"`
	SIMean float64           `json:"si_discrete_mean"`
	T      int               `json:"T"`
	NWin   int               `json:"n_windows"`
	NNA    int               `json:"n_windows_NA"`
	Mean   float64           `json:"mean_prior"`
	SD     float64           `json:"std_prior"`
	Files  map[string]string `json:"files"`
}

// readTable reads a reference CSV into its header and rows of floats, NA as
// NaN.
func readTable(t *testing.T, name string) ([]string, [][]float64) {
	t.Helper()
	f, err := os.Open(filepath.Join(referenceDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	rows := make([][]float64, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		row := make([]float64, len(rec))
		for j, s := range rec {
			switch {
			case s == "NA":
				row[j] = math.NaN()
			case recs[0][j] == "date":
				row[j] = math.NaN() // not a number, not needed
			default:
				if row[j], err = strconv.ParseFloat(s, 64); err != nil {
					t.Fatalf("%s line %d column %s: %v", name, i+2, recs[0][j], err)
				}
			}
		}
		rows = append(rows, row)
	}
	return recs[0], rows
}

func column(t *testing.T, header []string, rows [][]float64, name string) []float64 {
	t.Helper()
	for j, h := range header {
		if h == name {
			out := make([]float64, len(rows))
			for i, r := range rows {
				out[i] = r[j]
			}
			return out
		}
	}
	t.Fatalf("no column %q in %v", name, header)
	return nil
}

// relErr is |got-want|/|want|, or |got-want| when want is 0; NaN on both
// sides (NA) is 0, NaN on one side is +Inf.
func relErr(got, want float64) float64 {
	switch {
	case math.IsNaN(got) && math.IsNaN(want):
		return 0
	case math.IsNaN(got) || math.IsNaN(want):
		return math.Inf(1)
	case want == 0:
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestReferenceEpiEstim(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(referenceDir, "*_params.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("no EpiEstim reference cases (*_params.json) in %s: the reference folder is missing, and this test must not pass without it", referenceDir)
	}
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), "_params.json"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var p refParams
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			checkReferenceCase(t, p)
		})
	}
}

func checkReferenceCase(t *testing.T, p refParams) {
	h, inc := readTable(t, p.Files["incidence"])
	local, imported := column(t, h, inc, "local"), column(t, h, inc, "imported")
	if len(local) != p.T {
		t.Fatalf("incidence has %d days, params say T = %d", len(local), p.T)
	}
	h, siRows := readTable(t, p.Files["si"])
	wantSI := column(t, h, siRows, "w")

	// The SI: parametric from its mean and sd, non-parametric as given.
	var si []float64
	switch p.Method {
	case "parametric_si":
		if p.MeanSI == nil || p.StdSI == nil {
			t.Fatal("parametric case without mean_si/std_si")
		}
		var err error
		if si, err = DiscreteSI(*p.MeanSI, *p.StdSI, p.T); err != nil {
			t.Fatal(err)
		}
		// EpiEstim pads to T+1.
		si = append(si, 0)
	case "non_parametric_si":
		si = wantSI
		if err := ValidateSI(si); err != nil {
			t.Fatalf("reference SI: %v", err)
		}
	default:
		t.Fatalf("unknown method %q", p.Method)
	}
	if len(si) != len(wantSI) {
		t.Fatalf("SI has %d weights, reference %d", len(si), len(wantSI))
	}
	worst := 0.0
	for k := range si {
		// Relative even in the tail, where a weight is a difference of CDFs
		// near 1 (k·G(k) + … cancels to ~1e-16): gonum's P(a, x) agrees with
		// R's pgamma closely enough for that (worst seen: 3.7e-13 at k=16).
		if e := relErr(si[k], wantSI[k]); e > tolExact {
			t.Errorf("w[%d] = %.17g, want %.17g (rel err %.3g)", k, si[k], wantSI[k], e)
		} else {
			worst = max(worst, e)
		}
	}
	t.Logf("SI: worst rel err %.3g", worst)
	if e := relErr(SIMean(si), p.SIMean); e > tolExact {
		t.Errorf("SI mean = %.17g, want %.17g", SIMean(si), p.SIMean)
	}

	// Λ from total cases.
	h, lamRows := readTable(t, p.Files["lambda"])
	wantLambda := column(t, h, lamRows, "lambda")
	total := make([]float64, len(local))
	for i := range total {
		total[i] = local[i] + imported[i]
	}
	lambda := Lambda(total, si)
	worst = 0
	for i := range lambda {
		if e := relErr(lambda[i], wantLambda[i]); e > tolExact {
			t.Errorf("Λ day %d = %.17g, want %.17g (rel err %.3g)", i+1, lambda[i], wantLambda[i], e)
		} else {
			worst = max(worst, e)
		}
	}
	t.Logf("Λ: worst rel err %.3g", worst)

	// R in the reference's windows.
	h, rRows := readTable(t, p.Files["R"])
	starts, ends := column(t, h, rRows, "t_start"), column(t, h, rRows, "t_end")
	windows := make([]Window, len(rRows))
	for i := range windows {
		windows[i] = Window{Start: int(starts[i]), End: int(ends[i])}
	}
	if len(windows) != p.NWin {
		t.Fatalf("R.csv has %d windows, params say %d", len(windows), p.NWin)
	}
	est, err := EstimateR(local, imported, si, windows, Prior{Mean: p.Mean, SD: p.SD})
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"Mean(R)", "Std(R)", "Quantile.0.025(R)", "Quantile.0.05(R)", "Quantile.0.25(R)", "Median(R)", "Quantile.0.75(R)", "Quantile.0.95(R)", "Quantile.0.975(R)"}
	want := make([][]float64, len(cols))
	for j, c := range cols {
		want[j] = column(t, h, rRows, c)
	}
	var worstMoments, worstQ float64
	na := 0
	for i, e := range est {
		got := append([]float64{e.Mean, e.SD}, e.Quantiles[:]...)
		if !e.OK {
			na++
			for j := range got {
				got[j] = math.NaN()
			}
		}
		for j := range cols {
			tol := tolQuantile
			if j < 2 {
				tol = tolExact
			}
			err := relErr(got[j], want[j][i])
			if err > tol {
				t.Errorf("window %d–%d %s = %.17g, want %.17g (rel err %.3g)", e.Start, e.End, cols[j], got[j], want[j][i], err)
				continue
			}
			if j < 2 {
				worstMoments = max(worstMoments, err)
			} else {
				worstQ = max(worstQ, err)
			}
		}
	}
	if na != p.NNA {
		t.Errorf("%d NA windows, want %d", na, p.NNA)
	}
	t.Logf("R: worst rel err mean/sd %.3g, quantiles %.3g", worstMoments, worstQ)

	// P(R > 1) of our posterior against R's 1 - pgamma(1, shape, scale)
	// (prob_above_one.R; absolute error, as R's subtraction from 1 is).
	ph, pRows := readTable(t, strings.TrimSuffix(p.Files["R"], "_R.csv")+"_prob.csv")
	wantP := column(t, ph, pRows, "prob_above_1")
	worstP := 0.0
	for i, e := range est {
		got := e.ProbAbove(1)
		if !e.OK {
			continue
		}
		if d := math.Abs(got - wantP[i]); d > 1e-12 {
			t.Errorf("window %d–%d P(R > 1) = %.17g, want %.17g", e.Start, e.End, got, wantP[i])
		} else {
			worstP = max(worstP, d)
		}
	}
	t.Logf("P(R > 1): worst abs err %.3g", worstP)

	// The single-window path used live must agree bit for bit with the
	// batch path, with the SI as given and, for a parametric SI, with the
	// one support vector the processor uses for every series length.
	c, err := NewCori(si, Prior{Mean: p.Mean, SD: p.SD})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range windows {
		got := c.Window(local[:w.End], imported[:w.End], w.End-1, w.Days())
		if got != est[i] {
			t.Errorf("Window(%d, %d) = %+v, EstimateR gave %+v", w.End-1, w.Days(), got, est[i])
		}
	}
	// The processor's estimator (interpolated quantiles of large shapes)
	// meets the reference's tolerance too.
	fast := c.WithInterpolatedQuantiles()
	worstFast := 0.0
	for i, w := range windows {
		e := fast.Window(local[:w.End], imported[:w.End], w.End-1, w.Days())
		if !e.OK {
			continue
		}
		for j, q := range e.Quantiles {
			err := relErr(q, want[2+j][i])
			worstFast = max(worstFast, err)
			if err > tolQuantile {
				t.Errorf("interpolated: window %d–%d %s = %.17g, want %.17g (rel err %.3g)", w.Start, w.End, cols[2+j], q, want[2+j][i], err)
			}
		}
	}
	t.Logf("R, interpolated quantiles: worst rel err %.3g", worstFast)
	if p.Method == "parametric_si" {
		sup, err := DiscreteSISupport(*p.MeanSI, *p.StdSI)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCori(sup, Prior{Mean: p.Mean, SD: p.SD})
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range windows {
			if got := c.Window(local, imported, w.End-1, w.Days()); got != est[i] {
				t.Errorf("support SI: Window(%d, %d) = %+v, EstimateR gave %+v", w.End-1, w.Days(), got, est[i])
			}
		}
	}
}
