package schemas_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

func decodeAndValidate(t *testing.T, c *schemas.Contract, raw []byte) (*schemas.Event, error) {
	t.Helper()
	e, err := c.Decode(raw)
	if err != nil {
		return nil, err
	}
	v := schemas.Validator{Regions: schemas.DefaultRegions(), Now: func() time.Time { return time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC) }}
	return e, v.Validate(e)
}

// Both the JSON Schemas and the Go validation must accept every valid example
// and reject every invalid one with the expected reason.
func TestContractExamples(t *testing.T) {
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	valid, _ := filepath.Glob("testdata/valid/*.json")
	invalid, _ := filepath.Glob("testdata/invalid/*.json")
	if len(valid) < 5 || len(invalid) < 10 {
		t.Fatalf("testdata missing: %d valid, %d invalid", len(valid), len(invalid))
	}
	for _, f := range valid {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			e, err := decodeAndValidate(t, c, raw)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if want := strings.TrimSuffix(filepath.Base(f), ".json"); string(e.Type) != want {
				t.Fatalf("type %q, want %q", e.Type, want)
			}
			if e.Date().IsZero() {
				t.Fatal("event has no date")
			}
		})
	}
	for _, f := range invalid {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			want, _ := os.ReadFile(strings.TrimSuffix(f, ".json") + ".reason")
			_, err := decodeAndValidate(t, c, raw)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
				t.Fatalf("reason %q does not mention %q", err, strings.TrimSpace(string(want)))
			}
		})
	}
}

func TestRegionsReference(t *testing.T) {
	rs := schemas.DefaultRegions()
	if n := len(rs.Country("KZ")); n != 20 {
		t.Errorf("Kazakhstan: %d regions, want 17 oblasts + 3 cities", n)
	}
	if n := len(rs.Country("KG")); n != 9 {
		t.Errorf("Kyrgyzstan: %d regions, want 7 oblasts + Bishkek + Osh", n)
	}
	total := 0
	for _, r := range rs.Country("KZ") {
		total += r.Population
	}
	if total < 19_000_000 || total > 21_000_000 {
		t.Errorf("Kazakhstan population %d, implausible", total)
	}
	ext, err := rs.With([]schemas.Region{{Code: "KZ-75", Country: "KZ", NameEN: "Almaty", Population: 2300000}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := ext.Get("KZ-75"); r.Population != 2300000 {
		t.Errorf("override not applied: %+v", r)
	}
	if _, err := rs.With([]schemas.Region{{Code: "bad", Population: 1, NameEN: "x"}}); err == nil {
		t.Error("bad code accepted")
	}
}

func TestDateJSON(t *testing.T) {
	d := schemas.MustDate("2020-07-01")
	b, _ := d.MarshalJSON()
	if string(b) != `"2020-07-01"` {
		t.Fatalf("marshal %s", b)
	}
	var back schemas.Date
	if err := back.UnmarshalJSON(b); err != nil || back != d {
		t.Fatalf("round trip %v %v", back, err)
	}
	if _, err := schemas.ParseDate("2020-13-01"); err == nil {
		t.Fatal("month 13 accepted")
	}
}
