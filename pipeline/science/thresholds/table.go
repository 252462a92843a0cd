package thresholds

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// DefaultRGrid is the R rows of `epiwatch rules table`: every edge of the
// plan's R bands and a value either side.
func DefaultRGrid() []float64 { return []float64{0.99, 1.0, 1.0001, 1.1, 1.15, 1.2, 1.3, 1.3001, 2} }

// DefaultOccupancyGrid is the bed-occupancy columns (percent) of `epiwatch
// rules table`: every edge of the plan's occupancy bands and a value either
// side.
func DefaultOccupancyGrid() []float64 {
	return []float64{0, 49.99, 50, 60, 70, 70.01, 80, 89.99, 90, 100}
}

// Cell is one evaluation in a Matrix.
type Cell struct {
	Action  Action   `json:"action"`            // what Check returned
	Clause  string   `json:"clause"`            // the clause that fired
	Missing []string `json:"missing,omitempty"` // metrics the cell lacked
}

// Matrix is a rule set evaluated over a grid of R (rows) and bed occupancy
// (columns), each cell from Check.
type Matrix struct {
	RuleSet   string    `json:"rule_set"`         // rule set id
	Version   string    `json:"rule_set_version"` // rule set version
	R         []float64 `json:"r"`                // row values of R
	Occupancy []float64 `json:"occupancy_pct"`    // column values of occupancy, percent
	Cells     [][]Cell  `json:"cells"`            // Cells[i][j] is R[i], Occupancy[j]
	// Needs lists every metric the rule set reads (RuleSet.Metrics), to
	// explain cells that need more than R and occupancy.
	Needs []string `json:"needs"`
}

// Table evaluates rs on every (R, occupancy) pair of the grids. Rule sets
// that need metrics other than R and occupancy give keep cells marked missing.
func Table(rs *RuleSet, rGrid, occGrid []float64) Matrix {
	m := Matrix{R: slices.Clone(rGrid), Occupancy: slices.Clone(occGrid)}
	if rs != nil {
		m.RuleSet, m.Version, m.Needs = rs.ID, rs.Version, rs.Metrics()
	}
	for _, r := range rGrid {
		row := make([]Cell, len(occGrid))
		for j, o := range occGrid {
			res := Check(rs, r, o)
			row[j] = Cell{Action: res.Action, Clause: res.Clause, Missing: res.Missing}
		}
		m.Cells = append(m.Cells, row)
	}
	return m
}

func (c Cell) text(words bool) string {
	if len(c.Missing) > 0 {
		return "?"
	}
	if words {
		return string(c.Action)
	}
	return c.Action.Letter()
}

// WriteTable prints m as a grid of R rows × occupancy columns, with the
// letters S, K, E (or the words when words is true) and "?" where an input
// the rule set needs is not R or occupancy.
func WriteTable(w io.Writer, m Matrix, words bool) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "rule set %s version %s: action by R (rows) and bed occupancy %% (columns)\n", m.RuleSet, m.Version)
	if !words {
		fmt.Fprintln(bw, "S = strengthen, K = keep, E = ease")
	}
	if slices.ContainsFunc(m.Cells, func(row []Cell) bool {
		return slices.ContainsFunc(row, func(c Cell) bool { return len(c.Missing) > 0 })
	}) {
		fmt.Fprintf(bw, "? = keep: the rule set needs more than R and occupancy (%s)\n", strings.Join(m.Needs, ", "))
	}
	head := []string{"R \\ occ %"}
	for _, o := range m.Occupancy {
		head = append(head, num(o))
	}
	rows := [][]string{head}
	for i, r := range m.R {
		row := []string{num(r)}
		for _, c := range m.Cells[i] {
			row = append(row, c.text(words))
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(head))
	for _, row := range rows {
		for j, s := range row {
			widths[j] = max(widths[j], len([]rune(s)))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for j, s := range row {
			if j > 0 {
				b.WriteString("  ")
			}
			b.WriteString(strings.Repeat(" ", widths[j]-len([]rune(s))))
			b.WriteString(s)
		}
		fmt.Fprintln(bw, b.String())
	}
	return bw.Flush()
}

// WriteComparison prints two matrices over the same grid as one markdown
// table; a cell where they differ shows both, the first in plain text and the
// second in bold ("K → **S**").
func WriteComparison(w io.Writer, a, b Matrix) error {
	if !slices.Equal(a.R, b.R) || !slices.Equal(a.Occupancy, b.Occupancy) {
		return fmt.Errorf("compare %s with %s: the grids differ", a.RuleSet, b.RuleSet)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "| R \\ occupancy %% |")
	for _, o := range a.Occupancy {
		fmt.Fprintf(bw, " %s |", num(o))
	}
	fmt.Fprintf(bw, "\n|---|")
	for range a.Occupancy {
		fmt.Fprintf(bw, "---|")
	}
	fmt.Fprintln(bw)
	for i, r := range a.R {
		fmt.Fprintf(bw, "| %s |", num(r))
		for j := range a.Occupancy {
			x, y := a.Cells[i][j].text(false), b.Cells[i][j].text(false)
			if x == y {
				fmt.Fprintf(bw, " %s |", x)
			} else {
				fmt.Fprintf(bw, " %s → **%s** |", x, y)
			}
		}
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}
