package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// app holds what every component of one process shares: configuration,
// logger, metrics registry and the NATS connection.
type app struct {
	cfg      Config
	v        *viper.Viper     // to tell set keys from defaults
	regions  *schemas.Regions // the shipped reference with configured additions
	log      *slog.Logger
	reg      *prometheus.Registry
	sm       *stream.Metrics
	embedded *stream.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
}

func newApp(cmd *cobra.Command) (*app, error) {
	cfg, v, err := loadConfig(cmd.Flags(), os.Getenv)
	if err != nil {
		return nil, &exitError{2, err}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	regions, err := cfg.RegionRef()
	if err != nil {
		return nil, &exitError{2, err}
	}
	a := &app{cfg: cfg, v: v, regions: regions, log: newLogger(cfg, cmd.ErrOrStderr()), reg: reg}
	a.sm = stream.NewMetrics(reg)
	return a, nil
}

// withNATS loads the configuration, connects to NATS (a running `epiwatch
// run`'s embedded server or nats.url) under the client name name, runs fn and
// closes everything: the common frame of the single-component commands.
func withNATS(cmd *cobra.Command, name string, fn func(a *app) error) error {
	a, err := newApp(cmd)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.connectNATS(cmd.Context(), name, false); err != nil {
		return err
	}
	return fn(a)
}

// explicitlySet reports whether key was given in the config file, the
// environment or a flag (viper's IsSet also counts registered defaults).
func (a *app) explicitlySet(key string) bool {
	if a.v.InConfig(key) {
		return true
	}
	if _, ok := os.LookupEnv("EPIWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))); ok {
		return true
	}
	return false
}

// connectNATS connects to nats.url, or — with embed set and no url — starts
// the embedded server first. Without embed and url, components connect to
// the embedded server of a running `epiwatch run` at nats.listen.
func (a *app) connectNATS(ctx context.Context, name string, embed bool) error {
	url := a.cfg.NATS.URL
	if url == "" && embed {
		sync, _ := a.cfg.SyncInterval()
		e, err := stream.StartEmbedded(stream.EmbeddedConfig{
			Listen: a.cfg.NATS.Listen, StoreDir: a.cfg.NATSStoreDir(), SyncInterval: sync, MaxStore: a.cfg.NATS.MaxStore,
			User: a.cfg.NATS.User, Password: a.cfg.NATS.Password, Token: a.cfg.NATS.Token,
		})
		if err != nil {
			return err
		}
		a.embedded = e
		url = e.ClientURL()
		a.log.Info("embedded NATS JetStream started", "url", url, "store", a.cfg.NATSStoreDir(), "sync", a.cfg.NATS.SyncInterval)
	} else if url == "" {
		url = "nats://" + a.cfg.NATS.Listen
	}
	opts, err := a.natsOptions()
	if err != nil {
		return err
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own drain at shutdown
				a.log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { a.log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	)
	nc, js, err := stream.Connect(url, "epiwatch-"+name, opts...)
	if err != nil {
		return err
	}
	a.nc, a.js = nc, js
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	drifts, err := stream.EnsureStreamsReport(ectx, js, a.cfg.StreamLayout())
	if err != nil {
		return err
	}
	// An operator's limits are kept; say where they differ from ours.
	for _, d := range drifts {
		a.log.Warn("stream limit differs from the configuration; kept (epiwatch migrate --streams applies the configuration)",
			"stream", d.Stream, "limit", d.Limit, "server", d.Server, "configured", d.Want)
	}
	return nil
}

func (a *app) natsOptions() ([]nats.Option, error) {
	c := a.cfg.NATS
	var opts []nats.Option
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_file: %w", err)
		}
		opts = append(opts, o)
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// ready reports whether JetStream answers, for /readyz.
func (a *app) ready(ctx context.Context) error {
	if a.nc == nil || !a.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if _, err := a.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	return nil
}

func (a *app) openClickHouse(ctx context.Context) (driver.Conn, error) {
	return chsink.Open(ctx, a.cfg.ClickHouse.Config)
}

// close drains the NATS connection and stops the embedded server.
func (a *app) close() {
	if a.nc != nil {
		_ = a.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !a.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		a.nc.Close()
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
func (a *app) metricsServer(extra map[string]http.Handler) *http.Server {
	mux := http.NewServeMux()
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return &http.Server{Addr: a.cfg.Metrics.Addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
