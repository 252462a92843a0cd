package thresholds

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseError is one problem in a rule file: the file, the line, where in the
// rule set (e.g. `clause "x"`) and what is wrong. Its text reads
//
//	rules.yaml:12: clause "x": unknown action "tighten" (want strengthen, keep or ease)
type ParseError struct {
	File    string // the name given to Parse
	Line    int    // 1-based; 0 when the problem has no single line
	Context string // where in the rule set, e.g. `clause "x"`; may be empty
	Msg     string // what is wrong and, where possible, what is allowed
}

// Error formats the problem as file:line: context: message.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Context != "" {
		b.WriteString(e.Context)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseErrors is every problem found in one rule file, in file order, so a
// user can fix them all in one pass.
type ParseErrors []*ParseError

// Error prints one problem per line.
func (es ParseErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each *ParseError to errors.As and errors.Is.
func (es ParseErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Top-level keys of a rule file.
var (
	commonKeys = []string{"id", "version", "title", "source", "notes", "shape", "r", "flags"}
	shapeKeys  = map[Shape][]string{
		ShapeClauses:  {"clauses", "otherwise"},
		ShapeCriteria: {"scale", "targets", "tiers", "otherwise"},
		ShapeHigherOf: {"scale", "targets", "select"},
		ShapeGateMax:  {"scale", "targets", "gate", "metrics"},
	}
	shapeRequired = map[Shape][]string{
		ShapeClauses:  {"clauses"},
		ShapeCriteria: {"tiers"},
		ShapeHigherOf: {"scale", "select"},
		ShapeGateMax:  {"scale", "gate", "metrics"},
	}
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	metricPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// Parse reads one rule file from data; file names it in messages. It never
// panics: invalid input, including YAML the decoder chokes on, yields
// ParseErrors with line numbers. Unknown keys, actions, shapes, operators,
// flags, flag effects and scale levels are errors; empty or unsatisfiable
// conditions are errors; metric names epiwatch does not compute are accepted
// with a warning (RuleSet.Warnings), because the metric set is open.
func Parse(file string, data []byte) (*RuleSet, error) {
	if file == "" {
		file = "rules.yaml"
	}
	p := &parser{file: file}
	root := p.document(data)
	if root == nil {
		return nil, p.errs
	}
	rs := p.ruleSet(root)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *ParseError) int { return a.Line - b.Line })
		return nil, p.errs
	}
	rs.File = file
	rs.Warnings = p.warns
	return rs, nil
}

type parser struct {
	file  string
	errs  ParseErrors
	warns []string
}

func (p *parser) ruleSet(root *yaml.Node) *RuleSet {
	rs := &RuleSet{Shape: ShapeClauses, RMethod: RCori, RStatistic: RMean}
	es, _ := p.mapping(root, "", "a rule file")
	top := map[string]entry{}
	for _, e := range es {
		top[e.key] = e
	}

	if e, ok := top["shape"]; ok {
		if s, ok := p.text(e, ""); ok {
			if _, known := shapeKeys[Shape(s)]; known {
				rs.Shape = Shape(s)
			} else {
				p.errf(e.v, "", "unknown shape %q (want clauses, higher_of, gate_max or criteria)", s)
				return rs
			}
		}
	}
	allowed := slices.Concat(commonKeys, shapeKeys[rs.Shape])
	all := slices.Clone(commonKeys)
	for _, ks := range shapeKeys {
		all = append(all, ks...)
	}
	for _, e := range es {
		switch {
		case slices.Contains(allowed, e.key):
		case slices.Contains(all, e.key):
			p.errf(e.k, "", "key %q does not apply to shape %s (it takes %s)", e.key, rs.Shape, oneOf(shapeKeys[rs.Shape]))
			delete(top, e.key)
		default:
			p.errf(e.k, "", "unknown key %q (want %s)", e.key, oneOf(allowed))
			delete(top, e.key)
		}
	}
	p.require(root, top, "", "a rule file", "id", "version", "title", "source")
	p.require(root, top, "", "shape "+string(rs.Shape), shapeRequired[rs.Shape]...)

	if e, ok := top["id"]; ok {
		if s, ok := p.text(e, ""); ok {
			if !idPattern.MatchString(s) {
				p.errf(e.v, "", "id %q must be lower-case letters, digits, '.', '_' or '-' (at most 64)", s)
			}
			rs.ID = s
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"version", &rs.Version}, {"title", &rs.Title}, {"source", &rs.Source}, {"notes", &rs.Notes}} {
		if e, ok := top[f.key]; ok {
			if s, ok := p.text(e, ""); ok {
				*f.dst = s
			}
		}
	}
	if e, ok := top["r"]; ok {
		p.rSpec(e, rs)
	}
	if e, ok := top["flags"]; ok {
		rs.flags = p.flags(e)
	}
	if e, ok := top["scale"]; ok {
		rs.scale = p.scale(e)
		rs.targets = make([]int, len(rs.scale))
		for i := range rs.targets {
			rs.targets[i] = i + 1
		}
		if e, ok := top["targets"]; ok && rs.scale != nil {
			p.targets(e, rs)
		}
	} else if e, ok := top["targets"]; ok {
		p.errf(e.k, "", "targets needs a scale")
	}

	_, scaleGiven := top["scale"]
	if scaleGiven && rs.scale == nil {
		return rs // the scale is invalid (reported); what refers to it cannot be checked
	}
	switch rs.Shape {
	case ShapeClauses:
		if e, ok := top["clauses"]; ok {
			rs.clauses = p.clauses(e)
		}
	case ShapeCriteria:
		if e, ok := top["tiers"]; ok {
			rs.tiers = p.tiers(e, rs)
		}
	case ShapeHigherOf:
		if e, ok := top["select"]; ok && rs.scale != nil {
			rs.tables = p.tables(e, rs)
		}
	case ShapeGateMax:
		if e, ok := top["metrics"]; ok && rs.scale != nil {
			ms := p.metricScales(e.v, rs, "metrics", 0)
			rs.tables = []table{{name: "metrics", metrics: ms}}
			if g, ok := top["gate"]; ok {
				if s, ok := p.text(g, ""); ok {
					if !slices.ContainsFunc(ms, func(m metricScale) bool { return m.metric == s }) {
						p.errf(g.v, "", "gate %q must be one of the metrics listed under metrics", s)
					}
					rs.gate = s
				}
			}
		}
	}
	rs.otherwise = outcome{name: "no clause matched", action: Keep, level: -1}
	if rs.Shape == ShapeCriteria {
		rs.otherwise.name = "no tier met"
	}
	if e, ok := top["otherwise"]; ok {
		key := "action"
		if rs.usesScale() {
			key = "level"
		}
		if f := p.fields(e.v, "otherwise", "otherwise", "name", key); f != nil {
			rs.otherwise = p.outcome(f, e.v, rs, "otherwise", rs.otherwise.name)
		}
	} else if rs.Shape == ShapeCriteria && rs.usesScale() {
		p.errf(root, "", "a criteria rule set with a scale needs otherwise: {name: …, level: …} (the level when no tier is met)")
	}
	return rs
}

func (p *parser) rSpec(e entry, rs *RuleSet) {
	f := p.fields(e.v, "r", "r", "method", "statistic", "nowcast")
	if f == nil {
		return
	}
	if m, ok := f["method"]; ok {
		if s, ok := p.text(m, "r"); ok {
			switch RMethod(s) {
			case RCori, RRatio:
				rs.RMethod = RMethod(s)
			default:
				p.errf(m.v, "r", "unknown method %q (want cori or ratio)", s)
			}
		}
	}
	if st, ok := f["statistic"]; ok {
		if s, ok := p.text(st, "r"); ok {
			switch RStatistic(s) {
			case RMean, RBounds:
				rs.RStatistic = RStatistic(s)
			default:
				p.errf(st.v, "r", "unknown statistic %q (want mean or bounds)", s)
			}
			if rs.RStatistic == RBounds && rs.RMethod == RRatio {
				p.errf(st.v, "r", "statistic bounds needs method cori: the ratio R has no credible interval")
			}
		}
	}
	if nc, ok := f["nowcast"]; ok {
		if s, ok := p.text(nc, "r"); ok {
			switch s {
			case "true":
				rs.RNowcast = true
			case "false":
			default:
				p.errf(nc.v, "r", "nowcast must be true or false, got %q", s)
			}
			if rs.RNowcast && rs.RMethod == RRatio {
				p.errf(nc.v, "r", "nowcast needs method cori: the nowcast R is Cori's posterior on the completed counts")
			}
		}
	}
}

func (p *parser) flags(e entry) map[string]FlagEffect {
	es, _ := p.mapping(e.v, "flags", "flags")
	out := map[string]FlagEffect{}
	for _, f := range es {
		if !slices.Contains(KnownFlags(), f.key) {
			p.errf(f.k, "flags", "unknown flag %q (want %s)", f.key, oneOf(KnownFlags()))
			continue
		}
		s, ok := p.text(f, "flags")
		if !ok {
			continue
		}
		switch eff := FlagEffect(s); eff {
		case FlagIgnore, FlagNoEase, FlagHold:
			out[f.key] = eff
		default:
			p.errf(f.v, "flags", "flag %s: unknown effect %q (want no_ease, hold or ignore)", f.key, s)
		}
	}
	return out
}

func (p *parser) scale(e entry) []string {
	items, ok := p.sequence(e, "scale")
	if !ok {
		return nil
	}
	var out []string
	for _, n := range items {
		if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" || n.ShortTag() == "!!null" {
			p.errf(n, "scale", "each level must be a name, not %s", kindName(n))
			return nil
		}
		name := strings.TrimSpace(n.Value)
		if slices.Contains(out, name) {
			p.errf(n, "scale", "level %q appears twice", name)
			return nil
		}
		out = append(out, name)
	}
	if len(out) < 2 {
		p.errf(e.v, "scale", "a scale needs at least two levels")
		return nil
	}
	return out
}

func (p *parser) levelIndex(n *yaml.Node, rs *RuleSet, ctx, name string) (int, bool) {
	i := slices.Index(rs.scale, name)
	if i < 0 {
		p.errf(n, ctx, "unknown level %q (want %s)", name, oneOf(rs.scale))
		return 0, false
	}
	return i, true
}

func (p *parser) targets(e entry, rs *RuleSet) {
	es, ok := p.mapping(e.v, "targets", "targets")
	if !ok {
		return
	}
	got := make([]bool, len(rs.scale))
	for _, t := range es {
		i, ok := p.levelIndex(t.k, rs, "targets", t.key)
		if !ok {
			continue
		}
		v, ok := p.integer(t.v, "targets", "the target of "+t.key)
		if !ok {
			continue
		}
		if v < 1 {
			p.errf(t.v, "targets", "the target of %s must be a restriction level of 1 or more, not %d", t.key, v)
			continue
		}
		rs.targets[i], got[i] = v, true
	}
	for i, g := range got {
		if !g {
			p.errf(e.v, "targets", "no target for level %q; give every level of the scale a restriction level", rs.scale[i])
			return
		}
		if i > 0 && rs.targets[i] < rs.targets[i-1] {
			p.errf(e.v, "targets", "the target of %q (%d) is below that of %q (%d): a worse level must not call for milder restrictions",
				rs.scale[i], rs.targets[i], rs.scale[i-1], rs.targets[i-1])
			return
		}
	}
}
