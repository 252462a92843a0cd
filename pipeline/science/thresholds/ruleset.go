package thresholds

import (
	"slices"
	"strconv"
	"strings"
)

// Shape is how a rule set combines its conditions into a decision.
//
//   - clauses: named conditions tried in file order, the first match wins
//     (Kazakhstan's 2020 plan made monotone, kz-2020-monotone, is the
//     default rule set; the literal plan is kz-2020-plan);
//   - higher_of: a gate metric selects a table of per-metric cut-points and
//     the level is the highest of the metric levels (CDC Community Levels);
//   - gate_max: the level is the lowest one while a gate metric is at the
//     lowest level, otherwise the highest of the metric levels (Covid Act Now);
//   - criteria: tiers of named criteria, a tier is met when k of its n
//     criteria hold (WHO's positivity criterion, Rospotrebnadzor's stages).
//
// Level-based shapes produce a level on their own scale; the rule set maps it
// to a target restriction level, and the action is the direction from the
// region's current level (input "restriction_level") towards that target.
type Shape string

// The rule-set shapes. See Shape and README.md.
const (
	ShapeClauses  Shape = "clauses"
	ShapeHigherOf Shape = "higher_of"
	ShapeGateMax  Shape = "gate_max"
	ShapeCriteria Shape = "criteria"
)

// RMethod names which estimate of R a rule set compares.
type RMethod string

// R methods.
const (
	// RCori is the Cori et al. (2013) posterior of R (r_mean, r_q025, r_q975).
	RCori RMethod = "cori"
	// RRatio is the officials' 4-day ratio (r_ratio); it has no interval.
	RRatio RMethod = "ratio"
)

// RStatistic names which statistic of R's posterior a rule set compares.
type RStatistic string

// R statistics.
const (
	// RMean compares the posterior mean in every clause.
	RMean RStatistic = "mean"
	// RBounds compares the end of the 95 % credible interval that makes each
	// action hardest to reach: strengthen clauses read the lower bound
	// (r_q025), ease clauses read the upper bound (r_q975), keep clauses read
	// the mean. A band such as 1.15 ≤ R ≤ 1.3 in a strengthen clause is
	// therefore met when the lower bound lies in the band: "R is at least
	// 1.15 with 97.5 % probability, and the band above 1.3 is handled by its
	// own clause". See README.md for the reasoning.
	RBounds RStatistic = "bounds"
)

// RuleSet is a parsed, validated rule file. Build one with Parse or Load; the
// zero value is not usable. A RuleSet is immutable after parsing and safe to
// share.
type RuleSet struct {
	// ID is the rule set's stable name, e.g. "kz-2020-plan".
	ID string
	// Version changes whenever the rules change; decisions record it.
	Version string
	// Title is a one-line human name.
	Title string
	// Source cites the published document the thresholds come from.
	Source string
	// Notes explains the choices the source leaves open.
	Notes string
	// Shape is how the conditions combine.
	Shape Shape
	// RMethod says which estimate of R the pseudo-metric "r" reads.
	RMethod RMethod
	// RStatistic says which statistic of it: the mean or the bounds.
	RStatistic RStatistic
	// RNowcast (r.nowcast) lets the decider decide a day that is still
	// provisional on the nowcast R (the record's r_nowcast_* fields) instead
	// of waiting for the day to be complete. The rule set's statistic
	// applies to it; the decider records that the nowcast was used.
	RNowcast bool
	// File is the name the rule set was parsed from (for messages).
	File string
	// Warnings are non-fatal remarks found while parsing, each with a line:
	// metric names epiwatch does not compute.
	Warnings []string

	flags     map[string]FlagEffect
	clauses   []clause
	otherwise outcome
	scale     []string
	targets   []int // restriction level per scale index
	tables    []table
	gate      string
	tiers     []tier
}

// usesScale reports whether the rule set produces a level on a scale (and
// therefore needs the region's current restriction level).
func (rs *RuleSet) usesScale() bool { return len(rs.scale) > 0 }

// FlagEffect returns what the data-quality flag does under this rule set;
// flags the file does not mention, and unknown flags, default to FlagNoEase.
func (rs *RuleSet) FlagEffect(flag string) FlagEffect {
	if e, ok := rs.flags[flag]; ok {
		return e
	}
	return FlagNoEase
}

// Scale returns the level names of a level-based rule set (mildest first) and
// the restriction level each maps to; both are nil for other rule sets.
func (rs *RuleSet) Scale() (names []string, targets []int) {
	return slices.Clone(rs.scale), slices.Clone(rs.targets)
}

// Metrics returns, sorted, the input metrics the rule set may read, with the
// pseudo-metric "r" resolved to the statistics it reads (in bounds mode,
// r_q025 for strengthen clauses, r_q975 for ease clauses). The processor can
// check it supplies all of them.
func (rs *RuleSet) Metrics() []string {
	set := map[string]bool{}
	add := func(c condition, sides ...side) {
		for _, t := range c {
			for _, s := range sides {
				set[rs.metricFor(t.metric, s)] = true
			}
		}
	}
	both := []side{sideStrengthen, sideEase}
	for _, c := range rs.clauses {
		add(c.when, sideOf(c.action))
	}
	for _, t := range rs.tables {
		add(t.when, both...)
		for _, m := range t.metrics {
			for _, s := range both {
				set[rs.metricFor(m.metric, s)] = true
			}
		}
	}
	for _, t := range rs.tiers {
		sides := both
		if !rs.usesScale() {
			sides = []side{sideOf(t.out.action)}
		}
		for _, c := range t.criteria {
			add(c.when, sides...)
		}
	}
	if rs.usesScale() {
		set[MetricRestrictionLevel] = true
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// side is the action a condition is evaluated for; in bounds mode it decides
// which end of R's interval "r" reads.
type side int

const (
	sideKeep side = iota
	sideStrengthen
	sideEase
)

func sideOf(a Action) side {
	switch a {
	case Strengthen:
		return sideStrengthen
	case Ease:
		return sideEase
	}
	return sideKeep
}

// metricFor returns the concrete metric a name reads on a side.
func (rs *RuleSet) metricFor(metric string, s side) string {
	if metric != MetricR {
		return metric
	}
	if rs.RMethod == RRatio {
		return MetricRRatio
	}
	if rs.RStatistic == RBounds {
		switch s {
		case sideStrengthen:
			return MetricRQ025
		case sideEase:
			return MetricRQ975
		}
	}
	return MetricRMean
}

// bound is one end of a range.
type bound struct {
	set       bool
	value     float64
	inclusive bool
}

// interval is the set of values a term accepts: lower and upper bounds, each
// optional, each inclusive or exclusive.
type interval struct {
	lo, hi bound
}

func (iv interval) contains(v float64) bool {
	if iv.lo.set && (v < iv.lo.value || (!iv.lo.inclusive && v == iv.lo.value)) {
		return false
	}
	if iv.hi.set && (v > iv.hi.value || (!iv.hi.inclusive && v == iv.hi.value)) {
		return false
	}
	return true
}

// empty reports whether no value satisfies the interval.
func (iv interval) empty() bool {
	if !iv.lo.set || !iv.hi.set {
		return false
	}
	if iv.lo.value > iv.hi.value {
		return true
	}
	return iv.lo.value == iv.hi.value && !(iv.lo.inclusive && iv.hi.inclusive)
}

// describe renders the interval around a name: "1.15 ≤ r_mean ≤ 1.3".
func (iv interval) describe(name string) string {
	var b strings.Builder
	if iv.lo.set {
		b.WriteString(num(iv.lo.value))
		if iv.lo.inclusive {
			b.WriteString(" ≤ ")
		} else {
			b.WriteString(" < ")
		}
	}
	b.WriteString(name)
	if iv.hi.set {
		if iv.hi.inclusive {
			b.WriteString(" ≤ ")
		} else {
			b.WriteString(" < ")
		}
		b.WriteString(num(iv.hi.value))
	}
	return b.String()
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// term is one metric's range within a condition.
type term struct {
	metric string
	iv     interval
	line   int
}

// condition is a conjunction of terms: all must hold.
type condition []term

type clause struct {
	name   string
	action Action
	when   condition
	line   int
}

// outcome is what a rule set decides when nothing else matched: an action,
// or a level on the rule set's scale.
type outcome struct {
	name   string
	action Action
	level  int // scale index; -1 when the outcome is an action
}

// cut is the lowest value at which a metric reaches a scale level.
type cut struct {
	level int
	at    bound // lower bound (ge or gt)
}

// describe renders the cut-point as "metric ≥ value".
func (c cut) describe(metric string) string {
	op := " > "
	if c.at.inclusive {
		op = " ≥ "
	}
	return metric + op + num(c.at.value)
}

// metricScale maps one metric's value to a scale level through ascending cuts.
type metricScale struct {
	metric string
	cuts   []cut
}

// levelOf returns the highest scale level whose cut the value reaches, or
// floor when none is reached, and the cut that decided it (nil for floor).
func (m metricScale) levelOf(v float64, floor int) (int, *cut) {
	lvl, by := floor, (*cut)(nil)
	for i := range m.cuts {
		c := &m.cuts[i]
		if (interval{lo: c.at}).contains(v) && c.level > lvl {
			lvl, by = c.level, c
		}
	}
	return lvl, by
}

// table is a set of metric scales, selected by a condition (higher_of) or
// unconditional (gate_max).
type table struct {
	name    string
	when    condition
	floor   int
	metrics []metricScale
}

type criterion struct {
	name string
	when condition
}

// tier is a k-of-n group of criteria with the outcome it gives when met.
type tier struct {
	name     string
	need     int
	criteria []criterion
	out      outcome
}
