package pseudo

import (
	"encoding/json"
	"io/fs"
	"slices"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// The age bands and sex values Apply writes are the contract's enumerations.
func TestValuesAgreeWithTheSchema(t *testing.T) {
	b, err := fs.ReadFile(schemas.SchemaFS(), "events/common.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs struct {
			Person struct {
				Properties struct {
					AgeBand struct{ Enum []string } `json:"age_band"`
					Sex     struct{ Enum []string } `json:"sex"`
				} `json:"properties"`
			} `json:"person"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Defs.Person.Properties.AgeBand.Enum; !slices.Equal(got, ageBands[:]) {
		t.Errorf("schema age_band enum %v, Apply writes %v", got, ageBands)
	}
	if got := doc.Defs.Person.Properties.Sex.Enum; !slices.Equal(got, []string{SexMale, SexFemale, SexUnknown}) {
		t.Errorf("schema sex enum %v", got)
	}
	for age, want := range map[int]string{0: "0-9", 9: "0-9", 10: "10-19", 79: "70-79", 80: "80+", 130: "80+"} {
		if got := ageBand(age); got != want {
			t.Errorf("ageBand(%d) = %s, want %s", age, got, want)
		}
	}
}
