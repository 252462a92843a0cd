package nowcast_test

import (
	"math/rand/v2"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/pipeline/science/nowcast"
)

// BenchmarkNowcast20Regions is the performance goal: the nowcast
// and R on it for 20 regions × 60 recent days in under 20 ms on one core
// (go test -bench Nowcast20 -cpu 1). One iteration is what `epiwatch
// nowcast` computes for Kazakhstan as of a day: the pooled delay model,
// then for each region its own delay model with the pooled one as prior,
// the nowcast of the last 60 onset days (Draws completions) and R on them.
// The outbreak is the simulator's default (20 regions, waves drawn from
// the seed, weekday effect on), as of day 100 of 130.
func BenchmarkNowcast20Regions(b *testing.B) {
	ob := simulateOutbreak(b, backtestScenario{name: "bench", seed: 1}, 130)
	if len(ob.regions) != 20 {
		b.Fatalf("%d regions, want 20", len(ob.regions))
	}
	nc, err := nowcast.New(nowcast.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var all []nowcast.Case
	cases := 0
	for _, r := range ob.regions {
		all = append(all, ob.cases[r]...)
		cases += len(ob.cases[r])
	}
	asOf := ob.cfg.Start.AddDays(100)
	rcfg := nowcast.RConfig{SI: ob.si, Prior: epi.DefaultPrior(), Window: 7}
	b.ReportMetric(float64(cases), "cases")
	b.ResetTimer()
	for b.Loop() {
		rng := rand.New(rand.NewPCG(1, 2))
		pooled, err := nc.FitDelay(all, asOf, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range ob.regions {
			delay, err := nc.FitDelay(ob.cases[r], asOf, pooled)
			if err != nil {
				b.Fatal(err)
			}
			res, err := nc.Nowcast(ob.cases[r], asOf, 60, delay, rng)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := res.R(rcfg, rng); err != nil {
				b.Fatal(err)
			}
		}
	}
}
