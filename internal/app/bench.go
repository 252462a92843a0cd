package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/bench"
	"github.com/epiwatch/epiwatch/internal/tools/loopback"
	"github.com/epiwatch/epiwatch/pipeline/stream"
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
// wires. With c.External the pipeline uses nats.url and stream.replicas
// as configured; otherwise the embedded server, a single node.
func (a *App) benchSetup(e Env, c *bench.Config, syncFlag string) (bench.Deps, error) {
	cfg := &a.Cfg
	var dial func(context.Context) (*bench.Bus, error)
	if c.External {
		if syncFlag != "" {
			return bench.Deps{}, usage(fmt.Errorf("--sync applies to the embedded server; with --external the NATS servers' own sync setting holds"))
		}
		if strings.TrimSpace(cfg.NATS.URL) == "" {
			return bench.Deps{}, usage(fmt.Errorf("--external: nats.url is empty; set it (--nats-url, EPIWATCH_NATS_URL or the configuration file) to the NATS server or cluster to measure"))
		}
		c.NATSURL = redactURLs(cfg.NATS.URL)
		if cfg.Pseudonym.Key == "" && cfg.Pseudonym.KeyFile == "" {
			// With nats.url ingest wants a configured key; the run's are
			// synthetic persons and its key bucket is deleted at the end.
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return bench.Deps{}, err
			}
			cfg.Pseudonym.Key = hex.EncodeToString(key)
		}
		dial = func(context.Context) (*bench.Bus, error) {
			bus, err := stream.Open(cfg.NATS.URL, "epiwatch-bench-check", a.clientConfig())
			if ce := (*stream.ClientConfigError)(nil); errors.As(err, &ce) {
				return nil, usage(fmt.Errorf("nats.%s: %w", ce.Field, ce.Err))
			}
			return bus, err
		}
	} else {
		if syncFlag != "" {
			cfg.NATS.SyncInterval = syncFlag
		}
		if _, err := cfg.SyncInterval(); err != nil {
			return bench.Deps{}, usage(fmt.Errorf("--sync: %w", err))
		}
		if strings.TrimSpace(cfg.NATS.SyncInterval) == "" {
			cfg.NATS.SyncInterval = "always"
		}
		if cfg.NATS.URL != "" {
			fmt.Fprintf(e.Stderr, "nats.url is set but bench measures the embedded server; --external measures nats.url\n")
		}
		if cfg.Stream.Replicas > 1 {
			fmt.Fprintf(e.Stderr, "stream.replicas %d does not apply to the embedded server, a single node: 1\n", cfg.Stream.Replicas)
		}
		cfg.NATS.URL = "" // the benchmark is of the embedded server
		cfg.NATS.Listen = "127.0.0.1:0"
		cfg.Stream.Replicas = 1
	}
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
	if c.External {
		c.SyncInterval, c.StoreDir = "external", "" // the servers' own, which a client cannot read
	}
	c.IngestURL = cfg.HTTP.IngestURL()
	c.ClickHouse, c.Streams = cfg.ClickHouse.Config, cfg.StreamLayout()
	c.ProcessPublishInterval, c.SinkFlushInterval = cfg.Process.PublishInterval, cfg.ClickHouse.Sink.FlushInterval
	return bench.Deps{
		Stdout: e.Stdout, Stderr: e.Stderr, Regions: a.Regions,
		Connect: func(ctx context.Context) (*bench.Bus, error) {
			err := a.ConnectNATS(ctx, "bench", true)
			return a.Bus(), err
		},
		Dial:        dial,
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

// redactURLs is nats.url (URLs separated by commas) without the user
// information of any URL, for the report.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		} else if err != nil && strings.Contains(p, "@") {
			p = "(unparsable URL)"
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
