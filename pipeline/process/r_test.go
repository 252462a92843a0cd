package process

import (
	"fmt"
	"math"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/schemas"
)

// checkR compares the published R with pipeline/science/epi called directly on the
// same series (confirmed cases by report date, local and imported, index 0 =
// day(0), the region's first day), for every day with a record.
// It returns how many days had an estimate.
func checkR(t *testing.T, recs map[string]indicatorRecord, region string, evs []schemas.Event, cfg Config) int {
	t.Helper()
	last := 0
	for i := range evs {
		e := &evs[i]
		if e.Region == region && e.Type == schemas.TypeCase && e.Confirmed() {
			last = max(last, int(e.ReportDate-day(0)))
		}
	}
	local := make([]float64, last+1)
	imported := make([]float64, last+1)
	for i := range evs {
		e := &evs[i]
		if e.Region != region || e.Type != schemas.TypeCase || !e.Confirmed() {
			continue
		}
		if e.Imported {
			imported[int(e.ReportDate-day(0))]++
		} else {
			local[int(e.ReportDate-day(0))]++
		}
	}
	si, _ := cfg.SerialInterval()
	w, err := epi.DiscreteSISupport(si.Mean, si.SD)
	if err != nil {
		t.Fatal(err)
	}
	c, err := epi.NewCori(w, epi.Prior{Mean: cfg.PriorMean, SD: cfg.PriorSD})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i := 0; i <= last; i++ {
		rec, ok := recs[region+"/"+day(i).String()]
		if !ok {
			continue
		}
		want := c.Window(local[:i+1], imported[:i+1], i, cfg.RWindowDays)
		in := rec.ind
		if !want.OK {
			if in.RMean != nil {
				t.Errorf("%s day %d: R = %v published where EpiEstim gives NA", region, i, *in.RMean)
			}
			continue
		}
		checked++
		for _, c := range []struct {
			name string
			got  *float64
			want float64
		}{
			{"r_mean", in.RMean, want.Mean},
			{"r_sd", in.RSD, want.SD},
			{"r_q025", in.RQ025, want.Quantiles[0]},
			{"r_median", in.RMedian, want.Median()},
			{"r_q975", in.RQ975, want.Quantiles[6]},
		} {
			if c.got == nil || math.Abs(*c.got-c.want) > 1e-12*math.Abs(c.want) {
				t.Errorf("%s day %d: %s = %v, want %v", region, i, c.name, c.got, c.want)
			}
		}
	}
	return checked
}

// TestRMatchesEstimator runs 45 days of cases (growing, then falling, some
// imported, one reported late) through the live processor: every published
// R equals the estimator's on the same series, NA where it gives NA.
func TestRMatchesEstimator(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	var evs []schemas.Event
	n := 0
	for d := 0; d < 45; d++ {
		count := 2 + d/3
		if d > 25 {
			count = 2 + (45-d)/2
		}
		for k := 0; k < count; k++ {
			n++
			id := fmt.Sprintf("r%d", n)
			if k == 0 && d%5 == 0 {
				evs = append(evs, caseEv(id, "KZ-75", d, func(e *schemas.Event) { e.Imported = true }))
				continue
			}
			evs = append(evs, caseEv(id, "KZ-75", d))
		}
	}
	// A late report for day 10, published last.
	evs = append(evs, caseEv("late", "KZ-75", 10))
	cfg := testConfig()
	lastSeq := publishEvents(t, s.JS, events(evs...))
	run := startProcessor(t, s.URL, cfg, nil)
	waitProcessed(t, s.JS, lastSeq)
	recs := latest(t, readIndicators(t, s.JS))
	if got := checkR(t, recs, "KZ-75", evs, cfg); got < 30 {
		t.Errorf("only %d days with R compared", got)
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
}
