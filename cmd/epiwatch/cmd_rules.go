package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/tools/rulesets"
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
	c.PersistentFlags().StringVar(&rulesFlag, "rules", rulesets.DefaultID, "rule set: a shipped id or a YAML file")
	var co rulesets.CheckOptions
	check := &cobra.Command{
		Use:   "check --r R --occupancy PCT",
		Short: "Print the action and the clause that fired for one R and one infectious-bed occupancy",
		Example: `  epiwatch rules check --r 1.2 --occupancy 75
  epiwatch rules check --r 1.2 --occupancy 75 --rules kz-2020-monotone --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			co.RuleSet, co.Changed = rulesFlag, cmd.Flags().Changed
			return toolExit(rulesets.Check(co, cmd.OutOrStdout()))
		},
	}
	check.Flags().Float64Var(&co.R, "r", 0, "reproduction number R")
	check.Flags().Float64Var(&co.Occupancy, "occupancy", 0, "infectious-bed occupancy (ПЗК), percent")
	check.Flags().BoolVar(&co.JSON, "json", false, `print {"action": "...", "clause": "..."}`)

	var to rulesets.TableOptions
	table := &cobra.Command{
		Use:   "table",
		Short: "Print the whole decision matrix over a grid of R and infectious-bed occupancy",
		Example: `  epiwatch rules table
  epiwatch rules table --r-grid 0.9,1,1.1,1.2,1.3,1.4 --occupancy-grid 40,60,80,95 --words
  epiwatch rules table --compare kz-2020-monotone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			to.RuleSet = rulesFlag
			return toolExit(rulesets.Table(to, cmd.OutOrStdout()))
		},
	}
	table.Flags().StringVar(&to.RGrid, "r-grid", "", "comma-separated R values (default: the plan's edges and between)")
	table.Flags().StringVar(&to.OccupancyGrid, "occupancy-grid", "", "comma-separated occupancy percentages")
	table.Flags().BoolVar(&to.Words, "words", false, "print strengthen/keep/ease instead of S/K/E")
	table.Flags().StringVar(&to.Compare, "compare", "", "print a markdown comparison with this rule set")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the shipped rule sets with their source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rulesets.List(cmd.OutOrStdout())
		},
	}
	c.AddCommand(check, table, list)
	return c
}
