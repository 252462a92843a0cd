package epi

import (
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// benchSeries is a deterministic 730-day epidemic per region: three waves of
// different heights, a few hundred to a few thousand cases a day.
func benchSeries(regions, days int) [][]float64 {
	out := make([][]float64, regions)
	for r := range out {
		s := make([]float64, days)
		for t := range s {
			x := float64(t)
			s[t] = math.Round(50 + float64(r+1)*20*(3+math.Sin(x/40)+math.Sin(x/97+float64(r))))
		}
		out[r] = s
	}
	return out
}

// covidSI is the COVID-19 serial interval (mean 4.7 d, sd 2.9 d; Nishiura et
// al. 2020) over its whole exactly-non-zero support.
func covidSI(b *testing.B) []float64 {
	si, err := DiscreteSISupport(4.7, 2.9)
	if err != nil {
		b.Fatal(err)
	}
	return si
}

// benchCori is the estimator of the benchmarks: the COVID-19 serial
// interval, the default prior, only the quantiles at levels (nil: all
// seven), those of large shapes interpolated if interp.
func benchCori(b *testing.B, levels []float64, interp bool) *Cori {
	c, err := NewCori(covidSI(b), DefaultPrior())
	if err != nil {
		b.Fatal(err)
	}
	if levels != nil {
		if c, err = c.WithLevels(levels...); err != nil {
			b.Fatal(err)
		}
	}
	if interp {
		c = c.WithInterpolatedQuantiles()
	}
	return c
}

// crI are the quantile levels the live processor publishes.
var crI = []float64{0.025, 0.5, 0.975}

// benchWindows re-estimates every weekly sliding window of 20 regions ×
// 730 days from scratch with c, through Windows.
func benchWindows(b *testing.B, c *Cori) {
	series := benchSeries(20, 730)
	windows := SlidingWindows(730, 7)
	b.ResetTimer()
	for range b.N {
		for _, s := range series {
			if _, err := c.Windows(s, nil, windows); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFullRecompute20x730 re-estimates every weekly sliding window of
// 20 regions × 730 days from scratch.
func BenchmarkFullRecompute20x730(b *testing.B) { benchWindows(b, benchCori(b, nil, false)) }

// BenchmarkFullRecompute20x730Window is the same through Window, one call
// per day, the way the processor calls it.
func BenchmarkFullRecompute20x730Window(b *testing.B) {
	series := benchSeries(20, 730)
	c, err := NewCori(covidSI(b), DefaultPrior())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		for _, s := range series {
			for end := range s {
				_ = c.Window(s, nil, end, 7)
			}
		}
	}
}

// BenchmarkIncrementalLateEvent: one case arrives for a day 10 days ago in
// one region; only the windows it can change are re-estimated.
func BenchmarkIncrementalLateEvent(b *testing.B) {
	s := benchSeries(1, 730)[0]
	c, err := NewCori(covidSI(b), DefaultPrior())
	if err != nil {
		b.Fatal(err)
	}
	day := len(s) - 1 - 10
	dst := make([]Estimate, 0, 32)
	b.ResetTimer()
	for range b.N {
		s[day]++
		from, to := c.Affected(day, len(s), 7)
		dst = c.Range(dst[:0], s, nil, from, to, 7)
	}
	if len(dst) != 11 {
		b.Fatalf("%d windows re-estimated, want 11", len(dst))
	}
}

// BenchmarkGammaQuantiles: the seven posterior quantiles of one window.
func BenchmarkGammaQuantiles(b *testing.B) {
	for _, a := range []float64{3, 30, 300, 3000, 30000} {
		b.Run(strconv.FormatFloat(a, 'g', -1, 64), func(b *testing.B) {
			var q [7]float64
			for range b.N {
				gammaQuantiles(&q, a, 0.0004, allLevels)
			}
		})
	}
}

// BenchmarkLambda20x730 is the Λ part of a full recompute alone: the rest
// of BenchmarkFullRecompute20x730 is the posterior quantiles.
func BenchmarkLambda20x730(b *testing.B) {
	series := benchSeries(20, 730)
	si := covidSI(b)
	b.ResetTimer()
	for range b.N {
		for _, s := range series {
			_ = Lambda(s, si)
		}
	}
}

// BenchmarkFullRecompute20x730CrI is BenchmarkFullRecompute20x730 with only
// the quantiles the live processor publishes (2.5 %, median, 97.5 %).
func BenchmarkFullRecompute20x730CrI(b *testing.B) { benchWindows(b, benchCori(b, crI, false)) }

// BenchmarkFullRecompute20x730Live is the full recompute as the live
// processor's estimator does it: one Range call per region, the three
// published quantiles, those of large shapes interpolated
// (WithInterpolatedQuantiles), on one core.
func BenchmarkFullRecompute20x730Live(b *testing.B) {
	series := benchSeries(20, 730)
	c := benchCori(b, crI, true)
	out := make([]Estimate, 0, 730)
	b.ResetTimer()
	for range b.N {
		for _, s := range series {
			out = c.Range(out[:0], s, nil, 0, len(s)-1, 7)
		}
	}
	if len(out) != 730 {
		b.Fatalf("%d estimates, want 730", len(out))
	}
}

// BenchmarkFullRecompute20x730Interpolated is BenchmarkFullRecompute20x730
// (all seven quantiles, through Windows) with interpolated quantiles.
func BenchmarkFullRecompute20x730Interpolated(b *testing.B) {
	benchWindows(b, benchCori(b, nil, true))
}

// BenchmarkFullRecompute20x730CrIAllCores is BenchmarkFullRecompute20x730CrI
// with the regions spread over every core, as the processor's engine spreads
// a large recompute (pipeline/process, computeParallel): the regions'
// estimates are independent.
func BenchmarkFullRecompute20x730CrIAllCores(b *testing.B) {
	series := benchSeries(20, 730)
	c := benchCori(b, crI, false)
	workers := runtime.GOMAXPROCS(0)
	out := make([][]Estimate, len(series))
	b.ResetTimer()
	for range b.N {
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					out[i] = c.Range(out[i][:0], series[i], nil, 0, len(series[i])-1, 7)
				}
			})
		}
		for i := range series {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	if n := len(out[19]); n != 730 {
		b.Fatalf("%d estimates, want 730", n)
	}
}
