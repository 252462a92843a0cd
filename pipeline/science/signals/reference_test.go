package signals_test

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/sigcsv"
	"github.com/epiwatch/epiwatch/pipeline/science/signals"
)

// runsDir holds surveillance 1.20.3's output, one folder per run
// (testdata/surveillance/README.md).
var runsDir = filepath.Join("testdata", "surveillance", "runs")

// Tolerances on the upper bound, relative to R's (printed by R with 15
// significant digits): EARS is a mean and an sd; the GLM methods go
// through IRLS, which R and this package both stop at a relative change of
// the deviance below 1e-8.
const (
	tolEARS = 1e-9
	tolGLM  = 1e-6
)

// run is one reference run: its input, the flags of its R call, R's rows.
type run struct {
	name     string
	params   sigcsv.Params
	counts   []float64
	expected []expectedRow
}

type expectedRow struct {
	t        int
	observed float64
	upper    float64 // NaN: NA
	alarm    string  // 1, 0 or NA
}

func loadRuns(t *testing.T) []run {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(runsDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("%d reference runs in %s, want the 10 surveillance reference runs and at least 5 more: the folder is incomplete", len(dirs), runsDir)
	}
	runs := make([]run, 0, len(dirs))
	for _, dir := range dirs {
		r := run{name: filepath.Base(dir)}
		args, err := os.ReadFile(filepath.Join(dir, "args.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if r.params, err = parseArgs(string(args)); err != nil {
			t.Fatalf("%s/args.txt: %v", dir, err)
		}
		f, err := os.Open(filepath.Join(dir, "input.csv"))
		if err != nil {
			t.Fatal(err)
		}
		r.counts, err = sigcsv.ReadCounts(f, f.Name())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.expected, err = readExpected(filepath.Join(dir, "expected.csv")); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

// parseArgs reads the `epiwatch signals` flags of args.txt.
func parseArgs(s string) (sigcsv.Params, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return sigcsv.Params{}, fmt.Errorf("flags %q: want --name value pairs", s)
	}
	var method string
	for i := 0; i < len(f); i += 2 {
		if f[i] == "--method" {
			method = f[i+1]
		}
	}
	p := sigcsv.DefaultParams(method)
	for i := 0; i < len(f); i += 2 {
		name, v := f[i], f[i+1]
		var err error
		switch name {
		case "--method":
		case "--alpha":
			p.Alpha, err = strconv.ParseFloat(v, 64)
		case "--freq":
			p.Freq, err = strconv.Atoi(v)
		case "--baseline":
			p.Baseline, err = strconv.Atoi(v)
		case "--b":
			p.B, err = strconv.Atoi(v)
		case "--w":
			p.W, err = strconv.Atoi(v)
		case "--from":
			p.From, err = strconv.Atoi(v)
		default:
			return p, fmt.Errorf("unknown flag %s", name)
		}
		if err != nil {
			return p, fmt.Errorf("%s %s: %v", name, v, err)
		}
	}
	return p, nil
}

func readExpected(path string) ([]expectedRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(recs) < 2 || strings.Join(recs[0], ",") != sigcsv.ResultsHeader {
		return nil, fmt.Errorf("%s: want the header %s and rows", path, sigcsv.ResultsHeader)
	}
	rows := make([]expectedRow, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		var e expectedRow
		var err1, err2, err3 error
		e.t, err1 = strconv.Atoi(rec[0])
		e.observed, err2 = strconv.ParseFloat(rec[1], 64)
		e.upper = math.NaN()
		if rec[2] != "NA" {
			e.upper, err3 = strconv.ParseFloat(rec[2], 64)
		}
		e.alarm = rec[3]
		if err := cmpErr(err1, err2, err3); err != nil || (e.alarm != "0" && e.alarm != "1" && e.alarm != "NA") {
			return nil, fmt.Errorf("%s:%d: bad row %v", path, i+2, rec)
		}
		rows = append(rows, e)
	}
	return rows, nil
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func alarmString(r signals.Result) string {
	switch {
	case r.AlarmNA:
		return "NA"
	case r.Alarm:
		return "1"
	}
	return "0"
}

// compare checks got against R's rows and returns the disagreements and
// the largest relative error of the upper bound.
func compare(got []signals.Result, want []expectedRow, tol float64) (diffs []string, worst float64) {
	if len(got) != len(want) {
		return []string{fmt.Sprintf("%d rows, R has %d", len(got), len(want))}, 0
	}
	for i, w := range want {
		g := got[i]
		if g.T != w.t || g.Observed != w.observed {
			diffs = append(diffs, fmt.Sprintf("row %d: t = %d observed %v, R: t = %d observed %v", i+1, g.T, g.Observed, w.t, w.observed))
			continue
		}
		switch {
		case math.IsNaN(w.upper) != math.IsNaN(g.UpperBound):
			diffs = append(diffs, fmt.Sprintf("t = %d: upper bound %v, R %v", w.t, g.UpperBound, w.upper))
		case !math.IsNaN(w.upper) && g.UpperBound != w.upper:
			rel := math.Abs(g.UpperBound-w.upper) / math.Abs(w.upper)
			worst = max(worst, rel)
			if !(rel <= tol) {
				diffs = append(diffs, fmt.Sprintf("t = %d: upper bound %.15g, R %.15g (relative error %.2g)", w.t, g.UpperBound, w.upper, rel))
			}
		}
		if a := alarmString(g); a != w.alarm {
			diffs = append(diffs, fmt.Sprintf("t = %d: alarm %s, R %s (observed %v, bound %.15g, R's %.15g)", w.t, a, w.alarm, w.observed, g.UpperBound, w.upper))
		}
	}
	return diffs, worst
}

func tolerance(p sigcsv.Params) float64 {
	if p.IsEARS() {
		return tolEARS
	}
	return tolGLM
}

// TestReference runs every reference run and compares every row with R's:
// the bound within tolerance, NA exactly where R has NA, the alarm
// identical (NA included), the count itself.
func TestReference(t *testing.T) {
	worst := map[string]float64{}
	rows := map[string]int{}
	for _, r := range loadRuns(t) {
		t.Run(r.name, func(t *testing.T) {
			got, err := r.params.Run(r.counts)
			if err != nil {
				t.Fatal(err)
			}
			diffs, w := compare(got, r.expected, tolerance(r.params))
			for i, d := range diffs {
				if i == 20 {
					t.Errorf("… and %d more", len(diffs)-i)
					break
				}
				t.Error(d)
			}
			worst[r.params.Method] = max(worst[r.params.Method], w)
			rows[r.params.Method] += len(r.expected)
		})
	}
	for _, m := range sigcsv.Methods {
		t.Logf("%-10s %5d rows, worst relative error of the upper bound %.3g", m, rows[m], worst[m])
	}
}

// TestReferenceNegativeControl: the comparison is not vacuous. A run with
// a parameter off by a little (alpha by 1 %, or b, w or the baseline by 1)
// must disagree with R.
func TestReferenceNegativeControl(t *testing.T) {
	perturbations := []struct {
		name   string
		change func(*sigcsv.Params)
	}{
		{"alpha+1%", func(p *sigcsv.Params) { p.Alpha *= 1.01 }},
		{"baseline or w+1", func(p *sigcsv.Params) { p.Baseline++; p.W++ }},
	}
	seen := map[string]bool{}
	for _, r := range loadRuns(t) {
		if seen[r.params.Method] {
			continue // one run per method
		}
		seen[r.params.Method] = true
		for _, pt := range perturbations {
			t.Run(r.name+"/"+pt.name, func(t *testing.T) {
				p := r.params
				pt.change(&p)
				got, err := p.Run(r.counts)
				if err != nil {
					return // failing outright is a disagreement too
				}
				if diffs, _ := compare(got, r.expected, tolerance(p)); len(diffs) == 0 {
					t.Errorf("%+v agrees with R's run for %+v: the comparison would not catch a wrong parameter", p, r.params)
				}
			})
		}
	}
	if len(seen) != len(sigcsv.Methods) {
		t.Errorf("runs for %d methods, want all %d", len(seen), len(sigcsv.Methods))
	}
}
