package process

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// recomputeEngine is an engine holding regions × days of confirmed cases (a
// deterministic three-wave epidemic, a few hundred to a few thousand cases a
// day) with nothing published yet: pending then recomputes every indicator
// of every day, as after a configuration change or a replay. The rows are set
// directly: applying 10⁷ case events would only slow the set-up. With beds,
// every region also holds the daily bed feed of benchFacilities facilities
// over the same days (dailyBeds: one infectious-bed snapshot per facility
// per day, a few missed, about 1 % corrected down), applied as the
// processor applies bed snapshot events after their checks, so that the
// recompute includes every day's occupancy and its flags.
func recomputeEngine(t testing.TB, regions, days int, withBeds bool) *engine {
	t.Helper()
	g := newTestEngine(t)
	codes := schemas.DefaultRegions().Codes()
	if regions > len(codes) {
		t.Fatalf("%d regions asked, the reference has %d", regions, len(codes))
	}
	start := schemas.Date(18262)  // 2020-01-01
	seq := uint64(regions * days) // the case rows' versions are below
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
		if withBeds {
			rng := rand.New(rand.NewSource(int64(ri)))
			dailyBeds(rng, code, start, days, func(arrival schemas.Date, e schemas.Event) {
				seq++
				r.changeEvent(&e, seq, int64(arrival-start), g.applyCfg())
			})
		}
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
	for _, withBeds := range []bool{false, true} {
		t.Run(fmt.Sprintf("beds=%v", withBeds), func(t *testing.T) { parallelRecomputeSameRecords(t, withBeds) })
	}
}

func parallelRecomputeSameRecords(t *testing.T, withBeds bool) {
	g := recomputeEngine(t, 6, 200, withBeds)
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
	if withBeds {
		// Without occupancy and its flags the beds would prove nothing.
		var occupancy, corrected bool
		for _, in := range par {
			occupancy = occupancy || in.BedOccupancyPct != nil
			i := slices.Index(in.Flags, schemas.FlagNegativeCorrection)
			if i < 0 {
				continue
			}
			corrected = true
			// The per-day loop names the corrections its bed cursor passed:
			// those History.Corrections finds for the day.
			want := schemas.FlagNegativeCorrection + ": " + correctionReason(g.states[in.Region].beds.Corrections(in.Date))
			if in.FlagReasons[i] != want {
				t.Fatalf("%s %s: %q, want %q", in.Region, in.Date, in.FlagReasons[i], want)
			}
		}
		if !occupancy || !corrected {
			t.Fatalf("with beds: some occupancy %v, some negative correction %v; want both", occupancy, corrected)
		}
	}
}

// BenchmarkFullRecompute20x730 is the processor's full recompute of 20
// regions × 730 days: every indicator record (R with its median and 95 %
// credible interval, bed occupancy, and everything beside them) of every
// day, on every core (the figure the README gives; see
// BenchmarkFullRecompute20x730OneCore and pipeline/science/epi's benchmarks
// of R alone). beds=0: cases only; beds=100: the same with the daily bed
// feed of 100 facilities per region (recomputeEngine), so the ratio of the
// two, measured in one run, is what occupancy adds.
func BenchmarkFullRecompute20x730(b *testing.B) {
	benchRecompute(b, 0)
}

// BenchmarkFullRecompute20x730OneCore is the same on one core.
func BenchmarkFullRecompute20x730OneCore(b *testing.B) {
	benchRecompute(b, 1)
}

// recomputeEngines keeps the benchmarks' engines between runs: pending
// leaves them as they were, and the bed feed takes seconds to apply.
var recomputeEngines = map[bool]*engine{}

func benchRecompute(b *testing.B, procs int) {
	for _, withBeds := range []bool{false, true} {
		b.Run(fmt.Sprintf("beds=%d", map[bool]int{false: 0, true: benchFacilities}[withBeds]), func(b *testing.B) {
			g := recomputeEngines[withBeds]
			if g == nil {
				g = recomputeEngine(b, 20, 730, withBeds)
				recomputeEngines[withBeds] = g
			}
			if procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			}
			var out []schemas.Indicator
			b.ResetTimer()
			cpu := processCPU()
			for range b.N {
				out = g.pending(out[:0])
			}
			reportCPU(b, cpu)
			if len(out) != 20*730 {
				b.Fatalf("%d records, want %d", len(out), 20*730)
			}
		})
	}
}
