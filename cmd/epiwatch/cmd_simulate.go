package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
)

// simulateOptions are the flags of `epiwatch simulate`; `run --simulate`
// and `bench` share the model and sending ones (addModelFlags,
// addSendFlags).
type simulateOptions struct{ simulate.Options }

func newSimulateCmd() *cobra.Command {
	var o simulateOptions
	c := &cobra.Command{
		Use:   "simulate",
		Short: "Generate a realistic synthetic outbreak: write event files or send it to the ingest API",
		Long: `Simulates a COVID-19-like outbreak in the chosen regions and produces the events real
producers would send: cases (with reporting delays, some without onset date, some
imported; 40 % of the reports due on a Saturday or Sunday come on the Monday, as real
notification does, --weekend-deferral 0 for none; with --delay-drift the delay grows or
shrinks over the run), traced contacts (some of whom fall ill later, under the same
national ID), positive and negative lab tests, morning bed snapshots of every hospital
(infectious, ICU, provisional beds) and vaccine doses. Persons carry valid IINs
(Kazakhstan) or PINs (Kyrgyzstan), and often names, phones and addresses, which ingest
removes.

The producer is well behaved: on the first day it registers every hospital (a facility
event with its capacity), and after each day's events it sends a report_complete per region
and feed, so a day without cases is a zero, not a missing day (--no-report-complete turns
that off). Scenarios add what real reporting does to the data, each off by default:
  --late REGION:FROM_DAY:DAYS   the region's case reports of those days arrive together on
                                day FROM_DAY+DAYS (its tests and beds on time): a stale feed
  --sporadic REGION             a case every ~6 days and half-full beds: R from few cases
  --duplicates SHARE            that share of confirmed cases notified again by a hospital
  --retractions SHARE           that share brings a correction 1-5 days later: a false
                                notification retracted, or (30 %) a case filed under a
                                neighbouring region re-filed under its own (supersedes)
  --close-facility              a hospital per region stops reporting in mid-run; half the
                                regions register the closure, the others leave it silent
  --stale                       some hospitals stop reporting for 3-8 days
The truth stays the epidemic's: duplicates, false notifications and wrong regions are not
counted in it.

The epidemic is a renewal process per region: local cases ~ Poisson(R(t)·S/N·Σ w_s I_{t-s})
plus imported cases, w the serial interval (gamma, mean 4.7, sd 2.9 days). R(t) is drawn per
region from the seed as waves of growth and control, or set with --schedule to drive a
region past the restriction thresholds. The same flags and seed give the same events, with
the same event_ids, so re-sending a run adds nothing.

With --out DIR, writes one file per event type that has events (DIR/case.ndjson, …, or .csv
in the format 'epiwatch import' reads) and
DIR/truth.csv: per region and day the R in force, cases by onset and by report, tests,
hospital census and bed occupancy.

Otherwise sends the events to the ingest API (--url, default http://<http.addr>/v1/events)
day by day in batches, as gzipped NDJSON, retrying when the API answers 429/503 (honouring
Retry-After) or is not up yet. --speed paces the run in simulated days per second; 0 sends
as fast as the API accepts. The ingest API rejects dates in the future, so by default the
simulated period ends yesterday.

A progress line per simulated day goes to stderr, a summary to stdout.`,
		Example: `  # Files for 'epiwatch import' and the truth to compare with:
  epiwatch simulate --out data/sim --start 2021-06-01 --days 120
  epiwatch simulate --out data/sim-csv --format csv --regions KZ-75,KZ-71 --scale 0.5

  # Feed a running 'epiwatch run', two simulated days per second, Almaty in a surge:
  epiwatch simulate --token "$EPIWATCH_TOKEN" --speed 2 --schedule KZ-75=0:1.6,40:0.8

  # Kyrgyzstan, no reporting delays, some hospitals going silent:
  epiwatch simulate --country KG --no-delays --stale --out data/sim-kg

  # Data-quality situations for the dashboards: a late upload, a sporadic region,
  # duplicate notifications, corrections and closing hospitals:
  epiwatch simulate --out data/sim-dq --late KZ-35:80:3 --sporadic KZ-43 \
    --duplicates 0.05 --retractions 0.01 --close-facility`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := app.LoadConfig(cmd.Flags(), os.Getenv)
			if err != nil {
				return &exitError{2, err}
			}
			regions, err := cfg.RegionRef()
			if err != nil {
				return &exitError{2, err}
			}
			o.Changed = cmd.Flags().Changed
			env := simulate.Env{Regions: regions, IngestURL: cfg.HTTP.IngestURL(), Token: os.Getenv("EPIWATCH_TOKEN"), Now: time.Now()}
			return toolExit(simulate.RunCommand(cmd.Context(), o.Options, env, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := c.Flags()
	o.addModelFlags(f)
	f.StringVar(&o.Out, "out", "", "write files to this directory instead of sending to the API")
	f.StringVar(&o.Format, "format", simulate.FormatNDJSON, "file format with --out: ndjson or csv")
	f.StringVar(&o.Truth, "truth", "", "when sending, also write the truth CSV to this file")
	f.StringVar(&o.URL, "url", "", "ingest API endpoint (default http://<http.addr>/v1/events)")
	f.StringVar(&o.Token, "token", "", "bearer token of the ingest API (default $EPIWATCH_TOKEN)")
	o.addSendFlags(f)
	return c
}

// addModelFlags adds the flags that shape the simulated outbreak (shared by
// `simulate` and `run --simulate`).
func (o *simulateOptions) addModelFlags(f *pflag.FlagSet) {
	def := simulate.DefaultConfig()
	f.IntVar(&o.Days, "days", def.Days, "number of simulated days")
	f.StringVar(&o.Start, "start", "", "first simulated day YYYY-MM-DD (default: --days before today, so the run ends yesterday)")
	f.Int64Var(&o.Seed, "seed", def.Seed, "random seed: the same seed and flags give the same events")
	f.StringSliceVar(&o.Regions, "regions", nil, "region codes, comma-separated (default: every region of --country)")
	f.StringVar(&o.Country, "country", def.Country, "country whose regions are simulated when --regions is not given: KZ or KG")
	f.Float64Var(&o.Scale, "scale", def.Scale, "multiplies population at risk, cases, tests, beds and doses (0.1 for a quick run, 10 for load)")
	f.BoolVar(&o.NoDelays, "no-delays", false, "report every case on its onset day, test results and contacts the same day")
	f.Float64Var(&o.WeekendDeferral, "weekend-deferral", def.WeekendDeferral, "day-of-week effect of reporting: share of case reports due on a Saturday or Sunday sent on the following Monday instead (0 = none; with delays only)")
	f.Float64Var(&o.DelayDrift, "delay-drift", def.DelayDrift, "`days` by which the mean onset-to-report delay changes linearly from the first simulated day to the last (e.g. 3: reporting slows from 3 to 6 days; -1.5: it speeds up to 1.5); the sd changes in proportion")
	f.BoolVar(&o.Stale, "stale", false, "let some hospitals stop reporting bed snapshots for 3–8 days")
	f.StringArrayVar(&o.Schedules, "schedule", nil, "R schedule of one region, REGION=DAY:R,DAY:R,… (day 0 = --start), e.g. KZ-75=0:1.6,40:0.8; repeatable")
	f.BoolVar(&o.NoComplete, "no-report-complete", !def.ReportComplete, "send no report_complete events (days a feed has no events are then missing, not zero)")
	f.StringVar(&o.Late, "late", "", "hold back one region's case reports, REGION:FROM_DAY:DAYS (day 0 = --start), e.g. KZ-35:80:3: days 80–82 are sent with day 83")
	f.StringVar(&o.Sporadic, "sporadic", "", "replace one region's outbreak by about one case every six days, beds 50–70 % occupied, e.g. KZ-43")
	f.Float64Var(&o.Duplicates, "duplicates", def.DuplicateShare, "share of confirmed cases a hospital notifies a second time (own source and event_id, same person), e.g. 0.05")
	f.Float64Var(&o.Retractions, "retractions", def.RetractShare, "share of confirmed cases bringing a correction 1–5 days later (a false notification retracted, or a case re-filed from a neighbouring region), e.g. 0.01")
	f.BoolVar(&o.CloseFacility, "close-facility", false, "close one hospital per region in mid-run: it stops reporting; half the regions register the closure")
	f.BoolVar(&o.DataQuality, "data-quality", false, "every situation above at once, where not set otherwise: the second region's cases 3 days late 20 days before the end, the last region sporadic, 2 % duplicates, 0.5 % corrections, closing and stale facilities (what the quick start shows)")
}

// addSendFlags adds the pacing flags of sending to the ingest API.
func (o *simulateOptions) addSendFlags(f *pflag.FlagSet) {
	f.Float64Var(&o.Speed, "speed", 0, "simulated days per real second when sending; 0 = as fast as the API accepts")
	f.IntVar(&o.Batch, "batch", simulate.DefaultBatch, "events per request when sending")
}
