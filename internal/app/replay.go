package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/tools/replay"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// ReplayOptions are replay's flags: From and Into are required, Rules
// defaults to decide.rule_set, WorkDir to the system's temporary directory.
type ReplayOptions struct {
	From, Rules, Into, WorkDir string
	Version                    string // of this program, recorded in replay_runs
}

// Replay re-runs the processor and a rule set over the stored events into
// the separate ClickHouse database o.Into; progress goes to e.Stderr, a
// summary to e.Stdout.
func Replay(ctx context.Context, e Env, o ReplayOptions) error {
	if o.From == "" || o.Into == "" {
		return usage(fmt.Errorf("replay needs --from DATE (the first day decided) and --into NAME (the ClickHouse database to write)"))
	}
	from, err := schemas.ParseDate(o.From)
	if err != nil {
		return usage(fmt.Errorf("--from %q: want a date YYYY-MM-DD: %w", o.From, err))
	}
	a, err := New(e)
	if err != nil {
		return err
	}
	defer a.Close()
	live := a.Cfg.ClickHouse.Database
	if err := chsink.CheckReplayName(o.Into, live); err != nil {
		return usage(fmt.Errorf("--into: %w", err))
	}
	dcfg := a.Cfg.Decide
	if o.Rules != "" {
		dcfg.RuleSet = o.Rules
	}
	dcfg.Mode = decide.ModeData
	if err := dcfg.Validate(); err != nil {
		return usage(err)
	}
	if _, err := thresholds.Open(dcfg.RuleSet, os.ReadFile); err != nil {
		return usage(fmt.Errorf("--rules: %w", err))
	}
	if err := a.Cfg.Process.Validate(); err != nil {
		return usage(err)
	}
	return a.replay(ctx, e, o, from, dcfg)
}

func (a *App) replay(ctx context.Context, e Env, o ReplayOptions, from schemas.Date, dcfg decide.Config) error {
	if err := a.connectSource(); err != nil {
		return err
	}
	conn, err := a.OpenClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	live := a.Cfg.ClickHouse.Database
	rep, err := chsink.PrepareReplay(ctx, conn, o.Into, live, a.Regions)
	if err != nil {
		return &ExitError{1, err}
	}
	a.Log.Info("replay database ready", "database", rep.Database, "schema_version", rep.Current)

	started := time.Now()
	res, err := replay.Run(ctx, replay.Config{
		From: from, Process: a.Cfg.Process, Decide: dcfg, WorkDir: o.WorkDir,
	}, replay.Deps{
		Live: a.bus, Regions: a.Regions, Logger: a.Log,
		Landing: func(ctx context.Context, scratch *stream.Bus) error {
			sink, err := chsink.New(a.Cfg.ClickHouse.Sink, chsink.Deps{Conn: conn, Database: o.Into, Bus: scratch, Logger: a.Log})
			if err != nil {
				return err
			}
			return sink.Run(ctx)
		},
		LandConsumers: []replay.Consumer{
			{Stream: schemas.StreamIndicators, Durable: schemas.ConsumerSinkIndicators},
			{Stream: schemas.StreamDecisions, Durable: schemas.ConsumerSinkDecisions},
		},
		Clock: func() time.Time { return started },
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("replay into %s interrupted; its content is incomplete (run it again to replace it): %w", o.Into, err)
		}
		return fmt.Errorf("replay into %s failed; its content is incomplete (run it again to replace it): %w", o.Into, err)
	}
	run := chsink.ReplayRun{
		StartedAt: res.StartedAt, FinishedAt: time.Now(), From: from, Rules: dcfg.RuleSet,
		RuleSet: res.RuleSet, RuleSetVersion: res.RuleSetVersion, LiveDatabase: live,
		Events: res.Events, EventsRejected: res.Rejected, FirstSeq: res.FirstSeq, LastSeq: res.LastSeq,
		Indicators: res.Indicators, Decisions: res.Decisions, Seconds: res.Total.Seconds(), Version: o.Version,
	}
	if err := chsink.RecordReplay(ctx, conn, o.Into, run); err != nil {
		return err
	}
	out := e.Stdout
	fmt.Fprintf(out, "replayed %d events (sequences %d..%d, data days %s..%s) in %s: %.0f events/s\n",
		res.Events, res.FirstSeq, res.LastSeq, res.FirstDay, res.LastDay, res.Total.Round(time.Millisecond), res.EventsPerSecond())
	if res.Rejected > 0 || res.Duplicates > 0 {
		fmt.Fprintf(out, "  %d events not applicable (dead-lettered live too), %d repeated event_ids\n", res.Rejected, res.Duplicates)
	}
	fmt.Fprintf(out, "  %d indicator records, %d decisions of rule set %s@%s from %s for %d regions\n",
		res.Indicators, res.Decisions, res.RuleSet, res.RuleSetVersion, from, res.Regions)
	fmt.Fprintf(out, "  written to ClickHouse database %s (live: %s); compare with the query in 'epiwatch replay --help'\n", o.Into, live)
	return nil
}

// connectSource connects to the live NATS without creating or updating
// anything there (the replay only reads the events stream).
func (a *App) connectSource() error {
	url := a.Cfg.NATS.URL
	if url == "" {
		url = "nats://" + a.Cfg.NATS.Listen
	}
	bus, err := stream.Open(url, "epiwatch-replay", a.clientConfig())
	if ce := (*stream.ClientConfigError)(nil); errors.As(err, &ce) {
		return usage(fmt.Errorf("nats.%s: %w", ce.Field, ce.Err))
	}
	if err != nil {
		return fmt.Errorf("replay reads the live events stream: start 'epiwatch run' (its embedded NATS listens on nats.listen) or set nats.url: %w", err)
	}
	a.bus = bus
	return nil
}

// CompareDecisionsSQL is the query that sets a replay's decisions in
// database into beside the live ones in live, for replay's help.
func CompareDecisionsSQL(live, into string) string { return chsink.CompareDecisionsSQL(live, into) }
