package nowcast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/epiwatch/epiwatch/schemas"
)

// Config sets the nowcast. Start from DefaultConfig.
type Config struct {
	// MaxDelay is the longest onset-to-report delay in days the model
	// knows: a day older than this is complete and nowcast as reported,
	// and later reports are assumed not to happen (they are left out of
	// the delay estimate). Long enough to hold nearly every report; each
	// day more costs a parameter and a day of sampling.
	MaxDelay int
	// DelayWindow is the number of onset days, up to the as-of day, whose
	// reports estimate the delay distribution. It must exceed MaxDelay so
	// the longest delays have data.
	DelayWindow int
	// DelayHalfLife, in days, down-weights older onset days in the delay
	// estimate (an onset day DelayHalfLife days old counts half), so that
	// a delay that drifts is followed; 0 weighs the window evenly.
	DelayHalfLife float64
	// Weekday models the day-of-week effect of reporting: the odds of a
	// due report being sent depend on the weekday of the report day.
	Weekday bool
	// MinDelayCases is the fewest cases in the delay window FitDelay
	// accepts without a prior (a pooled model).
	MinDelayCases int
	// TrendDays are the most recent onset days whose counts give the
	// not-yet-reported remainder its prior level and growth (see trend).
	TrendDays int
	// TrendTau2 is the floor of the extra-Poisson variance τ² of a day's
	// expected count around the trend (its CV²): a day is never assumed to
	// follow the trend more closely than a CV of √TrendTau2.
	TrendTau2 float64
	// Draws is the number of completed series sampled; DelayDraws of them
	// draw the delay distribution afresh (each delay draw serves
	// Draws/DelayDraws completions). The 95 % interval of M draws is the
	// 5th smallest to 5th largest of 200.
	Draws, DelayDraws int
}

// DefaultConfig returns the settings the back-test (backtest_test.go)
// checks, chosen on its tuning outbreaks:
//
//   - MaxDelay 28: onset-to-notification delays of COVID-19 beyond four
//     weeks are rare; the days older than that are taken as complete.
//   - DelayWindow 42 with DelayHalfLife 14: with a delay that drifts by 3
//     days over 140 (the simulator's --delay-drift 3) the nowcast of the
//     days 1–5 before the as-of day is less biased low than with even
//     weights over 56 days, and nothing measurable changes without drift;
//     onset days over six weeks old would count less than 1/8.
//   - TrendDays 14: two weeks of onsets give the growth rate from days
//     mostly complete, and follow a change of R within about three serial
//     intervals.
//   - TrendTau2 0.01: a day's expected count is never taken to be closer
//     than 10 % to the trend — real counts vary more from day to day than
//     the simulator's; the back-test's coverage hardly moves between 0.003
//     and 0.03.
//   - Draws 200: the 95 % interval is the 5th smallest to the 5th largest
//     draw, holding a new draw with probability 191/201 = 0.95.
//     DelayDraws 20: as well calibrated as 40, at half the cost.
//   - MinDelayCases 30: fewer cannot inform 28 delays and 7 weekdays
//     without a prior.
func DefaultConfig() Config {
	return Config{
		MaxDelay:      28,
		DelayWindow:   42,
		DelayHalfLife: 14,
		Weekday:       true,
		MinDelayCases: 30,
		TrendDays:     14,
		TrendTau2:     0.01,
		Draws:         200,
		DelayDraws:    20,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxDelay < 1 || c.MaxDelay > 120:
		return fmt.Errorf("nowcast: max delay %d days: want 1 to 120", c.MaxDelay)
	case c.DelayWindow <= c.MaxDelay || c.DelayWindow > 3650:
		return fmt.Errorf("nowcast: delay window %d days must exceed the max delay %d (so every delay has data) and be at most 3650", c.DelayWindow, c.MaxDelay)
	case !(c.DelayHalfLife >= 0) || math.IsInf(c.DelayHalfLife, 0):
		return fmt.Errorf("nowcast: delay half-life %v: want 0 (no down-weighting) or a number of days", c.DelayHalfLife)
	case c.MinDelayCases < 0:
		return fmt.Errorf("nowcast: min delay cases %d must not be negative", c.MinDelayCases)
	case c.TrendDays < 3 || c.TrendDays > 365:
		return fmt.Errorf("nowcast: trend days %d: want 3 to 365", c.TrendDays)
	case !(c.TrendTau2 >= 0 && c.TrendTau2 <= tau2Max):
		return fmt.Errorf("nowcast: trend τ² floor %v: want 0 to %v", c.TrendTau2, tau2Max)
	case c.DelayDraws < 1 || c.Draws < c.DelayDraws || c.Draws > 100000:
		return fmt.Errorf("nowcast: %d draws with %d delay draws: want 1 ≤ delay draws ≤ draws ≤ 100000 (e.g. 200 and 20)", c.Draws, c.DelayDraws)
	}
	return nil
}

// Case is one case as the nowcast sees it: its onset day (zero when
// unknown), the day it was reported, and whether it was imported. N, when
// above 1, makes the entry stand for N such cases (a cell of a reporting
// triangle kept by the processor); 0 counts as 1.
type Case struct {
	Onset, Report schemas.Date
	Imported      bool
	N             int
}

// count is the number of cases the entry stands for.
func (c Case) count() float64 {
	if c.N <= 0 {
		return 1
	}
	return float64(c.N)
}

// check reports a case the nowcast cannot place; i is its index in the
// caller's slice.
func (c Case) check(i int) error {
	switch {
	case c.Report.IsZero():
		return fmt.Errorf("nowcast: case %d has no report date", i)
	case c.N < 0:
		return fmt.Errorf("nowcast: case %d stands for %d cases: want 0 (one) or more", i, c.N)
	case !c.Onset.IsZero() && c.Onset > c.Report:
		return fmt.Errorf("nowcast: case %d: onset %s after its report %s", i, c.Onset, c.Report)
	}
	return nil
}

// Nowcaster holds a validated configuration. It is immutable and safe for
// concurrent use; the randomness comes with each call.
type Nowcaster struct{ cfg Config }

// New validates cfg.
func New(cfg Config) (*Nowcaster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Nowcaster{cfg: cfg}, nil
}

// Config returns the configuration.
func (n *Nowcaster) Config() Config { return n.cfg }

// countLevels are the probabilities of Day's quantiles.
func countLevels() [5]float64 { return [5]float64{0.025, 0.25, 0.5, 0.75, 0.975} }

// Day is the nowcast of one onset day.
type Day struct {
	Date schemas.Date
	// Reported is the cases with this onset reported by the as-of day.
	Reported int
	// Complete is true for a day older than MaxDelay: nothing more is
	// expected and the nowcast is Reported, with an interval of width 0.
	Complete bool
	// Completeness is the posterior mean share of the day's eventual cases
	// already reported (1 for a complete day).
	Completeness float64
	// Mean, and the quantiles of the predictive distribution of the day's
	// eventual count (whole numbers; 2.5, 25, 50, 75, 97.5 %).
	Mean                         float64
	Q025, Q25, Median, Q75, Q975 float64
}

// Result is the nowcast of one stratum as of a day.
type Result struct {
	AsOf schemas.Date
	// Start is the first day of the series (the earliest onset known, or
	// the first nowcast day if later).
	Start schemas.Date
	// Reported and ReportedImported are the cases by onset day from Start
	// to AsOf known on AsOf (all, and the imported ones among them).
	Reported, ReportedImported []float64
	// Days are the nowcast days, the last ones up to AsOf, oldest first.
	Days []Day
	// NoOnset is the number of cases known on AsOf without an onset date.
	// They are left out of the series by onset.
	//
	// Imputing their onsets would add cases to every day in proportion, not
	// information: R is unchanged by a constant thinning (ΣI and ΣΛ scale alike),
	// and the counts by onset are then the counts of cases with a known onset.
	// This assumes the onset is missing independently of the onset day; a
	// reporting system that drops onsets more often in a surge would bias both.
	NoOnset int
	// Delay is the delay model the nowcast sampled.
	Delay *DelayModel

	// draws[m*tail+i] is the m-th completed count of series day
	// len(Reported)-tail+i: the days younger than MaxDelay.
	draws []float64
	tail  int
	m     int
}

// Nowcast estimates the eventual counts by onset day of the last days
// onset days up to asOf from the cases known on asOf (report ≤ asOf; later
// ones are ignored, so a back-test can pass every case). delay is the
// delay model to sample (FitDelay, e.g. with a pooled prior); nil fits one
// from cases. rng gives every random draw: the same inputs and seed give the
// same result.
//
// The uncertainty is the remainder given what is known (see trend), plus that
// of the trend (a, b) shared by the recent days, plus that of the delay
// distribution: DelayDraws draws of the delay parameters, each with
// Draws/DelayDraws completed series. The nowcast of a day is the median and
// quantiles of its Draws completed counts. The back-test (backtest_test.go)
// checks the result on simulated outbreaks with surges and declines, the
// weekday effect and drifting delays, against the count each onset day finally
// reached: it asks for the 95 % interval to cover it on 88–99.5 % of the last
// 14 days and for the median's error over the last week to be at most 0.3 of
// the reported counts'. What it measures, and how fast
// BenchmarkNowcast20Regions runs, is in the README ("Nowcasting the recent
// days").
func (n *Nowcaster) Nowcast(cases []Case, asOf schemas.Date, days int, delay *DelayModel, rng *rand.Rand) (*Result, error) {
	cfg := n.cfg
	switch {
	case asOf.IsZero():
		return nil, errors.New("nowcast: no as-of date; give the day up to which reports are known")
	case days < 1 || days > 3650:
		return nil, fmt.Errorf("nowcast: %d days to nowcast: want 1 to 3650", days)
	case rng == nil:
		return nil, errors.New("nowcast: no random source; pass a seeded *rand.Rand")
	}
	if delay == nil {
		var err error
		if delay, err = n.FitDelay(cases, asOf, nil); err != nil {
			return nil, err
		}
	}
	if delay.asOf != asOf || delay.maxDelay != cfg.MaxDelay || delay.weekday != cfg.Weekday {
		return nil, fmt.Errorf("nowcast: the delay model was fitted as of %s (max delay %d, weekday %v), not as of %s (%d, %v); fit it on the same day with the same configuration",
			delay.asOf, delay.maxDelay, delay.weekday, asOf, cfg.MaxDelay, cfg.Weekday)
	}

	// The series by onset known on asOf.
	start := asOf.AddDays(-days + 1)
	for i, c := range cases {
		if c.Report > asOf {
			continue
		}
		if err := c.check(i); err != nil {
			return nil, err
		}
		if !c.Onset.IsZero() && c.Onset < start {
			start = c.Onset
		}
	}
	T := int(asOf-start) + 1
	res := &Result{AsOf: asOf, Start: start, Reported: make([]float64, T), ReportedImported: make([]float64, T), Delay: delay}
	for _, c := range cases {
		if c.Report > asOf {
			continue
		}
		if c.Onset.IsZero() {
			res.NoOnset += int(c.count())
			continue
		}
		i := int(c.Onset - start)
		res.Reported[i] += c.count()
		if c.Imported {
			res.ReportedImported[i] += c.count()
		}
	}

	tail := min(cfg.MaxDelay, T) // the incomplete days: onset within MaxDelay-1 days of asOf
	L := min(cfg.TrendDays, T)
	M, K := cfg.Draws, cfg.DelayDraws
	res.tail, res.m = tail, M
	res.draws = make([]float64, M*tail)

	// Buffers.
	beta := make([]float64, delay.p)
	lq := make([]float64, (cfg.MaxDelay+1)*7)
	qTail := make([]float64, tail) // completeness of the tail days, this draw
	qSum := make([]float64, tail)  // Σ over delay draws, for Completeness
	nT, qT, xT := make([]float64, L), make([]float64, L), make([]float64, L)
	for i := range L {
		j := T - L + i
		nT[i] = res.Reported[j]
		xT[i] = float64(j - (T - 1))
	}
	asOfWeekday := weekdayOf(asOf)
	m := 0
	var prev *trend
	for k := 0; k < K; k++ {
		delay.draw(rng, beta)
		delay.logStay(beta, lq)
		for i := 0; i < tail; i++ {
			age := tail - 1 - i // asOf − onset
			wOnset := ((asOfWeekday-age)%7 + 7) % 7
			s := 0.0
			for d := age + 1; d <= cfg.MaxDelay; d++ {
				s += lq[d*7+(wOnset+d)%7]
			}
			qTail[i] = math.Exp(s)
			qSum[i] += qTail[i]
		}
		for i := range L {
			j := T - L + i
			if ti := j - (T - tail); ti >= 0 {
				qT[i] = qTail[ti]
			} else {
				qT[i] = 1
			}
		}
		tr := fitTrend(nT, qT, xT, cfg.TrendTau2, prev)
		prev = &tr
		alpha := 1 / tr.tau2
		for jn := (M * (k + 1)) / K; m < jn; m++ {
			a, b := tr.draw(rng)
			row := res.draws[m*tail : (m+1)*tail]
			// μ_t = e^(a + b·(t − asOf)), from the oldest tail day on by
			// multiplying by e^b.
			mu := math.Exp(a + b*float64(-(tail-1)))
			growth := math.Exp(b)
			for i := 0; i < tail; i, mu = i+1, mu*growth {
				j := T - tail + i
				nj, q := res.Reported[j], qTail[i]
				if q >= 1 {
					row[i] = nj
					continue
				}
				// λ_t | n_t ~ Gamma(α + n_t, rate α/μ + q_t): the
				// prior around the trend updated by what is reported;
				// the remainder is Poisson((1 − q_t)·λ_t).
				if tr.tau2 > 0 {
					row[i] = nj + negBinRand(rng, alpha+nj, alpha/mu+q, 1-q)
				} else { // τ² = 0: the day is on the trend
					row[i] = nj + poissonRand(rng, (1-q)*mu)
				}
			}
		}
	}

	// The nowcast days.
	first := T - days
	if first < 0 {
		first = 0
	}
	res.Days = make([]Day, 0, T-first)
	col := make([]float64, M)
	var qs [5]float64
	levels := countLevels()
	var hist []int32
	for j := first; j < T; j++ {
		day := Day{Date: start.AddDays(j), Reported: int(res.Reported[j])}
		ti := j - (T - tail)
		if ti < 0 {
			v := res.Reported[j]
			day.Complete, day.Completeness = true, 1
			day.Mean, day.Q025, day.Q25, day.Median, day.Q75, day.Q975 = v, v, v, v, v, v
			res.Days = append(res.Days, day)
			continue
		}
		sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		for mm := 0; mm < M; mm++ {
			v := res.draws[mm*tail+ti]
			col[mm] = v
			sum += v
			lo, hi = min(lo, v), max(hi, v)
		}
		day.Completeness = qSum[ti] / float64(K)
		day.Mean = sum / float64(M)
		if lo == hi { // nothing more drawn: a day reported in full
			day.Q025, day.Q25, day.Median, day.Q75, day.Q975 = lo, lo, lo, lo, lo
		} else {
			hist = countQuantiles(col, lo, hi, levels[:], qs[:], hist)
			day.Q025, day.Q25, day.Median, day.Q75, day.Q975 = qs[0], qs[1], qs[2], qs[3], qs[4]
		}
		res.Days = append(res.Days, day)
	}
	return res, nil
}
