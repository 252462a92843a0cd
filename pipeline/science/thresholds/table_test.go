package thresholds

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
)

func TestWriteTableGolden(t *testing.T) {
	for _, id := range []string{"kz-2020-plan", "kz-2020-monotone", "us-cdc-2022-community-levels"} {
		for _, words := range []bool{false, true} {
			var b bytes.Buffer
			if err := WriteTable(&b, Table(mustLoad(t, id), DefaultRGrid(), DefaultOccupancyGrid()), words); err != nil {
				t.Fatal(err)
			}
			name := "table_" + id + ".txt"
			if words {
				name = "table_" + id + "_words.txt"
			}
			golden.Check(t, filepath.Join("testdata", name), b.Bytes())
		}
	}
}

// TestComparisonInREADME keeps the README's comparison table generated: the
// golden file is the table, and README.md must contain it verbatim.
func TestComparisonInREADME(t *testing.T) {
	var b bytes.Buffer
	plan := Table(mustLoad(t, "kz-2020-plan"), DefaultRGrid(), DefaultOccupancyGrid())
	mono := Table(mustLoad(t, "kz-2020-monotone"), DefaultRGrid(), DefaultOccupancyGrid())
	if err := WriteComparison(&b, plan, mono); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/compare_plan_monotone.md", b.Bytes())
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), b.String()) {
		t.Errorf("README.md does not contain the current comparison table; paste testdata/compare_plan_monotone.md into it")
	}
	if err := WriteComparison(&b, plan, Table(mustLoad(t, "kz-2020-plan"), []float64{1}, []float64{1})); err == nil {
		t.Error("comparing different grids gave no error")
	}
}

func TestCheckJSONShape(t *testing.T) {
	r := Check(mustLoad(t, "kz-2020-plan"), 1.2, 75)
	var b bytes.Buffer
	if err := jsonEncode(&b, r.Summary()); err != nil {
		t.Fatal(err)
	}
	want := `{"action":"strengthen","clause":"plan 1b: R 1.15–1.3 and occupancy 70–90 %"}` + "\n"
	if b.String() != want {
		t.Errorf("got %s want %s", b.String(), want)
	}
}

func jsonEncode(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
