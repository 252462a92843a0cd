package process

import (
	"encoding/json"
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
// (the default) and off, the baseline its cost is read against.
func BenchmarkEngine(b *testing.B) {
	raw := rawStream(b, benchStream(b, 120))
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for _, nowcast := range []bool{false, true} {
		b.Run(map[bool]string{false: "nowcast=off", true: "nowcast=on"}[nowcast], func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Nowcast.Enabled = nowcast
			records := 0
			start := time.Now()
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
		})
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
