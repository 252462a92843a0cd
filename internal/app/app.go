package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// ExitError carries a process exit code: 2 for bad input, usage or
// configuration, 3 for an import that left rejected events.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usage marks err as the user's to fix (exit 2).
func usage(err error) error { return &ExitError{2, err} }

// App holds what every component of one process shares: configuration,
// logger, metrics registry and the bus (the NATS connection).
type App struct {
	Cfg     Config
	Regions *schemas.Regions // the shipped reference with configured additions
	Log     *slog.Logger

	v        *viper.Viper // to tell set keys from defaults
	reg      *prometheus.Registry
	sm       *stream.Metrics
	embedded *stream.Embedded
	bus      *stream.Bus
}

// Env is what a command hands a service: its flags (--config and the
// overrides of AddFlags), the environment and where output goes.
type Env struct {
	Flags          *pflag.FlagSet
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// New loads the configuration (defaults < file < environment < flags) and
// logs to e.Stderr.
func New(e Env) (*App, error) {
	cfg, v, err := LoadConfig(e.Flags, e.Getenv)
	if err != nil {
		return nil, usage(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	regions, err := cfg.RegionRef()
	if err != nil {
		return nil, usage(err)
	}
	a := &App{Cfg: cfg, v: v, Regions: regions, Log: NewLogger(cfg, e.Stderr), reg: reg}
	a.sm = stream.NewMetrics(reg)
	return a, nil
}

// NewLogger is the process's logger at log_level in log_format.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// withNATS loads the configuration, connects to NATS (a running `epiwatch
// run`'s embedded server or nats.url) under the client name name, runs fn and
// closes everything: the common frame of the single-component services.
func withNATS(ctx context.Context, e Env, name string, fn func(a *App) error) error {
	a, err := New(e)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ConnectNATS(ctx, name, false); err != nil {
		return err
	}
	return fn(a)
}

// ExplicitlySet reports whether key was given in the config file or the
// environment (viper's IsSet also counts registered defaults).
func (a *App) ExplicitlySet(key string) bool {
	if a.v.InConfig(key) {
		return true
	}
	if _, ok := os.LookupEnv("EPIWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))); ok {
		return true
	}
	return false
}

// ConnectNATS connects to nats.url, or — with embed set and no url — starts
// the embedded server first. Without embed and url, components connect to
// the embedded server of a running `epiwatch run` at nats.listen.
func (a *App) ConnectNATS(ctx context.Context, name string, embed bool) error {
	url := a.Cfg.NATS.URL
	if url == "" && embed {
		sync, _ := a.Cfg.SyncInterval()
		e, err := stream.StartEmbedded(stream.EmbeddedConfig{
			Listen: a.Cfg.NATS.Listen, StoreDir: a.Cfg.NATSStoreDir(), SyncInterval: sync, MaxStore: a.Cfg.NATS.MaxStore,
			User: a.Cfg.NATS.User, Password: a.Cfg.NATS.Password, Token: a.Cfg.NATS.Token,
		})
		if err != nil {
			return err
		}
		a.embedded = e
		url = e.ClientURL()
		a.Log.Info("embedded NATS JetStream started", "url", url, "store", a.Cfg.NATSStoreDir(), "sync", a.Cfg.NATS.SyncInterval)
	} else if url == "" {
		url = "nats://" + a.Cfg.NATS.Listen
	}
	cc := a.clientConfig()
	cc.Logger = a.Log
	bus, err := stream.Open(url, "epiwatch-"+name, cc)
	if ce := (*stream.ClientConfigError)(nil); errors.As(err, &ce) {
		return fmt.Errorf("nats.%s: %w", ce.Field, ce.Err)
	}
	if err != nil {
		return err
	}
	a.bus = bus
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	drifts, err := bus.Ensure(ectx, a.Cfg.StreamLayout())
	if err != nil {
		return err
	}
	// An operator's limits are kept; say where they differ from ours.
	for _, d := range drifts {
		if d.Limit == "deny_delete" {
			a.Log.Warn("stream created before erasure existed: it denies deletes, so `epiwatch erase` cannot remove events from it until it is recreated (README, \"Erasure\")", "stream", d.Stream)
			continue
		}
		a.Log.Warn("stream limit differs from the configuration; kept (epiwatch migrate --streams applies the configuration)",
			"stream", d.Stream, "limit", d.Limit, "server", d.Server, "configured", d.Want)
	}
	return nil
}

// clientConfig is how this process authenticates to NATS (nats.*).
func (a *App) clientConfig() stream.ClientConfig {
	c := a.Cfg.NATS
	return stream.ClientConfig{
		CredsFile: c.CredsFile, NKeyFile: c.NKeyFile, Token: c.Token, User: c.User, Password: c.Password,
		TLSCA: c.TLSCA, TLSCert: c.TLSCert, TLSKey: c.TLSKey,
	}
}

// ready reports whether JetStream answers, for /readyz.
func (a *App) ready(ctx context.Context) error {
	if a.bus == nil {
		return errors.New("not connected to NATS")
	}
	return a.bus.Ready(ctx)
}

// OpenClickHouse connects to clickhouse.* (the caller closes the connection).
func (a *App) OpenClickHouse(ctx context.Context) (driver.Conn, error) {
	return chsink.Open(ctx, a.Cfg.ClickHouse.Config)
}

// Close drains the NATS connection (Bus.Close) and stops the embedded server.
func (a *App) Close() {
	if a.bus != nil {
		a.bus.Close()
	}
	if a.embedded != nil {
		a.embedded.Shutdown()
	}
}

// serveHTTP runs srv until ctx ends, then shuts it down gracefully.
func serveHTTP(ctx context.Context, srv *http.Server, log *slog.Logger, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	}
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("HTTP listening", "addr", ln.Addr().String(), "tls", certFile != "")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// metricsServer serves /metrics (and health) for components without the
// ingest API, and extra handlers by pattern.
func (a *App) metricsServer(extra map[string]http.Handler) *http.Server {
	mux := http.NewServeMux()
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return &http.Server{Addr: a.Cfg.Metrics.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// Bus is the connection to JetStream after ConnectNATS (nil before), for
// harnesses that publish beside the components (bench).
func (a *App) Bus() *stream.Bus { return a.bus }
