// YAML helpers of the rule-file parser: decoding one document, walking mappings
// and sequences, reading scalars, and reporting errors with their line.

package thresholds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
