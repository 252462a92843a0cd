package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/tools/sigcsv"
)

func newSignalsCmd() *cobra.Command {
	o := sigcsv.Options{Params: sigcsv.DefaultParams("")}
	p := &o.Params
	c := &cobra.Command{
		Use:   "signals [FILE|-] --method METHOD",
		Short: "Detect aberrations (early warnings) in a count series, as the R package surveillance does",
		Long: `Flags the periods of a count series (cases per week, say) that exceed an upper bound
computed from the counts before them, with the methods of the R package surveillance
1.20.3 (Salmon, Schumacher & Höhle 2016, J Stat Softw 70(10)) and the same numbers.
Reads FILE, or standard input when FILE is - or absent, and writes CSV to standard output.

Methods (--method):
  ears-c1, ears-c2, ears-c3   EARS (Hutwagner et al. 2003, J Urban Health 80:i89), as
      surveillance::earsC. The bound is the mean of the last --baseline periods plus
      qnorm(1-alpha) standard deviations (C1), of the periods before a gap of two (C2), or
      C2's lowered by how far the two previous periods exceeded theirs (C3). Needing
      neither seasonality nor past years, they suit short series and new diseases.
  farrington   Farrington et al. (1996, J R Stat Soc A 159:547), as
      surveillance::farringtonFlexible with its defaults. A quasi-Poisson GLM with a time
      trend is fitted to the periods within --w of the same period in each of the last --b
      years, down-weighting past outbreaks, and the bound is its prediction's (1-alpha)
      limit on the 2/3-power scale (so it needs --freq and --b years of history).
  noufaily     Noufaily et al. (2013, Stat Med 32:1206), as farringtonFlexible with
      noPeriods = 10, pastWeeksNotIncluded = 26, thresholdMethod = "nbPlugin". The whole
      past --b years enter the GLM with a 10-level seasonal factor, the last 26 periods
      are left out, and the bound is a negative binomial (1-alpha) quantile: fewer false
      alarms than farrington on seasonal data.
For farrington and noufaily there is no bound (NA) and no alarm unless 5 cases or more
fell in the last 4 periods (surveillance's limit54).

Input: the header t,count and one row per period, t = 1, 2, 3, … with none missing,
counts whole numbers ≥ 0 (write 0 for a period without cases). Periods are equally
spaced; --freq says how many make a year (52 weekly, 12 monthly, 365 daily).

Output: t,observed,upperbound,alarm for every t from --from (default: the first period
the method can evaluate: baseline+1, +3, +5 for C1, C2, C3; freq·b+w+1 for farrington and
noufaily) to the end. upperbound is NA where surveillance has NA; alarm is 1 or 0, or NA
where surveillance's alarm is NA (C3 without a bound: a baseline without variance).

Bad input (a missing header, a gap in t, a negative or fractional count, a series too
short for the method and its parameters, a flag that does not apply to the method)
exits with status 2 and a one-line message naming the file and line.`,
		Example: `  epiwatch signals --method ears-c1 cases.csv
  epiwatch signals --method ears-c3 --baseline 10 --alpha 0.01 cases.csv > alarms.csv
  epiwatch signals --method farrington --freq 52 --b 3 --w 3 --alpha 0.05 weekly.csv
  epiwatch signals --method noufaily --freq 52 --from 300 weekly.csv
  some-export | epiwatch signals --method noufaily --freq 12 --b 4 --w 2 -`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &exitError{2, fmt.Errorf("signals reads one count file (or - for standard input), got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Input = args[0]
			}
			o.Changed = cmd.Flags().Changed
			return toolExit(sigcsv.Run(o, cmd.InOrStdin(), cmd.OutOrStdout()))
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	f := c.Flags()
	f.StringVar(&p.Method, "method", "", "`METHOD`: "+strings.Join(sigcsv.Methods, ", "))
	f.IntVar(&p.Freq, "freq", 0, "periods per year (52 weekly, 12 monthly, 365 daily); farrington and noufaily need it")
	f.Float64Var(&p.Alpha, "alpha", 0, "one-sided level of the bound (default: 0.001 for ears-c1 and ears-c2, 0.025 for ears-c3, 0.05 for farrington and noufaily)")
	f.IntVar(&p.Baseline, "baseline", p.Baseline, "EARS: number of past periods in the baseline (at least 3)")
	f.IntVar(&p.B, "b", p.B, "farrington, noufaily: number of past years in the baseline")
	f.IntVar(&p.W, "w", p.W, "farrington, noufaily: half-width of the window around each past period")
	f.IntVar(&p.From, "from", 0, "first period `t` to write (default: the first the method can evaluate)")
	return c
}
