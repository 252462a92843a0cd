package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed events/*.schema.json results/*.schema.json
var schemaFiles embed.FS

// SchemaBaseURL is the $id prefix of the published JSON Schemas.
const SchemaBaseURL = "https://epiwatch.dev/schemas/"

// SchemaFS returns the published JSON Schema files (events/ and results/).
func SchemaFS() fs.FS { return schemaFiles }

// Contract validates raw event JSON against the published JSON Schemas and
// decodes it into an Event. It is safe for concurrent use.
type Contract struct {
	events map[EventType]*jsonschema.Schema
	fast   *fastPath
}

// NewContract compiles the embedded event schemas.
func NewContract() (*Contract, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	err := fs.WalkDir(schemaFiles, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFiles.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("parse schema %s: %w", p, err)
		}
		return c.AddResource(SchemaBaseURL+p, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("load event schemas: %w", err)
	}
	fast, err := newFastPath(schemaFiles)
	if err != nil {
		return nil, err
	}
	ct := &Contract{events: make(map[EventType]*jsonschema.Schema), fast: fast}
	for _, t := range EventTypes {
		url := SchemaBaseURL + path.Join("events", string(t)+".schema.json")
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", url, err)
		}
		ct.events[t] = s
	}
	return ct, nil
}

// Decode checks raw (one JSON object) against the schema of its "type" and
// decodes it. Errors are *ValidationError with one entry per problem, worded
// for the producer: "person.national_id: does not match pattern ...".
//
// Every string of the event is also scanned for personal data outside the
// person fields (FindPersonalData, pii.go): such an event is rejected with
// one problem per field, naming the field and the kind of data, never the
// value — and then with those problems only, since other reasons (a pattern
// not matched, an unknown type) may quote the value.
func (c *Contract) Decode(raw []byte) (*Event, error) {
	e, ok := c.fast.decode(raw)
	if !ok {
		var err error
		if e, err = c.decodeSchema(raw); err != nil {
			return nil, err
		}
	}
	if p := PersonalDataProblems(e); len(p) > 0 {
		return nil, &ValidationError{Problems: p}
	}
	return e, nil
}

// decodeSchema is Decode through the JSON Schema validator: every event the
// fast path gives up on, valid or not.
func (c *Contract) decodeSchema(raw []byte) (*Event, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &ValidationError{Problems: []FieldError{{Reason: "malformed JSON: " + err.Error()}}}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return nil, &ValidationError{Problems: []FieldError{{Reason: fmt.Sprintf("want a JSON object, got %s", jsonKind(inst))}}}
	}
	ts, _ := obj["type"].(string)
	s, ok := c.events[EventType(ts)]
	if !ok {
		if p := personalDataInTree(obj); len(p) > 0 {
			return nil, &ValidationError{Problems: p}
		}
		reason := "required"
		if _, present := obj["type"]; present {
			reason = fmt.Sprintf("unknown event type %v (want %s)", obj["type"], typeList())
		}
		return nil, &ValidationError{Problems: []FieldError{{Field: "type", Reason: reason}}}
	}
	if err := s.Validate(inst); err != nil {
		if p := personalDataInTree(obj); len(p) > 0 {
			return nil, &ValidationError{Problems: p}
		}
		ve, ok := err.(*jsonschema.ValidationError)
		if !ok {
			return nil, &ValidationError{Problems: []FieldError{{Reason: err.Error()}}}
		}
		return nil, &ValidationError{Problems: schemaProblems(ve)}
	}
	var e Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, &ValidationError{Problems: []FieldError{{Reason: err.Error()}}}
	}
	return &e, nil
}

// schemaProblems flattens the validator's output to its leaf errors, one per
// instance location, in a stable order.
func schemaProblems(ve *jsonschema.ValidationError) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	var walk func(u *jsonschema.OutputUnit)
	walk = func(u *jsonschema.OutputUnit) {
		if u.Error != nil && len(u.Errors) == 0 {
			field := strings.ReplaceAll(strings.TrimPrefix(u.InstanceLocation, "/"), "/", ".")
			reason := u.Error.String()
			if k := field + "\x00" + reason; !seen[k] {
				seen[k] = true
				out = append(out, FieldError{Field: field, Reason: reason})
			}
		}
		for i := range u.Errors {
			walk(&u.Errors[i])
		}
	}
	walk(ve.BasicOutput())
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	if len(out) == 0 {
		out = append(out, FieldError{Reason: ve.Error()})
	}
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
