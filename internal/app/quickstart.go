package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// feedSimulation posts a simulated outbreak to this process's ingest API,
// waits until ClickHouse has every accepted event and the decisions have
// caught up, and prints a summary.
func (a *App) feedSimulation(ctx context.Context, so simulate.Options, e Env) error {
	sc, err := so.Config(time.Now())
	if err != nil {
		return usage(err)
	}
	sim, err := simulate.New(sc, a.Regions)
	if err != nil {
		return usage(err)
	}
	if err := WaitReady(ctx, a.Cfg.HTTP.IngestURL()); err != nil {
		return err
	}
	conn, err := a.OpenClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	db := a.Cfg.ClickHouse.Database
	// Events of earlier simulations are already there (re-sent ones are
	// duplicates): wait for the newly accepted ones on top of them. Every
	// event of the simulation, whatever its source, has its id prefix.
	prefix := simulate.IDPrefix(sim.Config().Seed)
	simulated := func(ctx context.Context) (uint64, error) { return simulatedEvents(ctx, conn, db, prefix) }
	before, err := simulated(ctx)
	if err != nil {
		return fmt.Errorf("count simulated events: %w", err)
	}
	env := simulate.Env{Regions: a.Regions, IngestURL: a.Cfg.HTTP.IngestURL(), Token: e.Getenv("EPIWATCH_TOKEN"), Now: time.Now()}
	res, err := simulate.Feed(ctx, sim, so, env, e.Stdout, e.Stderr)
	if err != nil {
		return err
	}
	want := before + uint64(res.Accepted)
	fmt.Fprintf(e.Stderr, "waiting for %d simulated events to be queryable in ClickHouse database %s\n", want, db)
	if err := waitFor(ctx, simulated, want, e.Stderr, "events with id prefix "+prefix); err != nil {
		return err
	}
	// Decisions trail the indicators by a moment; wait until every
	// simulated region's last decidable day has been decided.
	through, err := DecidedThrough(ctx, conn, db, a.Cfg.Decide, sim.Regions(), sim.End())
	if err != nil {
		return err
	}
	decided := func(ctx context.Context) (uint64, error) { return decidedRegions(ctx, conn, db, through) }
	if err := waitFor(ctx, decided, uint64(len(through)), e.Stderr, "regions decided through their last decidable day"); err != nil {
		a.Log.Warn("decisions have not caught up", "err", err)
	}
	// Signals follow the indicators through the detect stage and its own
	// sink consumer: wait until both have taken everything published.
	if err := a.waitConsumers(ctx, [][2]string{
		{schemas.StreamIndicators, schemas.ConsumerDetect},
		{schemas.StreamSignals, schemas.ConsumerSinkSignals},
	}); err != nil {
		a.Log.Warn("signals have not caught up", "err", err)
	}
	return printSummary(ctx, conn, db, e.Stdout)
}

// eachRow runs the shipped query file name (schemas/clickhouse/queries) on
// database db and hands every row to scan.
func eachRow(ctx context.Context, conn driver.Conn, name, db string, scan func(driver.Rows) error) error {
	qs, err := ddl.Queries()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(qs, func(q ddl.Query) bool { return q.Name == name })
	if i < 0 {
		return fmt.Errorf("no shipped query %s in schemas/clickhouse/queries", name)
	}
	rows, err := conn.Query(ctx, ddl.Statements(ddl.Render(qs[i].SQL, db))[0])
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("query %s: %w", name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	return nil
}

// simulatedEvents counts the events of database db with id prefix prefix.
func simulatedEvents(ctx context.Context, conn driver.Conn, db, prefix string) (uint64, error) {
	var n uint64
	err := eachRow(ctx, conn, "quickstart_simulated_events.sql", db, func(rows driver.Rows) error {
		var p string
		var c uint64
		if err := rows.Scan(&p, &c); err != nil {
			return err
		}
		if p == prefix {
			n = c
		}
		return nil
	})
	return n, err
}

// DecidedThrough is, per region, the newest day the decider with cfg
// decides once the indicators in database db through day last are all in
// (decide.Config.DecidedThrough on the records there).
func DecidedThrough(ctx context.Context, conn driver.Conn, db string, cfg decide.Config, regions []string, last schemas.Date) (map[string]schemas.Date, error) {
	var records []decide.DayRecord
	err := eachRow(ctx, conn, "quickstart_day_records.sql", db, func(rows driver.Rows) error {
		var r decide.DayRecord
		var day time.Time
		var p uint8
		if err := rows.Scan(&r.Region, &day, &p, &r.StaleFeeds); err != nil {
			return err
		}
		r.Date, r.Provisional = schemas.DateOf(day), p == 1
		records = append(records, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the newest indicators: %w", err)
	}
	return cfg.DecidedThrough(regions, last, records), nil
}

// decidedRegions counts the regions of through decided through their day.
func decidedRegions(ctx context.Context, conn driver.Conn, db string, through map[string]schemas.Date) (uint64, error) {
	var n uint64
	err := eachRow(ctx, conn, "quickstart_decided.sql", db, func(rows driver.Rows) error {
		var region string
		var last time.Time
		if err := rows.Scan(&region, &last); err != nil {
			return err
		}
		if d, ok := through[region]; ok && schemas.DateOf(last) >= d {
			n++
		}
		return nil
	})
	return n, err
}

// WaitReady polls the /readyz beside the ingest API at ingestURL.
func WaitReady(ctx context.Context, ingestURL string) error {
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
func (a *App) waitConsumers(ctx context.Context, pairs [][2]string) error {
	for _, p := range pairs {
		settled := 0
		deadline := time.Now().Add(2 * time.Minute)
		for settled < 2 {
			if time.Now().After(deadline) {
				return fmt.Errorf("consumer %s on %s has not caught up in 2 minutes", p[1], p[0])
			}
			st, err := a.bus.ConsumerInfo(ctx, p[0], p[1])
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err == nil && st.Pending == 0 && st.AckPending == 0:
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

// WaitCount polls the count query q until it reaches want, reporting
// progress.
func WaitCount(ctx context.Context, conn driver.Conn, q string, want uint64, progress io.Writer) error {
	return waitFor(ctx, func(ctx context.Context) (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}, want, progress, q)
}

// waitFor polls count until it reaches want, reporting progress, and gives
// up after 2 minutes without progress; what names the count in errors.
func waitFor(ctx context.Context, count func(context.Context) (uint64, error), want uint64, progress io.Writer, what string) error {
	var prev uint64
	stuck := time.Now()
	var said time.Time
	for {
		n, err := count(ctx)
		if err != nil {
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
			return fmt.Errorf("%d of %d rows after 2 minutes without progress (%s)", n, want, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// printSummary shows what landed in database db and where to look next.
func printSummary(ctx context.Context, conn driver.Conn, db string, w io.Writer) error {
	fmt.Fprintln(w, "\nevents in ClickHouse:")
	err := eachRow(ctx, conn, "quickstart_events_by_type.sql", db, func(rows driver.Rows) error {
		var typ string
		var n uint64
		if err := rows.Scan(&typ, &n); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-13s %9d\n", typ, n)
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nrestriction level by region (latest decision):")
	fmt.Fprintf(w, "  %-7s %-10s %-14s %-11s %6s %6s\n", "region", "data day", "level", "last action", "R", "ПЗК %")
	err = eachRow(ctx, conn, "quickstart_levels.sql", db, func(rows driver.Rows) error {
		var region, lvl, act string
		var rm, occ *float64
		var day time.Time
		if err := rows.Scan(&region, &day, &lvl, &act, &rm, &occ); err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-7s %-10s %-14s %-11s %6s %6s\n", region, day.Format("2006-01-02"), lvl, act, FormatFigure(rm, 2), FormatFigure(occ, 1))
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, `
look next:
  clickhouse-client -q "SELECT * FROM %[1]s.indicators_latest WHERE region = 'KZ-75' ORDER BY date DESC LIMIT 7"
  clickhouse-client -q "SELECT region, date, action, clause, level_from_name, level_to_name FROM %[1]s.decisions WHERE level_from != level_to ORDER BY region, seq"
  curl -s http://127.0.0.1:8080/metrics | grep ^epiwatch_
`, db)
	return nil
}

// FormatFigure is how the summary prints a figure: prec decimals, NA when
// there is none.
func FormatFigure(p *float64, prec int) string {
	if p == nil {
		return "NA"
	}
	return fmt.Sprintf("%.*f", prec, *p)
}
