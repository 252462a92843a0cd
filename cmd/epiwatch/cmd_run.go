package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/consumers/alerts"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
)

// runOptions are the flags of `epiwatch run`.
type runOptions struct {
	noSink       bool
	simulate     bool
	exitWhenDone bool
	sim          simulateOptions
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
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			if o.exitWhenDone && !o.simulate {
				return &exitError{2, fmt.Errorf("--exit-when-done applies to --simulate")}
			}
			if o.simulate && !a.explicitlySet("decide.mode") {
				a.cfg.Decide.Mode = decide.ModeData
			}
			// Simulated days never meet a wall-clock schedule: the digest
			// of a day goes with the day's decision.
			if o.simulate && !a.explicitlySet("alerts.digest.trigger") {
				a.cfg.Alerts.Digest.Trigger = alerts.DigestOnDecision
			}
			return a.runPipeline(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.BoolVar(&o.noSink, "no-sink", false, "do not start the ClickHouse sink (run it elsewhere with 'epiwatch sink')")
	f.BoolVar(&o.simulate, "simulate", false, "feed a simulated outbreak through the ingest API")
	f.BoolVar(&o.exitWhenDone, "exit-when-done", false, "with --simulate: stop once the simulation has landed in ClickHouse")
	o.sim.addModelFlags(f)
	o.sim.addSendFlags(f)
	return c
}

// runPipeline starts every component of `run` and blocks until ctx ends
// (or, with --simulate --exit-when-done, until the simulation has landed).
func (a *app) runPipeline(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	if err := a.connectNATS(ctx, "run", true); err != nil {
		return err
	}
	in, err := a.newIngester()
	if err != nil {
		return err
	}
	alc, ack, err := a.alertComponent()
	if err != nil {
		return err
	}
	dc, levels, err := a.decideComponent()
	if err != nil {
		return err
	}
	ic, err := a.ingestComponent(in, map[string]http.Handler{"/v1/alerts/": ack, "/v1/levels/": levels})
	if err != nil {
		return err
	}
	pc, err := a.processComponent()
	if err != nil {
		return err
	}
	tc, err := a.detectComponent()
	if err != nil {
		return err
	}
	comps := []component{ic, pc, tc, dc, alc}
	if !o.noSink {
		sc, err := a.sinkComponent(ctx)
		if err != nil {
			return err
		}
		comps = append(comps, sc)
	}
	if o.simulate {
		if o.noSink {
			return &exitError{2, fmt.Errorf("--simulate needs the sink: it waits for the events to land in ClickHouse")}
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		comps = append(comps, component{"simulate", func(ctx context.Context) error {
			err := a.feedSimulation(ctx, o.sim, stdout, stderr)
			if err == nil && o.exitWhenDone {
				cancel()
			}
			return err
		}})
		return runAll(ctx, comps)
	}
	return runAll(ctx, comps)
}

// feedSimulation posts a simulated outbreak to this process's ingest API,
// waits until ClickHouse has every accepted event and the decisions have
// caught up, and prints a summary.
func (a *app) feedSimulation(ctx context.Context, so simulateOptions, stdout, stderr io.Writer) error {
	regions := a.regions
	sc, err := so.simConfig(time.Now())
	if err != nil {
		return &exitError{2, err}
	}
	sim, err := simulate.New(sc, regions)
	if err != nil {
		return &exitError{2, err}
	}
	if err := waitReady(ctx, defaultIngestURL(a.cfg.HTTP)); err != nil {
		return err
	}
	conn, err := a.openClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := "`" + a.cfg.ClickHouse.Database + "`"
	// Events of earlier simulations are already there (re-sent ones are
	// duplicates): wait for the newly accepted ones on top of them. Every
	// event of the simulation, whatever its source, has its id prefix.
	q := fmt.Sprintf("SELECT count() FROM %s.events WHERE event_id LIKE '%s%%'", db, simulate.IDPrefix(sim.Config().Seed))
	var before uint64
	if err := conn.QueryRow(ctx, q).Scan(&before); err != nil {
		return fmt.Errorf("count simulated events: %w", err)
	}
	res, err := simulateToAPI(ctx, sim, so, a.cfg, stdout, stderr)
	if err != nil {
		return err
	}
	want := before + uint64(res.Accepted)
	fmt.Fprintf(stderr, "waiting for %d simulated events to be queryable in ClickHouse database %s\n", want, a.cfg.ClickHouse.Database)
	if err := waitCount(ctx, conn, q, want, stderr); err != nil {
		return err
	}
	// Decisions trail the indicators by a moment; wait until every
	// simulated region's last decidable day has been decided.
	dq, n, err := decidedQuery(ctx, conn, db, a.cfg.Decide, sim.Regions(), sim.End())
	if err != nil {
		return err
	}
	if err := waitCount(ctx, conn, dq, n, stderr); err != nil {
		a.log.Warn("decisions have not caught up", "err", err)
	}
	// Signals follow the indicators through the detect stage and its own
	// sink consumer: wait until both have taken everything published.
	if err := waitConsumers(ctx, a.js, [][2]string{
		{schemas.StreamIndicators, schemas.ConsumerDetect},
		{schemas.StreamSignals, schemas.ConsumerSinkSignals},
	}); err != nil {
		a.log.Warn("signals have not caught up", "err", err)
	}
	return printSummary(ctx, conn, db, stdout)
}

// decidedQuery returns a count query that reaches n once every region has
// been decided up to its last decidable day (lastDecided).
func decidedQuery(ctx context.Context, conn driver.Conn, db string, cfg decide.Config, regions []string, last schemas.Date) (string, uint64, error) {
	target, err := lastDecided(ctx, conn, db, cfg, regions, last)
	if err != nil {
		return "", 0, err
	}
	conds := make([]string, 0, len(regions))
	for _, r := range regions {
		conds = append(conds, fmt.Sprintf("(region = '%s' AND date >= '%s')", r, target[r]))
	}
	q := fmt.Sprintf("SELECT uniqExact(region) FROM %s.decisions WHERE %s", db, strings.Join(conds, " OR "))
	return q, uint64(len(regions)), nil
}

// lastDecided is, per region, the newest day the decider decides once the
// indicators in database db are all in: in data mode
// decide.Config.LastDecidable of the region's newest indicator day and its
// provisional days; in schedule mode (and for a region without indicators)
// the day before last.
func lastDecided(ctx context.Context, conn driver.Conn, db string, cfg decide.Config, regions []string, last schemas.Date) (map[string]schemas.Date, error) {
	target := make(map[string]schemas.Date, len(regions))
	for _, r := range regions {
		target[r] = last.AddDays(-1)
	}
	if cfg.Mode != decide.ModeData {
		return target, nil
	}
	// Only the last days can hold a provisional day the decider waits for.
	q := fmt.Sprintf("SELECT region, date, provisional, stale_feeds FROM %s.indicators_latest WHERE date >= '%s'",
		db, last.AddDays(-cfg.MaxStaleness-cfg.CompleteAfterDays-1))
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read the newest indicators: %w", err)
	}
	defer rows.Close()
	prov := map[string]map[schemas.Date]bool{}
	newest := map[string]schemas.Date{}
	for rows.Next() {
		var region string
		var day time.Time
		var p uint8
		var stale []string
		if err := rows.Scan(&region, &day, &p, &stale); err != nil {
			return nil, fmt.Errorf("read the newest indicators: %w", err)
		}
		d := schemas.DateOf(day)
		if prov[region] == nil {
			prov[region] = map[schemas.Date]bool{}
		}
		prov[region][d] = cfg.Incomplete(p == 1, stale)
		newest[region] = max(newest[region], d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the newest indicators: %w", err)
	}
	for _, r := range regions {
		if n, ok := newest[r]; ok {
			target[r] = cfg.LastDecidable(n, func(d schemas.Date) bool { return prov[r][d] })
		}
	}
	return target, nil
}

// waitReady polls the ingest API's /readyz.
func waitReady(ctx context.Context, ingestURL string) error {
	url := ingestURL[:len(ingestURL)-len("/v1/events")] + "/readyz"
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitConsumers waits until each (stream, durable consumer) has delivered
// and had acknowledged every message its stream holds, twice in a row a
// moment apart (the stage before may still be publishing).
func waitConsumers(ctx context.Context, js jetstream.JetStream, pairs [][2]string) error {
	for _, p := range pairs {
		settled := 0
		deadline := time.Now().Add(2 * time.Minute)
		for settled < 2 {
			if time.Now().After(deadline) {
				return fmt.Errorf("consumer %s on %s has not caught up in 2 minutes", p[1], p[0])
			}
			info, err := func() (*jetstream.ConsumerInfo, error) {
				c, err := js.Consumer(ctx, p[0], p[1])
				if err != nil {
					return nil, err
				}
				return c.Info(ctx)
			}()
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err == nil && info.NumPending == 0 && info.NumAckPending == 0:
				settled++
			default:
				settled = 0
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitCount polls a count query until it reaches want, reporting progress.
func waitCount(ctx context.Context, conn driver.Conn, q string, want uint64, progress io.Writer) error {
	var n, prev uint64
	stuck := time.Now()
	var said time.Time
	for {
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("count landed rows: %w", err)
		}
		if n >= want {
			return nil
		}
		if n != prev {
			prev, stuck = n, time.Now()
			if time.Since(said) >= 5*time.Second {
				said = time.Now()
				fmt.Fprintf(progress, "  %d/%d\n", n, want)
			}
		} else if time.Since(stuck) > 2*time.Minute {
			return fmt.Errorf("%d of %d rows after 2 minutes without progress (%s)", n, want, q)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// printSummary shows what landed and where to look next.
func printSummary(ctx context.Context, conn driver.Conn, db string, w io.Writer) error {
	fmt.Fprintln(w, "\nevents in ClickHouse:")
	rows, err := conn.Query(ctx, "SELECT type, count() FROM "+db+".events GROUP BY type ORDER BY type")
	if err != nil {
		return err
	}
	for rows.Next() {
		var typ string
		var n uint64
		if err := rows.Scan(&typ, &n); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-13s %9d\n", typ, n)
	}
	rows.Close()
	fmt.Fprintln(w, "\nrestriction level by region (latest decision):")
	rows, err = conn.Query(ctx, latestDecisionsSQL(db))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  %-7s %-10s %-14s %-11s %6s %6s\n", "region", "data day", "level", "last action", "R", "ПЗК %")
	for rows.Next() {
		var region, lvl, act string
		var rm, occ *float64
		var day time.Time
		if err := rows.Scan(&region, &day, &lvl, &act, &rm, &occ); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-7s %-10s %-14s %-11s %6s %6s\n", region, day.Format("2006-01-02"), lvl, act, fmtOpt(rm, 2), fmtOpt(occ, 1))
	}
	rows.Close()
	fmt.Fprintf(w, `
look next:
  clickhouse-client -q "SELECT * FROM %[1]s.indicators_latest WHERE region = 'KZ-75' ORDER BY date DESC LIMIT 7"
  clickhouse-client -q "SELECT region, date, action, clause, level_from_name, level_to_name FROM %[1]s.decisions WHERE level_from != level_to ORDER BY region, seq"
  curl -s http://127.0.0.1:8080/metrics | grep ^epiwatch_
`, stripTicks(db))
	return nil
}

// latestDecisionsSQL is each region's latest decision: the one with the
// highest seq, the order in which the decider moved the region's level
// (decided_at has one-second resolution; a catch-up decides many days in one
// second). The row is read whole (argMax of a tuple), so R and ПЗК are those
// of the same decision, NULL where it had none.
func latestDecisionsSQL(db string) string {
	return `SELECT region, d.1 AS day, d.2 AS lvl, d.3 AS act, d.4 AS rm, d.5 AS occ
FROM
(
    SELECT region, argMax((date, level_to_name, action, r_mean, bed_occupancy_pct), seq) AS d
    FROM ` + db + `.decisions
    GROUP BY region
)
ORDER BY region`
}

func fmtOpt(p *float64, prec int) string {
	if p == nil {
		return "NA"
	}
	return fmt.Sprintf("%.*f", prec, *p)
}

func stripTicks(s string) string {
	if len(s) >= 2 && s[0] == '`' {
		return s[1 : len(s)-1]
	}
	return s
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
