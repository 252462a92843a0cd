package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/epiwatch/epiwatch/consumers/alerts"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/decide"
)

// RunOptions are the settings of `epiwatch run`.
type RunOptions struct {
	NoSink       bool // the sink runs elsewhere
	ExitWhenDone bool // with Simulate: stop once the simulation has landed
	// Simulate, if set, feeds the pipeline the simulated outbreak of these
	// options (the model and sending ones) through its own ingest API and
	// prints what landed.
	Simulate *simulate.Options
}

// RunPipeline runs every component in one process — the embedded NATS
// server unless nats.url is set, ingest, processor, detector, decision
// maker, alerter and sink — until ctx ends (or, with a simulation and
// ExitWhenDone, until the simulation has landed).
func RunPipeline(ctx context.Context, e Env, o RunOptions) error {
	a, err := New(e)
	if err != nil {
		return err
	}
	defer a.Close()
	if o.ExitWhenDone && o.Simulate == nil {
		return usage(fmt.Errorf("--exit-when-done applies to --simulate"))
	}
	if o.Simulate != nil && !a.ExplicitlySet("decide.mode") {
		a.Cfg.Decide.Mode = decide.ModeData
	}
	// Simulated days never meet a wall-clock schedule: the digest of a day
	// goes with the day's decision.
	if o.Simulate != nil && !a.ExplicitlySet("alerts.digest.trigger") {
		a.Cfg.Alerts.Digest.Trigger = alerts.DigestOnDecision
	}
	return a.runPipeline(ctx, e, o)
}

func (a *App) runPipeline(ctx context.Context, e Env, o RunOptions) error {
	if err := a.ConnectNATS(ctx, "run", true); err != nil {
		return err
	}
	in, err := a.NewIngester()
	if err != nil {
		return err
	}
	alc, ack, err := a.alertComponent()
	if err != nil {
		return err
	}
	dc, levels, err := a.DecideComponent()
	if err != nil {
		return err
	}
	ic, err := a.IngestComponent(in, map[string]http.Handler{"/v1/alerts/": ack, "/v1/levels/": levels})
	if err != nil {
		return err
	}
	pc, err := a.ProcessComponent()
	if err != nil {
		return err
	}
	tc, err := a.detectComponent()
	if err != nil {
		return err
	}
	comps := []Component{ic, pc, tc, dc, alc}
	if !o.NoSink {
		sc, err := a.SinkComponent(ctx)
		if err != nil {
			return err
		}
		comps = append(comps, sc)
	}
	if o.Simulate == nil {
		return RunAll(ctx, comps)
	}
	if o.NoSink {
		return usage(fmt.Errorf("--simulate needs the sink: it waits for the events to land in ClickHouse"))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	comps = append(comps, Component{"simulate", func(ctx context.Context) error {
		err := a.feedSimulation(ctx, *o.Simulate, e)
		if err == nil && o.ExitWhenDone {
			cancel()
		}
		return err
	}})
	return RunAll(ctx, comps)
}
