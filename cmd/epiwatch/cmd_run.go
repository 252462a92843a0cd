package main

import (
	"context"
	"net"

	"github.com/spf13/cobra"
)

// runOptions are the flags of `epiwatch run`.
type runOptions struct {
	noSink bool
}

func newRunCmd() *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:   "run",
		Short: "Run every component in one process (the default deployment)",
		Long: `Runs the whole pipeline in one process: the embedded NATS JetStream server (unless
nats.url is set), the ingest API on http.addr (with /metrics, /healthz, /readyz), the stream
processor, the decision maker, the ClickHouse sink and the alerter. Applies the ClickHouse
migrations on start. Stops cleanly on Ctrl-C or SIGTERM: in-flight batches are finished and
acknowledged, nothing is lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			return a.runPipeline(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&o.noSink, "no-sink", false, "do not start the ClickHouse sink (run it elsewhere with 'epiwatch sink')")
	return c
}

// runPipeline starts every component of `run` and blocks until ctx ends.
func (a *app) runPipeline(ctx context.Context, o runOptions) error {
	if err := a.connectNATS(ctx, "run", true); err != nil {
		return err
	}
	in, err := a.newIngester()
	if err != nil {
		return err
	}
	ic, err := a.ingestComponent(in)
	if err != nil {
		return err
	}
	pc, err := a.processComponent()
	if err != nil {
		return err
	}
	dc, err := a.decideComponent()
	if err != nil {
		return err
	}
	comps := []component{ic, pc, dc}
	if !o.noSink {
		sc, err := a.sinkComponent(ctx)
		if err != nil {
			return err
		}
		comps = append(comps, sc)
	}
	return runAll(ctx, comps)
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
