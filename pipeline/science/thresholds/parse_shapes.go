// Conditions and the rule shapes of a rule file: clauses, criteria tiers,
// higher-of tables and gate-max metric scales.

package thresholds

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// metricName checks a metric key and warns about names epiwatch does not
// compute.
func (p *parser) metricName(n *yaml.Node, ctx, name string) bool {
	if !metricPattern.MatchString(name) {
		p.errf(n, ctx, "metric name %q must be lower-case snake_case, e.g. r or bed_occupancy_pct", name)
		return false
	}
	if !isKnownMetric(name) {
		p.warns = append(p.warns, (&ParseError{File: p.file, Line: n.Line, Context: ctx,
			Msg: fmt.Sprintf("metric %q is not one epiwatch computes; conditions on it decide keep unless the caller supplies it", name)}).Error())
	}
	return true
}

// condition reads `when:`, a mapping of metric → {gt|ge|lt|le: number}.
func (p *parser) condition(e entry, ctx string) condition {
	es, ok := p.mapping(e.v, ctx, "when")
	if !ok {
		return nil
	}
	if len(es) == 0 {
		p.errf(e.v, ctx, "when is empty: name at least one metric (use otherwise for a catch-all)")
		return nil
	}
	var c condition
	for _, m := range es {
		if !p.metricName(m.k, ctx, m.key) {
			continue
		}
		if iv, ok := p.interval(m.v, ctx, m.key); ok {
			c = append(c, term{metric: m.key, iv: iv, line: m.k.Line})
		}
	}
	return c
}

func (p *parser) interval(n *yaml.Node, ctx, metric string) (interval, bool) {
	es, ok := p.mapping(n, ctx, metric)
	if !ok {
		return interval{}, false
	}
	var iv interval
	ok = true
	for _, o := range es {
		var b *bound
		incl := false
		switch o.key {
		case "gt":
			b = &iv.lo
		case "ge":
			b, incl = &iv.lo, true
		case "lt":
			b = &iv.hi
		case "le":
			b, incl = &iv.hi, true
		default:
			p.errf(o.k, ctx, "unknown operator %q for %s (want gt, ge, lt or le)", o.key, metric)
			ok = false
			continue
		}
		if b.set {
			p.errf(o.k, ctx, "%s has two lower or two upper bounds; keep one of gt/ge and one of lt/le", metric)
			ok = false
			continue
		}
		v, good := p.number(o.v, ctx, metric+" "+o.key)
		if !good {
			ok = false
			continue
		}
		*b = bound{set: true, value: v, inclusive: incl}
	}
	if !ok {
		return iv, false
	}
	if !iv.lo.set && !iv.hi.set {
		p.errf(n, ctx, "%s has no bound; give at least one of gt, ge, lt or le", metric)
		return iv, false
	}
	if iv.empty() {
		p.errf(n, ctx, "no value satisfies %s", iv.describe(metric))
		return iv, false
	}
	return iv, true
}

func clauseCtx(kind string, name string, i int) string {
	if name != "" {
		return fmt.Sprintf("%s %q", kind, name)
	}
	return fmt.Sprintf("%s %d", kind, i+1)
}

// peekName finds an item's name before its keys are checked, so that every
// message about the item can say which one it is.
func peekName(n *yaml.Node, kind string, i int) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k, v := n.Content[j], n.Content[j+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
				return clauseCtx(kind, strings.TrimSpace(v.Value), i)
			}
		}
	}
	return clauseCtx(kind, "", i)
}

// itemName checks an item's name.
func (p *parser) itemName(f map[string]entry, kind string, i int) (string, string) {
	name := ""
	if e, ok := f["name"]; ok && e.v.Kind == yaml.ScalarNode {
		name = strings.TrimSpace(e.v.Value)
	}
	ctx := clauseCtx(kind, name, i)
	if e, ok := f["name"]; ok {
		p.text(e, ctx)
	}
	return name, ctx
}

func (p *parser) uniqueName(names map[string]int, n *yaml.Node, ctx, kind, name string) {
	if name == "" {
		return
	}
	if first, dup := names[name]; dup {
		p.errf(n, ctx, "another %s has the same name (line %d); names must be unique so users can tell which fired", kind, first)
		return
	}
	names[name] = n.Line
}

func (p *parser) clauses(e entry) []clause {
	items, ok := p.sequence(e, "clauses")
	if !ok {
		return nil
	}
	var out []clause
	names := map[string]int{}
	for i, n := range items {
		f := p.fields(n, peekName(n, "clause", i), "a clause", "name", "action", "when")
		if f == nil {
			continue
		}
		name, ctx := p.itemName(f, "clause", i)
		if !p.require(n, f, ctx, "a clause", "name", "action", "when") {
			continue
		}
		p.uniqueName(names, n, ctx, "clause", name)
		c := clause{name: name, line: n.Line}
		if s, ok := p.text(f["action"], ctx); ok {
			a, err := ParseAction(s)
			if err != nil {
				p.errf(f["action"].v, ctx, "%v", err)
			}
			c.action = a
		}
		c.when = p.condition(f["when"], ctx)
		out = append(out, c)
	}
	return out
}

// outcome reads the name and the action or, for rule sets with a scale, the
// level of an already-read mapping (otherwise, or a tier).
func (p *parser) outcome(f map[string]entry, n *yaml.Node, rs *RuleSet, ctx string, defName string) outcome {
	withScale := rs.usesScale()
	key := "action"
	if withScale {
		key = "level"
	}
	o := outcome{name: defName, action: Keep, level: -1}
	if e, ok := f["name"]; ok {
		if s, ok := p.text(e, ctx); ok {
			o.name = s
		}
	}
	e, ok := f[key]
	if !ok {
		if withScale {
			p.errf(n, ctx, "%s needs a level (one of %s)", ctx, oneOf(rs.scale))
		}
		return o
	}
	s, ok := p.text(e, ctx)
	if !ok {
		return o
	}
	if withScale {
		if i, ok := p.levelIndex(e.v, rs, ctx, s); ok {
			o.level = i
		}
		return o
	}
	a, err := ParseAction(s)
	if err != nil {
		p.errf(e.v, ctx, "%v", err)
	}
	o.action = a
	return o
}

func (p *parser) tiers(e entry, rs *RuleSet) []tier {
	items, ok := p.sequence(e, "tiers")
	if !ok {
		return nil
	}
	key := "action"
	if rs.usesScale() {
		key = "level"
	}
	var out []tier
	names := map[string]int{}
	for i, n := range items {
		f := p.fields(n, peekName(n, "tier", i), "a tier", "name", "need", "criteria", key)
		if f == nil {
			continue
		}
		name, ctx := p.itemName(f, "tier", i)
		if !p.require(n, f, ctx, "a tier", "name", "criteria", key) {
			continue
		}
		p.uniqueName(names, n, ctx, "tier", name)
		t := tier{name: name}
		t.out = p.outcome(f, n, rs, ctx, name)
		crit, ok := p.sequence(f["criteria"], ctx)
		if !ok {
			continue
		}
		cnames := map[string]int{}
		for j, cn := range crit {
			cf := p.fields(cn, join(ctx, peekName(cn, "criterion", j)), "a criterion", "name", "when")
			if cf == nil {
				continue
			}
			cname, cctx := p.itemName(cf, "criterion", j)
			cctx = join(ctx, cctx)
			if !p.require(cn, cf, cctx, "a criterion", "name", "when") {
				continue
			}
			p.uniqueName(cnames, cn, cctx, "criterion", cname)
			t.criteria = append(t.criteria, criterion{name: cname, when: p.condition(cf["when"], cctx)})
		}
		t.need = len(t.criteria)
		if ne, ok := f["need"]; ok {
			if k, ok := p.integer(ne.v, ctx, "need"); ok {
				if k < 1 || k > len(crit) {
					p.errf(ne.v, ctx, "need %d must be between 1 and the number of criteria (%d)", k, len(crit))
				}
				t.need = k
			}
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) tables(e entry, rs *RuleSet) []table {
	items, ok := p.sequence(e, "select")
	if !ok {
		return nil
	}
	var out []table
	names := map[string]int{}
	for i, n := range items {
		f := p.fields(n, peekName(n, "table", i), "a table", "name", "when", "floor", "metrics")
		if f == nil {
			continue
		}
		name, ctx := p.itemName(f, "table", i)
		if !p.require(n, f, ctx, "a table", "name", "metrics") {
			continue
		}
		p.uniqueName(names, n, ctx, "table", name)
		t := table{name: name}
		if w, ok := f["when"]; ok {
			t.when = p.condition(w, ctx)
		}
		if fl, ok := f["floor"]; ok {
			if s, ok := p.text(fl, ctx); ok {
				if lvl, ok := p.levelIndex(fl.v, rs, ctx, s); ok {
					t.floor = lvl
				}
			}
		}
		t.metrics = p.metricScales(f["metrics"].v, rs, ctx, t.floor)
		out = append(out, t)
	}
	return out
}

// metricScales reads metric → {level: {ge|gt: number}, …}, cut-points in
// rising order.
func (p *parser) metricScales(n *yaml.Node, rs *RuleSet, ctx string, floor int) []metricScale {
	es, ok := p.mapping(n, ctx, "metrics")
	if !ok {
		return nil
	}
	if len(es) == 0 {
		p.errf(n, ctx, "metrics is empty: list at least one metric with its cut-points")
		return nil
	}
	var out []metricScale
	for _, m := range es {
		mctx := join(ctx, fmt.Sprintf("metric %q", m.key))
		if !p.metricName(m.k, ctx, m.key) {
			continue
		}
		cs, ok := p.mapping(m.v, mctx, "the cut-points")
		if !ok {
			continue
		}
		if len(cs) == 0 {
			p.errf(m.v, mctx, "no cut-points: give at least one level: {ge: number}")
			continue
		}
		ms := metricScale{metric: m.key}
		for _, c := range cs {
			lvl, ok := p.levelIndex(c.k, rs, mctx, c.key)
			if !ok {
				continue
			}
			if lvl <= floor {
				p.errf(c.k, mctx, "level %q is at or below the lowest level this table can give (%s); it needs no cut-point", c.key, rs.scale[floor])
				continue
			}
			iv, ok := p.interval(c.v, mctx, c.key)
			if !ok {
				continue
			}
			if iv.hi.set || !iv.lo.set {
				p.errf(c.v, mctx, "a cut-point is where a level starts: give exactly one of ge or gt")
				continue
			}
			cur := cut{level: lvl, at: iv.lo}
			if k := len(ms.cuts); k > 0 {
				prev := ms.cuts[k-1]
				if cur.level <= prev.level {
					p.errf(c.k, mctx, "level %q comes after %q; list cut-points from the lowest level up", c.key, rs.scale[prev.level])
					continue
				}
				if !cutAbove(prev.at, cur.at) {
					p.errf(c.v, mctx, "the cut-point of %q must be above that of %q", c.key, rs.scale[prev.level])
					continue
				}
			}
			ms.cuts = append(ms.cuts, cur)
		}
		out = append(out, ms)
	}
	return out
}

// cutAbove reports whether lower bound b starts strictly above lower bound a.
func cutAbove(a, b bound) bool {
	return b.value > a.value || (b.value == a.value && a.inclusive && !b.inclusive)
}
