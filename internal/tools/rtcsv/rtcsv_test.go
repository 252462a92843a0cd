package rtcsv

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
)

// referenceDir is the EpiEstim reference folder of package epi.
var referenceDir = filepath.Join("..", "..", "..", "pipeline", "science", "epi", "testdata", "epiestim")

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readIncidence(t *testing.T, path string) Incidence {
	t.Helper()
	in, err := ReadIncidence(open(t, path), path)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestGolden runs the small inputs in testdata/ through every output path.
func TestGolden(t *testing.T) {
	in := readIncidence(t, "testdata/small_incidence.csv")
	si, err := ReadSI(open(t, "testdata/small_si.csv"), "small_si.csv")
	if err != nil {
		t.Fatal(err)
	}
	windows, err := ReadWindows(open(t, "testdata/small_windows.csv"), "small_windows.csv", in.Days())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		golden string
		cfg    CoriConfig
		ratio  int // > 0: the ratio method over this many days
	}{
		{"small_cori_parametric", CoriConfig{SIMean: 4.7, SISD: 2.9, WindowDays: 7, Prior: epi.DefaultPrior()}, 0},
		{"small_cori_si", CoriConfig{SI: si, WindowDays: 7, Prior: epi.DefaultPrior()}, 0},
		{"small_cori_windows", CoriConfig{SI: si, Windows: windows, Prior: epi.Prior{Mean: 2, SD: 4}}, 0},
		{"small_ratio", CoriConfig{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var buf bytes.Buffer
			if tt.ratio > 0 {
				if err := WriteRatio(&buf, in.Total(), tt.ratio); err != nil {
					t.Fatal(err)
				}
			} else {
				es, err := Cori(in, tt.cfg)
				if err != nil {
					t.Fatal(err)
				}
				x := Extra{SIMean: tt.cfg.SIMean, SISD: tt.cfg.SISD, Local: in.Local, MinCases: 12, MaxCV: 0.3}
				if tt.cfg.SI != nil {
					x.SIMean, x.SISD = epi.SIMean(tt.cfg.SI), epi.SISD(tt.cfg.SI)
				}
				if err := WriteEstimates(&buf, es, x); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, filepath.Join("testdata", tt.golden+".golden.csv"), buf.Bytes())
		})
	}
}

// TestRatioRows pins the ratio file's shape by hand.
func TestRatioRows(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRatio(&buf, []float64{0, 0, 1, 2, 3, 3, 4, 0}, 2); err != nil {
		t.Fatal(err)
	}
	want := Header + `
1,4,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
2,5,5,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
3,6,2,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
4,7,1.4,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
5,8,0.6666666666666666,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestReferenceThroughCSV runs every EpiEstim reference case through this
// package's readers and writer and compares the written numbers with
// EpiEstim's R table: Flu2009 with dates, the synthetic series without, a
// given SI through ReadSI and the windows through ReadWindows.
func TestReferenceThroughCSV(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join(referenceDir, "*_params.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("no EpiEstim reference cases in %s: the reference folder is missing", referenceDir)
	}
	sawFlu := false
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), "_params.json"), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Dataset string            `json:"dataset"`
				Method  string            `json:"method"`
				MeanSI  *float64          `json:"mean_si"`
				StdSI   *float64          `json:"std_si"`
				Mean    float64           `json:"mean_prior"`
				SD      float64           `json:"std_prior"`
				Files   map[string]string `json:"files"`
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			sawFlu = sawFlu || p.Dataset == "Flu2009"
			in := readIncidence(t, filepath.Join(referenceDir, p.Files["incidence"]))
			if p.Dataset == "Flu2009" && len(in.Dates) != in.Days() {
				t.Errorf("Flu2009: %d dates for %d days", len(in.Dates), in.Days())
			}
			rPath := filepath.Join(referenceDir, p.Files["R"])
			windows, err := ReadWindows(open(t, rPath), rPath, in.Days())
			if err != nil {
				t.Fatal(err)
			}
			cfg := CoriConfig{Windows: windows, Prior: epi.Prior{Mean: p.Mean, SD: p.SD}}
			if p.Method == "non_parametric_si" {
				siPath := filepath.Join(referenceDir, p.Files["si"])
				if cfg.SI, err = ReadSI(open(t, siPath), siPath); err != nil {
					t.Fatal(err)
				}
			} else {
				cfg.SIMean, cfg.SISD = *p.MeanSI, *p.StdSI
			}
			es, err := Cori(in, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteEstimates(&buf, es, Extra{SIMean: 4.7, SISD: 2.9, Local: in.Local, MinCases: 12, MaxCV: 0.3}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			got := readFloats(t, strings.NewReader(out), 12) // EpiEstim's 11 columns and prob_above_1
			want := readFloats(t, open(t, rPath), 11)
			// P(R > 1) against R's 1 - pgamma(1, shape, scale).
			probs := readFloats(t, open(t, strings.TrimSuffix(rPath, "_R.csv")+"_prob.csv"), 3)
			for i := range probs {
				if g, w := got[i][11], probs[i][2]; math.Abs(g-w) > 1e-12 {
					t.Errorf("row %d prob_above_1: %v, R %v", i+1, g, w)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, EpiEstim %d", len(got), len(want))
			}
			for i := range want {
				for j := range want[i] { // EpiEstim's columns
					// t_start, t_end exact; mean, std 1e-12; quantiles 1e-9
					// (the reference README's expected agreement).
					tol := 1e-9
					if j < 4 {
						tol = 1e-12
					}
					if !near(got[i][j], want[i][j], tol) {
						t.Errorf("row %d column %d: %v, EpiEstim %v", i+1, j+1, got[i][j], want[i][j])
					}
				}
			}
		})
	}
	if !sawFlu {
		t.Error("no Flu2009 case among the references")
	}
}

func near(got, want, rel float64) bool {
	if math.IsNaN(got) || math.IsNaN(want) {
		return math.IsNaN(got) && math.IsNaN(want)
	}
	return math.Abs(got-want) <= rel*math.Abs(want)
}

// readFloats reads the first n columns of a CSV with a header into
// numbers, NA as NaN.
func readFloats(t *testing.T, r interface{ Read([]byte) (int, error) }, n int) [][]float64 {
	t.Helper()
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := make([]float64, n)
		for j, s := range rec[:n] {
			if s == "NA" {
				row[j] = math.NaN()
				continue
			}
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, row)
	}
	return out
}

func TestReadIncidenceFormats(t *testing.T) {
	tests := []struct {
		name            string
		csv             string
		local, imported []float64
		dates           int
	}{
		{"reference format", "day,date,I,local,imported\n1,2020-01-01,2,0,2\n2,2020-01-02,3,2,1\n3,2020-01-03,4,4,0\n", []float64{0, 2, 4}, []float64{2, 1, 0}, 3},
		{"I only", "I\n5\n3\n4\n", []float64{0, 3, 4}, []float64{5, 0, 0}, 0},
		{"date and I", "date,I\n2020-02-28,1\n2020-02-29,0\n2020-03-01,7\n", []float64{0, 0, 7}, []float64{1, 0, 0}, 3},
		{"EpiEstim's dates column", "dates,I\n2020-02-28,1\n2020-02-29,2\n", []float64{0, 2}, []float64{1, 0}, 2},
		{"local and imported", "local,imported\n1,1\n2,3\n", []float64{0, 2}, []float64{2, 3}, 0},
		{"day-1 local cases become imported", "I,local,imported\n3,2,1\n1,1,0\n", []float64{0, 1}, []float64{3, 0}, 0},
		{"no header", "4\n2\n6\n", []float64{0, 2, 6}, []float64{4, 0, 0}, 0},
		{"NA is 0", "I\n1\nNA\n3\n", []float64{0, 0, 3}, []float64{1, 0, 0}, 0},
		{"empty dates", "day,date,I\n1,,1\n2,,2\n", []float64{0, 2}, []float64{1, 0}, 0},
		{"comments, spaces and a BOM", "\ufeff# cases by onset\nday, I\n1, 2\n2, 3\n", []float64{0, 3}, []float64{2, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ReadIncidence(strings.NewReader(tt.csv), "in.csv")
			if err != nil {
				t.Fatal(err)
			}
			if !equal(in.Local, tt.local) || !equal(in.Imported, tt.imported) || len(in.Dates) != tt.dates {
				t.Errorf("local %v imported %v (%d dates), want %v %v (%d)", in.Local, in.Imported, len(in.Dates), tt.local, tt.imported, tt.dates)
			}
		})
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadErrors: every bad input names the file, the line and the
// problem.
func TestReadErrors(t *testing.T) {
	incidence := func(s string) error { _, err := ReadIncidence(strings.NewReader(s), "cases.csv"); return err }
	si := func(s string) error { _, err := ReadSI(strings.NewReader(s), "si.csv"); return err }
	windows := func(s string) error { _, err := ReadWindows(strings.NewReader(s), "w.csv", 10); return err }
	tests := []struct {
		name    string
		read    func(string) error
		csv     string
		wantErr string
	}{
		{"empty incidence", incidence, "", "cases.csv: empty file"},
		{"header only", incidence, "I\n", "cases.csv: no rows"},
		{"negative count", incidence, "I\n1\n-2\n", "cases.csv:3: column I: negative count -2"},
		{"not a number", incidence, "date,I\n2020-01-01,1\n2020-01-02,many\n", `cases.csv:3: column I: "many" is not a number`},
		{"empty count", incidence, "I,local,imported\n1,0,1\n,1,0\n", `cases.csv:3: column I: "" is not a number`},
		{"negative import", incidence, "local,imported\n1,0\n1,-1\n", "cases.csv:3: column imported: negative"},
		{"I disagrees with local+imported", incidence, "I,local,imported\n1,0,1\n5,2,2\n", "cases.csv:3: I = 5 but local + imported = 4"},
		{"local without imported", incidence, "local\n1\n", "cases.csv:1: give both local and imported"},
		{"no counts", incidence, "day,date\n1,2020-01-01\n", "cases.csv:1: no case counts"},
		{"unknown column", incidence, "day,cases\n1,2\n", `cases.csv:1: unknown column "cases"`},
		{"repeated column", incidence, "I,I\n1,2\n", `cases.csv:1: column "I" appears twice`},
		{"day out of order", incidence, "day,I\n1,1\n3,1\n", `cases.csv:3: day "3", want 2`},
		{"date gap", incidence, "date,I\n2020-01-01,1\n2020-01-03,1\n", "cases.csv:3: date 2020-01-03 does not follow 2020-01-01"},
		{"bad date", incidence, "date,I\n01/01/2020,1\n", `cases.csv:2: date "01/01/2020" is not a YYYY-MM-DD date`},
		{"some dates missing", incidence, "date,I\n2020-01-01,1\n,1\n", "cases.csv:3: date \"\": give a date on every row or on none"},
		{"ragged row", incidence, "I,local,imported\n1,0,1\n2,2\n", "cases.csv:3: wrong number of fields"},
		{"SI not at 0", si, "k,w\n0,0.1\n1,0.9\n", "si.csv:2: w[0] = 0.1; the serial interval must start with 0"},
		{"SI sum", si, "k,w\n0,0\n1,0.5\n2,0.3\n", "si.csv: serial interval weights sum to 0.8"},
		{"SI negative", si, "k,w\n0,0\n1,1.5\n2,-0.5\n", "si.csv:4: w = -0.5; weights must be non-negative"},
		{"SI lag order", si, "k,w\n0,0\n2,1\n", `si.csv:3: k = "2", want 1`},
		{"SI not a number", si, "k,w\n0,0\n1,x\n", `si.csv:3: w = "x" is not a number`},
		{"SI no weight column", si, "k\n0\n", "si.csv:1: no column w"},
		{"SI header only", si, "k,w\n", "si.csv: expected a header"},
		{"window from day 1", windows, "t_start,t_end\n2,8\n1,7\n", "w.csv:3: window 1–7 out of range"},
		{"window past the end", windows, "t_start,t_end\n5,11\n", "w.csv:2: window 5–11 out of range: need 2 ≤ t_start ≤ t_end ≤ 10"},
		{"window reversed", windows, "t_start,t_end\n6,5\n", "w.csv:2: window 6–5 out of range"},
		{"window not whole", windows, "t_start,t_end\n2,7.5\n", `w.csv:2: t_start "2", t_end "7.5": both must be whole day numbers`},
		{"window columns", windows, "start,end\n2,8\n", "w.csv:1: need columns t_start and t_end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.read(tt.csv)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCoriErrors(t *testing.T) {
	in := Incidence{Local: []float64{0, 1, 2}, Imported: []float64{1, 0, 0}}
	tests := []struct {
		name    string
		cfg     CoriConfig
		wantErr string
	}{
		{"series too short", CoriConfig{SIMean: 4.7, SISD: 2.9, WindowDays: 7, Prior: epi.DefaultPrior()}, "the incidence has 3 days; a 7-day window needs at least 8"},
		{"zero window", CoriConfig{SIMean: 4.7, SISD: 2.9, Prior: epi.DefaultPrior()}, "at least 1 day"},
		{"SI mean", CoriConfig{SIMean: 0.5, SISD: 2.9, WindowDays: 1, Prior: epi.DefaultPrior()}, "above 1 day"},
		{"prior", CoriConfig{SIMean: 4.7, SISD: 2.9, WindowDays: 1, Prior: epi.Prior{Mean: -1, SD: 5}}, "prior"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Cori(in, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if err := WriteRatio(&bytes.Buffer{}, []float64{1}, 0); err == nil {
		t.Error("WriteRatio with 0 days: no error")
	}
}
