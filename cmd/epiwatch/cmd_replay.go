package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/tools/replay"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func newReplayCmd() *cobra.Command {
	var fromFlag, rules, into, workDir string
	c := &cobra.Command{
		Use:   "replay --from DATE --rules FILE|ID --into NAME",
		Short: "Re-run the processor and a rule set over the stored events into a separate ClickHouse database",
		Long: `Rebuilds indicators and decisions from the stored events stream with the same code as the
live pipeline, into the ClickHouse database NAME, so that an analyst can ask "what would this
rule set have decided from DATE on?" and compare it with the live decisions in SQL.

  --from DATE   the first data day decided (YYYY-MM-DD). The processor still reads every
                stored event, those before DATE too (R's history, 7-day windows, vaccination
                coverage and bed snapshots need them), and indicators are rebuilt for every
                day. Each region's decisions start on DATE at decide.levels.initial, as if
                the rule set had been adopted that day; the days at a level before an ease
                count from there. Decisions are made as decide.mode=data makes them (each
                data day once, when the next day's data exist), on the indicators as they
                stood when the stream reached that day: late reports change later records,
                not decisions already made.
  --rules       a shipped rule set id ('epiwatch rules list') or a YAML rule file; default
                decide.rule_set. Every decision records its id and version. The other
                decide.* and process.* settings apply as configured.
  --into NAME   the ClickHouse database written: created with the project's own schema
                (the same tables and views as clickhouse.database, plus replay_runs, one
                row per finished replay). It must not be the live database; an existing
                database is only ever replaced if an earlier replay created it (it has
                replay_runs): replaying into the same NAME again replaces its content, so
                re-running is idempotent. The live ClickHouse tables are never written.

How: one ordered consumer reads the live events stream (nats.url, or the embedded server
of a running 'epiwatch run' at nats.listen) up to its last event at the start; nothing is
written to the live NATS. The processor's core applies each event with its stored sequence
and time, so rebuilt indicator records equal the live ones (same version and computed_at).
The records go through a scratch JetStream in a temporary directory (--work-dir) to a
real decider and the ClickHouse sink, both pointed at NAME. decided_at is the replay's
start time. Progress goes to stderr, a summary to stdout. Compare, e.g.:

` + chsink.CompareDecisionsSQL("epiwatch", "replay_autumn2020"),
		Example: `  epiwatch replay --from 2020-09-01 --rules us-cdc-2022-community-levels --into replay_autumn2020
  epiwatch replay --from 2020-09-01 --rules ./stricter.yaml --into replay_stricter`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fromFlag == "" || into == "" {
				return &exitError{2, fmt.Errorf("replay needs --from DATE (the first day decided) and --into NAME (the ClickHouse database to write)")}
			}
			from, err := schemas.ParseDate(fromFlag)
			if err != nil {
				return &exitError{2, fmt.Errorf("--from %q: want a date YYYY-MM-DD: %w", fromFlag, err)}
			}
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			live := a.cfg.ClickHouse.Database
			if err := chsink.CheckReplayName(into, live); err != nil {
				return &exitError{2, fmt.Errorf("--into: %w", err)}
			}
			dcfg := a.cfg.Decide
			if rules != "" {
				dcfg.RuleSet = rules
			}
			dcfg.Mode = decide.ModeData
			if err := dcfg.Validate(); err != nil {
				return &exitError{2, err}
			}
			if _, err := thresholds.Open(dcfg.RuleSet, os.ReadFile); err != nil {
				return &exitError{2, fmt.Errorf("--rules: %w", err)}
			}
			if err := a.cfg.Process.Validate(); err != nil {
				return &exitError{2, err}
			}
			return a.replay(cmd, replayArgs{from: from, rules: dcfg.RuleSet, into: into, workDir: workDir, decide: dcfg})
		},
	}
	f := c.Flags()
	f.StringVar(&fromFlag, "from", "", "first data day decided, YYYY-MM-DD (events before it still feed the indicators)")
	f.StringVar(&rules, "rules", "", "rule set: a shipped id or a YAML file (default decide.rule_set)")
	f.StringVar(&into, "into", "", "ClickHouse database to (re)build; never the live one")
	f.StringVar(&workDir, "work-dir", "", "directory for the scratch JetStream store (default the system's temporary directory)")
	return c
}

type replayArgs struct {
	from    schemas.Date
	rules   string
	into    string
	workDir string
	decide  decide.Config
}

func (a *app) replay(cmd *cobra.Command, args replayArgs) error {
	ctx := cmd.Context()
	if err := a.connectSource(); err != nil {
		return err
	}
	conn, err := a.openClickHouse(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	live := a.cfg.ClickHouse.Database
	rep, err := chsink.PrepareReplay(ctx, conn, args.into, live, a.regions)
	if err != nil {
		return &exitError{1, err}
	}
	a.log.Info("replay database ready", "database", rep.Database, "schema_version", rep.Current)

	started := time.Now()
	res, err := replay.Run(ctx, replay.Config{
		From: args.from, Process: a.cfg.Process, Decide: args.decide, WorkDir: args.workDir,
	}, replay.Deps{
		Source: a.js, Regions: a.regions, Logger: a.log,
		Land: func(ctx context.Context, js jetstream.JetStream) error {
			sink, err := chsink.NewSink(a.cfg.ClickHouse.Sink, conn, args.into, js, a.log, nil, nil)
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
			return fmt.Errorf("replay into %s interrupted; its content is incomplete (run it again to replace it): %w", args.into, err)
		}
		return fmt.Errorf("replay into %s failed; its content is incomplete (run it again to replace it): %w", args.into, err)
	}
	run := chsink.ReplayRun{
		StartedAt: res.StartedAt, FinishedAt: time.Now(), From: args.from, Rules: args.rules,
		RuleSet: res.RuleSet, RuleSetVersion: res.RuleSetVersion, LiveDatabase: live,
		Events: res.Events, EventsRejected: res.Rejected, FirstSeq: res.FirstSeq, LastSeq: res.LastSeq,
		Indicators: res.Indicators, Decisions: res.Decisions, Seconds: res.Total.Seconds(), Version: version,
	}
	if err := chsink.RecordReplay(ctx, conn, args.into, run); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "replayed %d events (sequences %d..%d, data days %s..%s) in %s: %.0f events/s\n",
		res.Events, res.FirstSeq, res.LastSeq, res.FirstDay, res.LastDay, res.Total.Round(time.Millisecond), res.EventsPerSecond())
	if res.Rejected > 0 || res.Duplicates > 0 {
		fmt.Fprintf(out, "  %d events not applicable (dead-lettered live too), %d repeated event_ids\n", res.Rejected, res.Duplicates)
	}
	fmt.Fprintf(out, "  %d indicator records, %d decisions of rule set %s@%s from %s for %d regions\n",
		res.Indicators, res.Decisions, res.RuleSet, res.RuleSetVersion, args.from, res.Regions)
	fmt.Fprintf(out, "  written to ClickHouse database %s (live: %s); compare with the query in 'epiwatch replay --help'\n", args.into, live)
	return nil
}

// connectSource connects to the live NATS without creating or updating
// anything there (the replay only reads the events stream).
func (a *app) connectSource() error {
	url := a.cfg.NATS.URL
	if url == "" {
		url = "nats://" + a.cfg.NATS.Listen
	}
	opts, err := a.natsOptions()
	if err != nil {
		return &exitError{2, err}
	}
	nc, js, err := stream.Connect(url, "epiwatch-replay", opts...)
	if err != nil {
		return fmt.Errorf("replay reads the live events stream: start 'epiwatch run' (its embedded NATS listens on nats.listen) or set nats.url: %w", err)
	}
	a.nc, a.js = nc, js
	return nil
}
