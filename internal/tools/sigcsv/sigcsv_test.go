package sigcsv

import (
	"bytes"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
	"github.com/epiwatch/epiwatch/pipeline/science/signals"
)

func TestReadCounts(t *testing.T) {
	in := "\ufeff# weekly cases\nt,count\n1,0\n2, 3\n# a comment\n3,12\n"
	got, err := ReadCounts(strings.NewReader(in), "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []float64{0, 3, 12}) {
		t.Errorf("got %v", got)
	}
}

// TestReadCountsErrors: each error names the file and the line and says
// what to fix.
func TestReadCountsErrors(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"empty", "", "x.csv: empty file; expected the header t,count"},
		{"header only", "t,count\n", "x.csv: no rows after the header"},
		{"no header", "1,5\n2,6\n", `x.csv:1: header "1,5", want "t,count"`},
		{"other header", "week,cases\n1,5\n", `x.csv:1: header "week,cases"`},
		{"starts at 0", "t,count\n0,5\n", "x.csv:2: t = 0, want 1"},
		{"gap", "t,count\n1,5\n2,6\n4,1\n", "x.csv:4: t = 4 after t = 2: periods must be consecutive"},
		{"repeat", "t,count\n1,5\n1,6\n", "x.csv:3: t = 1 after t = 1"},
		{"t not a number", "t,count\n1,5\nthree,6\n", `x.csv:3: t = "three" is not a whole number`},
		{"negative", "t,count\n1,5\n2,-1\n", "x.csv:3: count -1 is negative"},
		{"fraction", "t,count\n1,2.5\n", "x.csv:2: count 2.5 is not a whole number"},
		{"NA", "t,count\n1,NA\n", `x.csv:2: count "NA" is not a number; write the number of cases (0 for none)`},
		{"empty count", "t,count\n1,\n", `x.csv:2: count "" is not a number`},
		{"infinite", "t,count\n1,Inf\n", `x.csv:2: count "Inf" is not a number`},
		{"three fields", "t,count\n1,2,3\n", "x.csv:2: 3 fields, want 2"},
		{"bad quote", "t,count\n1,\"2\n", "x.csv:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCounts(strings.NewReader(tt.in), "x.csv")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestWriteResults pins the output format (testdata/results.golden.csv;
// -update rewrites it).
func TestWriteResults(t *testing.T) {
	rs := []signals.Result{
		{T: 8, Observed: 3, UpperBound: 18.821513964892, Alarm: false},
		{T: 9, Observed: 25, UpperBound: 19.5625905352203, Alarm: true},
		{T: 10, Observed: 1, UpperBound: math.NaN(), AlarmNA: true},
		{T: 11, Observed: 0, UpperBound: math.NaN()},
		{T: 12, Observed: 2000000, UpperBound: 1999999.5, Alarm: true},
		{T: 13, Observed: 0, UpperBound: 2.220446049250313e-16},
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, rs); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "results.golden.csv"), buf.Bytes())
}

func TestRunParams(t *testing.T) {
	counts := make([]float64, 200)
	for i := range counts {
		counts[i] = float64(i % 7)
	}
	tests := []struct {
		p        Params
		first    int
		wantErr  string
		wantRows int
	}{
		{p: DefaultParams("ears-c1"), first: 8, wantRows: 193},
		{p: Params{Method: "ears-c3", Baseline: 5, From: 20}, first: 20, wantRows: 181},
		{p: Params{Method: "farrington", Freq: 52, B: 3, W: 3}, first: 160, wantRows: 41},
		{p: Params{Method: "noufaily", Freq: 12, B: 5, W: 2, Alpha: 0.01}, first: 63, wantRows: 138},
		{p: DefaultParams("farrington"), wantErr: "--freq"},
		{p: Params{Method: "cusum"}, wantErr: `method "cusum": use one of ears-c1, ears-c2, ears-c3, farrington, noufaily`},
	}
	for _, tt := range tests {
		rs, err := tt.p.Run(counts)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: error %v, want %q", tt.p, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%+v: %v", tt.p, err)
		case len(rs) != tt.wantRows || rs[0].T != tt.first:
			t.Errorf("%+v: %d rows from t = %d, want %d from %d", tt.p, len(rs), rs[0].T, tt.wantRows, tt.first)
		}
	}
}
