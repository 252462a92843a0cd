package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/signals"
	"github.com/epiwatch/epiwatch/schemas"
)

// day is what the detectors need of one indicator record.
type day struct {
	version     uint64
	computedAt  time.Time
	provisional bool
	// vals per series (index in seriesNames); NaN when missing.
	vals [3]float64
}

var seriesNames = [3]string{schemas.SignalCases, schemas.SignalTestsPositive, schemas.SignalBedsOccupied}

// dayOf reads the counts of a record. A count is missing (NaN) when its feed
// has not reported (the processor leaves the day's rates nil: before the
// region's first event of the type, or a stale feed), never 0.
func dayOf(in *schemas.Indicator) day {
	d := day{version: in.Version, computedAt: in.ComputedAt, provisional: in.Provisional}
	d.vals = [3]float64{math.NaN(), math.NaN(), math.NaN()}
	if in.Cases7dPer100k != nil {
		d.vals[0] = float64(in.Cases)
	}
	if in.Tests7dPer100k != nil {
		d.vals[1] = float64(in.TestsPositive)
	}
	if in.BedOccupancyPct != nil {
		d.vals[2] = float64(in.BedsOccupied)
	}
	return d
}

// series is one region's days.
type series struct {
	days        map[schemas.Date]day
	first, last schemas.Date
}

// state is every region's series: the detectors' whole input.
type state struct {
	cfg     Config
	regions map[string]*series
}

func newState(cfg Config) *state { return &state{cfg: cfg, regions: map[string]*series{}} }

// put stores a record unless a higher version of its day is held (an equal
// version replaces: the later of equal versions wins, as in ClickHouse). It
// reports whether the day's content changed.
func (s *state) put(in *schemas.Indicator) bool {
	r := s.regions[in.Region]
	if r == nil {
		r = &series{days: map[schemas.Date]day{}}
		s.regions[in.Region] = r
	}
	old, ok := r.days[in.Date]
	if ok && old.version > in.Version {
		return false
	}
	d := dayOf(in)
	r.days[in.Date] = d
	if r.first == 0 || in.Date < r.first {
		r.first = in.Date
	}
	if in.Date > r.last {
		r.last = in.Date
	}
	return !ok || !sameDay(old, d)
}

func sameDay(a, b day) bool {
	if a.version != b.version || a.provisional != b.provisional {
		return false
	}
	for i := range a.vals {
		if a.vals[i] != b.vals[i] && !(math.IsNaN(a.vals[i]) && math.IsNaN(b.vals[i])) {
			return false
		}
	}
	return true
}

// earsLag is how many days before a day EARS reads (C3 reads C2 of the two
// days before, each of which reads its baseline two days back).
func (s *state) earsLag() int {
	return s.ears(signals.C3).FirstT() - 1
}

// ears is earsC's configuration for method m with detect.baseline and
// detect.min_sigma (alpha stays earsC's default for the method).
func (s *state) ears(m signals.EARSMethod) signals.EARSConfig {
	c := signals.DefaultEARS(m)
	c.Baseline, c.MinSigma = s.cfg.Baseline, s.cfg.MinSigma
	return c
}

// affected returns the days whose signals a change of (region, d) can alter:
// d and the days whose EARS baseline reaches back to it, up to the newest.
func (s *state) affected(region string, d schemas.Date) []schemas.Date {
	r := s.regions[region]
	if r == nil {
		return nil
	}
	var out []schemas.Date
	for t := d; t <= min(d.AddDays(s.earsLag()), r.last); t++ {
		out = append(out, t)
	}
	return out
}

// daily evaluates the daily methods on (region, t), one signal per series
// and method configured.
func (s *state) daily(region string, t schemas.Date) []schemas.Signal {
	r := s.regions[region]
	var out []schemas.Signal
	for _, m := range s.cfg.Methods {
		var em signals.EARSMethod
		switch m {
		case schemas.MethodEARSC2:
			em = signals.C2
		case schemas.MethodEARSC3:
			em = signals.C3
		default:
			continue
		}
		cfg := s.ears(em)
		lag := cfg.FirstT() - 1
		for k, name := range seriesNames {
			if !slices.Contains(s.cfg.Streams, name) {
				continue
			}
			g := schemas.Signal{Region: region, Date: t, Period: schemas.PeriodDay, Stream: name, Method: m}
			counts := make([]float64, lag+1)
			from := t.AddDays(-lag)
			missing := 0
			for i := range counts {
				dd, ok := r.days[from.AddDays(i)]
				if !ok {
					counts[i] = math.NaN()
				} else {
					counts[i] = dd.vals[k]
					g.Version = max(g.Version, dd.version)
					if dd.computedAt.After(g.ComputedAt) {
						g.ComputedAt = dd.computedAt
					}
				}
				if math.IsNaN(counts[i]) && i < lag {
					missing++
				}
			}
			if td, ok := r.days[t]; ok {
				g.Provisional = td.provisional
			}
			obs := counts[lag]
			switch {
			case math.IsNaN(obs):
				g.Note = "count missing: the feed has not reported this day (missing is not zero)"
			case from < r.first:
				g.Observed = ptr(obs)
				g.Note = fmt.Sprintf("needs %d days of history before the day; the region's series starts %s", lag, r.first)
			case missing > 0:
				g.Observed = ptr(obs)
				g.Note = fmt.Sprintf("%d of the %d days before it are missing: no baseline", missing, lag)
			default:
				cfg.From = lag + 1
				res, err := signals.EARS(counts, cfg)
				if err != nil { // the window is sized for the method: cannot happen
					g.Observed = ptr(obs)
					g.Note = "detector error: " + err.Error()
					break
				}
				s.verdict(&g, res[0])
			}
			out = append(out, g)
		}
	}
	return out
}

// verdict fills a signal from a detector's result, applying
// detect.min_alarm_count.
func (s *state) verdict(g *schemas.Signal, res signals.Result) {
	g.Observed = ptr(res.Observed)
	if !res.Computable() {
		g.Note = "no bound: the baseline has no variance, or no model could be fitted (R's NA)"
		return
	}
	g.UpperBound = ptr(res.UpperBound)
	if res.UpperBound > 0 {
		g.Excess = ptr(res.Observed / res.UpperBound)
	} else {
		g.Excess = ptr(res.Observed + 1)
	}
	g.Alarm = res.Alarm
	if g.Alarm && res.Observed < float64(s.cfg.MinAlarmCount) {
		g.Alarm = false
		g.Note = fmt.Sprintf("above the bound, but %v is fewer than detect.min_alarm_count (%d): not evidence", res.Observed, s.cfg.MinAlarmCount)
	}
}

func ptr(v float64) *float64 { return &v }

// sundayOf returns the Sunday that ends d's ISO week (Date 0, 1970-01-01,
// was a Thursday).
func sundayOf(d schemas.Date) schemas.Date {
	return d.AddDays((7 - (int(d)+4)%7) % 7)
}

// weekly evaluates the weekly methods on the ISO week ending on sunday,
// if the region has data through it.
func (s *state) weekly(region string, sunday schemas.Date) []schemas.Signal {
	r := s.regions[region]
	if r == nil || sunday > r.last {
		return nil
	}
	var out []schemas.Signal
	for _, m := range s.cfg.Methods {
		var cfg signals.FarringtonConfig
		switch m {
		case schemas.MethodFarrington:
			cfg = signals.DefaultFarrington(52)
		case schemas.MethodNoufaily:
			cfg = signals.DefaultNoufaily(52)
		default:
			continue
		}
		cfg.B = s.cfg.HistoryYears
		need := cfg.FirstT() // weeks, the evaluated one included
		for k, name := range seriesNames {
			if !slices.Contains(s.cfg.Streams, name) {
				continue
			}
			g := schemas.Signal{Region: region, Date: sunday, Period: schemas.PeriodWeek, Stream: name, Method: m}
			counts := make([]float64, need)
			missing := 0
			firstWeek := sunday.AddDays(-7 * (need - 1))
			for w := range counts {
				end := firstWeek.AddDays(7 * w)
				var sum float64
				for d := end.AddDays(-6); d <= end; d++ {
					dd, ok := r.days[d]
					if !ok {
						sum = math.NaN()
						continue
					}
					sum += dd.vals[k]
					g.Version = max(g.Version, dd.version)
					if dd.computedAt.After(g.ComputedAt) {
						g.ComputedAt = dd.computedAt
					}
					if w == need-1 && dd.provisional {
						g.Provisional = true
					}
				}
				counts[w] = sum
				if math.IsNaN(sum) && w < need-1 {
					missing++
				}
			}
			obs := counts[need-1]
			have := int((sunday-sundayOf(r.first))/7) + 1
			switch {
			case math.IsNaN(obs):
				g.Note = "week's count missing: a day of it has no report (missing is not zero)"
			case have < need:
				g.Observed = ptr(obs)
				g.Note = fmt.Sprintf("needs %d weeks of history (%d years and %d weeks around the same week); the region has %d", need, cfg.B, cfg.W, have)
			case missing > 0:
				g.Observed = ptr(obs)
				g.Note = fmt.Sprintf("%d of the %d past weeks are missing days: no baseline", missing, need-1)
			default:
				cfg.From = need
				res, err := signals.Farrington(counts, cfg)
				if err != nil {
					g.Observed = ptr(obs)
					g.Note = "detector error: " + err.Error()
					break
				}
				s.verdict(&g, res[0])
			}
			out = append(out, g)
		}
	}
	return out
}

// hasWeekly reports whether a weekly method is configured.
func (s *state) hasWeekly() bool {
	return slices.Contains(s.cfg.Methods, schemas.MethodFarrington) || slices.Contains(s.cfg.Methods, schemas.MethodNoufaily)
}
