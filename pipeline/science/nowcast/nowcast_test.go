package nowcast_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
	"github.com/epiwatch/epiwatch/schemas"
)

// syntheticCases draws a steady outbreak for the days before asOf (and on
// it): Poisson(perDay) onsets a day, each reported after a delay drawn from
// pmf, then deferred to Monday with probability deferral when that falls
// on a weekend, and missing its onset with probability missing. It returns
// every case (reports after asOf too: the nowcast must ignore them).
func syntheticCases(rng *rand.Rand, asOf schemas.Date, days int, perDay float64, pmf []float64, deferral, missing float64) []nowcast.Case {
	var out []nowcast.Case
	for i := 0; i < days; i++ {
		onset := asOf.AddDays(-days + 1 + i)
		n := poisson(rng, perDay)
		for range n {
			d := draw(rng, pmf)
			report := onset.AddDays(d)
			switch report.Time().Weekday() {
			case 6: // Saturday
				if rng.Float64() < deferral {
					report = report.AddDays(2)
				}
			case 0: // Sunday
				if rng.Float64() < deferral {
					report = report.AddDays(1)
				}
			}
			c := nowcast.Case{Onset: onset, Report: report, Imported: rng.Float64() < 0.05}
			if rng.Float64() < missing {
				c.Onset = 0
			}
			out = append(out, c)
		}
	}
	return out
}

func poisson(rng *rand.Rand, mu float64) int {
	l, k, p := math.Exp(-mu), 0, rng.Float64()
	for p > l {
		k++
		p *= rng.Float64()
	}
	return k
}

func draw(rng *rand.Rand, pmf []float64) int {
	u := rng.Float64()
	for d, p := range pmf {
		if u < p {
			return d
		}
		u -= p
	}
	return len(pmf) - 1
}

// geometricPMF is a delay distribution with P(d) ∝ (1−p)^d, d = 0..max.
func geometricPMF(p float64, maxDelay int) []float64 {
	pmf := make([]float64, maxDelay+1)
	sum := 0.0
	for d := range pmf {
		pmf[d] = p * math.Pow(1-p, float64(d))
		sum += pmf[d]
	}
	for d := range pmf {
		pmf[d] /= sum
	}
	return pmf
}

var testAsOf = schemas.MustDate("2021-09-15") // a Wednesday

func mustNowcaster(t *testing.T, mut func(*nowcast.Config)) *nowcast.Nowcaster {
	t.Helper()
	cfg := nowcast.DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	nc, err := nowcast.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// A day older than MaxDelay is complete: the nowcast is its reported
// count, with an interval of width 0, whatever the data and settings; a
// younger one is not, and its interval holds what is reported.
func TestCompleteDaysNowcastAsReported(t *testing.T) {
	tests := []struct {
		name      string
		maxDelay  int
		perDay    float64
		days      int
		noWeekday bool
	}{
		{"default, 100 a day", 28, 100, 60, false},
		{"short max delay, 20 a day", 10, 20, 40, false},
		{"few cases", 14, 3, 30, false},
		{"no weekday effect", 21, 50, 30, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := mustNowcaster(t, func(c *nowcast.Config) {
				c.MaxDelay, c.DelayWindow, c.MinDelayCases, c.Weekday = tt.maxDelay, tt.maxDelay+14, 1, !tt.noWeekday
			})
			rng := rand.New(rand.NewPCG(1, 1))
			cases := syntheticCases(rng, testAsOf, 120, tt.perDay, geometricPMF(0.3, 12), 0.4, 0.2)
			res, err := nc.Nowcast(cases, testAsOf, tt.days, nil, rng)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Days) != tt.days || res.Days[len(res.Days)-1].Date != testAsOf {
				t.Fatalf("%d days ending %s, want %d ending %s", len(res.Days), res.Days[len(res.Days)-1].Date, tt.days, testAsOf)
			}
			complete := 0
			for _, d := range res.Days {
				age := int(testAsOf - d.Date)
				rep := float64(d.Reported)
				if age >= tt.maxDelay {
					complete++
					if !d.Complete || d.Completeness != 1 || d.Median != rep || d.Q025 != rep || d.Q975 != rep || d.Q25 != rep || d.Q75 != rep || d.Mean != rep {
						t.Errorf("%s (age %d): complete day nowcast %+v, want exactly its %d reported, width 0", d.Date, age, d, d.Reported)
					}
					continue
				}
				if d.Complete || !(d.Completeness < 1) {
					t.Errorf("%s (age %d): marked complete %v, completeness %v", d.Date, age, d.Complete, d.Completeness)
				}
				if !(rep <= d.Q025 && d.Q025 <= d.Q25 && d.Q25 <= d.Median && d.Median <= d.Q75 && d.Q75 <= d.Q975) {
					t.Errorf("%s (age %d): quantiles out of order or below the %d reported: %+v", d.Date, age, d.Reported, d)
				}
			}
			if want := tt.days - tt.maxDelay; complete != want {
				t.Errorf("%d complete days, want %d", complete, want)
			}
		})
	}
}

// The same inputs and seed give the same nowcast and R; another seed
// another draw of the incomplete days.
func TestDeterministic(t *testing.T) {
	nc := mustNowcaster(t, nil)
	cases := syntheticCases(rand.New(rand.NewPCG(2, 2)), testAsOf, 90, 60, geometricPMF(0.25, 15), 0.4, 0.1)
	si, err := epi.DiscreteSISupport(4.7, 2.9)
	if err != nil {
		t.Fatal(err)
	}
	run := func(seed uint64) (*nowcast.Result, []nowcast.REstimate) {
		rng := rand.New(rand.NewPCG(seed, 7))
		res, err := nc.Nowcast(cases, testAsOf, 30, nil, rng)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := res.R(nowcast.RConfig{SI: si, Prior: epi.DefaultPrior(), Window: 7}, rng)
		if err != nil {
			t.Fatal(err)
		}
		return res, rs
	}
	a, ra := run(1)
	b, rb := run(1)
	if !reflect.DeepEqual(a.Days, b.Days) || !reflect.DeepEqual(ra, rb) {
		t.Fatal("the same seed gave different nowcasts")
	}
	c, rc := run(2)
	if reflect.DeepEqual(a.Days, c.Days) || reflect.DeepEqual(ra, rc) {
		t.Fatal("another seed gave the same draws")
	}
}

// The delay model recovers a known delay distribution and the weekday
// effect of deferred weekend reports, and the completeness it implies is
// the true share reported.
func TestDelayRecovered(t *testing.T) {
	pmf := geometricPMF(0.3, 20) // mean ≈ 2.3 days
	trueMean := 0.0
	for d, p := range pmf {
		trueMean += float64(d) * p
	}
	tests := []struct {
		name     string
		deferral float64
	}{
		{"no weekday effect", 0},
		{"weekend reports deferred", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := mustNowcaster(t, func(c *nowcast.Config) { c.DelayHalfLife = 0 })
			cases := syntheticCases(rand.New(rand.NewPCG(3, 3)), testAsOf, 100, 300, pmf, tt.deferral, 0)
			m, err := nc.FitDelay(cases, testAsOf, nil)
			if err != nil {
				t.Fatal(err)
			}
			we := m.WeekdayEffect()
			t.Logf("mean delay %.2f (true %.2f before deferral), weekday odds Sun..Sat %.2f", m.MeanDelay(), trueMean, we)
			if tt.deferral == 0 {
				if math.Abs(m.MeanDelay()-trueMean) > 0.1 {
					t.Errorf("mean delay %.2f, want %.2f ± 0.1", m.MeanDelay(), trueMean)
				}
				for w, e := range we {
					if e < 0.85 || e > 1.15 {
						t.Errorf("weekday %d: odds %.2f without an effect, want about 1", w, e)
					}
				}
				return
			}
			if m.MeanDelay() < trueMean+0.1 {
				t.Errorf("mean delay %.2f with weekend deferral, want above the undeferred %.2f", m.MeanDelay(), trueMean)
			}
			if !(we[6] < 0.7 && we[0] < 0.7 && we[1] > 1.5) {
				t.Errorf("weekday odds Sun..Sat %.2f; want Saturday and Sunday below 0.7, Monday above 1.5", we)
			}
			// Completeness of the last days against the truth: the
			// probability that a case of the day is reported by asOf,
			// from the delay and the deferral.
			res, err := nc.Nowcast(cases, testAsOf, 10, m, rand.New(rand.NewPCG(4, 4)))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Days {
				share := 0.0
				for delay, p := range pmf {
					r := d.Date.AddDays(delay)
					late := 0 // days a deferral adds
					switch r.Time().Weekday() {
					case 6:
						late = 2
					case 0:
						late = 1
					}
					if r <= testAsOf {
						share += p
						if r.AddDays(late) > testAsOf {
							share -= p * tt.deferral
						}
					}
				}
				if math.Abs(d.Completeness-share) > 0.04 {
					t.Errorf("%s (%s): completeness %.3f, true %.3f", d.Date, d.Date.Time().Weekday(), d.Completeness, share)
				}
			}
		})
	}
}

// A region with few cases keeps the pooled model's delay when fitted with
// it as the prior; alone it cannot be fitted.
func TestPooledPrior(t *testing.T) {
	nc := mustNowcaster(t, nil)
	pmf := geometricPMF(0.3, 20)
	big := syntheticCases(rand.New(rand.NewPCG(5, 5)), testAsOf, 60, 200, pmf, 0.4, 0)
	small := syntheticCases(rand.New(rand.NewPCG(6, 6)), testAsOf, 60, 0.3, pmf, 0.4, 0)
	pooled, err := nc.FitDelay(append(big, small...), testAsOf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.FitDelay(small, testAsOf, nil); err == nil || !strings.Contains(err.Error(), "pool regions") {
		t.Fatalf("a region of %d cases fitted alone: %v; want an error advising to pool", len(small), err)
	}
	m, err := nc.FitDelay(small, testAsOf, pooled)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(m.MeanDelay() - pooled.MeanDelay()); d > 0.3 {
		t.Errorf("small region's mean delay %.2f, pooled %.2f: want within 0.3", m.MeanDelay(), pooled.MeanDelay())
	}
}

// Cases without an onset date are counted apart and left out of the
// series; reports after the as-of day are not known yet.
func TestNoOnsetAndLateReports(t *testing.T) {
	nc := mustNowcaster(t, func(c *nowcast.Config) { c.MinDelayCases = 1 })
	d := func(off int) schemas.Date { return testAsOf.AddDays(off) }
	var cases []nowcast.Case
	for i := range 40 {
		cases = append(cases, nowcast.Case{Onset: d(-i - 3), Report: d(-i)})
	}
	cases = append(cases,
		nowcast.Case{Report: d(-1)},              // no onset
		nowcast.Case{Report: d(-5)},              // no onset
		nowcast.Case{Report: d(1)},               // no onset, reported later
		nowcast.Case{Onset: d(-2), Report: d(2)}, // reported later
		nowcast.Case{Onset: d(-3), Report: d(0), Imported: true},
	)
	res, err := nc.Nowcast(cases, testAsOf, 5, nil, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if res.NoOnset != 2 {
		t.Errorf("NoOnset = %d, want the 2 known on the as-of day", res.NoOnset)
	}
	last := len(res.Reported) - 1
	if res.Reported[last-2] != 0 || res.Reported[last-3] != 2 || res.ReportedImported[last-3] != 1 {
		t.Errorf("reported by onset %v (imported %v): want 0 two days before (its case comes later), 2 three days before (1 imported)",
			res.Reported[last-5:], res.ReportedImported[last-5:])
	}
}

func TestErrors(t *testing.T) {
	good := syntheticCases(rand.New(rand.NewPCG(1, 1)), testAsOf, 60, 20, geometricPMF(0.3, 10), 0, 0)
	configs := map[string]func(*nowcast.Config){
		"max delay 0":             func(c *nowcast.Config) { c.MaxDelay = 0 },
		"window within max delay": func(c *nowcast.Config) { c.DelayWindow = c.MaxDelay },
		"negative half-life":      func(c *nowcast.Config) { c.DelayHalfLife = -1 },
		"NaN half-life":           func(c *nowcast.Config) { c.DelayHalfLife = math.NaN() },
		"two trend days":          func(c *nowcast.Config) { c.TrendDays = 2 },
		"τ² floor above 1":        func(c *nowcast.Config) { c.TrendTau2 = 2 },
		"no draws":                func(c *nowcast.Config) { c.Draws, c.DelayDraws = 0, 0 },
		"more delay draws":        func(c *nowcast.Config) { c.Draws, c.DelayDraws = 10, 20 },
	}
	for name, mut := range configs {
		cfg := nowcast.DefaultConfig()
		mut(&cfg)
		if _, err := nowcast.New(cfg); err == nil {
			t.Errorf("config %s: accepted", name)
		}
	}
	nc := mustNowcaster(t, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	other, err := nc.FitDelay(good, testAsOf.AddDays(-1), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
		want string
	}{
		{"no as-of", func() error { _, err := nc.Nowcast(good, 0, 10, nil, rng); return err }, "as-of"},
		{"no days", func() error { _, err := nc.Nowcast(good, testAsOf, 0, nil, rng); return err }, "days"},
		{"no rng", func() error { _, err := nc.Nowcast(good, testAsOf, 10, nil, nil); return err }, "random"},
		{"onset after report", func() error {
			bad := append([]nowcast.Case{{Onset: testAsOf, Report: testAsOf.AddDays(-1)}}, good...)
			_, err := nc.Nowcast(bad, testAsOf, 10, nil, rng)
			return err
		}, "after its report"},
		{"no report date", func() error {
			_, err := nc.Nowcast(append([]nowcast.Case{{Onset: testAsOf}}, good...), testAsOf, 10, nil, rng)
			return err
		}, "no report date"},
		{"too few cases", func() error { _, err := nc.Nowcast(good[:5], testAsOf, 10, nil, rng); return err }, "pool regions"},
		{"delay model of another day", func() error { _, err := nc.Nowcast(good, testAsOf, 10, other, rng); return err }, "fitted as of"},
		{"prior of another day", func() error { _, err := nc.FitDelay(good, testAsOf, other); return err }, "fitted as of"},
	}
	for _, c := range calls {
		if err := c.call(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	res, err := nc.Nowcast(good, testAsOf, 10, nil, rng)
	if err != nil {
		t.Fatal(err)
	}
	si, _ := epi.DiscreteSISupport(4.7, 2.9)
	for name, rc := range map[string]nowcast.RConfig{
		"no window": {SI: si, Prior: epi.DefaultPrior()},
		"bad SI":    {SI: []float64{0.5, 0.5}, Prior: epi.DefaultPrior(), Window: 7},
		"bad prior": {SI: si, Prior: epi.Prior{Mean: -1, SD: 1}, Window: 7},
		"empty SI":  {Prior: epi.DefaultPrior(), Window: 7},
	} {
		if _, err := res.R(rc, rng); err == nil {
			t.Errorf("R with %s: accepted", name)
		}
	}
}
