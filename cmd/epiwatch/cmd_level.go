package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/schemas"
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

// operator names who runs the command, for the record: user@host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "operator:" + name + "@" + host
}

// parseLevel reads a level as its number or its configured name.
func parseLevel(s string, names []string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	for i, n := range names {
		if strings.EqualFold(n, s) {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("level %q: give a number 1..%d or a name (%s)", s, len(names), strings.Join(names, ", "))
}

// levelError turns a refused request into a usage error (exit 2).
func levelError(err error) error {
	if errors.Is(err, decide.ErrBadRequest) {
		return &exitError{2, err}
	}
	return err
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
			return withNATS(cmd, "level", func(a *app) error {
				lvl, err := parseLevel(args[1], a.cfg.Decide.Levels.Names)
				if err != nil {
					return &exitError{2, err}
				}
				req := decide.ManualRequest{Region: strings.ToUpper(args[0]), Level: lvl, By: by, Reason: reason}
				if req.By == "" {
					req.By = operator()
				}
				if until != "" {
					if req.Until, err = schemas.ParseDate(until); err != nil {
						return &exitError{2, fmt.Errorf("--until: %w", err)}
					}
				}
				d, err := a.newDecider()
				if err != nil {
					return err
				}
				dec, err := d.SetManual(cmd.Context(), req)
				if err != nil {
					return levelError(err)
				}
				return printJSON(cmd, dec)
			})
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
			return withNATS(cmd, "level", func(a *app) error {
				if by == "" {
					by = operator()
				}
				d, err := a.newDecider()
				if err != nil {
					return err
				}
				dec, err := d.ReleaseManual(cmd.Context(), strings.ToUpper(args[0]), by, reason)
				if err != nil {
					return levelError(err)
				}
				return printJSON(cmd, dec)
			})
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
		RunE: func(cmd *cobra.Command, args []string) error {
			return withNATS(cmd, "level", func(a *app) error {
				d, err := a.newDecider()
				if err != nil {
					return err
				}
				regions := args
				if len(regions) == 0 {
					regions = a.regions.Codes()
				}
				names := a.cfg.Decide.Levels
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "region\tlevel\tsince\tlast decision\tmanual")
				for _, r := range regions {
					rec, err := d.Level(cmd.Context(), strings.ToUpper(r))
					if err != nil {
						return err
					}
					if rec.Level == 0 {
						fmt.Fprintf(tw, "%s\t-\t\t\t\n", strings.ToUpper(r))
						continue
					}
					manual := ""
					if m := rec.Manual; m != nil {
						manual = fmt.Sprintf("%s by %s (%s)", names.Name(m.Level), m.By, m.Reason)
						if m.Until != 0 {
							manual += ", until " + m.Until.String()
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(r), names.Name(rec.Level), rec.Since.Format("2006-01-02"), rec.LastDecisionID, manual)
				}
				return tw.Flush()
			})
		},
	}
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
