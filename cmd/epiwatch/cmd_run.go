package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newRunCmd() *cobra.Command {
	var o app.RunOptions
	var simulate bool
	var sim simulateOptions
	c := &cobra.Command{
		Use:   "run",
		Short: "Run every component in one process (the default deployment)",
		Long: `Runs the whole pipeline in one process: the embedded NATS JetStream server (unless
nats.url is set), the ingest API on http.addr (with /metrics, /healthz, /readyz), the stream
processor, the decision maker, the ClickHouse sink and the alerter. Applies the ClickHouse
migrations on start. Stops cleanly on Ctrl-C or SIGTERM: in-flight batches are finished and
acknowledged, nothing is lost.

With --simulate it also feeds itself a simulated outbreak (see 'epiwatch simulate --help'
for the model) through its own ingest API, waits until every accepted event is queryable in
ClickHouse, prints what landed — events per type, the restriction level of every region and
example SQL — and keeps serving (or exits with --exit-when-done). Unless decide.mode is set,
a simulation decides in data mode: each simulated day is decided as soon as it is complete.`,
		Example: `  epiwatch run                                  # the pipeline, waiting for producers
  epiwatch run --simulate                       # plus a 120-day outbreak in Kazakhstan's 20 regions
  epiwatch run --simulate --days 60 --scale 0.3 --exit-when-done
  epiwatch run --simulate --schedule KZ-75=0:1.6,30:0.8 --speed 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if simulate {
				o.Simulate = &sim.Options
			}
			return app.RunPipeline(cmd.Context(), envOf(cmd), o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.NoSink, "no-sink", false, "do not start the ClickHouse sink (run it elsewhere with 'epiwatch sink')")
	f.BoolVar(&simulate, "simulate", false, "feed a simulated outbreak through the ingest API")
	f.BoolVar(&o.ExitWhenDone, "exit-when-done", false, "with --simulate: stop once the simulation has landed in ClickHouse")
	sim.addModelFlags(f)
	sim.addSendFlags(f)
	return c
}
