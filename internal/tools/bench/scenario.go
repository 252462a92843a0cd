package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// latencyDays is how many recent days the latency and soak events cover: a
// live pipeline receives reports about the last days, not about months ago.
const latencyDays = 14

// simulateN simulates about n events, the first n in the order of the days.
// Unless fixed, it adjusts sc.Scale so that the whole period gives about n.
// The events grow less than linearly with the scale (bed snapshots and
// background tests, for one, do not follow the epidemic), so the search
// steps in log-log space with the elasticity of the last two tries.
func simulateN(ctx context.Context, sc simulate.Config, regions *schemas.Regions, n int, fixed bool) ([]schemas.Event, simulate.Config, error) {
	if !fixed {
		sc.Scale = 0.05 // a quick probe of the events per unit of scale
	}
	prevScale, prevN, elasticity := 0.0, 0, 1.0
	for try := 0; ; try++ {
		events, err := simulateUpTo(ctx, sc, regions, n)
		if err != nil {
			return nil, sc, err
		}
		if len(events) >= n || fixed || try == 10 || sc.Scale >= 1000 {
			return events, sc, nil
		}
		if prevN > 0 && len(events) > prevN {
			elasticity = min(max(math.Log(float64(len(events))/float64(prevN))/math.Log(sc.Scale/prevScale), 0.2), 1.5)
		}
		prevScale, prevN = sc.Scale, len(events)
		grow := 10.0
		if len(events) > 0 {
			grow = math.Pow(1.02*float64(n)/float64(len(events)), 1/elasticity)
		}
		sc.Scale = min(1000, sc.Scale*grow)
	}
}

var errEnough = errors.New("enough events")

// simulateUpTo runs the simulation until it has produced n events.
func simulateUpTo(ctx context.Context, sc simulate.Config, regions *schemas.Regions, n int) ([]schemas.Event, error) {
	sim, err := simulate.New(sc, regions)
	if err != nil {
		return nil, cli.BadInput(err)
	}
	var out []schemas.Event
	err = sim.Run(ctx, func(_ schemas.Date, events []schemas.Event) error {
		out = append(out, events[:min(len(events), n-len(out))]...)
		if len(out) >= n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// renameEvents prefixes every event_id, so that a run is fresh even on a
// reused store (JetStream and the ingest digests would take a re-sent
// simulation for duplicates).
func renameEvents(events []schemas.Event, prefix string) {
	for i := range events {
		events[i].EventID = prefix + events[i].EventID
	}
}

// prepareMsgs turns events into the messages ingest would publish: the same
// validation, pseudonymisation and bytes.
func prepareMsgs(in *ingest.Ingester, events []schemas.Event) ([]stream.Msg, error) {
	raws := make([][]byte, len(events))
	for i := range events {
		raw, err := json.Marshal(&events[i])
		if err != nil {
			return nil, err
		}
		raws[i] = raw
	}
	ok, rejected := in.Prepare(raws, 0)
	if len(rejected) > 0 {
		return nil, fmt.Errorf("ingest rejects %d simulated events, e.g. %s: %s", len(rejected), rejected[0].EventID, rejected[0].Reason)
	}
	msgs := make([]stream.Msg, len(ok))
	for i, p := range ok {
		m := in.Msg(p)
		m.Header = nil // the bench publishes around ingest's once-only check
		msgs[i] = m
	}
	return msgs, nil
}
