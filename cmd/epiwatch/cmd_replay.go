package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newReplayCmd() *cobra.Command {
	var o app.ReplayOptions
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

` + app.CompareDecisionsSQL("epiwatch", "replay_autumn2020"),
		Example: `  epiwatch replay --from 2020-09-01 --rules us-cdc-2022-community-levels --into replay_autumn2020
  epiwatch replay --from 2020-09-01 --rules ./stricter.yaml --into replay_stricter`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Version = version
			return app.Replay(cmd.Context(), envOf(cmd), o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.From, "from", "", "first data day decided, YYYY-MM-DD (events before it still feed the indicators)")
	f.StringVar(&o.Rules, "rules", "", "rule set: a shipped id or a YAML file (default decide.rule_set)")
	f.StringVar(&o.Into, "into", "", "ClickHouse database to (re)build; never the live one")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory for the scratch JetStream store (default the system's temporary directory)")
	return c
}
