package simulate

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/epiwatch/epiwatch/schemas"
)

// TruthRow is what really happened in a region on a day: the values an
// estimator fed with the events should recover.
type TruthRow struct {
	Region string
	Date   schemas.Date
	// R is the schedule's R(t); RTrue = R(t)·S/N is the reproduction number
	// in force (they differ once susceptibles are depleted).
	R, RTrue float64
	// Lambda is the total infectiousness Σ_s w_s I_{t-s} (EpiEstim's Λ_t).
	Lambda float64
	// SOverN is the susceptible share S/N at the start of the day.
	SOverN float64
	// Local and Imported are the cases with onset on Date (the renewal
	// process's I_t = Local + Imported), whether or not reported in time.
	Local, Imported int
	// Reported and ReportedConfirmed count the cases of the region with
	// report date Date: its case events of that date, once each case is
	// corrected. Reporting artefacts are not cases of the epidemic and are
	// left out: a hospital's duplicate notification (Config.DuplicateShare;
	// another source), a false notification (retracted) and a case filed
	// under the wrong region (Config.RetractShare; counted here, in its own
	// region, as the case that supersedes it is). A late region's held-back
	// reports keep their report date, so they count on it.
	Reported, ReportedConfirmed int
	// Tests and Positive count the tests sampled on Date.
	Tests, Positive int
	// Hospitalised and ICU are the COVID-19 patients in hospital and in
	// intensive care.
	Hospitalised, ICU int
	// The region's beds and their occupancy (every open facility, reporting
	// or not; a closed one's beds leave from its closing day, whether or not
	// its closure was registered); InfectiousOccupied/InfectiousBeds is ПЗК.
	InfectiousBeds, InfectiousOccupied   int
	ICUBeds, ICUOccupied                 int
	ProvisionalBeds, ProvisionalOccupied int
	// Doses is the vaccine doses given on Date.
	Doses int
}

// Occupancy returns the infectious-bed occupancy (ПЗК) in percent.
func (t TruthRow) Occupancy() float64 {
	if t.InfectiousBeds == 0 {
		return 0
	}
	return 100 * float64(t.InfectiousOccupied) / float64(t.InfectiousBeds)
}

// truthHeader names the CSV columns of WriteTruthCSV.
var truthHeader = []string{
	"region", "date", "r_schedule", "r_true", "lambda", "s_over_n", "onset_local", "onset_imported",
	"reported", "reported_confirmed", "tests", "positive", "hospitalised", "icu",
	"infectious_beds", "infectious_occupied", "occupancy_pct", "icu_beds", "icu_occupied",
	"provisional_beds", "provisional_occupied", "doses",
}

// WriteTruthCSV writes the rows as CSV with a header (truth.csv).
func WriteTruthCSV(w io.Writer, rows []TruthRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(truthHeader); err != nil {
		return fmt.Errorf("write truth: %w", err)
	}
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	i := strconv.Itoa
	for _, t := range rows {
		rec := []string{
			t.Region, t.Date.String(), f(t.R, -1), f(t.RTrue, 6), f(t.Lambda, 4), f(t.SOverN, 6), i(t.Local), i(t.Imported),
			i(t.Reported), i(t.ReportedConfirmed), i(t.Tests), i(t.Positive), i(t.Hospitalised), i(t.ICU),
			i(t.InfectiousBeds), i(t.InfectiousOccupied), f(t.Occupancy(), 2), i(t.ICUBeds), i(t.ICUOccupied),
			i(t.ProvisionalBeds), i(t.ProvisionalOccupied), i(t.Doses),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write truth: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write truth: %w", err)
	}
	return nil
}
