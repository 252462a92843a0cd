package thresholds

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// ClauseMissingInput is the clause reported when a metric a rule needs is
// missing: the decision is keep, and Result.Missing names the metrics.
const ClauseMissingInput = "missing input"

// Result is one evaluation of a rule set: the action, the clause that decided
// it (shown to users as "the clause that fired"), a sentence saying why, and
// the inputs that were actually compared, so a decision can be audited and
// replayed.
type Result struct {
	// RuleSet and Version identify the rules applied, for the audit trail.
	RuleSet string `json:"rule_set"`
	Version string `json:"rule_set_version"`
	// Action is the final recommendation, after data-quality flags.
	Action Action `json:"action"`
	// Clause names what decided: a clause, a tier, a scale level with the
	// metric that set it, or ClauseMissingInput.
	Clause string `json:"clause"`
	// Reason is one sentence with the values that decided, for people.
	Reason string `json:"reason"`
	// RuleAction is what the rules alone said, before flags.
	RuleAction Action `json:"rule_action"`
	// Compared holds every input value read, by concrete metric name (the
	// pseudo-metric "r" appears as the statistic it read, e.g. r_q025).
	Compared map[string]float64 `json:"compared"`
	// Missing names the metrics that were absent or not finite when they
	// mattered; the action is then keep.
	Missing []string `json:"missing,omitempty"`
	// Flags are the data-quality flags given; HeldBy those that changed the
	// action to keep.
	Flags  []string `json:"flags,omitempty"`
	HeldBy []string `json:"held_by,omitempty"`
	// Level and TargetLevel are set by level-based rule sets: the level on
	// the rule set's scale and the restriction level it calls for.
	Level       string `json:"level,omitempty"`
	TargetLevel int    `json:"target_level,omitempty"`
}

// CheckResult is the short form printed by `epiwatch rules check --json`.
type CheckResult struct {
	Action Action `json:"action"` // final action
	Clause string `json:"clause"` // the clause that fired
}

// Summary returns the action and clause only.
func (r Result) Summary() CheckResult { return CheckResult{Action: r.Action, Clause: r.Clause} }

// Check evaluates rs for one value of R and one bed occupancy (percent), as
// `epiwatch rules check --r 1.2 --occupancy 75` does. Rule sets that need
// other metrics answer keep with the missing metrics named.
func Check(rs *RuleSet, r, occupancyPct float64) Result {
	return Evaluate(rs, PointInputs(r, occupancyPct), nil)
}

// Evaluate applies rs to one region's inputs and data-quality flags.
//
// Clauses are tried in file order and the first that holds wins; tiers
// likewise; if none holds, the rule set's otherwise outcome applies. A
// condition is false as soon as one of its metrics is out of range, even if
// another is missing; if it cannot be decided because a metric is missing,
// evaluation stops with keep and names the metric — it never guesses, and
// never skips to a later clause. Level-based rule sets compare the target
// restriction level of their level with the input restriction_level:
// higher → strengthen, lower → ease, equal → keep. Finally each flag is
// applied with the effect the rule set gives it (default: no ease).
func Evaluate(rs *RuleSet, in Inputs, flags []string) Result {
	if rs == nil {
		return Result{Action: Keep, RuleAction: Keep, Clause: ClauseMissingInput, Reason: "keep: no rule set given", Compared: map[string]float64{}}
	}
	e := &evaluation{rs: rs, in: in, compared: map[string]float64{}}
	var r Result
	switch {
	case rs.usesScale():
		r = e.levels()
	case rs.Shape == ShapeCriteria:
		r = e.tiersAction()
	default:
		r = e.clauses()
	}
	r.RuleSet, r.Version = rs.ID, rs.Version
	r.Compared = e.compared
	r.RuleAction = r.Action
	applyFlags(rs, &r, flags)
	return r
}

func applyFlags(rs *RuleSet, r *Result, flags []string) {
	for _, f := range flags {
		if slices.Contains(r.Flags, f) {
			continue
		}
		r.Flags = append(r.Flags, f)
		switch rs.FlagEffect(f) {
		case FlagHold:
			if r.Action != Keep {
				r.HeldBy = append(r.HeldBy, f)
			}
		case FlagNoEase:
			if r.Action == Ease {
				r.HeldBy = append(r.HeldBy, f)
			}
		}
	}
	if len(r.HeldBy) == 0 {
		return
	}
	var why []string
	for _, f := range r.HeldBy {
		switch rs.FlagEffect(f) {
		case FlagHold:
			why = append(why, f+" (hold: the level is frozen while this flag is set)")
		default:
			why = append(why, f+" (no_ease: a flagged input may hold or strengthen a level, never ease it)")
		}
	}
	r.Reason = fmt.Sprintf("%s held by data-quality flag %s; the rules said: %s", r.Action, strings.Join(why, ", "), r.Reason)
	r.Action = Keep
}

type tri int

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

type evaluation struct {
	rs       *RuleSet
	in       Inputs
	compared map[string]float64
	missing  []string
}

// read returns a metric's value on a side and records it as compared.
func (e *evaluation) read(metric string, s side) (string, float64, bool) {
	name := e.rs.metricFor(metric, s)
	v, ok := e.in.get(name)
	if ok {
		e.compared[name] = v
	}
	return name, v, ok
}

func (e *evaluation) addMissing(names ...string) {
	for _, n := range names {
		if !slices.Contains(e.missing, n) {
			e.missing = append(e.missing, n)
		}
	}
}

// test evaluates a conjunction in three-valued logic: false if any term is
// false, else unknown if any metric is missing, else true. It returns the
// description of each satisfied term and the missing metrics.
func (e *evaluation) test(c condition, s side) (tri, []string, []string) {
	var why, missing []string
	for _, t := range c {
		name, v, ok := e.read(t.metric, s)
		if !ok {
			missing = append(missing, name)
			continue
		}
		if !t.iv.contains(v) {
			return triFalse, nil, nil
		}
		why = append(why, t.iv.describe(name+"="+num(v)))
	}
	if len(missing) > 0 {
		return triUnknown, nil, missing
	}
	return triTrue, why, nil
}

func (e *evaluation) missingResult(what string) Result {
	slices.Sort(e.missing)
	return Result{
		Action:  Keep,
		Clause:  ClauseMissingInput,
		Reason:  fmt.Sprintf("keep: cannot evaluate %s: %s missing or not a number", what, strings.Join(e.missing, ", ")),
		Missing: e.missing,
	}
}

func (e *evaluation) clauses() Result {
	for _, c := range e.rs.clauses {
		t, why, missing := e.test(c.when, sideOf(c.action))
		switch t {
		case triTrue:
			return Result{Action: c.action, Clause: c.name, Reason: fmt.Sprintf("%s: %s", c.action, strings.Join(why, " and "))}
		case triUnknown:
			e.addMissing(missing...)
			return e.missingResult(fmt.Sprintf("clause %q", c.name))
		}
	}
	o := e.rs.otherwise
	return Result{Action: o.action, Clause: o.name, Reason: fmt.Sprintf("%s: no clause matched", o.action)}
}

// tierResult is the outcome of checking one k-of-n tier.
type tierResult struct {
	state tri
	met   []string
}

func (e *evaluation) tier(t tier, s side) tierResult {
	var met []string
	unknown := 0
	for _, c := range t.criteria {
		st, _, missing := e.test(c.when, s)
		switch st {
		case triTrue:
			met = append(met, c.name)
		case triUnknown:
			unknown++
			e.addMissing(missing...)
		}
	}
	switch {
	case len(met) >= t.need:
		return tierResult{triTrue, met}
	case len(met)+unknown >= t.need:
		return tierResult{triUnknown, met}
	}
	return tierResult{triFalse, met}
}

func (t tier) describe(r tierResult) string {
	return fmt.Sprintf("%d of %d criteria met (need %d): %s", len(r.met), len(t.criteria), t.need, strings.Join(r.met, "; "))
}

func (e *evaluation) tiersAction() Result {
	for _, t := range e.rs.tiers {
		r := e.tier(t, sideOf(t.out.action))
		switch r.state {
		case triTrue:
			return Result{Action: t.out.action, Clause: t.name, Reason: fmt.Sprintf("%s: %s", t.out.action, t.describe(r))}
		case triUnknown:
			return e.missingResult(fmt.Sprintf("tier %q", t.name))
		}
	}
	o := e.rs.otherwise
	return Result{Action: o.action, Clause: o.name, Reason: fmt.Sprintf("%s: no tier met", o.action)}
}

// scaleLevel is a level found on the rule set's scale.
type scaleLevel struct {
	state  tri // true: known; unknown: a metric is missing; false: no table applies
	level  int
	clause string
	reason string
}

// level computes the rule set's scale level reading R on side s.
func (e *evaluation) level(s side) scaleLevel {
	rs := e.rs
	switch rs.Shape {
	case ShapeCriteria:
		for _, t := range rs.tiers {
			r := e.tier(t, s)
			switch r.state {
			case triTrue:
				return scaleLevel{triTrue, t.out.level, t.name, t.describe(r)}
			case triUnknown:
				return scaleLevel{state: triUnknown, reason: fmt.Sprintf("tier %q", t.name)}
			}
		}
		o := rs.otherwise
		return scaleLevel{triTrue, o.level, o.name, "no tier met"}
	case ShapeGateMax:
		return e.tableLevel(rs.tables[0], s)
	}
	for _, t := range rs.tables {
		st, _, missing := e.test(t.when, s)
		switch st {
		case triTrue:
			l := e.tableLevel(t, s)
			if l.state == triTrue {
				l.reason = fmt.Sprintf("table %q: %s", t.name, l.reason)
			}
			return l
		case triUnknown:
			e.addMissing(missing...)
			return scaleLevel{state: triUnknown, reason: fmt.Sprintf("which table applies (table %q)", t.name)}
		}
	}
	return scaleLevel{state: triFalse, reason: "no table's condition holds"}
}

// tableLevel is the highest level of a table's metrics (at least the table's
// floor); with a gate, the lowest level while the gate metric is at it.
func (e *evaluation) tableLevel(t table, s side) scaleLevel {
	rs := e.rs
	top := len(rs.scale) - 1
	if rs.gate != "" {
		i := slices.IndexFunc(t.metrics, func(m metricScale) bool { return m.metric == rs.gate })
		name, v, ok := e.read(rs.gate, s)
		if !ok {
			e.addMissing(name)
			return scaleLevel{state: triUnknown, reason: fmt.Sprintf("the gate %s", rs.gate)}
		}
		if gl, _ := t.metrics[i].levelOf(v, 0); gl == 0 {
			return scaleLevel{triTrue, 0, fmt.Sprintf("%s: gate %s at the lowest level", rs.scale[0], rs.gate),
				fmt.Sprintf("gate %s=%s is at the lowest level, so the overall level is %s", name, num(v), rs.scale[0])}
		}
	}
	lvl := t.floor
	clause := fmt.Sprintf("%s: floor of table %q", rs.scale[lvl], t.name)
	if lvl == 0 {
		clause = fmt.Sprintf("%s: every metric below its cut-points", rs.scale[0])
	}
	var parts, missing []string
	for _, m := range t.metrics {
		name, v, ok := e.read(m.metric, s)
		if !ok {
			missing = append(missing, name)
			continue
		}
		l, c := m.levelOf(v, t.floor)
		parts = append(parts, fmt.Sprintf("%s=%s → %s", name, num(v), rs.scale[l]))
		if l > lvl {
			lvl = l
			clause = fmt.Sprintf("%s: %s", rs.scale[l], c.describe(m.metric))
		}
	}
	if len(missing) > 0 && lvl < top {
		e.addMissing(missing...)
		return scaleLevel{state: triUnknown, reason: fmt.Sprintf("the level of table %q", t.name)}
	}
	return scaleLevel{triTrue, lvl, clause, fmt.Sprintf("highest of %s", strings.Join(parts, ", "))}
}

func (e *evaluation) levels() Result {
	rs := e.rs
	lo := e.level(sideStrengthen)
	hi := lo
	if rs.RStatistic == RBounds && rs.RMethod == RCori && lo.state == triTrue {
		hi = e.level(sideEase)
	}
	cur, ok := e.in.get(MetricRestrictionLevel)
	if ok {
		e.compared[MetricRestrictionLevel] = cur
	}
	if !ok || cur < 1 || cur != math.Trunc(cur) {
		e.addMissing(MetricRestrictionLevel)
		return e.missingResult("the region's current restriction level (a whole number from 1)")
	}
	for _, l := range []scaleLevel{lo, hi} {
		switch l.state {
		case triUnknown:
			return e.missingResult(l.reason)
		case triFalse:
			return Result{Action: Keep, Clause: ClauseMissingInput, Reason: "keep: " + l.reason}
		}
	}
	tLo, tHi := rs.targets[lo.level], rs.targets[hi.level]
	at := int(cur)
	switch {
	case tLo > at:
		return Result{Action: Strengthen, Clause: lo.clause, Level: rs.scale[lo.level], TargetLevel: tLo,
			Reason: fmt.Sprintf("strengthen: level %s (%s) calls for restriction level %d; the region is at %d", rs.scale[lo.level], lo.reason, tLo, at)}
	case tHi < at:
		return Result{Action: Ease, Clause: hi.clause, Level: rs.scale[hi.level], TargetLevel: tHi,
			Reason: fmt.Sprintf("ease: level %s (%s) calls for restriction level %d; the region is at %d", rs.scale[hi.level], hi.reason, tHi, at)}
	case lo.level == hi.level:
		return Result{Action: Keep, Clause: lo.clause, Level: rs.scale[lo.level], TargetLevel: tLo,
			Reason: fmt.Sprintf("keep: level %s (%s) calls for restriction level %d; the region is at %d", rs.scale[lo.level], lo.reason, tLo, at)}
	}
	return Result{Action: Keep, Clause: fmt.Sprintf("%s to %s: R's interval spans levels", rs.scale[lo.level], rs.scale[hi.level]),
		Reason: fmt.Sprintf("keep: with R's lower bound the level is %s (restriction level %d), with its upper bound %s (%d); the region is at %d",
			rs.scale[lo.level], tLo, rs.scale[hi.level], tHi, at)}
}
