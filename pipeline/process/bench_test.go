package process

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// benchStream is a simulated outbreak in every region of the reference
// (29 regions, 120 days, about 100k events).
func benchStream(b *testing.B, days int) []sent {
	b.Helper()
	return simulate(42, schemas.DefaultRegions().Codes(), days)
}

// BenchmarkEngine measures the processor's pure path on one core: decode,
// apply, recompute every changed (region, day), and encode the records to
// JSON, in batches of 1000 — everything but NATS; with the live nowcast on
// (the default) and off, the baseline its cost is read against. Two event
// mixes over the same outbreak: beds=3 is benchStream's (3 facilities per
// region report beds); beds=103 adds the daily bed
// feed of 100 facilities per region that the full-recompute benchmarks use
// (dailyBeds: a snapshot per facility per day, arriving on its day, about
// 1 % corrected the next day), so that most events are bed snapshots and
// every recompute sweeps the occupancy of 103 facilities. bed-events-% is
// the share of bed snapshots in the mix.
func BenchmarkEngine(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	const days = 120
	seed := int64(0) // of each region's bed feed
	mixes := []struct {
		name  string
		extra func(region string, add func(at int, e schemas.Event))
	}{
		{"beds=3", nil},
		{fmt.Sprintf("beds=%d", 3+benchFacilities), func(region string, add func(int, schemas.Event)) {
			seed++
			dailyBeds(rand.New(rand.NewSource(seed)), region, d0, days, func(arrival schemas.Date, e schemas.Event) {
				add(int(arrival-d0), e)
			})
		}},
	}
	for _, mix := range mixes {
		b.Run(mix.name, func(b *testing.B) {
			evs := simulateWith(42, schemas.DefaultRegions().Codes(), days, mix.extra)
			beds := 0
			for _, s := range evs {
				if s.ev.Type == schemas.TypeBedSnapshot {
					beds++
				}
			}
			raw := rawStream(b, evs)
			for _, nowcast := range []bool{false, true} {
				b.Run(map[bool]string{false: "nowcast=off", true: "nowcast=on"}[nowcast], func(b *testing.B) {
					benchEngine(b, raw, nowcast)
					b.ReportMetric(100*float64(beds)/float64(len(raw)), "bed-events-%")
				})
			}
		})
	}
}

func benchEngine(b *testing.B, raw []rawEvent, nowcast bool) {
	cfg := DefaultConfig()
	cfg.Nowcast.Enabled = nowcast
	records := 0
	start, cpu := time.Now(), processCPU()
	for n := 0; n < b.N; n++ {
		g := newTestEngineCfg(b, cfg)
		var out []schemas.Indicator
		for i := 0; i < len(raw); i += 1000 {
			for _, m := range raw[i:min(i+1000, len(raw))] {
				if _, _, err := g.applyMsg(m.data, m.seq, m.ts); err != nil {
					b.Fatal(err)
				}
			}
			out = g.pending(out[:0])
			for i := range out {
				if _, err := json.Marshal(&out[i]); err != nil {
					b.Fatal(err)
				}
			}
			records += len(out)
			g.markPublished()
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(len(raw)*b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(records)/float64(len(raw)*b.N), "records/event")
	if cpu > 0 {
		// The same per second of the process's CPU time: what a busy
		// machine does not lower.
		b.ReportMetric(float64(len(raw)*b.N)/(processCPU()-cpu).Seconds(), "events/cpu-s")
	}
}

// BenchmarkThroughNATS measures events/s end to end on an embedded NATS
// server (fsync always, as stream.EmbeddedConfig defaults): fetch, apply,
// publish the records with acknowledgements, checkpoint, ack.
func BenchmarkThroughNATS(b *testing.B) {
	evs := benchStream(b, 60)
	var total time.Duration
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		s := streamtest.New(b)
		last := publishEvents(b, s.JS, evs)
		b.StartTimer()
		start := time.Now()
		cfg := DefaultConfig()
		run := startProcessor(b, s.URL, cfg, nil)
		waitProcessed(b, s.JS, last)
		total += time.Since(start)
		b.StopTimer()
		if err := run.stop(b); err != nil {
			b.Fatal(err)
		}
		s.Stop()
	}
	b.ReportMetric(float64(len(evs)*b.N)/total.Seconds(), "events/s")
}
