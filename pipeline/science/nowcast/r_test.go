package nowcast_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
)

// On a window whose days (and the days their infectiousness counts) are
// complete, R on the nowcast is epi's Cori estimate of the reported counts,
// bit for bit, NA where it is NA; on the others it is a mixture.
func TestRExactOnCompleteWindows(t *testing.T) {
	tests := []struct {
		name           string
		siMean, siSD   float64
		window, days   int
		seriesDays     int
		perDay         float64
		wantNA, wantEx bool // some NA days, some exact days expected
	}{
		{"COVID-19 SI, weekly, 60 days", 4.7, 2.9, 7, 60, 120, 40, false, true},
		{"short SI, 14-day windows", 2.6, 1.5, 14, 45, 120, 15, false, true},
		{"series shorter than the days: NA first", 4.7, 2.9, 7, 40, 35, 30, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := mustNowcaster(t, nil)
			rng := rand.New(rand.NewPCG(9, 9))
			cases := syntheticCases(rng, testAsOf, tt.seriesDays, tt.perDay, geometricPMF(0.3, 15), 0.4, 0.2)
			res, err := nc.Nowcast(cases, testAsOf, tt.days, nil, rng)
			if err != nil {
				t.Fatal(err)
			}
			si, err := epi.DiscreteSISupport(tt.siMean, tt.siSD)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := res.R(nowcast.RConfig{SI: si, Prior: epi.DefaultPrior(), Window: tt.window}, rng)
			if err != nil {
				t.Fatal(err)
			}
			cori, err := epi.NewCori(si, epi.DefaultPrior())
			if err != nil {
				t.Fatal(err)
			}
			local := make([]float64, len(res.Reported))
			for i := range local {
				local[i] = res.Reported[i] - res.ReportedImported[i]
			}
			first := len(res.Reported) - len(res.Days)
			var na, exact, mix int
			var ratios []float64 // the final mean's interval's width over R's CrI's
			for i, r := range rs {
				e := first + i
				want := cori.Window(local, res.ReportedImported, e, tt.window)
				complete := int(testAsOf-res.Days[i].Date) >= nc.Config().MaxDelay
				switch {
				case r.Date != res.Days[i].Date:
					t.Fatalf("R day %d is %s, nowcast day %s", i, r.Date, res.Days[i].Date)
				case !want.OK:
					na++
					if r.OK {
						t.Errorf("%s: R estimated where EpiEstim gives NA", r.Date)
					}
				case complete:
					exact++
					if !r.Exact || !r.OK || r.Mean != want.Mean || r.Q025 != want.Quantiles[0] || r.Median != want.Quantiles[3] || r.Q975 != want.Quantiles[6] {
						t.Errorf("%s (complete): R %+v, want epi's mean %v and quantiles %v exactly", r.Date, r, want.Mean, want.Quantiles)
					}
					// Nothing left to report: the final mean is the mean,
					// the evidence the window's local cases.
					windowLocal := 0.0
					for j := e - tt.window + 1; j <= e; j++ {
						windowLocal += local[j]
					}
					if r.FinalQ025 != r.Mean || r.FinalQ10 != r.Mean || r.FinalQ90 != r.Mean || r.FinalQ975 != r.Mean || r.LocalQ025 != windowLocal {
						t.Errorf("%s (complete): final mean interval [%v, %v], local cases %v; want [%v, %v] and %v",
							r.Date, r.FinalQ025, r.FinalQ975, r.LocalQ025, r.Mean, r.Mean, windowLocal)
					}
				default:
					if r.Exact {
						continue // nothing drawn changed the window: exact too (checked above when complete)
					}
					mix++
					if !r.OK || !(r.Q025 <= r.Median && r.Median <= r.Q975) || !(r.Q025 > 0) {
						t.Errorf("%s: mixture R %+v", r.Date, r)
					}
					// The final mean's interval is the completions' spread
					// alone, R's CrI adds Cori's width: around the mean and
					// narrower as a rule (not on every day: each is 200
					// draws, and on the newest days the completions' tail
					// is nearly the whole width).
					if !(r.FinalQ025 <= r.FinalQ10 && r.FinalQ10 <= r.FinalQ90 && r.FinalQ90 <= r.FinalQ975 && r.FinalQ025 <= r.Mean && r.Mean <= r.FinalQ975) {
						t.Errorf("%s: final mean interval [%v, %v] not around the mean %v", r.Date, r.FinalQ025, r.FinalQ975, r.Mean)
					}
					ratios = append(ratios, (r.FinalQ975-r.FinalQ025)/(r.Q975-r.Q025))
					// Completions only add cases.
					windowLocal := 0.0
					for j := e - tt.window + 1; j <= e; j++ {
						windowLocal += local[j]
					}
					if r.LocalQ025 < windowLocal {
						t.Errorf("%s: the window's local cases at their 2.5 %% quantile %v, fewer than reported %v", r.Date, r.LocalQ025, windowLocal)
					}
				}
			}
			slices.Sort(ratios)
			med := math.NaN()
			if len(ratios) > 0 {
				med = ratios[len(ratios)/2]
			}
			t.Logf("%d NA, %d exact, %d mixtures; the final mean's interval is %.2f of R's CrI wide (median)", na, exact, mix, med)
			if mix > 0 && !(med < 0.9) {
				t.Errorf("the final mean's interval is %.2f of R's CrI wide (median over the mixture days); want narrower", med)
			}
			if (na > 0) != tt.wantNA || (exact > 0) != tt.wantEx || mix == 0 {
				t.Errorf("%d NA, %d exact and %d mixture days; want NA %v, exact %v, and mixtures", na, exact, mix, tt.wantNA, tt.wantEx)
			}
		})
	}
}

// On a steady outbreak (the same expected count every day, 5 % of it
// imported: R = 0.95, the local cases per unit of infectiousness) the
// reported counts dip at the end and R on them falls far below; R on the
// nowcast does not, and its credible interval holds the truth on the last
// week.
func TestRCorrectsTheDip(t *testing.T) {
	nc := mustNowcaster(t, nil)
	rng := rand.New(rand.NewPCG(10, 10))
	cases := syntheticCases(rng, testAsOf, 150, 200, geometricPMF(0.25, 20), 0.4, 0.2)
	res, err := nc.Nowcast(cases, testAsOf, 7, nil, rng)
	if err != nil {
		t.Fatal(err)
	}
	si, _ := epi.DiscreteSISupport(4.7, 2.9)
	rs, err := res.R(nowcast.RConfig{SI: si, Prior: epi.DefaultPrior(), Window: 7}, rng)
	if err != nil {
		t.Fatal(err)
	}
	cori, _ := epi.NewCori(si, epi.DefaultPrior())
	local := make([]float64, len(res.Reported))
	for i := range local {
		local[i] = res.Reported[i] - res.ReportedImported[i]
	}
	last := len(local) - 1
	raw := cori.Window(local, res.ReportedImported, last, 7)
	const truth = 0.95
	if !(raw.Quantiles[6] < 0.85) {
		t.Errorf("R on the reported counts ends at %.2f [%.2f, %.2f]; the dip should pull it well below %v", raw.Mean, raw.Quantiles[0], raw.Quantiles[6], truth)
	}
	for _, r := range rs {
		if r.Exact || !(r.Q025 <= truth && truth <= r.Q975) {
			t.Errorf("%s: R on the nowcast %.3f [%.3f, %.3f] (exact %v), want a mixture covering %v", r.Date, r.Mean, r.Q025, r.Q975, r.Exact, truth)
		}
	}
	t.Logf("last day: R on the reported %.3f [%.3f, %.3f], on the nowcast %.3f [%.3f, %.3f]",
		raw.Mean, raw.Quantiles[0], raw.Quantiles[6], rs[6].Mean, rs[6].Q025, rs[6].Q975)
}
