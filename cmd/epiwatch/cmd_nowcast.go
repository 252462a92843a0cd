package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// nowcastHeader is the CSV header of `epiwatch nowcast`: the required
// columns first, then the 50 % interval, the completeness and R on the
// nowcast.
const nowcastHeader = "region,date,reported,median,q025,q975,q25,q75,completeness," +
	"r_nowcast_mean,r_nowcast_q025,r_nowcast_median,r_nowcast_q975"

// nowcastOptions are the flags of `epiwatch nowcast`.
type nowcastOptions struct {
	asOf, region       string
	days               int
	maxDelay, window   int
	delayWindow, draws int
	seed               uint64
	siMean, siSD       float64
	priorMean, priorSD float64
	delayHalfLife      float64
	noWeekday          bool
}

func newNowcastCmd() *cobra.Command {
	var o nowcastOptions
	def := nowcast.DefaultConfig()
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
			return runNowcast(cmd, args[0], o)
		},
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{2, err} })
	f := c.Flags()
	f.StringVar(&o.asOf, "as-of", "", "the day up to which reports are known, `YYYY-MM-DD` (required)")
	f.IntVar(&o.days, "days", 28, "number of onset days to write, the last up to --as-of")
	f.StringVar(&o.region, "region", "", "nowcast this region `CODE` only (the delay model still pools every region of FILE)")
	f.IntVar(&o.maxDelay, "max-delay", def.MaxDelay, "longest onset-to-report delay in `days`: older days are complete")
	f.IntVar(&o.delayWindow, "delay-window", def.DelayWindow, "onset `days` whose reports estimate the delay distribution (more than --max-delay)")
	f.Float64Var(&o.delayHalfLife, "delay-half-life", def.DelayHalfLife, "`days` after which an onset day counts half in the delay estimate (0: all alike); follows a drifting delay")
	f.BoolVar(&o.noWeekday, "no-weekday", false, "no day-of-week effect on reporting")
	f.IntVar(&o.draws, "draws", def.Draws, "completed series sampled (the 95 % interval of 200 is the 5th smallest to 5th largest)")
	f.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed, file and flags give the same output")
	f.Float64Var(&o.siMean, "si-mean", 4.7, "serial interval mean in days, for R (the default is COVID-19's, Nishiura et al. 2020)")
	f.Float64Var(&o.siSD, "si-sd", 2.9, "serial interval sd in days, for R")
	f.IntVar(&o.window, "window", 7, "R's estimation window in `days`, ending on each onset date")
	f.Float64Var(&o.priorMean, "prior-mean", 5, "mean of the gamma prior on R")
	f.Float64Var(&o.priorSD, "prior-sd", 5, "sd of the gamma prior on R")
	return c
}

// nowcastCase is a case event as the nowcast reads it, with what its
// corrections need.
type nowcastCase struct {
	id, region string
	c          nowcast.Case
	confirmed  bool
}

// runNowcast reads the file, nowcasts every region (or --region) and
// writes the CSV.
func runNowcast(cmd *cobra.Command, path string, o nowcastOptions) error {
	if o.asOf == "" {
		return &exitError{2, errors.New("--as-of is required: the day up to which reports are known, YYYY-MM-DD")}
	}
	asOf, err := schemas.ParseDate(o.asOf)
	if err != nil {
		return &exitError{2, fmt.Errorf("--as-of: %w", err)}
	}
	if o.days < 1 || o.days > 3650 {
		return &exitError{2, fmt.Errorf("--days must be between 1 and 3650, got %d", o.days)}
	}
	if o.window < 1 {
		return &exitError{2, fmt.Errorf("--window must be at least 1 day, got %d", o.window)}
	}
	cfg := nowcast.DefaultConfig()
	cfg.MaxDelay, cfg.DelayWindow, cfg.DelayHalfLife, cfg.Weekday = o.maxDelay, o.delayWindow, o.delayHalfLife, !o.noWeekday
	cfg.Draws = o.draws
	cfg.DelayDraws = min(cfg.DelayDraws, max(o.draws, 1))
	nc, err := nowcast.New(cfg)
	if err != nil {
		return &exitError{2, fmt.Errorf("%w (see --max-delay, --delay-window, --delay-half-life, --draws)", err)}
	}
	si, err := epi.DiscreteSISupport(o.siMean, o.siSD)
	if err != nil {
		return &exitError{2, fmt.Errorf("--si-mean/--si-sd: %w", err)}
	}
	prior := epi.Prior{Mean: o.priorMean, SD: o.priorSD}
	if err := prior.Validate(); err != nil {
		return &exitError{2, fmt.Errorf("--prior-mean/--prior-sd: %w", err)}
	}

	byRegion, err := readNowcastCases(path, asOf)
	if err != nil {
		return &exitError{2, err}
	}
	regions := slices.Sorted(maps.Keys(byRegion))
	if len(regions) == 0 {
		return &exitError{2, fmt.Errorf("%s: no confirmed case reported by %s; check --as-of and the file", path, asOf)}
	}
	want := regions
	if o.region != "" {
		code := strings.ToUpper(strings.TrimSpace(o.region))
		if _, ok := byRegion[code]; !ok {
			return &exitError{2, fmt.Errorf("%s: no confirmed case of region %s reported by %s (regions in the file: %s)", path, code, asOf, strings.Join(regions, ", "))}
		}
		want = []string{code}
	}
	var all []nowcast.Case
	for _, r := range regions {
		all = append(all, byRegion[r]...)
	}
	pooled, err := nc.FitDelay(all, asOf, nil)
	if err != nil {
		var few *nowcast.TooFewCasesError
		if errors.As(err, &few) {
			return &exitError{2, fmt.Errorf("%s: only %.0f confirmed cases with onset and report dates in the %d days to %s (weighted by --delay-half-life), too few to estimate the reporting delay (need %d); check --as-of, or widen --delay-window",
				path, few.Cases, few.Window, asOf, few.Need)}
		}
		return &exitError{2, fmt.Errorf("%s: %w", path, err)}
	}
	rcfg := nowcast.RConfig{SI: si, Prior: prior, Window: o.window}
	errw := cmd.ErrOrStderr()
	fmt.Fprintf(errw, "nowcast as of %s: %d regions, mean onset-to-report delay %.1f days (all regions)\n", asOf, len(regions), pooled.MeanDelay())

	w := csv.NewWriter(cmd.OutOrStdout())
	if err := w.Write(strings.Split(nowcastHeader, ",")); err != nil {
		return err
	}
	for _, region := range want {
		reg, err := nc.Region(region, byRegion[region], asOf, o.days, pooled, rcfg, o.seed)
		if err != nil {
			return &exitError{2, fmt.Errorf("%s: %w", path, err)}
		}
		res, rs := reg.Result, reg.R
		if n := res.NoOnset; n > 0 {
			known := n + int(nowcastSum(res.Reported))
			fmt.Fprintf(errw, "%s: %d of %d confirmed cases known without onset date (%.0f %%) left out of the series by onset\n",
				region, n, known, 100*float64(n)/float64(known))
		}
		for i, d := range res.Days {
			row := []string{region, d.Date.String(), strconv.Itoa(d.Reported),
				nowcastInt(d.Median), nowcastInt(d.Q025), nowcastInt(d.Q975), nowcastInt(d.Q25), nowcastInt(d.Q75),
				strconv.FormatFloat(d.Completeness, 'f', 4, 64)}
			if r := rs[i]; r.OK {
				for _, v := range []float64{r.Mean, r.Q025, r.Median, r.Q975} {
					row = append(row, strconv.FormatFloat(v, 'f', 4, 64))
				}
			} else {
				row = append(row, "NA", "NA", "NA", "NA")
			}
			if err := w.Write(row); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}

func nowcastInt(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }

func nowcastSum(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}

// readNowcastCases reads the case events of path known on asOf, by
// region: confirmed cases reported by asOf, less those a retraction or a
// superseding case known by asOf withdraws, each event_id once (the first,
// as ingest keeps it); those without an onset date are in byRegion too (the
// nowcast counts them apart, Result.NoOnset). Every error names the file
// and line.
func readNowcastCases(path string, asOf schemas.Date) (byRegion map[string][]nowcast.Case, err error) {
	contract, err := schemas.NewContract()
	if err != nil {
		return nil, err
	}
	var cases []nowcastCase
	seen := map[string]bool{}
	withdrawn := map[string]bool{}
	if _, err := os.Stat(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", pe.Path, pe.Err)
		}
		return nil, err
	}
	err = ingest.ReadFile(path, 1000, func(recs []ingest.Record) error {
		for _, rec := range recs {
			e, err := contract.Decode(rec.Raw)
			if err != nil {
				return fmt.Errorf("%s:%d: %v; fix or remove the event", path, rec.Line, err)
			}
			if seen[e.EventID] {
				continue // the same event again: ingest keeps the first
			}
			seen[e.EventID] = true
			switch e.Type {
			case schemas.TypeRetraction:
				if e.ReportDate <= asOf {
					withdrawn[e.Retracts] = true
				}
			case schemas.TypeCase:
				if !e.OnsetDate.IsZero() && e.OnsetDate > e.ReportDate {
					return fmt.Errorf("%s:%d: case %s: onset_date %s is after its report_date %s; fix the dates", path, rec.Line, e.EventID, e.OnsetDate, e.ReportDate)
				}
				if e.ReportDate > asOf {
					continue
				}
				if e.Supersedes != "" {
					withdrawn[e.Supersedes] = true
				}
				cases = append(cases, nowcastCase{id: e.EventID, region: e.Region, confirmed: e.Confirmed(),
					c: nowcast.Case{Onset: e.OnsetDate, Report: e.ReportDate, Imported: e.Imported}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	byRegion = map[string][]nowcast.Case{}
	for _, c := range cases {
		if !c.confirmed || withdrawn[c.id] {
			continue
		}
		byRegion[c.region] = append(byRegion[c.region], c.c)
	}
	return byRegion, nil
}
