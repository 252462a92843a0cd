package thresholds

import "slices"

// Cuts returns the values the rule set compares metric with, ascending, each
// once: every bound of every condition on it (clauses, tables, tiers) and
// every cut-point of its scales. metric is the name as written in the rule
// file ("r" for the pseudo-metric). Dashboards draw these as their colour
// bands, so the bands come from the rule file and never from a second copy
// of its numbers.
func (rs *RuleSet) Cuts(metric string) []float64 {
	var out []float64
	add := func(c condition) {
		for _, t := range c {
			if t.metric != metric {
				continue
			}
			for _, b := range []bound{t.iv.lo, t.iv.hi} {
				if b.set {
					out = append(out, b.value)
				}
			}
		}
	}
	for _, c := range rs.clauses {
		add(c.when)
	}
	for _, t := range rs.tables {
		add(t.when)
		for _, m := range t.metrics {
			if m.metric != metric {
				continue
			}
			for _, c := range m.cuts {
				out = append(out, c.at.value)
			}
		}
	}
	for _, t := range rs.tiers {
		for _, c := range t.criteria {
			add(c.when)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
