// Package sigcsv reads and writes the CSV files of `epiwatch signals` and maps
// its method names and parameters onto package signals. The formats are those
// of the surveillance reference runs
// (pipeline/science/signals/testdata/surveillance/README.md): counts as
// t,count, results as t,observed,upperbound,alarm, so that a run can be
// compared with R's output row for row. Every error names the file, the line
// and what to fix.
package sigcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/signals"
)

// CountsHeader and ResultsHeader are the files' headers.
const (
	CountsHeader  = "t,count"
	ResultsHeader = "t,observed,upperbound,alarm"
)

// ReadCounts reads a count series: the header t,count and one row per
// period, t = 1, 2, 3, … with none missing, each count a whole number ≥ 0.
// Lines starting with # are comments. name is used in errors.
func ReadCounts(r io.Reader, name string) ([]float64, error) {
	cr := cli.CSVReader(r)
	cr.FieldsPerRecord = -1 // checked here, with a better message
	var counts []float64
	header := false
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d: %v", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if !header {
			if h := strings.Join(trimAll(rec), ","); h != CountsHeader {
				return nil, fmt.Errorf("%s:%d: header %q, want %q: the first line names the columns, then one row per period", name, line, h, CountsHeader)
			}
			header = true
			continue
		}
		if len(rec) != 2 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 2 (t,count)", name, line, len(rec))
		}
		want := len(counts) + 1
		ts := strings.TrimSpace(rec[0])
		t, err := strconv.Atoi(ts)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s:%d: t = %q is not a whole number; periods are numbered 1, 2, 3, …", name, line, ts)
		case t != want && want == 1:
			return nil, fmt.Errorf("%s:%d: t = %d, want 1: the series starts at t = 1", name, line, t)
		case t != want:
			return nil, fmt.Errorf("%s:%d: t = %d after t = %d: periods must be consecutive, with none missing or repeated (write 0 for a period without cases)", name, line, t, want-1)
		}
		cs := strings.TrimSpace(rec[1])
		c, err := strconv.ParseFloat(cs, 64)
		switch {
		case err != nil || math.IsNaN(c) || math.IsInf(c, 0):
			return nil, fmt.Errorf("%s:%d: count %q is not a number; write the number of cases (0 for none)", name, line, cs)
		case c < 0:
			return nil, fmt.Errorf("%s:%d: count %v is negative; counts are numbers of cases, 0 or more", name, line, c)
		case c != math.Trunc(c):
			return nil, fmt.Errorf("%s:%d: count %v is not a whole number; counts are numbers of cases", name, line, c)
		case c > 1<<53:
			return nil, fmt.Errorf("%s:%d: count %v is too large to be exact", name, line, c)
		}
		counts = append(counts, c)
	}
	switch {
	case !header:
		return nil, fmt.Errorf("%s: empty file; expected the header %s and one row per period", name, CountsHeader)
	case len(counts) == 0:
		return nil, fmt.Errorf("%s: no rows after the header; expected one row per period (t,count)", name)
	}
	return counts, nil
}

func trimAll(rec []string) []string {
	out := make([]string, len(rec))
	for i, s := range rec {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// WriteResults writes the header t,observed,upperbound,alarm and one row
// per result: upperbound NA where there is none, alarm 1, 0 or NA (R's NA,
// signals.Result.AlarmNA).
func WriteResults(w io.Writer, rs []signals.Result) error {
	var b strings.Builder
	b.WriteString(ResultsHeader + "\n")
	for _, r := range rs {
		b.WriteString(strconv.Itoa(r.T))
		b.WriteByte(',')
		b.WriteString(FormatNumber(r.Observed))
		b.WriteByte(',')
		if r.Computable() {
			b.WriteString(FormatNumber(r.UpperBound))
		} else {
			b.WriteString("NA")
		}
		switch {
		case r.AlarmNA:
			b.WriteString(",NA\n")
		case r.Alarm:
			b.WriteString(",1\n")
		default:
			b.WriteString(",0\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatNumber is the shortest decimal that reads back as the same
// double, without an exponent unless the number is tiny or huge.
func FormatNumber(x float64) string {
	if a := math.Abs(x); a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// Methods are the names of the methods, as --method takes them.
var Methods = []string{"ears-c1", "ears-c2", "ears-c3", "farrington", "noufaily"}

// Params are a run's method and parameters, the flags of `epiwatch
// signals`. Start from DefaultParams: Alpha 0 means the method's default,
// From 0 its first computable period; the other fields are used as they
// are by the methods they apply to (Baseline by EARS; Freq, B and W by
// Farrington and Noufaily).
type Params struct {
	Method   string
	Freq     int
	Alpha    float64
	Baseline int
	B, W     int
	From     int
}

// DefaultParams are R's defaults: earsC's baseline 7, farringtonFlexible's
// b = 5 and w = 3; Freq must be given for Farrington and Noufaily.
func DefaultParams(method string) Params {
	return Params{Method: method, Baseline: 7, B: 5, W: 3}
}

// IsEARS reports whether the method is one of the EARS detectors.
func (p Params) IsEARS() bool { return strings.HasPrefix(p.Method, "ears-") }

// Run runs the method on the counts.
func (p Params) Run(counts []float64) ([]signals.Result, error) {
	switch p.Method {
	case "ears-c1", "ears-c2", "ears-c3":
		m := map[string]signals.EARSMethod{"ears-c1": signals.C1, "ears-c2": signals.C2, "ears-c3": signals.C3}[p.Method]
		cfg := signals.DefaultEARS(m)
		cfg.Baseline, cfg.From = p.Baseline, p.From
		if p.Alpha != 0 {
			cfg.Alpha = p.Alpha
		}
		return signals.EARS(counts, cfg)
	case "farrington", "noufaily":
		if p.Freq == 0 {
			return nil, fmt.Errorf("%s needs the number of periods per year, --freq: 52 for weekly counts, 12 for monthly, 365 for daily", p.Method)
		}
		cfg := signals.DefaultFarrington(p.Freq)
		if p.Method == "noufaily" {
			cfg = signals.DefaultNoufaily(p.Freq)
		}
		cfg.B, cfg.W, cfg.From = p.B, p.W, p.From
		if p.Alpha != 0 {
			cfg.Alpha = p.Alpha
		}
		return signals.Farrington(counts, cfg)
	}
	return nil, fmt.Errorf("method %q: use one of %s", p.Method, strings.Join(Methods, ", "))
}
