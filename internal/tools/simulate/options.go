package simulate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/schemas"
)

// Options are the flags of `epiwatch simulate`, one field per flag; `run
// --simulate` and `bench` share the model and sending ones. Config turns
// them into the simulator's Config.
type Options struct {
	Days      int
	Start     string // YYYY-MM-DD; "": Days before now, so the run ends yesterday
	Seed      int64
	Regions   []string
	Country   string
	Scale     float64
	NoDelays  bool
	Stale     bool
	Schedules []string // REGION=DAY:R,DAY:R,…

	// The reporting delay's day-of-week effect and drift
	// (Config.WeekendDeferral, DelayDrift).
	WeekendDeferral float64
	DelayDrift      float64

	// Reporting and its data-quality scenarios.
	NoComplete    bool
	Late          string // REGION:FROM_DAY:DAYS
	Sporadic      string
	Duplicates    float64
	Retractions   float64
	CloseFacility bool
	DataQuality   bool

	// Out is the directory to write files to, in Format; empty: send to
	// the ingest API at URL with Token, Batch events per request, Speed
	// simulated days per second (0: as fast as it accepts), and write the
	// truth to the file Truth if set.
	Out, Format string
	Truth       string
	URL, Token  string
	Speed       float64
	Batch       int

	// Changed tells which flags were given: --format without --out is an
	// error rather than ignored.
	Changed cli.Changed
}

// Config turns the options into the simulator's configuration; now gives
// the default start (the run ends the day before it).
func (o Options) Config(now time.Time) (Config, error) {
	sc := DefaultConfig()
	sc.Days, sc.Seed, sc.Scale, sc.Country = o.Days, o.Seed, o.Scale, strings.ToUpper(o.Country)
	sc.Delays = !o.NoDelays
	sc.WeekendDeferral, sc.DelayDrift = o.WeekendDeferral, o.DelayDrift
	sc.StaleFacilities = o.Stale
	sc.ReportComplete = !o.NoComplete
	sc.DuplicateShare, sc.RetractShare = o.Duplicates, o.Retractions
	sc.CloseFacility = o.CloseFacility
	sc.SporadicRegion = strings.ToUpper(strings.TrimSpace(o.Sporadic))
	if o.Late != "" {
		region, from, days, err := ParseLate(o.Late)
		if err != nil {
			return sc, fmt.Errorf("--late: %w", err)
		}
		sc.LateRegion, sc.LateFromDay, sc.LateDays = region, from, days
	}
	for _, r := range o.Regions {
		if r = strings.ToUpper(strings.TrimSpace(r)); r != "" {
			sc.Regions = append(sc.Regions, r)
		}
	}
	if o.Start != "" {
		d, err := schemas.ParseDate(o.Start)
		if err != nil {
			return sc, fmt.Errorf("--start: %w", err)
		}
		sc.Start = d
	} else {
		sc.Start = schemas.DateOf(now.UTC()).AddDays(-o.Days)
	}
	for _, s := range o.Schedules {
		region, text, ok := strings.Cut(s, "=")
		if !ok {
			return sc, fmt.Errorf("--schedule %q: want REGION=DAY:R,…, e.g. KZ-75=0:1.6,40:0.8", s)
		}
		rs, err := ParseSchedule(text)
		if err != nil {
			return sc, fmt.Errorf("--schedule: %w", err)
		}
		if sc.Schedules == nil {
			sc.Schedules = map[string]RSchedule{}
		}
		sc.Schedules[strings.ToUpper(strings.TrimSpace(region))] = rs
	}
	if o.DataQuality {
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
