package process

import (
	"math"
	"reflect"
	"runtime"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// recomputeEngine is an engine holding regions × days of confirmed cases (a
// deterministic three-wave epidemic, a few hundred to a few thousand cases a
// day) with nothing published yet: pending then recomputes every indicator
// of every day, as after a configuration change or a replay. The rows are set
// directly: applying 10⁷ case events would only slow the set-up.
func recomputeEngine(t testing.TB, regions, days int) *engine {
	t.Helper()
	g := newTestEngine(t)
	codes := schemas.DefaultRegions().Codes()
	if regions > len(codes) {
		t.Fatalf("%d regions asked, the reference has %d", regions, len(codes))
	}
	start := schemas.Date(18262) // 2020-01-01
	for ri, code := range codes[:regions] {
		r := g.region(code)
		for d := range days {
			x := float64(d)
			n := math.Round(50 + float64(ri+1)*20*(3+math.Sin(x/40)+math.Sin(x/97+float64(ri))))
			row := r.touch(start+schemas.Date(d), uint64(ri*days+d+1), int64(d))
			row.casesLocal = int32(n)
			row.onsetLocal = int32(n)
		}
		r.first[tCase] = start
		if l := r.last(); l > g.last {
			g.last = l
		}
	}
	return g
}

// TestParallelRecomputeSameRecords: spreading a large recompute over the
// cores gives exactly the records of the one-goroutine loop, in the same
// order.
func TestParallelRecomputeSameRecords(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs 2 cores to take the parallel path")
	}
	g := recomputeEngine(t, 6, 200)
	par := g.pending(nil) // 6 × 200 days ≥ parallelDays: the parallel path
	if len(par) != 6*200 {
		t.Fatalf("%d records, want %d", len(par), 6*200)
	}
	var seq []schemas.Indicator
	for _, code := range g.codes {
		r := g.states[code]
		seq = g.computeRegion(&g.scratch, r, r.base, g.last, seq)
	}
	if !reflect.DeepEqual(par, seq) {
		for i := range par {
			if !reflect.DeepEqual(par[i], seq[i]) {
				t.Fatalf("record %d differs:\nparallel   %+v\nsequential %+v", i, par[i], seq[i])
			}
		}
		t.Fatal("records differ")
	}
	if par[len(par)-1].RMean == nil || par[len(par)-1].RQ975 == nil {
		t.Fatal("last record has no R: nothing was estimated")
	}
}

// BenchmarkFullRecompute20x730 is the processor's full recompute of 20
// regions × 730 days: every indicator record (R with its median and 95 %
// credible interval, and everything beside it) of every day, on every core
// (the figure the README gives; see BenchmarkFullRecompute20x730OneCore and
// pipeline/science/epi's benchmarks of R alone).
func BenchmarkFullRecompute20x730(b *testing.B) {
	benchRecompute(b, 0)
}

// BenchmarkFullRecompute20x730OneCore is the same on one core.
func BenchmarkFullRecompute20x730OneCore(b *testing.B) {
	benchRecompute(b, 1)
}

func benchRecompute(b *testing.B, procs int) {
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	g := recomputeEngine(b, 20, 730)
	var out []schemas.Indicator
	b.ResetTimer()
	for range b.N {
		out = g.pending(out[:0])
	}
	if len(out) != 20*730 {
		b.Fatalf("%d records, want %d", len(out), 20*730)
	}
}
