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
// path, never a weaker check. On the ingest path the validator and the
// second decode were about a fifth of the pipeline's CPU per event.

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

// fastValue is one scanned JSON value.
type fastValue struct {
	kind byte // 's', 'i', 'b', 'o'
	str  string
	num  int64
	obj  []fastMember
}

// fastMember's key is a view of the scanned bytes, not a copy: keys are only
// compared, and copying them was most of the scanner's allocations.
type fastMember struct {
	key []byte
	val fastValue
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

// set stores one member in e as json.Unmarshal would; false for a key it
// does not know or a value it would not take in that field.
func (e *Event) set(m fastMember) bool {
	v := m.val
	str := func(dst *string) bool {
		*dst = v.str
		return v.kind == 's'
	}
	date := func(dst *Date) bool {
		var err error
		*dst, err = ParseDate(v.str)
		return v.kind == 's' && err == nil
	}
	count := func(dst **int) bool {
		n := int(v.num)
		*dst = &n
		return v.kind == 'i'
	}
	switch string(m.key) {
	case "schema_version":
		e.SchemaVersion = int(v.num)
		return v.kind == 'i'
	case "event_id":
		return str(&e.EventID)
	case "type":
		e.Type = EventType(v.str)
		return v.kind == 's'
	case "region":
		return str(&e.Region)
	case "source":
		return str(&e.Source)
	case "person", "index_person", "contact_person":
		if v.kind != 'o' {
			return false
		}
		p := &Person{}
		for i, pm := range v.obj {
			for _, n := range v.obj[:i] {
				if bytes.Equal(n.key, pm.key) {
					return false
				}
			}
			if !p.set(pm) {
				return false
			}
		}
		switch string(m.key) {
		case "person":
			e.Person = p
		case "index_person":
			e.IndexPerson = p
		default:
			e.ContactPerson = p
		}
		return true
	case "report_date":
		return date(&e.ReportDate)
	case "onset_date":
		return date(&e.OnsetDate)
	case "imported":
		e.Imported = v.num == 1
		return v.kind == 'b'
	case "classification":
		return str(&e.Classification)
	case "contact_date":
		return date(&e.ContactDate)
	case "setting":
		return str(&e.Setting)
	case "sample_date":
		return date(&e.SampleDate)
	case "result_date":
		return date(&e.ResultDate)
	case "test_kind":
		return str(&e.TestKind)
	case "result":
		return str(&e.Result)
	case "lab":
		return str(&e.Lab)
	case "facility_id":
		return str(&e.FacilityID)
	case "facility_name":
		return str(&e.FacilityName)
	case "snapshot_time":
		if v.kind != 's' || !plainDateTime(v.str) {
			return false
		}
		t, err := time.Parse(time.RFC3339, v.str)
		e.SnapshotTime = &t
		return err == nil
	case "bed_kind":
		return str(&e.BedKind)
	case "total":
		return count(&e.Total)
	case "occupied":
		return count(&e.Occupied)
	case "dose_number":
		e.DoseNumber = int(v.num)
		return v.kind == 'i'
	case "vaccine":
		return str(&e.Vaccine)
	case "vaccination_date":
		return date(&e.VaccinationDate)
	case "supersedes":
		return str(&e.Supersedes)
	case "feed":
		e.Feed = EventType(v.str)
		return v.kind == 's'
	case "retracts":
		return str(&e.Retracts)
	case "retraction_reason":
		return str(&e.RetractionReason)
	case "facility_status":
		return str(&e.FacilityStatus)
	case "effective_date":
		return date(&e.EffectiveDate)
	case "capacity_infectious":
		return count(&e.CapacityInfectious)
	case "capacity_icu":
		return count(&e.CapacityICU)
	case "capacity_provisional":
		return count(&e.CapacityProvisional)
	}
	return false
}

func (p *Person) set(m fastMember) bool {
	var dst *string
	switch string(m.key) {
	case "national_id":
		dst = &p.NationalID
	case "birth_date":
		dst = &p.BirthDate
	case "name":
		dst = &p.Name
	case "phone":
		dst = &p.Phone
	case "address":
		dst = &p.Address
	case "pseudonym":
		dst = &p.Pseudonym
	case "key_id":
		dst = &p.KeyID
	case "age_band":
		dst = &p.AgeBand
	case "sex":
		dst = &p.Sex
	case "district":
		dst = &p.District
	default:
		return false
	}
	*dst = m.val.str
	return m.val.kind == 's'
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

// plainEvent sets every member; false for a repeated key (json.Unmarshal
// would overwrite or merge) or anything set refuses.
func plainEvent(members []fastMember) (*Event, bool) {
	e := &Event{}
	for i, m := range members {
		for _, n := range members[:i] {
			if bytes.Equal(n.key, m.key) {
				return nil, false
			}
		}
		if !e.set(m) {
			return nil, false
		}
	}
	return e, true
}

// fastScanner reads the plain JSON the fast path takes: objects of strings
// without escapes, integers and booleans. Anything else (arrays, null,
// fractions, exponents, escapes, invalid UTF-8) gives up.
type fastScanner struct {
	b []byte
	i int
	// buf[0] holds the members of the event last read, buf[k] those of its
	// k-th nested object (a contact has two persons); each is reused by the
	// next event, so what object returns is valid until the next reset.
	buf    [][]fastMember
	nested int
}

// maxNested and maxMembers bound what the scanner reads of one event (none
// has more than two persons or a few dozen properties), so that the buffers
// it keeps stay small whatever it was given; beyond them it gives up.
const (
	maxNested  = 4
	maxMembers = 64
)

// reset readies the scanner for b, keeping its buffers.
func (s *fastScanner) reset(b []byte) {
	s.b, s.i, s.nested = b, 0, 0
}

// release drops every reference to the input (the members' keys are views
// of it), so that a kept scanner does not keep a request body alive.
func (s *fastScanner) release() {
	s.b = nil
	for k := range s.buf {
		clear(s.buf[k][:cap(s.buf[k])])
	}
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {"key": value, ...}; depth 0 is the event, 1 a person.
func (s *fastScanner) object(depth int) ([]fastMember, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	slot := 0
	if depth > 0 {
		if s.nested == maxNested {
			return nil, false
		}
		s.nested++
		slot = s.nested
	}
	if slot == len(s.buf) { // slots are taken in order, one at a time
		s.buf = append(s.buf, make([]fastMember, 0, 12))
	}
	s.i++
	members := s.buf[slot][:0]
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.buf[slot] = members
		return members, true
	}
	for {
		s.ws()
		key, ok := s.strBytes()
		if !ok {
			return nil, false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, false
		}
		s.i++
		s.ws()
		if s.i >= len(s.b) {
			return nil, false
		}
		var v fastValue
		switch c := s.b[s.i]; {
		case c == '"':
			v.kind = 's'
			v.str, ok = s.str()
		case c == '-' || c >= '0' && c <= '9':
			v.kind = 'i'
			v.num, ok = s.integer()
		case c == 't' || c == 'f':
			v.kind = 'b'
			ok = s.literal("true") || s.literal("false")
			if ok && c == 't' {
				v.num = 1
			}
		case c == '{' && depth == 0:
			v.kind = 'o'
			v.obj, ok = s.object(depth + 1)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		if len(members) == maxMembers {
			return nil, false
		}
		members = append(members, fastMember{key: key, val: v})
		s.ws()
		if s.i >= len(s.b) {
			return nil, false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.buf[slot] = members
			return members, true
		default:
			return nil, false
		}
	}
}

// str reads a string without escapes or control characters, valid UTF-8.
func (s *fastScanner) str() (string, bool) {
	v, ok := s.strBytes()
	return string(v), ok
}

// strBytes is str without the copy: its bytes are the scanned input's.
func (s *fastScanner) strBytes() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// integer reads -?(0|[1-9][0-9]*) of at most 15 digits, with no fraction or
// exponent following.
func (s *fastScanner) integer() (int64, bool) {
	j := s.i
	neg := false
	if s.b[j] == '-' {
		neg = true
		j++
	}
	start := j
	var n int64
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 15 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}

func (s *fastScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}
