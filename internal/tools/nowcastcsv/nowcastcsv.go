// Package nowcastcsv is `epiwatch nowcast`: it reads case events from a
// file as 'epiwatch import' does, keeps what was known on a day, nowcasts
// every region with package nowcast and writes the CSV. Every error names
// the file and line, or the flag, and says what to fix.
package nowcastcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// Header is the CSV header of `epiwatch nowcast`: the required columns
// first, then the 50 % interval, the completeness, R on the nowcast and
// the 95 % and 80 % intervals its mean is expected in once the reports are
// complete.
const Header = "region,date,reported,median,q025,q975,q25,q75,completeness," +
	"r_nowcast_mean,r_nowcast_q025,r_nowcast_median,r_nowcast_q975,r_nowcast_final_q025,r_nowcast_final_q975,r_nowcast_final_q10,r_nowcast_final_q90"

// Options are the choices of `epiwatch nowcast`, one field per flag.
type Options struct {
	// File holds the case events (NDJSON or CSV, as 'epiwatch import' reads).
	File string
	// AsOf (YYYY-MM-DD) is the day up to which reports are known.
	AsOf string
	// Region, when set, is the one region written; the delay model still
	// pools every region of File.
	Region string
	// Days is the number of onset days written, the last up to AsOf.
	Days int
	// MaxDelay, DelayWindow, DelayHalfLife, Weekday and Draws are
	// nowcast.Config's.
	MaxDelay, DelayWindow int
	DelayHalfLife         float64
	NoWeekday             bool
	Draws                 int
	Seed                  uint64
	// SIMean, SISD, Window, PriorMean and PriorSD are R's on the nowcast.
	SIMean, SISD       float64
	Window             int
	PriorMean, PriorSD float64
}

// DefaultOptions are the flags' defaults: nowcast.DefaultConfig, the last
// 28 days, and R as 'epiwatch rt' has it by default.
func DefaultOptions() Options {
	def := nowcast.DefaultConfig()
	return Options{
		Days:     28,
		MaxDelay: def.MaxDelay, DelayWindow: def.DelayWindow, DelayHalfLife: def.DelayHalfLife,
		Draws: def.Draws, Seed: 1,
		SIMean: 4.7, SISD: 2.9, Window: 7, PriorMean: 5, PriorSD: 5,
	}
}

// Run reads o.File, nowcasts every region (or o.Region) and writes the CSV
// to stdout, and to stderr the pooled delay and how many cases had no
// onset date. Bad options and bad input are cli.BadInputError.
func Run(o Options, stdout, stderr io.Writer) error {
	if o.AsOf == "" {
		return cli.BadInput(errors.New("--as-of is required: the day up to which reports are known, YYYY-MM-DD"))
	}
	asOf, err := schemas.ParseDate(o.AsOf)
	if err != nil {
		return cli.BadInputf("--as-of: %w", err)
	}
	if o.Days < 1 || o.Days > 3650 {
		return cli.BadInputf("--days must be between 1 and 3650, got %d", o.Days)
	}
	if o.Window < 1 {
		return cli.BadInputf("--window must be at least 1 day, got %d", o.Window)
	}
	cfg := nowcast.DefaultConfig()
	cfg.MaxDelay, cfg.DelayWindow, cfg.DelayHalfLife, cfg.Weekday = o.MaxDelay, o.DelayWindow, o.DelayHalfLife, !o.NoWeekday
	cfg.Draws = o.Draws
	cfg.DelayDraws = min(cfg.DelayDraws, max(o.Draws, 1))
	nc, err := nowcast.New(cfg)
	if err != nil {
		return cli.BadInputf("%w (see --max-delay, --delay-window, --delay-half-life, --draws)", err)
	}
	si, err := epi.DiscreteSISupport(o.SIMean, o.SISD)
	if err != nil {
		return cli.BadInputf("--si-mean/--si-sd: %w", err)
	}
	prior := epi.Prior{Mean: o.PriorMean, SD: o.PriorSD}
	if err := prior.Validate(); err != nil {
		return cli.BadInputf("--prior-mean/--prior-sd: %w", err)
	}

	path := o.File
	byRegion, err := ReadCases(path, asOf)
	if err != nil {
		return cli.BadInput(err)
	}
	regions := slices.Sorted(maps.Keys(byRegion))
	if len(regions) == 0 {
		return cli.BadInputf("%s: no confirmed case reported by %s; check --as-of and the file", path, asOf)
	}
	want := regions
	if o.Region != "" {
		code := strings.ToUpper(strings.TrimSpace(o.Region))
		if _, ok := byRegion[code]; !ok {
			return cli.BadInputf("%s: no confirmed case of region %s reported by %s (regions in the file: %s)", path, code, asOf, strings.Join(regions, ", "))
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
			return cli.BadInputf("%s: only %.0f confirmed cases with onset and report dates in the %d days to %s (weighted by --delay-half-life), too few to estimate the reporting delay (need %d); check --as-of, or widen --delay-window",
				path, few.Cases, few.Window, asOf, few.Need)
		}
		return cli.BadInputf("%s: %w", path, err)
	}
	rcfg := nowcast.RConfig{SI: si, Prior: prior, Window: o.Window}
	fmt.Fprintf(stderr, "nowcast as of %s: %d regions, mean onset-to-report delay %.1f days (all regions)\n", asOf, len(regions), pooled.MeanDelay())

	w := csv.NewWriter(stdout)
	if err := w.Write(strings.Split(Header, ",")); err != nil {
		return err
	}
	for _, region := range want {
		reg, err := nc.Region(region, byRegion[region], asOf, o.Days, pooled, rcfg, o.Seed)
		if err != nil {
			return cli.BadInputf("%s: %w", path, err)
		}
		res, rs := reg.Result, reg.R
		if n := res.NoOnset; n > 0 {
			known := n + int(sum(res.Reported))
			fmt.Fprintf(stderr, "%s: %d of %d confirmed cases known without onset date (%.0f %%) left out of the series by onset\n",
				region, n, known, 100*float64(n)/float64(known))
		}
		for i, d := range res.Days {
			row := []string{region, d.Date.String(), strconv.Itoa(d.Reported),
				formatInt(d.Median), formatInt(d.Q025), formatInt(d.Q975), formatInt(d.Q25), formatInt(d.Q75),
				strconv.FormatFloat(d.Completeness, 'f', 4, 64)}
			if r := rs[i]; r.OK {
				for _, v := range []float64{r.Mean, r.Q025, r.Median, r.Q975, r.FinalQ025, r.FinalQ975, r.FinalQ10, r.FinalQ90} {
					row = append(row, strconv.FormatFloat(v, 'f', 4, 64))
				}
			} else {
				row = append(row, "NA", "NA", "NA", "NA", "NA", "NA", "NA", "NA")
			}
			if err := w.Write(row); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}

func formatInt(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }

func sum(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}
