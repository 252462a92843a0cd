package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/loopback"

	"github.com/epiwatch/epiwatch/internal/tools/bench"
)

// Bench runs `epiwatch bench`: the whole pipeline in this process against
// throwaway places, measured by the harness in internal/tools/bench.
// syncFlag is --sync ("" keeps the configuration's nats.sync_interval).
func Bench(ctx context.Context, e Env, c bench.Config, syncFlag string) error {
	a, err := New(e)
	if err != nil {
		return err
	}
	deps, err := a.benchSetup(e, &c, syncFlag)
	if err != nil {
		return err
	}
	return bench.Run(ctx, c, deps)
}

// benchSetup points the configuration at throwaway places (a fresh
// database, a temporary store, free loopback ports, no tokens, the chosen
// sync policy), completes c with them and hands the harness the pipeline a
// wires.
func (a *App) benchSetup(e Env, c *bench.Config, syncFlag string) (bench.Deps, error) {
	cfg := &a.Cfg
	if syncFlag != "" {
		cfg.NATS.SyncInterval = syncFlag
	}
	if _, err := cfg.SyncInterval(); err != nil {
		return bench.Deps{}, usage(fmt.Errorf("--sync: %w", err))
	}
	if strings.TrimSpace(cfg.NATS.SyncInterval) == "" {
		cfg.NATS.SyncInterval = "always"
	}
	cfg.NATS.URL = "" // the benchmark is of the embedded server
	cfg.NATS.Listen = "127.0.0.1:0"
	addr, err := loopback.FreeAddr()
	if err != nil {
		return bench.Deps{}, err
	}
	cfg.HTTP.Addr, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = addr, "", ""
	// The temporary directory last, after every check that can fail: Run removes it.
	if !e.Flags.Changed("data-dir") && !a.ExplicitlySet("data_dir") {
		dir, err := os.MkdirTemp("", "epiwatch-bench-")
		if err != nil {
			return bench.Deps{}, err
		}
		c.TempDir, cfg.DataDir = dir, dir
	}
	cfg.Ingest.Tokens = nil // loopback only
	cfg.ClickHouse.Database = fmt.Sprintf("epiwatch_bench_%d", c.RunID)
	if !e.Flags.Changed("log-level") && !a.ExplicitlySet("log_level") {
		cfg.LogLevel = "error" // the components' lines (every refused batch under overload) would drown the progress
		a.Log = NewLogger(*cfg, e.Stderr)
	}
	c.SyncInterval, c.StoreDir, c.DataDir = cfg.NATS.SyncInterval, cfg.NATSStoreDir(), cfg.DataDir
	c.IngestURL = cfg.HTTP.IngestURL()
	c.ClickHouse, c.Streams = cfg.ClickHouse.Config, cfg.StreamLayout()
	c.ProcessPublishInterval, c.SinkFlushInterval = cfg.Process.PublishInterval, cfg.ClickHouse.Sink.FlushInterval
	return bench.Deps{
		Stdout: e.Stdout, Stderr: e.Stderr, Regions: a.Regions,
		Connect: func(ctx context.Context) (*bench.Bus, error) {
			err := a.ConnectNATS(ctx, "bench", true)
			return a.Bus(), err
		},
		NewIngester: a.NewIngester,
		Components: func(ctx context.Context, in *bench.Ingester) (func(context.Context) error, error) {
			ic, err := a.IngestComponent(in, nil)
			if err != nil {
				return nil, err
			}
			pc, err := a.ProcessComponent()
			if err != nil {
				return nil, err
			}
			dc, _, err := a.DecideComponent()
			if err != nil {
				return nil, err
			}
			sc, err := a.SinkComponent(ctx) // migrates the fresh database
			if err != nil {
				return nil, err
			}
			return func(ctx context.Context) error { return RunAll(ctx, []Component{ic, pc, dc, sc}) }, nil
		},
		WaitReady: WaitReady,
		WaitCount: WaitCount,
		Close:     a.Close,
	}, nil
}
