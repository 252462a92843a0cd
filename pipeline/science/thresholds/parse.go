package thresholds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
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

func (p *parser) errf(n *yaml.Node, ctx, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Context: ctx, Msg: fmt.Sprintf(format, args...)})
}

// document decodes exactly one YAML document and returns its root mapping.
func (p *parser) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 is not ours; whatever it does with hostile input, a rule
		// file must come back as an error, not a crash.
		if r := recover(); r != nil {
			root = nil
			p.errf(nil, "", "the YAML decoder failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errf(nil, "", "the file is empty; a rule file needs at least id, version, title, source and its rules")
		} else {
			p.yamlErr(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlErr(err)
		return nil
	default:
		p.errf(&extra, "", "a second YAML document starts here; put one rule set in each file")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errf(&doc, "", "the file has no content")
		return nil
	}
	r := doc.Content[0]
	if !p.noAliases(r) {
		return nil
	}
	if r.Kind != yaml.MappingNode {
		p.errf(r, "", "a rule file must be a mapping (id: …, version: …), not %s", kindName(r))
		return nil
	}
	return r
}

func (p *parser) yamlErr(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Msg: "invalid YAML: " + m[2]})
		return
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

// noAliases rejects anchors and aliases: they make line numbers ambiguous and
// let a small file expand into a huge one.
func (p *parser) noAliases(n *yaml.Node) bool {
	ok := true
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode || n.Anchor != "" {
			p.errf(n, "", "anchors and aliases (&name, *name) are not supported in rule files; write the value out")
			ok = false
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return ok
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!str":
			return fmt.Sprintf("the text %q", n.Value)
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// oneOf renders a list of choices: "a, b or c".
func oneOf(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

func join(ctx, sub string) string {
	if ctx == "" {
		return sub
	}
	return ctx + ": " + sub
}

type entry struct {
	key  string
	k, v *yaml.Node
}

// mapping returns the entries of a mapping node in file order, reporting
// anything that is not a mapping, non-scalar keys and duplicate keys.
func (p *parser) mapping(n *yaml.Node, ctx, what string) ([]entry, bool) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, ctx, "%s must be a mapping (key: value), not %s", what, kindName(n))
		return nil, false
	}
	seen := map[string]int{}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k, ctx, "%s: keys must be plain names", what)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errf(k, ctx, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, entry{k.Value, k, v})
	}
	return out, true
}

// fields reads a mapping with a fixed set of keys; unknown keys are errors.
// It returns nil when n is not a mapping (already reported).
func (p *parser) fields(n *yaml.Node, ctx, what string, allowed ...string) map[string]entry {
	es, ok := p.mapping(n, ctx, what)
	if !ok {
		return nil
	}
	m := map[string]entry{}
	for _, e := range es {
		if !slices.Contains(allowed, e.key) {
			p.errf(e.k, ctx, "unknown key %q in %s (want %s)", e.key, what, oneOf(allowed))
			continue
		}
		m[e.key] = e
	}
	return m
}

func (p *parser) require(n *yaml.Node, m map[string]entry, ctx, what string, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if _, has := m[k]; !has {
			p.errf(n, ctx, "%s needs %q", what, k)
			ok = false
		}
	}
	return ok
}

// text reads a non-empty scalar.
func (p *parser) text(e entry, ctx string) (string, bool) {
	if e.v.Kind != yaml.ScalarNode || e.v.ShortTag() == "!!null" {
		p.errf(e.v, ctx, "%s must be a text value, not %s", e.key, kindName(e.v))
		return "", false
	}
	s := strings.TrimSpace(e.v.Value)
	if s == "" {
		p.errf(e.v, ctx, "%s is empty", e.key)
		return "", false
	}
	return s, true
}

// decodeScalar decodes a scalar node, turning any decoder panic into an error.
func decodeScalar(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return n.Decode(v)
}

// number reads a finite number.
func (p *parser) number(n *yaml.Node, ctx, what string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		p.errf(n, ctx, "%s must be a number, not %s", what, kindName(n))
		return 0, false
	}
	var f float64
	if err := decodeScalar(n, &f); err != nil {
		p.errf(n, ctx, "%s: %q is not a number", what, n.Value)
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		p.errf(n, ctx, "%s must be a finite number, not %q", what, n.Value)
		return 0, false
	}
	return f, true
}

// integer reads a whole number.
func (p *parser) integer(n *yaml.Node, ctx, what string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || decodeScalar(n, &i) != nil {
		p.errf(n, ctx, "%s must be a whole number, not %s", what, kindName(n))
		return 0, false
	}
	return i, true
}

func (p *parser) sequence(e entry, ctx string) ([]*yaml.Node, bool) {
	if e.v.Kind != yaml.SequenceNode {
		p.errf(e.v, ctx, "%s must be a list, not %s", e.key, kindName(e.v))
		return nil, false
	}
	if len(e.v.Content) == 0 {
		p.errf(e.v, ctx, "%s is an empty list", e.key)
		return nil, false
	}
	return e.v.Content, true
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
