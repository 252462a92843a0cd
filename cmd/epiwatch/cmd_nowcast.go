package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/tools/nowcastcsv"
)

func newNowcastCmd() *cobra.Command {
	o := nowcastcsv.DefaultOptions()
	c := &cobra.Command{
		Use:   "nowcast FILE --as-of YYYY-MM-DD",
		Short: "Nowcast the incomplete recent days of the case series by onset date, and R on them",
		Long: `Estimates how many cases each of the last --days onset days will eventually count, from
the cases reported by --as-of, per region, with R on the completed counts. The last days by
onset are always short — a case falling ill yesterday is reported days later — so the raw
series dips at its end and R computed on it falls; the nowcast says how many are still to
come and how sure that is.

Input: FILE holds case events as 'epiwatch import' reads them: NDJSON (.ndjson, .jsonl,
.json; one event per line) or CSV (.csv; header = the JSON field names, the type from a
"type" column or the file name case.csv). Other event types are skipped, except
retractions, which withdraw the case they name; a case that supersedes another replaces
it. Known on --as-of are the confirmed cases (classification confirmed or absent) with
report_date on or before it; a correction counts when its own report_date is. Cases
without onset_date are left out of the series by onset (their number is printed to
stderr): R is unchanged by that as long as onsets are missing independently of the onset
day, and the counts are those of cases with a known onset.

Method (Höhle & an der Heiden 2014, "Bayesian nowcasting during the STEC O104:H4 outbreak
in Germany, 2011", Biometrics 70:993; the reverse-time hazard of Lawless 1994, Can J
Stat 22:15; the trend prior in the spirit of NobBS, McGough et al. 2020, PLoS Comput
Biol 16:e1007735):
  - the reporting delay (onset to report, up to --max-delay days) is a logistic model of
    P(reported at delay d | reported by d) with an effect of the weekday of the report
    (fewer reports at weekends; --no-weekday drops it), fitted to the onsets of the last
    --delay-window days, older ones down-weighted (--delay-half-life); each region's
    model is shrunk toward the model of all regions in FILE, so a small region gets the
    common delay and a large one its own;
  - each recent day's eventual count is what is reported plus a negative binomial
    remainder: its expected count has a gamma prior from the trend of the last 14 days
    (a negative binomial log-linear regression), updated by the day's reports;
  - the uncertainty of the delay distribution, of the trend and of the remainder is
    propagated by sampling --draws completed series (--seed makes them reproducible).
A day older than --max-delay is complete: its nowcast is its reported count.

R by onset date is Cori et al.'s (2013) estimator (EpiEstim's, as 'epiwatch rt':
--window days, serial interval --si-mean/--si-sd, gamma prior --prior-mean/--prior-sd)
on every completed series, the posteriors mixed: its credible interval carries the
nowcast's uncertainty. On a window whose days are all complete it is EpiEstim's estimate
of the reported counts exactly; NA where EpiEstim gives NA.

Output (CSV on stdout), one row per region and onset date, the last --days days up to
--as-of, regions sorted:
  region,date,reported,median,q025,q975   reported = cases with that onset known by
                                          --as-of; median and 95 % interval of the
                                          eventual count
  q25,q75                                 the 50 % interval
  completeness                            estimated share of the eventual cases
                                          already reported (1 for a complete day)
  r_nowcast_mean,r_nowcast_q025,r_nowcast_median,r_nowcast_q975
                                          R on the nowcast: mean, 95 % CrI and median
  r_nowcast_final_q025,r_nowcast_final_q975,r_nowcast_final_q10,r_nowcast_final_q90
                                          95 % and 80 % intervals of R's mean once
                                          the day's reports are complete (what
                                          decisions on the nowcast must agree across)

Bad input (an unreadable file, an invalid event, an onset after its report, too few
cases to estimate the delay) exits with status 2 and a message naming the file and line.`,
		Example: `  epiwatch nowcast data/sim/case.ndjson --as-of 2021-08-20
  epiwatch nowcast cases.csv --as-of 2021-08-20 --days 14 --region KZ-75 > nowcast.csv
  epiwatch simulate --out data/sim --start 2021-06-01 --days 120 --regions KZ-75,KZ-71
  epiwatch nowcast data/sim/case.ndjson --as-of 2021-09-10 --seed 7`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{2, fmt.Errorf("nowcast reads one event file (NDJSON or CSV), got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return toolExit(nowcastcsv.Run(o, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	f := c.Flags()
	f.StringVar(&o.AsOf, "as-of", "", "the day up to which reports are known, `YYYY-MM-DD` (required)")
	f.IntVar(&o.Days, "days", o.Days, "number of onset days to write, the last up to --as-of")
	f.StringVar(&o.Region, "region", "", "nowcast this region `CODE` only (the delay model still pools every region of FILE)")
	f.IntVar(&o.MaxDelay, "max-delay", o.MaxDelay, "longest onset-to-report delay in `days`: older days are complete")
	f.IntVar(&o.DelayWindow, "delay-window", o.DelayWindow, "onset `days` whose reports estimate the delay distribution (more than --max-delay)")
	f.Float64Var(&o.DelayHalfLife, "delay-half-life", o.DelayHalfLife, "`days` after which an onset day counts half in the delay estimate (0: all alike); follows a drifting delay")
	f.BoolVar(&o.NoWeekday, "no-weekday", false, "no day-of-week effect on reporting")
	f.IntVar(&o.Draws, "draws", o.Draws, "completed series sampled (the 95 % interval of 200 is the 5th smallest to 5th largest)")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "random seed: the same seed, file and flags give the same output")
	f.Float64Var(&o.SIMean, "si-mean", o.SIMean, "serial interval mean in days, for R (the default is COVID-19's, Nishiura et al. 2020)")
	f.Float64Var(&o.SISD, "si-sd", o.SISD, "serial interval sd in days, for R")
	f.IntVar(&o.Window, "window", o.Window, "R's estimation window in `days`, ending on each onset date")
	f.Float64Var(&o.PriorMean, "prior-mean", o.PriorMean, "mean of the gamma prior on R")
	f.Float64Var(&o.PriorSD, "prior-sd", o.PriorSD, "sd of the gamma prior on R")
	return c
}
