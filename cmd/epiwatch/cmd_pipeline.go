package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newProcessCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "process",
		Short: "Run the stream processor alone (events → per-region indicators)",
		Long: `Consumes the events stream with a durable consumer and keeps per-region daily series:
confirmed cases (local/imported, by report and onset date), R by the Cori method with its
credible interval and the officials' 4-day ratio, infectious/ICU/provisional bed occupancy
from each facility's latest snapshot (stale facilities flagged), 7-day positivity and tests
per 100k, 7-day cases per 100k, contacts per case and vaccination coverage. Late events
update every day they touch; each changed day is published as a new indicator version.

State and the stream sequence it covers are checkpointed together in JetStream KV, so a
restart resumes where it stopped without double counting. Run one replica (the state is per
process); /metrics is served on metrics.addr. Settings: the process.* configuration keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.RunProcess(cmd.Context(), envOf(cmd)) },
	}
}

func newDetectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "detect",
		Short: "Run the early-warning stage alone (indicators → aberration signals)",
		Long: `Consumes the indicators stream with a durable consumer and runs aberration detectors on
each region's daily confirmed cases (by report date), positive tests (by sample date) and
occupied infectious beds: EARS C2 and C3 every day (surveillance::earsC, against the
detect.baseline days before, with detect.min_sigma as floor of their spread), Farrington and
Noufaily on ISO-week totals once a region has detect.history_years of history
(surveillance::farringtonFlexible). Each verdict — count, upper bound, alarm — is published to
the signals stream and landed in ClickHouse as epiwatch.signals. Missing counts (a stale
feed) get no verdict; counts below detect.min_alarm_count never alarm. Signals never change a
restriction level: the alerter lists the day's alarms in each region's daily digest.

Restarting rebuilds the state from the indicators stream. /metrics is served on
metrics.addr. Settings: the detect.* configuration keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.RunDetect(cmd.Context(), envOf(cmd)) },
	}
}

func newDecideCmd() *cobra.Command {
	var region string
	c := &cobra.Command{
		Use:   "decide [--region CODE]",
		Short: "Run the decision maker, or decide one region now",
		Long: `Without --region: runs the decision maker alone. It keeps each region's latest
indicators, evaluates the configured rule set (decide.rule_set, default kz-2020-monotone: the
plan made monotone; the literal plan is kz-2020-plan) once a day at decide.at in
decide.timezone (decide.mode=schedule) or as soon as a day's data is complete
(decide.mode=data), moves the region's restriction level one step per strengthen/ease
(strengthening at most every decide.levels.min_days_between_strengthen days, easing only
after decide.levels.min_days_before_ease days at a level), and publishes every decision —
inputs, what R rests on, rule set, clause, old → new level — to the decisions stream (landed
in ClickHouse table epiwatch.decisions). Missing, stale or too sparse inputs never ease: they
give "keep" with the reason recorded. Headquarters set levels by hand with 'epiwatch level'
or the /v1/levels/ API, served here on metrics.addr.

With --region CODE: decides that region now on its newest complete data, prints the decision
as JSON and exits. It is recorded like a scheduled one (same idempotency key per data day).`,
		Example: `  epiwatch decide                      # the scheduled decision maker
  epiwatch decide --region KZ-75       # Almaty city, now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if region != "" {
				return app.DecideNow(cmd.Context(), envOf(cmd), region)
			}
			return app.RunDecide(cmd.Context(), envOf(cmd))
		},
	}
	c.Flags().StringVar(&region, "region", "", "decide this region now and print the decision (ISO 3166-2 code)")
	return c
}
