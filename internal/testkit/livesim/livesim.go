// Package livesim runs a simulated outbreak through the processor's core day
// by day, as the live processor sees it: each day's events arrive at 20:00,
// and the records published after that day are the new and changed ones, so
// a recent day first appears incomplete and is published again as late
// reports arrive. The nowcast and provisional-decision tests judge what
// users would have seen on each day against the final data.
package livesim

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/schemas"
)

// Run simulates scfg and returns the simulator (for its truth) and, per
// simulated day, the indicator records published after that day's events.
func Run(t testing.TB, pcfg process.Config, scfg simulate.Config) (*simulate.Sim, [][]schemas.Indicator) {
	t.Helper()
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
	return sim, out
}
