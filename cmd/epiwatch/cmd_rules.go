package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
)

func newRulesCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "rules",
		Short: "Inspect rule sets: check a value pair, print the decision matrix, list shipped sets",
		Long: `Rule sets turn a region's indicators into an action: strengthen, keep or ease. The default,
kz-2020-monotone, is Kazakhstan's 2020 plan (section 7, item 1) closed over its gaps so that a
worse R or a worse bed occupancy never gives a milder action; kz-2020-plan is the plan read
literally (the law as written), which keeps at R 2.0 and 85 % beds where it strengthens at R 1.2.
Other shipped sets (CDC Community Levels, Covid Act Now, WHO, Rospotrebnadzor) are listed by
'rules list'. --rules takes a shipped id or a YAML file (see pipeline/science/thresholds/README.md).`,
	}
	var rulesFlag string
	c.PersistentFlags().StringVar(&rulesFlag, "rules", thresholds.DefaultID, "rule set: a shipped id or a YAML file")
	open := func() (*thresholds.RuleSet, error) {
		rs, err := thresholds.Open(rulesFlag, os.ReadFile)
		if err != nil {
			return nil, &exitError{2, err}
		}
		return rs, nil
	}

	var r, occ float64
	var asJSON bool
	check := &cobra.Command{
		Use:   "check --r R --occupancy PCT",
		Short: "Print the action and the clause that fired for one R and one infectious-bed occupancy",
		Example: `  epiwatch rules check --r 1.2 --occupancy 75
  epiwatch rules check --r 1.2 --occupancy 75 --rules kz-2020-monotone --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("r") || !cmd.Flags().Changed("occupancy") {
				return &exitError{2, fmt.Errorf("rules check needs both --r and --occupancy")}
			}
			rs, err := open()
			if err != nil {
				return err
			}
			res := thresholds.Check(rs, r, occ)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(res.Summary())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nclause: %s\nreason: %s\nrule set: %s v%s\n", res.Action, res.Clause, res.Reason, res.RuleSet, res.Version)
			return nil
		},
	}
	check.Flags().Float64Var(&r, "r", 0, "reproduction number R")
	check.Flags().Float64Var(&occ, "occupancy", 0, "infectious-bed occupancy (ПЗК), percent")
	check.Flags().BoolVar(&asJSON, "json", false, `print {"action": "...", "clause": "..."}`)

	var rGrid, occGrid string
	var words, markdownCompare bool
	var compareWith string
	table := &cobra.Command{
		Use:   "table",
		Short: "Print the whole decision matrix over a grid of R and infectious-bed occupancy",
		Example: `  epiwatch rules table
  epiwatch rules table --r-grid 0.9,1,1.1,1.2,1.3,1.4 --occupancy-grid 40,60,80,95 --words
  epiwatch rules table --compare kz-2020-monotone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := open()
			if err != nil {
				return err
			}
			rg, err := parseGrid(rGrid, thresholds.DefaultRGrid())
			if err != nil {
				return &exitError{2, fmt.Errorf("--r-grid: %w", err)}
			}
			og, err := parseGrid(occGrid, thresholds.DefaultOccupancyGrid())
			if err != nil {
				return &exitError{2, fmt.Errorf("--occupancy-grid: %w", err)}
			}
			m := thresholds.Table(rs, rg, og)
			if compareWith != "" {
				other, err := thresholds.Open(compareWith, os.ReadFile)
				if err != nil {
					return &exitError{2, err}
				}
				return thresholds.WriteComparison(cmd.OutOrStdout(), m, thresholds.Table(other, rg, og))
			}
			_ = markdownCompare
			return thresholds.WriteTable(cmd.OutOrStdout(), m, words)
		},
	}
	table.Flags().StringVar(&rGrid, "r-grid", "", "comma-separated R values (default: the plan's edges and between)")
	table.Flags().StringVar(&occGrid, "occupancy-grid", "", "comma-separated occupancy percentages")
	table.Flags().BoolVar(&words, "words", false, "print strengthen/keep/ease instead of S/K/E")
	table.Flags().StringVar(&compareWith, "compare", "", "print a markdown comparison with this rule set")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the shipped rule sets with their source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := thresholds.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVERSION\tSHAPE\tTITLE\tSOURCE")
			for _, i := range infos {
				id := i.ID
				if i.Default {
					id += " (default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, i.Version, i.Shape, i.Title, i.Source)
			}
			return tw.Flush()
		},
	}
	c.AddCommand(check, table, list)
	return c
}

func parseGrid(s string, def []float64) ([]float64, error) {
	if strings.TrimSpace(s) == "" {
		return def, nil
	}
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
