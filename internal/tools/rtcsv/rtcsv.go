// Package rtcsv reads and writes the CSV files of `epiwatch rt`: daily
// incidence, a serial interval, estimation windows, and the estimates. The
// formats are those of the EpiEstim reference files
// (pipeline/science/epi/testdata/epiestim/README.md), so a run can be compared
// with EpiEstim's output column for column. Every error names the file, the
// line and what to fix.
package rtcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
)

// Incidence is a daily case series, day 1 first.
type Incidence struct {
	// Dates are the days' dates when the file has them (nil otherwise).
	Dates []time.Time
	// Local and Imported cases per day. Day 1's cases are all imported, as
	// EpiEstim has it: nothing earlier in the series can explain them.
	Local, Imported []float64
}

// Days is the length of the series.
func (in Incidence) Days() int { return len(in.Local) }

// Total is local plus imported cases per day.
func (in Incidence) Total() []float64 {
	t := make([]float64, len(in.Local))
	for i := range t {
		t[i] = in.Local[i] + in.Imported[i]
	}
	return t
}

// incidenceColumns are the columns ReadIncidence knows; "dates" is
// EpiEstim's own name for the date column.
var incidenceColumns = []string{"day", "date", "dates", "I", "local", "imported"}

// ReadIncidence reads daily incidence, one row per day in order, with a
// header naming the columns: the reference format day,date,I,local,imported,
// or just I, or date,I, or local,imported (any subset in any order, but
// either I or both local and imported). With local and imported they are
// used as given (and must add up to I when I is there too); with I alone
// every case is local. Either way day 1's cases are then counted as
// imported, EpiEstim's convention, which changes no estimate (no window
// includes day 1, and Λ counts all cases). A file of bare numbers without a
// header is read as I. Counts must be non-negative numbers; NA counts 0, as
// in EpiEstim. Dates, when given, must be consecutive days (YYYY-MM-DD).
// name is used in errors.
func ReadIncidence(r io.Reader, name string) (Incidence, error) {
	rows, err := readCSV(r, name)
	if err != nil {
		return Incidence{}, err
	}
	if len(rows) == 0 {
		return Incidence{}, fmt.Errorf("%s: empty file; expected a header such as day,date,I,local,imported and one row per day", name)
	}
	header, body := rows[0].fields, rows[1:]
	if len(header) == 1 && isNumberOrNA(header[0]) {
		header, body = []string{"I"}, rows // bare counts
	}
	col, err := columns(name, header, incidenceColumns, false)
	if err != nil {
		return Incidence{}, err
	}
	_, hasI := col["I"]
	_, hasL := col["local"]
	_, hasM := col["imported"]
	if hasL != hasM {
		return Incidence{}, fmt.Errorf("%s:1: give both local and imported columns, or neither (then I is all local)", name)
	}
	if !hasI && !hasL {
		return Incidence{}, fmt.Errorf("%s:1: no case counts; add a column I (total cases per day) or local and imported", name)
	}
	dateCol, hasDate := col["date"]
	if d, ok := col["dates"]; ok {
		if hasDate {
			return Incidence{}, fmt.Errorf("%s:1: both date and dates columns; keep one", name)
		}
		dateCol, hasDate = d, true
	}
	if len(body) == 0 {
		return Incidence{}, fmt.Errorf("%s: no rows after the header; expected one row per day", name)
	}

	var in Incidence
	in.Local = make([]float64, len(body))
	in.Imported = make([]float64, len(body))
	var dates []time.Time
	for i, row := range body {
		line := row.line
		if d, ok := col["day"]; ok {
			day, err := strconv.Atoi(strings.TrimSpace(row.fields[d]))
			if err != nil || day != i+1 {
				return Incidence{}, fmt.Errorf("%s:%d: day %q, want %d: rows must be days 1, 2, … in order with none missing", name, line, row.fields[d], i+1)
			}
		}
		if hasDate {
			s := strings.TrimSpace(row.fields[dateCol])
			switch {
			case s == "" && (i == 0 || dates == nil):
				// no dates in this file
			case s == "" || (i > 0 && dates == nil):
				return Incidence{}, fmt.Errorf("%s:%d: date %q: give a date on every row or on none", name, line, s)
			default:
				d, err := time.Parse(time.DateOnly, s)
				if err != nil {
					return Incidence{}, fmt.Errorf("%s:%d: date %q is not a YYYY-MM-DD date", name, line, s)
				}
				if i > 0 && !d.Equal(dates[i-1].AddDate(0, 0, 1)) {
					return Incidence{}, fmt.Errorf("%s:%d: date %s does not follow %s; rows must be consecutive days (write 0 for days without cases)", name, line, s, dates[i-1].Format(time.DateOnly))
				}
				dates = append(dates, d)
			}
		}
		count := func(c string) (float64, error) {
			return parseCount(name, line, c, row.fields[col[c]])
		}
		if hasL {
			if in.Local[i], err = count("local"); err != nil {
				return Incidence{}, err
			}
			if in.Imported[i], err = count("imported"); err != nil {
				return Incidence{}, err
			}
		}
		if hasI {
			total, err := count("I")
			if err != nil {
				return Incidence{}, err
			}
			if !hasL {
				in.Local[i] = total
			} else if sum := in.Local[i] + in.Imported[i]; sum != total {
				return Incidence{}, fmt.Errorf("%s:%d: I = %v but local + imported = %v; fix the counts or drop the I column", name, line, total, sum)
			}
		}
	}
	in.Dates = dates
	// EpiEstim's process_I: day 1's cases are imported.
	in.Imported[0] += in.Local[0]
	in.Local[0] = 0
	return in, nil
}

// parseCount reads one case count: a non-negative number, or NA for 0.
func parseCount(name string, line int, column, s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "NA" {
		return 0, nil // EpiEstim: NA incidence is 0
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%s:%d: column %s: %q is not a number; write a case count (0 for none)", name, line, column, s)
	case v < 0:
		return 0, fmt.Errorf("%s:%d: column %s: negative count %v; case counts must be 0 or more", name, line, column, v)
	}
	return v, nil
}

// ReadSI reads a serial interval distribution: a header k,w (or just w)
// and one row per lag from k = 0 up, the weights w[k]. It must pass
// epi.ValidateSI: w[0] = 0, no negative weight, sum 1 ± 0.01.
func ReadSI(r io.Reader, name string) ([]float64, error) {
	rows, err := readCSV(r, name)
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: expected a header k,w and one row per lag from k = 0", name)
	}
	col, err := columns(name, rows[0].fields, []string{"k", "w"}, false)
	if err != nil {
		return nil, err
	}
	wc, ok := col["w"]
	if !ok {
		return nil, fmt.Errorf("%s:1: no column w (the weight of each lag)", name)
	}
	w := make([]float64, 0, len(rows)-1)
	for i, row := range rows[1:] {
		if kc, ok := col["k"]; ok {
			k, err := strconv.Atoi(strings.TrimSpace(row.fields[kc]))
			if err != nil || k != i {
				return nil, fmt.Errorf("%s:%d: k = %q, want %d: lags must run 0, 1, 2, … in order", name, row.line, row.fields[kc], i)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(row.fields[wc]), 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: w = %q is not a number", name, row.line, row.fields[wc])
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s:%d: w = %v; weights must be non-negative", name, row.line, v)
		}
		w = append(w, v)
	}
	if w[0] != 0 {
		return nil, fmt.Errorf("%s:%d: w[0] = %v; the serial interval must start with 0 at lag 0 (nobody infects others on their own onset day)", name, rows[1].line, w[0])
	}
	if err := epi.ValidateSI(w); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return w, nil
}

// ReadWindows reads estimation windows: a header t_start,t_end and one
// window per row, 1-based days both included, within a series of T days
// (2 ≤ t_start ≤ t_end ≤ T: day 1 has no past to explain it). Other columns
// are ignored, so the estimates of one run (or EpiEstim's R table) can give
// the windows of another.
func ReadWindows(r io.Reader, name string, T int) ([]epi.Window, error) {
	rows, err := readCSV(r, name)
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%s: expected a header t_start,t_end and one window per row", name)
	}
	col, err := columns(name, rows[0].fields, []string{"t_start", "t_end"}, true)
	if err != nil {
		return nil, err
	}
	sc, ok1 := col["t_start"]
	ec, ok2 := col["t_end"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s:1: need columns t_start and t_end", name)
	}
	ws := make([]epi.Window, 0, len(rows)-1)
	for _, row := range rows[1:] {
		s, err1 := strconv.Atoi(strings.TrimSpace(row.fields[sc]))
		e, err2 := strconv.Atoi(strings.TrimSpace(row.fields[ec]))
		switch {
		case err1 != nil || err2 != nil:
			return nil, fmt.Errorf("%s:%d: t_start %q, t_end %q: both must be whole day numbers", name, row.line, row.fields[sc], row.fields[ec])
		case s < 2 || s > e || e > T:
			return nil, fmt.Errorf("%s:%d: window %d–%d out of range: need 2 ≤ t_start ≤ t_end ≤ %d (the incidence has %d days; day 1 cannot be estimated)", name, row.line, s, e, T, T)
		}
		ws = append(ws, epi.Window{Start: s, End: e})
	}
	return ws, nil
}

// Header is the estimates file's header: EpiEstim's R table with short
// names, then epiwatch's own columns (ExtraHeader), which only ever follow
// it, so a reader of EpiEstim's columns can ignore them.
const Header = "t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975" + ExtraHeader

// ExtraHeader are the columns after EpiEstim's: the posterior probability
// that R exceeds 1, the daily growth rate and the doubling time in days
// (negative: halving) from R's mean and the serial interval (Wallinga &
// Lipsitch 2007), EpiNow2's trend label of P(R < 1), and status: ok, or
// few_cases when the window holds fewer than Extra.MinCases local cases or
// the posterior CV exceeds Extra.MaxCV (EpiEstim's guidance: 12 and 0.3).
const ExtraHeader = ",prob_above_1,growth_rate,doubling_time,trend,status"

// Extra is what the columns after EpiEstim's need.
type Extra struct {
	// SIMean and SISD: the serial interval the growth rate assumes (for a
	// given, non-parametric SI: its mean and sd, a gamma of the same moments).
	SIMean, SISD float64
	// Local is the local cases per day (index 0 is day 1): each window's
	// evidence.
	Local    []float64
	MinCases int
	MaxCV    float64
}

// WriteEstimates writes one row per estimate, NA where it is not estimated.
// Numbers are the shortest decimal that reads back as the same double.
func WriteEstimates(w io.Writer, es []epi.Estimate, x Extra) error {
	var b strings.Builder
	b.WriteString(Header + "\n")
	for _, e := range es {
		b.WriteString(strconv.Itoa(e.Start) + "," + strconv.Itoa(e.End))
		vals := append([]float64{e.Mean, e.SD}, e.Quantiles[:]...)
		for _, v := range vals {
			b.WriteByte(',')
			if e.OK {
				b.WriteString(formatFloat(v))
			} else {
				b.WriteString("NA")
			}
		}
		if !e.OK {
			b.WriteString(",NA,NA,NA,NA,NA\n")
			continue
		}
		p := e.ProbAbove(1)
		r := epi.GrowthRate(e.Mean, x.SIMean, x.SISD)
		cases := 0.0
		for d := max(e.Start, 1); d <= e.End && d <= len(x.Local); d++ {
			cases += x.Local[d-1]
		}
		status := "ok"
		if cases < float64(x.MinCases) || e.SD > x.MaxCV*e.Mean {
			status = "few_cases"
		}
		b.WriteString("," + formatFloat(p) + "," + formatNA(r) + "," + formatNA(epi.DoublingTime(r)) + "," + string(epi.TrendOf(1-p)) + "," + status + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatNA is formatFloat with NA for NaN and infinities.
func formatNA(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "NA"
	}
	return formatFloat(x)
}

// WriteRatio writes the officials' ratio R for every day from the first
// one with 2×days days of history: cases of the last days days over the
// days days before. t_start and t_end span the 2×days days (1-based), mean
// is the ratio, unrounded, and the other columns are NA; the ratio is NA
// when the earlier days have no cases.
func WriteRatio(w io.Writer, total []float64, days int) error {
	if days < 1 {
		return fmt.Errorf("ratio days must be at least 1, got %d", days)
	}
	var b strings.Builder
	b.WriteString(Header + "\n")
	na := strings.Repeat(",NA", 8+strings.Count(ExtraHeader, ","))
	for end := 2*days - 1; end < len(total); end++ {
		b.WriteString(strconv.Itoa(end-2*days+2) + "," + strconv.Itoa(end+1) + ",")
		if r, ok := epi.Ratio(total, end, days); ok {
			b.WriteString(formatFloat(r))
		} else {
			b.WriteString("NA")
		}
		b.WriteString(na + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// row is one CSV record and its line number in the file.
type row struct {
	fields []string
	line   int
}

// readCSV reads every record; lines starting with # are comments.
func readCSV(r io.Reader, name string) ([]row, error) {
	cr := cli.CSVReader(r)
	var rows []row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d: %v", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, row{fields: rec, line: line})
	}
}

// columns maps the header's names to their positions, rejecting repeated
// names and, unless extra, unknown ones (a misspelt column would otherwise
// be silently ignored).
func columns(name string, header, known []string, extra bool) (map[string]int, error) {
	col := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if !slices.Contains(known, h) {
			if extra {
				continue
			}
			return nil, fmt.Errorf("%s:1: unknown column %q; known columns are %s", name, h, strings.Join(known, ", "))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		col[h] = i
	}
	return col, nil
}

func isNumberOrNA(s string) bool {
	s = strings.TrimSpace(s)
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || s == "NA"
}

// CoriConfig chooses the serial interval, the windows and the prior of a
// Cori run.
type CoriConfig struct {
	// SI is a given (non-parametric) serial interval; nil: the parametric
	// one from SIMean and SISD, discretised over the series as EpiEstim's
	// parametric_si does.
	SI           []float64
	SIMean, SISD float64
	// Windows to estimate; nil: EpiEstim's sliding windows of WindowDays.
	Windows    []epi.Window
	WindowDays int
	Prior      epi.Prior
}

// Cori estimates R for the incidence as EpiEstim's estimate_R would with
// the same settings.
func Cori(in Incidence, cfg CoriConfig) ([]epi.Estimate, error) {
	T := in.Days()
	si := cfg.SI
	if si == nil {
		var err error
		// parametric_si: discr_si(0:(T-1), mean, sd), zero-padded to T+1.
		if si, err = epi.DiscreteSI(cfg.SIMean, cfg.SISD, T); err != nil {
			return nil, err
		}
		si = append(si, 0)
	}
	windows := cfg.Windows
	if windows == nil {
		if cfg.WindowDays < 1 {
			return nil, fmt.Errorf("window length must be at least 1 day, got %d", cfg.WindowDays)
		}
		if windows = epi.SlidingWindows(T, cfg.WindowDays); windows == nil {
			return nil, fmt.Errorf("the incidence has %d days; a %d-day window needs at least %d (day 1 is never in a window)", T, cfg.WindowDays, cfg.WindowDays+1)
		}
	}
	return epi.EstimateR(in.Local, in.Imported, si, windows, cfg.Prior)
}
