package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// component is one long-running part of the pipeline.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// runAll runs components until ctx ends or one fails; then every other is
// cancelled and drained.
func runAll(ctx context.Context, comps []component) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range comps {
		g.Go(func() error {
			if err := c.run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// newIngester builds the ingest worker of this process.
func (a *app) newIngester() (*ingest.Ingester, error) {
	contract, err := schemas.NewContract()
	if err != nil {
		return nil, err
	}
	regions := a.regions
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := a.newPseudonymizer(ctx)
	if err != nil {
		return nil, err
	}
	events, err := a.js.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("open the events stream %s: %w", schemas.StreamEvents, err)
	}
	return ingest.New(ingest.Config{MaxBodyBytes: a.cfg.Ingest.MaxBodyBytes, MaxBatch: a.cfg.Ingest.MaxBatch, PublishEach: a.cfg.Ingest.PublishEach}, ingest.Deps{
		Contract: contract, Validator: &schemas.Validator{Regions: regions}, Pseudo: ps,
		Publisher: stream.NewPublisher(a.js), Events: events, Logger: a.log, Registry: a.reg,
	})
}

// ingestComponent serves the ingest API with /metrics on the same listener.
// extra handlers (the alert acknowledgement endpoint in `run`) share the listener.
func (a *app) ingestComponent(in *ingest.Ingester, extra map[string]http.Handler) (component, error) {
	var auth ingest.Authorizer
	if len(a.cfg.Ingest.Tokens) > 0 {
		t, err := ingest.NewTokens(a.cfg.Ingest.Tokens)
		if err != nil {
			return component{}, err
		}
		auth = t
	} else if !isLoopbackAddr(a.cfg.HTTP.Addr) {
		return component{}, &exitError{2, fmt.Errorf("http.addr %s is reachable beyond this machine but ingest.tokens is empty: configure tokens (see 'epiwatch token new --help')", a.cfg.HTTP.Addr)}
	}
	if !isLoopbackAddr(a.cfg.HTTP.Addr) && a.cfg.HTTP.TLSCert == "" {
		if !a.cfg.HTTP.Insecure {
			return component{}, &exitError{2, fmt.Errorf("http.addr %s is reachable beyond this machine but TLS is not configured: set http.tls_cert and http.tls_key, or http.insecure: true if a proxy in front terminates TLS", a.cfg.HTTP.Addr)}
		}
		a.log.Warn("ingest API serves plain HTTP beyond this machine (http.insecure: true): tokens and health data cross the network unencrypted unless a proxy in front terminates TLS", "addr", a.cfg.HTTP.Addr)
	}
	limit := ingest.NewLimiter(a.cfg.Ingest.MaxConcurrentRequests, a.cfg.Ingest.MaxInFlightBytes, a.cfg.Ingest.MaxBodyBytes)
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})
	if a.cfg.HTTP.MetricsAddr == "" {
		mux.Handle("/", limit.Wrap(in.Handler(a.ready, auth)))
		mux.Handle("GET /metrics", metrics)
	} else {
		mux.Handle("POST /v1/events", limit.Wrap(in.EventsHandler(auth)))
	}
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	srv := &http.Server{
		Addr: a.cfg.HTTP.Addr, Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: a.cfg.HTTP.ReadTimeout, WriteTimeout: a.cfg.HTTP.WriteTimeout,
	}
	return component{"ingest", func(ctx context.Context) error {
		if a.cfg.HTTP.MetricsAddr == "" {
			return serveHTTP(ctx, srv, a.log, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey)
		}
		// /metrics and the health checks on their own listener (plain
		// HTTP: scraped and probed from inside the cluster).
		side := http.NewServeMux()
		side.Handle("GET /metrics", metrics)
		side.Handle("GET /", ingest.HealthHandler(a.ready))
		ms := &http.Server{Addr: a.cfg.HTTP.MetricsAddr, Handler: side, ReadHeaderTimeout: 10 * time.Second}
		return runAll(ctx, []component{
			{"ingest-api", func(ctx context.Context) error {
				return serveHTTP(ctx, srv, a.log, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey)
			}},
			{"ingest-metrics", func(ctx context.Context) error { return serveHTTP(ctx, ms, a.log, "", "") }},
		})
	}}, nil
}

func (a *app) sinkComponent(ctx context.Context) (component, error) {
	conn, err := a.openClickHouse(ctx)
	if err != nil {
		return component{}, err
	}
	regions := a.regions
	rep, err := chsink.Migrate(ctx, conn, a.cfg.ClickHouse.Database, regions)
	if err != nil {
		return component{}, fmt.Errorf("migrate ClickHouse: %w", err)
	}
	a.log.Info("ClickHouse schema ready", "database", rep.Database, "version", rep.Current, "applied", rep.Applied)
	sink, err := chsink.NewSink(a.cfg.ClickHouse.Sink, conn, a.cfg.ClickHouse.Database, a.js, a.log, a.reg, a.sm)
	if err != nil {
		return component{}, err
	}
	return component{"sink", func(ctx context.Context) error {
		defer conn.Close()
		return sink.Run(ctx)
	}}, nil
}

func newIngestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ingest",
		Short: "Run the ingest API alone (POST /v1/events → JetStream)",
		Long: `Runs the HTTP ingest worker: validates each event against the published JSON Schemas
and the region reference, pseudonymises national IDs, publishes accepted events to JetStream
(answering only after JetStream acknowledged them) and dead-letters rejected ones with the
reason. Stateless: run as many replicas as needed behind a load balancer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNATS(cmd, "ingest", func(a *app) error {
				in, err := a.newIngester()
				if err != nil {
					return err
				}
				c, err := a.ingestComponent(in, nil)
				if err != nil {
					return err
				}
				return runAll(cmd.Context(), []component{c})
			})
		},
	}
}

func newSinkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sink",
		Short: "Run the ClickHouse sink alone (events, indicators, decisions, alerts → ClickHouse)",
		Long: `Consumes the events, indicators, decisions and alert streams with durable consumers and
batch-inserts them into ClickHouse, acknowledging only after the insert succeeded. While
ClickHouse is down it keeps the batch in JetStream and retries with backoff. Applies the
schema migrations first. /metrics is served on metrics.addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNATS(cmd, "sink", func(a *app) error {
				c, err := a.sinkComponent(cmd.Context())
				if err != nil {
					return err
				}
				ms := a.metricsServer(nil)
				return runAll(cmd.Context(), []component{c, {"metrics", func(ctx context.Context) error { return serveHTTP(ctx, ms, a.log, "", "") }}})
			})
		},
	}
}

func newMigrateCmd() *cobra.Command {
	var streams bool
	c := &cobra.Command{
		Use:   "migrate [--streams]",
		Short: "Create or upgrade the ClickHouse schema and reload the region reference",
		Long: `Applies the embedded DDL files (schemas/clickhouse/NNN_*.sql) newer than the schema
version recorded in <database>.schema_migrations, then reloads the region reference.
Idempotent; 'run' and 'sink' do this on start.

With --streams: also sets the JetStream streams' limits (age, size, message count, discard
policy, duplicate window, replicas) to the stream.* configuration and prints what changed.
Components create missing streams on start but keep limits an operator changed, warning
about each difference; this is how a change of stream.* reaches an existing deployment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			if streams {
				if err := a.connectNATS(cmd.Context(), "migrate", false); err != nil {
					return err
				}
				changed, err := stream.ApplyStreams(cmd.Context(), a.js, a.cfg.StreamLayout())
				if err != nil {
					return err
				}
				for _, d := range changed {
					fmt.Fprintf(cmd.OutOrStdout(), "stream %s: %s %s → %s\n", d.Stream, d.Limit, d.Server, d.Want)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "streams: %d limit(s) set to the configuration\n", len(changed))
			}
			conn, err := a.openClickHouse(cmd.Context())
			if err != nil {
				return err
			}
			defer conn.Close()
			regions := a.regions
			rep, err := chsink.Migrate(cmd.Context(), conn, a.cfg.ClickHouse.Database, regions)
			if err != nil {
				return err
			}
			caps, _ := chsink.Detect(conn)
			fmt.Fprintf(cmd.OutOrStdout(), "database %s at schema version %d (server %s); applied now: %d file(s) %v; regions loaded: %d\n",
				rep.Database, rep.Current, caps.Version, len(rep.Applied), rep.Applied, rep.Regions)
			return nil
		},
	}
	c.Flags().BoolVar(&streams, "streams", false, "also set the JetStream streams' limits to the stream.* configuration")
	return c
}
