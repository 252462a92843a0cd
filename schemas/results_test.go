package schemas_test

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestResultSchemasMatchTypes: the published JSON Schemas of the results
// (results/*.schema.json) name exactly the JSON fields of the Go types the
// processor, the decider and the alerter write, so the contract cannot drift
// from the code.
func TestResultSchemasMatchTypes(t *testing.T) {
	for file, v := range map[string]any{
		"results/indicator.schema.json": schemas.Indicator{},
		"results/decision.schema.json":  schemas.Decision{},
		"results/alert.schema.json":     schemas.AlertRecord{},
		"results/signal.schema.json":    schemas.Signal{},
	} {
		b, err := fs.ReadFile(schemas.SchemaFS(), file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var inSchema, inGo []string
		for k := range doc.Properties {
			inSchema = append(inSchema, k)
		}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				inGo = append(inGo, name)
			}
		}
		slices.Sort(inSchema)
		slices.Sort(inGo)
		if !slices.Equal(inSchema, inGo) {
			t.Errorf("%s names %v\n%s has %v", file, inSchema, rt.Name(), inGo)
		}
	}
}
