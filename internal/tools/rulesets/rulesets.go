// Package rulesets is `epiwatch rules`: the action one value pair gets, the
// decision matrix over a grid, and the list of shipped rule sets, printed
// for a person at a terminal (or as JSON). The rule sets and their
// evaluation are package thresholds'; this package only opens and prints.
package rulesets

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
)

// DefaultID is the rule set --rules names by default (thresholds.DefaultID):
// cmd takes it from here, as cmd imports no pipeline package.
const DefaultID = thresholds.DefaultID

// CheckOptions are the flags of `epiwatch rules check`.
type CheckOptions struct {
	RuleSet      string // a shipped id or a YAML file
	R, Occupancy float64
	JSON         bool
	// Changed tells whether --r and --occupancy were given: both are
	// needed, and 0 is a valid value of each.
	Changed cli.Changed
}

// Check prints the action and the clause that fired for one R and one
// infectious-bed occupancy.
func Check(o CheckOptions, stdout io.Writer) error {
	if o.Changed == nil || !o.Changed("r") || !o.Changed("occupancy") {
		return cli.BadInputf("rules check needs both --r and --occupancy")
	}
	rs, err := open(o.RuleSet)
	if err != nil {
		return err
	}
	res := thresholds.Check(rs, o.R, o.Occupancy)
	if o.JSON {
		return json.NewEncoder(stdout).Encode(res.Summary())
	}
	fmt.Fprintf(stdout, "%s\nclause: %s\nreason: %s\nrule set: %s v%s\n", res.Action, res.Clause, res.Reason, res.RuleSet, res.Version)
	return nil
}

// TableOptions are the flags of `epiwatch rules table`.
type TableOptions struct {
	RuleSet string
	// RGrid and OccupancyGrid are comma-separated values; empty: the
	// plan's edges and between (thresholds.DefaultRGrid, …).
	RGrid, OccupancyGrid string
	// Words prints strengthen/keep/ease instead of S/K/E.
	Words bool
	// Compare, if set, is a second rule set: the output is a markdown
	// comparison of the two.
	Compare string
}

// Table prints the decision matrix over the grid, or the comparison.
func Table(o TableOptions, stdout io.Writer) error {
	rs, err := open(o.RuleSet)
	if err != nil {
		return err
	}
	rg, err := parseGrid(o.RGrid, thresholds.DefaultRGrid())
	if err != nil {
		return cli.BadInputf("--r-grid: %w", err)
	}
	og, err := parseGrid(o.OccupancyGrid, thresholds.DefaultOccupancyGrid())
	if err != nil {
		return cli.BadInputf("--occupancy-grid: %w", err)
	}
	m := thresholds.Table(rs, rg, og)
	if o.Compare != "" {
		other, err := open(o.Compare)
		if err != nil {
			return err
		}
		return thresholds.WriteComparison(stdout, m, thresholds.Table(other, rg, og))
	}
	return thresholds.WriteTable(stdout, m, o.Words)
}

// List prints the shipped rule sets with their source, one a line.
func List(stdout io.Writer) error {
	infos, err := thresholds.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tSHAPE\tTITLE\tSOURCE")
	for _, i := range infos {
		id := i.ID
		if i.Default {
			id += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, i.Version, i.Shape, i.Title, i.Source)
	}
	return tw.Flush()
}

// open opens a shipped rule set by id, or a YAML file.
func open(ruleSet string) (*thresholds.RuleSet, error) {
	rs, err := thresholds.Open(ruleSet, os.ReadFile)
	return rs, cli.BadInput(err)
}

// parseGrid reads comma-separated numbers; empty gives def.
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
