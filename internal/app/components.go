package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/epiwatch/epiwatch/consumers/alerts"
	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/detect"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Component is one long-running part of the pipeline.
type Component struct {
	name string
	run  func(ctx context.Context) error
}

// RunAll runs components until ctx ends or one fails; then every other is
// cancelled and drained.
func RunAll(ctx context.Context, comps []Component) error {
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

// NewIngester builds the ingest worker of this process.
func (a *App) NewIngester() (*ingest.Ingester, error) {
	contract, err := schemas.NewContract()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := a.newPseudonymizer(ctx)
	if err != nil {
		return nil, err
	}
	// The id key names events in subjects and message ids; an events
	// stream of the old subject layout is refused (stream.OldLayoutError).
	refs, err := stream.LoadEventRefs(ctx, a.bus)
	if err != nil {
		return nil, err
	}
	return ingest.New(ingest.Config{MaxBodyBytes: a.Cfg.Ingest.MaxBodyBytes, MaxBatch: a.Cfg.Ingest.MaxBatch, PublishEach: a.Cfg.Ingest.PublishEach}, ingest.Deps{
		Contract: contract, Validator: &schemas.Validator{Regions: a.Regions}, Pseudo: ps,
		Bus: a.bus, Refs: refs, Logger: a.Log, Registry: a.reg,
	})
}

// IngestComponent serves the ingest API with /metrics on the same listener.
// extra handlers (the alert acknowledgement endpoint in `run`) share the listener.
func (a *App) IngestComponent(in *ingest.Ingester, extra map[string]http.Handler) (Component, error) {
	var auth ingest.Authorizer
	if len(a.Cfg.Ingest.Tokens) > 0 {
		t, err := ingest.NewTokens(a.Cfg.Ingest.Tokens)
		if err != nil {
			return Component{}, err
		}
		auth = t
	} else if !isLoopbackAddr(a.Cfg.HTTP.Addr) {
		return Component{}, usage(fmt.Errorf("http.addr %s is reachable beyond this machine but ingest.tokens is empty: configure tokens (see 'epiwatch token new --help')", a.Cfg.HTTP.Addr))
	}
	if !isLoopbackAddr(a.Cfg.HTTP.Addr) && a.Cfg.HTTP.TLSCert == "" {
		if !a.Cfg.HTTP.Insecure {
			return Component{}, usage(fmt.Errorf("http.addr %s is reachable beyond this machine but TLS is not configured: set http.tls_cert and http.tls_key, or http.insecure: true if a proxy in front terminates TLS", a.Cfg.HTTP.Addr))
		}
		a.Log.Warn("ingest API serves plain HTTP beyond this machine (http.insecure: true): tokens and health data cross the network unencrypted unless a proxy in front terminates TLS", "addr", a.Cfg.HTTP.Addr)
	}
	limit := ingest.NewLimiter(a.Cfg.Ingest.MaxConcurrentRequests, a.Cfg.Ingest.MaxInFlightBytes, a.Cfg.Ingest.MaxBodyBytes)
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})
	if a.Cfg.HTTP.MetricsAddr == "" {
		mux.Handle("/", limit.Wrap(in.Handler(a.ready, auth)))
		mux.Handle("GET /metrics", metrics)
	} else {
		mux.Handle("POST /v1/events", limit.Wrap(in.EventsHandler(auth)))
	}
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	srv := &http.Server{
		Addr: a.Cfg.HTTP.Addr, Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: a.Cfg.HTTP.ReadTimeout, WriteTimeout: a.Cfg.HTTP.WriteTimeout,
	}
	return Component{"ingest", func(ctx context.Context) error {
		if a.Cfg.HTTP.MetricsAddr == "" {
			return serveHTTP(ctx, srv, a.Log, a.Cfg.HTTP.TLSCert, a.Cfg.HTTP.TLSKey)
		}
		// /metrics and the health checks on their own listener (plain
		// HTTP: scraped and probed from inside the cluster).
		side := http.NewServeMux()
		side.Handle("GET /metrics", metrics)
		side.Handle("GET /", ingest.HealthHandler(a.ready))
		ms := &http.Server{Addr: a.Cfg.HTTP.MetricsAddr, Handler: side, ReadHeaderTimeout: 10 * time.Second}
		return RunAll(ctx, []Component{
			{"ingest-api", func(ctx context.Context) error {
				return serveHTTP(ctx, srv, a.Log, a.Cfg.HTTP.TLSCert, a.Cfg.HTTP.TLSKey)
			}},
			{"ingest-metrics", func(ctx context.Context) error { return serveHTTP(ctx, ms, a.Log, "", "") }},
		})
	}}, nil
}

// SinkComponent migrates ClickHouse and lands the streams there.
func (a *App) SinkComponent(ctx context.Context) (Component, error) {
	conn, err := a.OpenClickHouse(ctx)
	if err != nil {
		return Component{}, err
	}
	rep, err := chsink.Migrate(ctx, conn, a.Cfg.ClickHouse.Database, a.Cfg.ClickHouse.Cluster, a.Regions)
	if err != nil {
		return Component{}, fmt.Errorf("migrate ClickHouse: %w", err)
	}
	a.Log.Info("ClickHouse schema ready", "database", rep.Database, "version", rep.Current, "applied", rep.Applied)
	sink, err := chsink.New(a.Cfg.ClickHouse.Sink, chsink.Deps{
		Conn: conn, Database: a.Cfg.ClickHouse.Database, Bus: a.bus, Logger: a.Log, Registerer: a.reg, StreamMetrics: a.sm,
	})
	if err != nil {
		return Component{}, err
	}
	return Component{"sink", func(ctx context.Context) error {
		defer conn.Close()
		return sink.Run(ctx)
	}}, nil
}

// ProcessComponent is the live indicator processor.
func (a *App) ProcessComponent() (Component, error) {
	p, err := process.New(a.Cfg.Process, process.Deps{Bus: a.bus, Regions: a.Regions, Logger: a.Log, Registerer: a.reg, StreamMetrics: a.sm})
	if err != nil {
		return Component{}, usage(err)
	}
	// One active replica; others wait as hot standbys (Bus.RunExclusive).
	return Component{"process", func(ctx context.Context) error {
		return a.bus.RunExclusive(ctx, "process", replicaName(), a.Log, p.RunLeased)
	}}, nil
}

// replicaName names this process in leases: host, pid and a random part
// (two containers may share a host name and a pid).
func replicaName() string {
	h, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%x", h, os.Getpid(), b)
}

// detectComponent is the early-warning stage (aberration signals).
func (a *App) detectComponent() (Component, error) {
	d, err := detect.New(a.Cfg.Detect, detect.Deps{Bus: a.bus, Logger: a.Log, Registerer: a.reg, StreamMetrics: a.sm})
	if err != nil {
		return Component{}, usage(err)
	}
	return Component{"detect", d.Run}, nil
}

// newDecider builds the decision maker from decide.*.
func (a *App) newDecider() (*decide.Decider, error) {
	d, err := decide.New(a.Cfg.Decide, decide.Deps{Bus: a.bus, Regions: a.Regions, Logger: a.Log, Registerer: a.reg, StreamMetrics: a.sm})
	if err != nil {
		return nil, usage(err)
	}
	return d, nil
}

// DecideComponent is the decision maker, and its manual-level API
// (/v1/levels/, served on the ingest listener by `run`, on metrics.addr by
// `decide`).
func (a *App) DecideComponent() (Component, http.Handler, error) {
	d, err := a.newDecider()
	if err != nil {
		return Component{}, nil, err
	}
	rs, version := d.RuleSet()
	a.Log.Info("decisions configured", "rule_set", rs.ID, "version", version, "mode", a.Cfg.Decide.Mode, "at", a.Cfg.Decide.At, "timezone", a.Cfg.Decide.Timezone)
	var auth decide.LevelAuthorizer
	if len(a.Cfg.Ingest.Tokens) > 0 {
		t, err := ingest.NewTokens(a.Cfg.Ingest.Tokens)
		if err != nil {
			return Component{}, nil, usage(err)
		}
		auth = t
	}
	return Component{"decide", func(ctx context.Context) error {
		return a.bus.RunExclusive(ctx, "decide", replicaName(), a.Log, d.RunLeased)
	}}, d.LevelHandler(auth), nil
}

// alertComponent builds the alerter from alerts.* and returns it with its
// acknowledgement handler (POST /v1/alerts/{alert_id}/ack), which the caller
// mounts under /v1/alerts/ on a listener headquarters can reach.
func (a *App) alertComponent() (Component, http.Handler, error) {
	al, err := alerts.New(a.Cfg.Alerts, alerts.Deps{Bus: a.bus, Logger: a.Log, Registerer: a.reg, StreamMetrics: a.sm})
	if err != nil {
		return Component{}, nil, usage(err)
	}
	c := a.Cfg.Alerts
	a.Log.Info("alerts configured", "alertmanager_url", c.AlertmanagerURL, "webhooks", len(c.Webhooks),
		"escalate_after", c.EscalateAfter, "max_decision_age", c.MaxDecisionAge,
		"digest", c.Digest.Enabled, "digest_trigger", c.Digest.Trigger, "digest_at", c.Digest.At, "digest_timezone", c.Digest.Timezone)
	return Component{"alerts", al.Run}, al.AckHandler(), nil
}

// withMetrics adds the /metrics server for processes without the ingest API,
// with extra handlers on the same listener.
func (a *App) withMetrics(extra map[string]http.Handler, comps ...Component) []Component {
	ms := a.metricsServer(extra)
	return append(comps, Component{"metrics", func(ctx context.Context) error { return serveHTTP(ctx, ms, a.Log, "", "") }})
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
