package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spf13/pflag"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// simulateOptions are the flags of `epiwatch simulate`.
type simulateOptions struct {
	days      int
	start     string
	seed      int64
	regions   []string
	country   string
	scale     float64
	noDelays  bool
	stale     bool
	schedules []string
	out       string
	format    string
	truth     string
	url       string
	token     string
	speed     float64
	batch     int

	// The reporting delay's day-of-week effect and drift
	// (simulate.Config.WeekendDeferral, DelayDrift).
	weekendDeferral float64
	delayDrift      float64

	// Reporting and its data-quality scenarios.
	noComplete    bool
	late          string
	sporadic      string
	duplicates    float64
	retractions   float64
	closeFacility bool
	dataQuality   bool
}

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
			return runSimulate(cmd, o)
		},
	}
	f := c.Flags()
	o.addModelFlags(f)
	f.StringVar(&o.out, "out", "", "write files to this directory instead of sending to the API")
	f.StringVar(&o.format, "format", simulate.FormatNDJSON, "file format with --out: ndjson or csv")
	f.StringVar(&o.truth, "truth", "", "when sending, also write the truth CSV to this file")
	f.StringVar(&o.url, "url", "", "ingest API endpoint (default http://<http.addr>/v1/events)")
	f.StringVar(&o.token, "token", "", "bearer token of the ingest API (default $EPIWATCH_TOKEN)")
	o.addSendFlags(f)
	return c
}

// addModelFlags adds the flags that shape the simulated outbreak (shared by
// `simulate` and `run --simulate`).
func (o *simulateOptions) addModelFlags(f *pflag.FlagSet) {
	def := simulate.DefaultConfig()
	f.IntVar(&o.days, "days", def.Days, "number of simulated days")
	f.StringVar(&o.start, "start", "", "first simulated day YYYY-MM-DD (default: --days before today, so the run ends yesterday)")
	f.Int64Var(&o.seed, "seed", def.Seed, "random seed: the same seed and flags give the same events")
	f.StringSliceVar(&o.regions, "regions", nil, "region codes, comma-separated (default: every region of --country)")
	f.StringVar(&o.country, "country", def.Country, "country whose regions are simulated when --regions is not given: KZ or KG")
	f.Float64Var(&o.scale, "scale", def.Scale, "multiplies population at risk, cases, tests, beds and doses (0.1 for a quick run, 10 for load)")
	f.BoolVar(&o.noDelays, "no-delays", false, "report every case on its onset day, test results and contacts the same day")
	f.Float64Var(&o.weekendDeferral, "weekend-deferral", def.WeekendDeferral, "day-of-week effect of reporting: share of case reports due on a Saturday or Sunday sent on the following Monday instead (0 = none; with delays only)")
	f.Float64Var(&o.delayDrift, "delay-drift", def.DelayDrift, "`days` by which the mean onset-to-report delay changes linearly from the first simulated day to the last (e.g. 3: reporting slows from 3 to 6 days; -1.5: it speeds up to 1.5); the sd changes in proportion")
	f.BoolVar(&o.stale, "stale", false, "let some hospitals stop reporting bed snapshots for 3–8 days")
	f.StringArrayVar(&o.schedules, "schedule", nil, "R schedule of one region, REGION=DAY:R,DAY:R,… (day 0 = --start), e.g. KZ-75=0:1.6,40:0.8; repeatable")
	f.BoolVar(&o.noComplete, "no-report-complete", !def.ReportComplete, "send no report_complete events (days a feed has no events are then missing, not zero)")
	f.StringVar(&o.late, "late", "", "hold back one region's case reports, REGION:FROM_DAY:DAYS (day 0 = --start), e.g. KZ-35:80:3: days 80–82 are sent with day 83")
	f.StringVar(&o.sporadic, "sporadic", "", "replace one region's outbreak by about one case every six days, beds 50–70 % occupied, e.g. KZ-43")
	f.Float64Var(&o.duplicates, "duplicates", def.DuplicateShare, "share of confirmed cases a hospital notifies a second time (own source and event_id, same person), e.g. 0.05")
	f.Float64Var(&o.retractions, "retractions", def.RetractShare, "share of confirmed cases bringing a correction 1–5 days later (a false notification retracted, or a case re-filed from a neighbouring region), e.g. 0.01")
	f.BoolVar(&o.closeFacility, "close-facility", false, "close one hospital per region in mid-run: it stops reporting; half the regions register the closure")
	f.BoolVar(&o.dataQuality, "data-quality", false, "every situation above at once, where not set otherwise: the second region's cases 3 days late 20 days before the end, the last region sporadic, 2 % duplicates, 0.5 % corrections, closing and stale facilities (what the quick start shows)")
}

// addSendFlags adds the pacing flags of sending to the ingest API.
func (o *simulateOptions) addSendFlags(f *pflag.FlagSet) {
	f.Float64Var(&o.speed, "speed", 0, "simulated days per real second when sending; 0 = as fast as the API accepts")
	f.IntVar(&o.batch, "batch", simulate.DefaultBatch, "events per request when sending")
}

func runSimulate(cmd *cobra.Command, o simulateOptions) error {
	ctx := cmd.Context()
	stdout, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	cfg, _, err := loadConfig(cmd.Flags(), os.Getenv)
	if err != nil {
		return &exitError{2, err}
	}
	regions, err := cfg.RegionRef()
	if err != nil {
		return &exitError{2, err}
	}
	sc, err := o.simConfig(time.Now())
	if err != nil {
		return &exitError{2, err}
	}
	if cmd.Flags().Changed("format") && o.out == "" {
		return &exitError{2, fmt.Errorf("--format applies to --out; give --out DIR to write files")}
	}
	if o.out != "" && (o.url != "" || o.speed != 0 || o.truth != "") {
		return &exitError{2, fmt.Errorf("--url, --speed and --truth apply when sending; with --out the truth is written to DIR/truth.csv")}
	}
	if o.speed < 0 || o.batch < 1 {
		return &exitError{2, fmt.Errorf("--speed must be ≥ 0 and --batch ≥ 1")}
	}
	sim, err := simulate.New(sc, regions)
	if err != nil {
		return &exitError{2, err}
	}
	if o.out != "" {
		return simulateToFiles(ctx, sim, o, stdout, errw)
	}
	today := schemas.DateOf(time.Now().UTC())
	if sim.End() >= today {
		return &exitError{2, fmt.Errorf("the simulated period ends %s, but the ingest API rejects events dated in the future: move --start back or lower --days (the default start ends the run yesterday)", sim.End())}
	}
	_, err = simulateToAPI(ctx, sim, o, cfg, stdout, errw)
	return err
}

// simConfig turns the flags into the simulator's configuration.
func (o simulateOptions) simConfig(now time.Time) (simulate.Config, error) {
	sc := simulate.DefaultConfig()
	sc.Days, sc.Seed, sc.Scale, sc.Country = o.days, o.seed, o.scale, strings.ToUpper(o.country)
	sc.Delays = !o.noDelays
	sc.WeekendDeferral, sc.DelayDrift = o.weekendDeferral, o.delayDrift
	sc.StaleFacilities = o.stale
	sc.ReportComplete = !o.noComplete
	sc.DuplicateShare, sc.RetractShare = o.duplicates, o.retractions
	sc.CloseFacility = o.closeFacility
	sc.SporadicRegion = strings.ToUpper(strings.TrimSpace(o.sporadic))
	if o.late != "" {
		region, from, days, err := simulate.ParseLate(o.late)
		if err != nil {
			return sc, fmt.Errorf("--late: %w", err)
		}
		sc.LateRegion, sc.LateFromDay, sc.LateDays = region, from, days
	}
	for _, r := range o.regions {
		if r = strings.ToUpper(strings.TrimSpace(r)); r != "" {
			sc.Regions = append(sc.Regions, r)
		}
	}
	if o.start != "" {
		d, err := schemas.ParseDate(o.start)
		if err != nil {
			return sc, fmt.Errorf("--start: %w", err)
		}
		sc.Start = d
	} else {
		sc.Start = schemas.DateOf(now.UTC()).AddDays(-o.days)
	}
	for _, s := range o.schedules {
		region, text, ok := strings.Cut(s, "=")
		if !ok {
			return sc, fmt.Errorf("--schedule %q: want REGION=DAY:R,…, e.g. KZ-75=0:1.6,40:0.8", s)
		}
		rs, err := simulate.ParseSchedule(text)
		if err != nil {
			return sc, fmt.Errorf("--schedule: %w", err)
		}
		if sc.Schedules == nil {
			sc.Schedules = map[string]simulate.RSchedule{}
		}
		sc.Schedules[strings.ToUpper(strings.TrimSpace(region))] = rs
	}
	if o.dataQuality {
		codes := slices.Clone(sc.Regions)
		if len(codes) == 0 {
			for _, r := range schemas.DefaultRegions().Country(sc.Country) {
				codes = append(codes, r.Code)
			}
		}
		slices.Sort(codes)
		sc = sc.WithDataQuality(codes)
	}
	return sc, nil
}

func simulateToFiles(ctx context.Context, sim *simulate.Sim, o simulateOptions, stdout, errw io.Writer) error {
	fw, err := simulate.NewFileWriter(o.out, o.format)
	if err != nil {
		return &exitError{2, err}
	}
	start := time.Now()
	cfg := sim.Config()
	err = sim.Run(ctx, func(day schemas.Date, events []schemas.Event) error {
		if err := fw.Write(events); err != nil {
			return err
		}
		var st simulate.Stats
		st.Add(events)
		fmt.Fprintf(errw, "%s  day %d/%d  %s\n", day, int(day-cfg.Start)+1, cfg.Days, st)
		return nil
	})
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	truth := filepath.Join(o.out, "truth.csv")
	if err := writeTruth(truth, sim); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simulated %d region(s) %s..%s (seed %d) in %s: %s\nfiles: %s\ntruth: %s\nload them with: epiwatch import %s\n",
		len(sim.Regions()), cfg.Start, sim.End(), cfg.Seed, time.Since(start).Round(time.Millisecond), fw.Stats(),
		strings.Join(fw.Paths(), " "), truth, filepath.Join(o.out, "*."+o.format))
	return nil
}

func simulateToAPI(ctx context.Context, sim *simulate.Sim, o simulateOptions, cfg Config, stdout, errw io.Writer) (simulate.SendResult, error) {
	url := o.url
	if url == "" {
		url = defaultIngestURL(cfg.HTTP)
	}
	token := o.token
	if token == "" {
		token = os.Getenv("EPIWATCH_TOKEN")
	}
	sender := &simulate.Sender{
		Client: &http.Client{Timeout: 60 * time.Second}, URL: url, Token: token, Batch: o.batch,
		OnRetry: func(reason string, wait time.Duration) {
			fmt.Fprintf(errw, "  ingest API busy or unreachable (%s); retrying in %s\n", oneLine(reason), wait.Round(time.Millisecond))
		},
	}
	sc := sim.Config()
	var total simulate.SendResult
	var stats simulate.Stats
	start := time.Now()
	var interval time.Duration
	if o.speed > 0 {
		interval = time.Duration(float64(time.Second) / o.speed)
	}
	fmt.Fprintf(errw, "sending %d region(s) %s..%s (seed %d) to %s\n", len(sim.Regions()), sc.Start, sim.End(), sc.Seed, url)
	// Progress once a simulated week (and on the last day): enough to follow
	// a run without a screen of lines per day.
	var week simulate.Stats
	var weekRes simulate.SendResult
	err := sim.Run(ctx, func(day schemas.Date, events []schemas.Event) error {
		res, err := sender.Send(ctx, events)
		total.Add(res)
		weekRes.Add(res)
		if err != nil {
			return err
		}
		week.Add(events)
		stats.Add(events)
		i := int(day-sc.Start) + 1
		if i%7 == 0 || i == sc.Days {
			fmt.Fprintf(errw, "%s  day %d/%d  this week: %s  accepted %d, duplicate %d, rejected %d\n",
				day, i, sc.Days, week, weekRes.Accepted, weekRes.Duplicates, weekRes.Rejected)
			week, weekRes = simulate.Stats{}, simulate.SendResult{}
		}
		if interval > 0 { // keep to the schedule from the start, without drift
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				t := time.NewTimer(wait)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		return nil
	})
	fmt.Fprintf(stdout, "sent %s in %s to %s: %d accepted, %d already present, %d rejected, %d request(s) retried\n",
		stats, time.Since(start).Round(time.Millisecond), url, total.Accepted, total.Duplicates, total.Rejected, total.Retries)
	if o.truth != "" {
		if terr := writeTruth(o.truth, sim); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return total, err
	}
	if total.Rejected > 0 {
		for _, r := range total.Rejections[:min(len(total.Rejections), 20)] {
			fmt.Fprintln(errw, "rejected:", r)
		}
		return total, fmt.Errorf("the ingest API rejected %d simulated events (reasons above): does its region reference or token scope differ from the simulated regions?", total.Rejected)
	}
	return total, nil
}

// defaultIngestURL is the ingest endpoint of this configuration's HTTP
// server; a wildcard listen address is reached on the loopback.
func defaultIngestURL(h HTTPConfig) string {
	host, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if h.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/v1/events"
}

func writeTruth(path string, sim *simulate.Sim) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create truth file: %w", err)
	}
	if err := simulate.WriteTruthCSV(f, sim.Truth()); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
