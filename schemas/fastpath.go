package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The fast path decodes the events that are plainly valid — every keyword
// of their schema checked on the bytes, no generic JSON tree, one pass — and
// gives up on anything else, which then takes the JSON Schema validator's
// path and gets its worded reasons. Giving up is always allowed; accepting
// is allowed only where the validator would accept and json.Unmarshal would
// decode the same Event (FuzzFastPathAgrees holds it to that).
//
// Its rules are read from the same embedded schema files, so a changed
// schema changes them too. A keyword they do not know makes that property
// (or, at the object level, the whole event type) always take the slow
// path, never a weaker check. It exists because the validator and the
// second decode were a large share of ingest's CPU per event (README,
// "Performance").

// fastRule checks one property's value.
type fastRule struct {
	slow     bool // a keyword the fast path cannot check: always give up
	kind     byte // 's' string, 'i' integer, 'b' boolean, 'o' object
	enum     []string
	constStr *string
	constInt *int64
	minLen   int
	maxLen   int // -1: none
	pattern  *regexp.Regexp
	format   string
	min, max *int64
	object   *fastObject
}

// fastObject checks an object with a closed set of properties.
type fastObject struct {
	props    map[string]*fastRule
	required []string
}

// fastPath holds the rules of each event type; nil entries always give up.
type fastPath struct {
	events map[EventType]*fastObject
	// scanners keeps scanners, with their member buffers, between decodes:
	// ingest's requests decode side by side.
	scanners sync.Pool
}

// newFastPath reads the rules from the embedded schemas.
func newFastPath(files fs.FS) (*fastPath, error) {
	docs := map[string]map[string]any{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("parse schema %s: %w", p, err)
		}
		docs[p] = doc
		return nil
	})
	if err != nil {
		return nil, err
	}
	fp := &fastPath{events: map[EventType]*fastObject{}}
	for _, t := range EventTypes {
		file := path.Join("events", string(t)+".schema.json")
		doc, ok := docs[file]
		if !ok {
			return nil, fmt.Errorf("fast path: no schema %s", file)
		}
		r := fastRuleOf(docs, file, doc)
		if !r.slow && r.kind == 'o' {
			fp.events[t] = r.object
		}
	}
	return fp, nil
}

// fastRuleOf translates one schema (in file) into a rule.
func fastRuleOf(docs map[string]map[string]any, file string, s map[string]any) *fastRule {
	r := &fastRule{maxLen: -1}
	if ref, ok := s["$ref"].(string); ok {
		target, tfile := resolveRef(docs, file, ref)
		if target == nil {
			return &fastRule{slow: true}
		}
		*r = *fastRuleOf(docs, tfile, target)
		for k := range s {
			switch k {
			case "$ref", "title", "description":
			default:
				// Keywords beside a $ref apply as well; the rule would
				// have to combine them. No schema of ours does that.
				r.slow = true
			}
		}
		return r
	}
	for k, v := range s {
		switch k {
		case "$ref", "$schema", "$id", "$defs", "title", "description":
		case "type":
			switch v {
			case "string":
				r.kind = 's'
			case "integer":
				r.kind = 'i'
			case "boolean":
				r.kind = 'b'
			case "object":
				r.kind = 'o'
			default:
				r.slow = true
			}
		case "const":
			switch c := v.(type) {
			case string:
				r.constStr = &c
			case float64:
				n := int64(c)
				if float64(n) != c {
					r.slow = true
				}
				r.constInt = &n
			default:
				r.slow = true
			}
		case "enum":
			list, _ := v.([]any)
			for _, e := range list {
				es, ok := e.(string)
				if !ok {
					r.slow = true
				}
				r.enum = append(r.enum, es)
			}
			if len(list) == 0 {
				r.slow = true
			}
		case "minLength", "maxLength", "minimum", "maximum":
			f, ok := v.(float64)
			n := int64(f)
			if !ok || float64(n) != f {
				r.slow = true
				continue
			}
			switch k {
			case "minLength":
				r.minLen = int(n)
			case "maxLength":
				r.maxLen = int(n)
			case "minimum":
				r.min = &n
			case "maximum":
				r.max = &n
			}
		case "pattern":
			p, _ := v.(string)
			re, err := regexp.Compile(p)
			if err != nil {
				r.slow = true
				continue
			}
			r.pattern = re
		case "format":
			switch v {
			case "date", "date-time":
				r.format = v.(string)
			default:
				r.slow = true
			}
		case "properties":
			props, _ := v.(map[string]any)
			r.object = &fastObject{props: map[string]*fastRule{}}
			for name, ps := range props {
				m, ok := ps.(map[string]any)
				if !ok {
					r.slow = true
					continue
				}
				r.object.props[name] = fastRuleOf(docs, file, m)
			}
		case "required", "additionalProperties":
			// Read below, with properties.
		default:
			r.slow = true
		}
	}
	if r.object != nil || s["required"] != nil || s["additionalProperties"] != nil {
		// Only closed objects: every property is known to the rules.
		if r.object == nil || s["additionalProperties"] != false || r.kind != 'o' {
			r.slow = true
		} else {
			req, _ := s["required"].([]any)
			for _, q := range req {
				name, ok := q.(string)
				if !ok || r.object.props[name] == nil {
					r.slow = true
					continue
				}
				r.object.required = append(r.object.required, name)
			}
		}
	}
	if r.kind == 0 && r.constStr != nil {
		r.kind = 's'
	}
	if r.kind == 0 || r.kind == 'o' && r.object == nil {
		r.slow = true
	}
	return r
}

// resolveRef finds "#/$defs/x" or "other.schema.json#/$defs/x".
func resolveRef(docs map[string]map[string]any, file, ref string) (map[string]any, string) {
	target, frag, ok := strings.Cut(ref, "#")
	if !ok || !strings.HasPrefix(frag, "/$defs/") || strings.Count(frag, "/") != 2 {
		return nil, ""
	}
	if target != "" {
		file = path.Join(path.Dir(file), target)
	}
	doc := docs[file]
	defs, _ := doc["$defs"].(map[string]any)
	def, _ := defs[strings.TrimPrefix(frag, "/$defs/")].(map[string]any)
	return def, file
}

// decode returns the event and true, or false to take the slow path.
func (fp *fastPath) decode(raw []byte) (*Event, bool) {
	sc, _ := fp.scanners.Get().(*fastScanner)
	if sc == nil {
		sc = new(fastScanner)
	}
	defer func() {
		sc.release()
		fp.scanners.Put(sc)
	}()
	sc.reset(raw)
	sc.ws()
	members, ok := sc.object(0)
	if !ok {
		return nil, false
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return nil, false
	}
	var typ string
	for _, m := range members {
		if string(m.key) == "type" && m.val.kind == 's' {
			typ = m.val.str
		}
	}
	rules := fp.events[EventType(typ)]
	if rules == nil || !rules.check(members) {
		return nil, false
	}
	e := &Event{}
	for _, m := range members {
		if !e.set(m) {
			return nil, false
		}
	}
	return e, true
}

// check applies an object rule: known properties only, each once and valid,
// every required one present.
func (o *fastObject) check(members []fastMember) bool {
	for i, m := range members {
		r := o.props[string(m.key)]
		if r == nil || !r.check(m.val) {
			return false
		}
		for _, n := range members[:i] {
			if bytes.Equal(n.key, m.key) {
				return false
			}
		}
	}
	for _, q := range o.required {
		found := false
		for _, m := range members {
			found = found || string(m.key) == q
		}
		if !found {
			return false
		}
	}
	return true
}

func (r *fastRule) check(v fastValue) bool {
	if r.slow || v.kind != r.kind {
		return false
	}
	switch v.kind {
	case 's':
		s := v.str
		if r.constStr != nil && s != *r.constStr {
			return false
		}
		if r.enum != nil {
			in := false
			for _, e := range r.enum {
				in = in || s == e
			}
			if !in {
				return false
			}
		}
		if r.minLen > 0 || r.maxLen >= 0 {
			n := utf8.RuneCountInString(s)
			if n < r.minLen || r.maxLen >= 0 && n > r.maxLen {
				return false
			}
		}
		if r.pattern != nil && !r.pattern.MatchString(s) {
			return false
		}
		switch r.format {
		case "date":
			if _, err := time.Parse(DateLayout, s); err != nil {
				return false
			}
		case "date-time":
			if !plainDateTime(s) {
				return false
			}
		}
	case 'i':
		if r.constInt != nil && v.num != *r.constInt || r.min != nil && v.num < *r.min || r.max != nil && v.num > *r.max || r.enum != nil {
			return false
		}
	case 'b':
		if r.enum != nil || r.constStr != nil || r.constInt != nil {
			return false
		}
	case 'o':
		return r.object.check(v.obj)
	}
	return true
}

// plainDateTime accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM) with every
// part in range: a form both the schema's date-time format and Go's RFC 3339
// parser (what json.Unmarshal uses) accept. Anything else gives up.
func plainDateTime(s string) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	if _, err := time.Parse(DateLayout, s[:10]); err != nil {
		return false
	}
	if !digitsIn(s[11:13], 23) || !digitsIn(s[14:16], 59) || !digitsIn(s[17:19], 59) {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && digitsIn(rest[1:3], 23) && digitsIn(rest[4:6], 59):
	default:
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// digitsIn reports whether s is two digits making at most max.
func digitsIn(s string, max int) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && int(s[0]-'0')*10+int(s[1]-'0') <= max
}

// UnmarshalEvent decodes an event as json.Unmarshal does — the stream's
// pseudonymised form, which no producer schema describes — taking the fast
// scanner for plain JSON and json.Unmarshal for anything else; the result
// is the same either way (FuzzUnmarshalEventAgrees). The processor and the
// sink decode every event with an EventDecoder, which is the same.
func UnmarshalEvent(data []byte) (*Event, error) {
	var d EventDecoder
	return d.Unmarshal(data)
}

// EventDecoder is UnmarshalEvent for one goroutine decoding event after
// event: it keeps the scanner's member buffers from one event to the next,
// which were most of what decoding allocated. The zero value is ready; not
// safe for concurrent use.
type EventDecoder struct{ sc fastScanner }

// Unmarshal is UnmarshalEvent. The event shares nothing with the decoder.
func (d *EventDecoder) Unmarshal(data []byte) (*Event, error) {
	sc := &d.sc
	sc.reset(data)
	defer sc.release()
	sc.ws()
	if members, ok := sc.object(0); ok {
		sc.ws()
		if e, ok := plainEvent(members); ok && sc.i == len(sc.b) {
			return e, nil
		}
	}
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}
