package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

// PrintConfig writes the effective configuration (file < env < flags) as
// YAML with secrets masked.
func PrintConfig(e Env) error {
	_, v, err := LoadConfig(e.Flags, e.Getenv)
	if err != nil {
		return usage(err)
	}
	return printConfig(e.Stdout, v)
}

// RunIngest runs the ingest API alone until ctx ends.
func RunIngest(ctx context.Context, e Env) error {
	return withNATS(ctx, e, "ingest", func(a *App) error {
		in, err := a.NewIngester()
		if err != nil {
			return err
		}
		c, err := a.IngestComponent(in, nil)
		if err != nil {
			return err
		}
		return RunAll(ctx, []Component{c})
	})
}

// RunSink runs the ClickHouse sink alone, with /metrics on metrics.addr.
func RunSink(ctx context.Context, e Env) error {
	return runOne(ctx, e, "sink", func(a *App) (Component, error) { return a.SinkComponent(ctx) })
}

// RunProcess runs the stream processor alone, with /metrics on metrics.addr.
func RunProcess(ctx context.Context, e Env) error {
	return runOne(ctx, e, "process", (*App).ProcessComponent)
}

// RunDetect runs the early-warning stage alone, with /metrics on metrics.addr.
func RunDetect(ctx context.Context, e Env) error {
	return runOne(ctx, e, "detect", (*App).detectComponent)
}

// runOne runs the component build makes, with /metrics on metrics.addr.
func runOne(ctx context.Context, e Env, name string, build func(a *App) (Component, error)) error {
	return withNATS(ctx, e, name, func(a *App) error {
		c, err := build(a)
		if err != nil {
			return err
		}
		return RunAll(ctx, a.withMetrics(nil, c))
	})
}

// RunDecide runs the decision maker alone, with the manual-level API
// /v1/levels/ beside /metrics on metrics.addr.
func RunDecide(ctx context.Context, e Env) error {
	return withNATS(ctx, e, "decide", func(a *App) error {
		c, levels, err := a.DecideComponent()
		if err != nil {
			return err
		}
		return RunAll(ctx, a.withMetrics(map[string]http.Handler{"/v1/levels/": levels}, c))
	})
}

// DecideNow decides region now on its newest complete data and prints the
// decision as JSON.
func DecideNow(ctx context.Context, e Env, region string) error {
	return withNATS(ctx, e, "decide", func(a *App) error {
		if !a.Regions.Known(region) {
			return usage(fmt.Errorf("unknown region %q (ISO 3166-2 code such as KZ-75; see schemas/regions.csv)", region))
		}
		d, err := a.newDecider()
		if err != nil {
			return err
		}
		dec, err := d.DecideNow(ctx, region)
		if err != nil {
			return err
		}
		return printJSON(e.Stdout, dec)
	})
}

// RunAlert runs the alerter alone; /metrics, /healthz, /readyz and the
// acknowledgement endpoint /v1/alerts/ are served on metrics.addr.
func RunAlert(ctx context.Context, e Env) error {
	return withNATS(ctx, e, "alert", func(a *App) error {
		c, ack, err := a.alertComponent()
		if err != nil {
			return err
		}
		srv := a.metricsServer(nil)
		mux := http.NewServeMux()
		mux.Handle("/v1/alerts/", ack)
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			if err := a.ready(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
		mux.Handle("/", srv.Handler)
		srv.Handler = mux
		return RunAll(ctx, []Component{c, {"http", func(ctx context.Context) error { return serveHTTP(ctx, srv, a.Log, "", "") }}})
	})
}

// Migrate applies the ClickHouse migrations and reloads the region
// reference; with streams it first sets the JetStream streams' limits to
// stream.*, printing what changed.
func Migrate(ctx context.Context, e Env, streams bool) error {
	a, err := New(e)
	if err != nil {
		return err
	}
	defer a.Close()
	if streams {
		if err := a.ConnectNATS(ctx, "migrate", false); err != nil {
			return err
		}
		changed, err := a.bus.Apply(ctx, a.Cfg.StreamLayout())
		if err != nil {
			return err
		}
		for _, d := range changed {
			fmt.Fprintf(e.Stdout, "stream %s: %s %s → %s\n", d.Stream, d.Limit, d.Server, d.Want)
		}
		fmt.Fprintf(e.Stdout, "streams: %d limit(s) set to the configuration\n", len(changed))
	}
	conn, err := a.OpenClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rep, err := chsink.Migrate(ctx, conn, a.Cfg.ClickHouse.Database, a.Cfg.ClickHouse.Cluster, a.Regions)
	if err != nil {
		return err
	}
	caps, _ := chsink.Detect(conn)
	fmt.Fprintf(e.Stdout, "database %s at schema version %d (server %s); applied now: %d file(s) %v; regions loaded: %d\n",
		rep.Database, rep.Current, caps.Version, len(rep.Applied), rep.Applied, rep.Regions)
	return nil
}

// ExitRejected is import's exit code when some events were rejected (and
// dead-lettered) while the others were imported: scripts can tell a partial
// import from a clean one (0) and from a failure (1) or a usage error (2).
const ExitRejected = 3

// ImportOptions are import's settings.
type ImportOptions struct {
	Batch        int  // events per publish batch
	ShowRejected int  // rejection reasons printed
	AllowRejects bool // rejected events do not make the import fail
}

// Import loads event files through the same validation as the API,
// printing progress to e.Stderr and a summary to e.Stdout.
func Import(ctx context.Context, e Env, files []string, o ImportOptions) error {
	return withNATS(ctx, e, "import", func(a *App) error {
		in, err := a.NewIngester()
		if err != nil {
			return err
		}
		start := time.Now()
		errw := e.Stderr
		last := time.Time{}
		res, err := in.Import(ctx, files, o.Batch, func(p ingest.ImportProgress) {
			if time.Since(last) < 200*time.Millisecond {
				return
			}
			last = time.Now()
			rate := float64(p.Read) / time.Since(start).Seconds()
			fmt.Fprintf(errw, "\r%-40s %9d read  %9d accepted  %7d duplicate  %6d rejected  %8.0f ev/s", shorten(p.File, 40), p.Read, p.Accepted, p.Duplicates, p.Rejected, rate)
		})
		fmt.Fprintln(errw)
		if res != nil {
			for i, r := range res.Rejections {
				if i >= o.ShowRejected {
					fmt.Fprintf(errw, "... and %d more rejections (see 'epiwatch deadletter list')\n", len(res.Rejections)-i)
					break
				}
				fmt.Fprintln(errw, "rejected:", r)
			}
			fmt.Fprintf(e.Stdout, "imported %d file(s) in %s: %d read, %d accepted, %d already present, %d rejected\n",
				len(files), time.Since(start).Round(time.Millisecond), res.Read, res.Accepted, res.Duplicates, res.Rejected)
		}
		if err == nil && res != nil && res.Rejected > 0 && !o.AllowRejects {
			return &ExitError{ExitRejected, fmt.Errorf("%d of %d events rejected (reasons above, kept in the dead-letter stream: 'epiwatch deadletter list'); every other event was imported. --allow-rejects exits 0 in this case", res.Rejected, res.Read)}
		}
		return err
	})
}

// shorten keeps the last n characters of s, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
