package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/tools/rtcsv"
)

func newRtCmd() *cobra.Command {
	var o rtcsv.Options
	c := &cobra.Command{
		Use:   "rt [FILE|-]",
		Short: "Estimate the reproduction number R from a daily incidence CSV, as EpiEstim does",
		Long: `Estimates the instantaneous reproduction number R over sliding windows of a daily case
series with the method of Cori et al. (2013), giving the same numbers as the R package
EpiEstim 2.2.4 (estimate_R with parametric_si, or non_parametric_si with --si-distr), or
computes the officials' ratio R (--method ratio). Reads FILE, or standard input when FILE
is - or absent, and writes CSV to standard output.

Input: one row per day, in order, with a header naming the columns:
  day,date,I,local,imported   (the EpiEstim reference format; any subset that has I,
                               or local and imported; a bare column of numbers is I)
I is the total of cases. local and imported, when given, are used as they are: imported
cases add to the infectiousness of later days but are not counted as infected locally.
Otherwise every case is local, except day 1's, which EpiEstim counts as imported. Dates,
when given, must be consecutive YYYY-MM-DD days; NA counts as 0.

Serial interval: a gamma with --si-mean and --si-sd (days; default COVID-19, 4.7 and 2.9,
Nishiura et al. 2020), discretised as EpiEstim's discr_si; or --si-distr FILE with a
header k,w and the probability w of each lag k = 0, 1, … (w at 0 must be 0, the weights
must sum to 1 ± 0.01).

Windows: --window N days, sliding (t_start = 2..T-N+1, EpiEstim's default), or --windows
FILE with a header t_start,t_end (1-based days, both included; 2 ≤ t_start ≤ t_end ≤ T).
The prior on R is a gamma with --prior-mean and --prior-sd (EpiEstim's 5 and 5).

Output columns: t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975 (the posterior
mean, sd and quantiles of R, exactly EpiEstim's), then epiwatch's own:
prob_above_1 (the posterior probability that R > 1), growth_rate (per day, from R's mean and
the serial interval, Wallinga & Lipsitch 2007), doubling_time (days; negative: halving),
trend (P(R < 1) in words, EpiNow2's cut-offs: increasing, likely increasing, stable,
likely decreasing, decreasing) and status: ok, or few_cases when the window holds fewer
than --min-cases local cases or R's posterior CV exceeds --max-cv (EpiEstim's guidance, 12
and 0.3: the prior then dominates). A window is NA when it ends on or before the mean serial
interval, EpiEstim's only rule; few cases give a wide interval and status few_cases, not an NA.

--method ratio writes, for each day with 2×--ratio-days days of history, the cases of the
last --ratio-days days divided by those of the --ratio-days days before (the officials'
"R"): t_start,t_end span both periods, mean is the ratio, the other columns are NA, and
the ratio is NA when the earlier days have no cases.

Bad input (unreadable file, negative or non-numeric counts, an invalid serial interval,
windows out of range) exits with status 2 and a message naming the file and line.`,
		Example: `  epiwatch rt cases.csv
  epiwatch rt --si-mean 2.6 --si-sd 1.5 --window 14 Flu2009_incidence.csv
  epiwatch rt --si-distr si.csv --windows windows.csv cases.csv > r.csv
  some-export | epiwatch rt --method ratio --ratio-days 4 -`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &exitError{2, fmt.Errorf("rt reads one incidence file (or - for standard input), got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Input = args[0]
			}
			o.Changed = cmd.Flags().Changed
			return toolExit(rtcsv.Run(o, cmd.InOrStdin(), cmd.OutOrStdout()))
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	f := c.Flags()
	f.StringVar(&o.Method, "method", "cori", "cori (Cori et al. 2013, as EpiEstim) or ratio (the officials' ratio R)")
	f.Float64Var(&o.SIMean, "si-mean", 4.7, "serial interval mean in days (the default is COVID-19's, Nishiura et al. 2020)")
	f.Float64Var(&o.SISD, "si-sd", 2.9, "serial interval sd in days")
	f.StringVar(&o.SIFile, "si-distr", "", "serial interval distribution, a CSV `FILE` (k,w), instead of --si-mean/--si-sd")
	f.IntVar(&o.Window, "window", 7, "sliding window length in `days`")
	f.StringVar(&o.WindowsFile, "windows", "", "estimation windows, a CSV `FILE` (t_start,t_end), instead of sliding --window days")
	f.Float64Var(&o.PriorMean, "prior-mean", 5, "mean of the gamma prior on R")
	f.Float64Var(&o.PriorSD, "prior-sd", 5, "sd of the gamma prior on R")
	f.IntVar(&o.RatioDays, "ratio-days", 4, "`days` in each period of --method ratio")
	f.IntVar(&o.MinCases, "min-cases", 12, "status few_cases below this many local cases in a window (EpiEstim's guidance)")
	f.Float64Var(&o.MaxCV, "max-cv", 0.3, "status few_cases above this posterior coefficient of variation (EpiEstim's guidance)")
	return c
}
