package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newLevelCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "level",
		Short: "Set, release or show a region's restriction level by hand (headquarters)",
		Long: `A regional or national headquarters can set a region's restriction level by hand. The manual
level holds until its last day (--until, default decide.manual_days from today) or until
released; meanwhile the rule set's daily recommendation is still computed and recorded
beside it (decisions.rule_level_to). When it ends, the rule set moves the level from there,
one step at a time with its pauses. Every change is a decision in epiwatch.decisions with
origin 'manual', who set it and why, and alerts go out as for any level change.

The same over HTTP, with a bearer token whose ingest.tokens entry has levels: true (and
regions covering the region):
  curl -X POST -H "Authorization: Bearer $TOKEN" -d '{"level":3,"reason":"…","until":"2026-12-20"}' \
       http://127.0.0.1:8080/v1/levels/KZ-75
  curl -X DELETE -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8080/v1/levels/KZ-75?reason=…'

Connects to nats.url, or to the embedded server of a running 'epiwatch run' at nats.listen.`,
	}
	c.AddCommand(newLevelSetCmd(), newLevelReleaseCmd(), newLevelShowCmd())
	return c
}

func newLevelSetCmd() *cobra.Command {
	var reason, until, by string
	c := &cobra.Command{
		Use:   "set REGION LEVEL --reason TEXT",
		Short: "Set a region's level by hand until --until (or decide.manual_days), printing the decision",
		Example: `  epiwatch level set KZ-75 3 --reason "hospital capacity, akimat resolution 12" --until 2026-12-20
  epiwatch level set KZ-75 "2 - moderate" --reason "schools reopen" --by "hq-almaty"`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.SetLevel(cmd.Context(), envOf(cmd), app.LevelRequest{Region: args[0], Level: args[1], Until: until, By: by, Reason: reason})
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (required; recorded with the level)")
	c.Flags().StringVar(&until, "until", "", "last day the level holds, YYYY-MM-DD (default: decide.manual_days from today)")
	c.Flags().StringVar(&by, "by", "", "who sets it (default: operator:<user>@<host>)")
	return c
}

func newLevelReleaseCmd() *cobra.Command {
	var reason, by string
	c := &cobra.Command{
		Use:     "release REGION --reason TEXT",
		Short:   "End a region's manual level now; the rule set decides again from the level it left",
		Example: `  epiwatch level release KZ-75 --reason "akimat resolution 13 lifts it"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return app.ReleaseLevel(cmd.Context(), envOf(cmd), args[0], by, reason)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (required)")
	c.Flags().StringVar(&by, "by", "", "who releases it (default: operator:<user>@<host>)")
	return c
}

func newLevelShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show [REGION...]",
		Short: "Print regions' current levels and any manual level (default: every region)",
		Args:  cobra.ArbitraryArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return app.ShowLevels(cmd.Context(), envOf(cmd), args) },
	}
}
