package decide

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/simulate"
	"github.com/epiwatch/epiwatch/pipeline/stream/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// liveIndicators runs the simulator (reporting delays on) through the
// processor's core day by day and returns, per simulated day, the indicator
// records the live processor publishes after that day's events: the new
// and changed ones, so a recent day first appears incomplete and is
// published again as late reports arrive.
func liveIndicators(t *testing.T, pcfg process.Config, regions []string, days int) [][]schemas.Indicator {
	t.Helper()
	scfg := simulate.DefaultConfig()
	scfg.Regions, scfg.Days, scfg.Seed = regions, days, 3
	sim, err := simulate.New(scfg, schemas.DefaultRegions())
	if err != nil {
		t.Fatal(err)
	}
	rp, err := process.NewReplayer(pcfg, schemas.DefaultRegions())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]schemas.Indicator
	var seq uint64
	err = sim.Run(context.Background(), func(d schemas.Date, evs []schemas.Event) error {
		ts := d.Time().Add(20 * time.Hour)
		for i := range evs {
			data, err := json.Marshal(&evs[i])
			if err != nil {
				return err
			}
			e, err := rp.Decode(data, ts)
			if err != nil {
				return fmt.Errorf("simulated event %s: %w", evs[i].EventID, err)
			}
			seq++
			rp.Apply(e, seq, ts)
		}
		out = append(out, rp.Pending(nil))
		rp.MarkPublished()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flips are what a region's HQ would see change.
type flips struct {
	decided       int // data days decided on the rule set (not kept for want of data)
	actionChanges int // the recommendation differs from the previous day's
	levelChanges  int
	// revised counts decisions whose recommendation the day's final data
	// (every late report in) contradict: what users complain of as
	// "recent days that later changed".
	revised int
	// missedStrengthen counts, of those, final-data strengthens that were
	// decided otherwise.
	missedStrengthen int
}

// finalDays are the newest version of every region's day, grouped by date
// in date order: the data as they stand once every late report is in.
func finalDays(days [][]schemas.Indicator) [][]schemas.Indicator {
	final := map[string]schemas.Indicator{}
	for _, day := range days {
		for _, in := range day {
			final[in.Key()] = in // later publications are newer versions
		}
	}
	byDate := map[schemas.Date][]schemas.Indicator{}
	for _, in := range final {
		byDate[in.Date] = append(byDate[in.Date], in)
	}
	dates := make([]schemas.Date, 0, len(byDate))
	for d := range byDate {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	out := make([][]schemas.Indicator, len(dates))
	for i, d := range dates {
		out[i] = byDate[d]
		slices.SortFunc(out[i], func(a, b schemas.Indicator) int { return strings.Compare(a.Region, b.Region) })
	}
	return out
}

// count tallies ds against hindsight, the recommendation of the same rule
// set on the final data of each (region, date).
func count(ds []schemas.Decision, hindsight map[string]string) flips {
	var f flips
	prev := map[string]string{}
	for _, dec := range ds {
		if dec.Clause == ClauseProvisionalInput || dec.Clause == ClauseStaleInput {
			continue
		}
		f.decided++
		if p, ok := prev[dec.Region]; ok && p != dec.Action {
			f.actionChanges++
		}
		prev[dec.Region] = dec.Action
		if dec.LevelFrom != dec.LevelTo {
			f.levelChanges++
		}
		if h, ok := hindsight[dec.Region+":"+dec.Date.String()]; ok && h != dec.Action {
			f.revised++
			if h == string(thresholds.Strengthen) {
				f.missedStrengthen++
			}
		}
	}
	return f
}

// decideAll runs a data-mode decider live and returns its decisions: it is
// started first, and each simulated day's records are published only after
// it has worked through the previous day's, as when it keeps up with the
// processor.
func decideAll(t *testing.T, days [][]schemas.Indicator, cfg Config) []schemas.Decision {
	t.Helper()
	srv := streamtest.New(t)
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	run := start(t, d)
	for _, recs := range days {
		waitDecided(t, srv.JS, publish(t, srv.JS, "", recs...))
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	ds := decisions(t, srv.JS)
	if p := audit(ds); len(p) > 0 {
		t.Fatalf("audit: %v", p)
	}
	return ds
}

// TestCompleteDaysFlipLess: with the simulator's reporting delays and R by
// onset date — where the newest days are the least complete — decisions on
// complete days only (the default) are contradicted by the later, complete
// data far less often than decisions that take every day as soon as it
// appears. A contradiction is a decision whose recommendation differs from
// the rule set's on the day's final data. The README quotes the figures
// this test logs.
func TestCompleteDaysFlipLess(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 5 regions over 150 days")
	}
	pcfg := process.DefaultConfig()
	pcfg.RDate = process.RByOnset
	days := liveIndicators(t, pcfg, []string{"KZ-75", "KZ-71", "KZ-79", "KZ-55", "KG-B"}, 150)
	prov, recs := 0, 0
	for _, day := range days {
		recs += len(day)
		for _, in := range day {
			if in.Provisional {
				prov++
			}
		}
	}
	if prov == 0 {
		t.Fatal("no record was provisional: the test would compare nothing")
	}
	cfg := DefaultConfig()
	cfg.Mode = ModeData
	// Wait for a provisional day as long as the onset delay's tail needs.
	cfg.MaxStaleness = 14

	// Hindsight: the same rule set on every day's final record.
	cfg.UseProvisional = true
	hindsight := map[string]string{}
	for _, d := range decideAll(t, finalDays(days), cfg) {
		if d.Clause != ClauseStaleInput {
			hindsight[d.Region+":"+d.Date.String()] = d.Action
		}
	}
	all := count(decideAll(t, days, cfg), hindsight)
	cfg.UseProvisional = false
	ds := decideAll(t, days, cfg)
	complete := count(ds, hindsight)

	t.Logf("%d indicator records, %d provisional; %d region-days decided in hindsight", recs, prov, len(hindsight))
	for _, r := range []struct {
		name string
		f    flips
	}{{"all days", all}, {"complete days", complete}} {
		t.Logf("%-13s: %d decided, %d contradicted by the final data (%.1f %%; %d of them strengthen in hindsight); recommendation changed %d times, level %d times",
			r.name, r.f.decided, r.f.revised, 100*float64(r.f.revised)/float64(max(r.f.decided, 1)), r.f.missedStrengthen, r.f.actionChanges, r.f.levelChanges)
	}
	if complete.decided < all.decided*8/10 {
		t.Errorf("complete days decided only %d of %d days: waiting for complete days should not mean deciding nothing", complete.decided, all.decided)
	}
	if all.revised == 0 {
		t.Fatal("no decision on all days was contradicted by the final data: the simulated delays made no day incomplete enough to matter")
	}
	if 2*complete.revised >= all.revised {
		t.Errorf("decisions on complete days were contradicted by the final data %d times, on all days %d: waiting for complete data should at least halve that", complete.revised, all.revised)
	}
	for _, d := range ds {
		if slices.Contains(d.Flags, FlagProvisional) {
			t.Fatalf("decision %s used a provisional day with use_provisional off", d.DecisionID)
		}
	}
}

// waitDecided waits until the decider has consumed and acknowledged the
// indicators stream up to sequence last.
func waitDecided(t *testing.T, js jetstream.JetStream, last uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var info *jetstream.ConsumerInfo
		c, err := js.Consumer(context.Background(), schemas.StreamIndicators, schemas.ConsumerDecide)
		if err == nil {
			info, err = c.Info(context.Background())
		}
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the decider did not work through the indicators up to sequence %d within 30 s: %+v, %v", last, info, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
