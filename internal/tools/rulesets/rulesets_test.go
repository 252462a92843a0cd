package rulesets

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
)

func TestParseGrid(t *testing.T) {
	def := []float64{1, 2}
	for _, tt := range []struct {
		in   string
		want []float64
		err  bool
	}{
		{"", def, false},
		{"  ", def, false},
		{"0.9, 1,1.2", []float64{0.9, 1, 1.2}, false},
		{"1,x", nil, true},
	} {
		got, err := parseGrid(tt.in, def)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseGrid(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCheck(t *testing.T) {
	both := func(string) bool { return true }
	var out bytes.Buffer
	if err := Check(CheckOptions{RuleSet: thresholds.DefaultID, R: 1.2, Occupancy: 75, JSON: true, Changed: both}, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["action"] == nil || got["clause"] == nil {
		t.Errorf("--json printed %q (%v)", out.String(), err)
	}
	out.Reset()
	if err := Check(CheckOptions{RuleSet: thresholds.DefaultID, R: 1.2, Occupancy: 75, Changed: both}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\nclause: ") || !strings.Contains(out.String(), "rule set: "+thresholds.DefaultID) {
		t.Errorf("check printed:\n%s", out.String())
	}
	for name, o := range map[string]CheckOptions{
		"no --occupancy":   {RuleSet: thresholds.DefaultID, Changed: func(f string) bool { return f == "r" }},
		"unknown rule set": {RuleSet: "no-such-set", Changed: both},
	} {
		if err := Check(o, &bytes.Buffer{}); !cli.IsBadInput(err) {
			t.Errorf("%s: %v, want bad input", name, err)
		}
	}
}

func TestTableAndList(t *testing.T) {
	if err := Table(TableOptions{RuleSet: thresholds.DefaultID, RGrid: "1,x"}, &bytes.Buffer{}); !cli.IsBadInput(err) || !strings.Contains(err.Error(), "--r-grid") {
		t.Errorf("bad grid: %v", err)
	}
	var out bytes.Buffer
	if err := Table(TableOptions{RuleSet: thresholds.DefaultID, RGrid: "0.9,1.3", OccupancyGrid: "40,95", Words: true}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "strengthen") {
		t.Errorf("table --words:\n%s", out.String())
	}
	out.Reset()
	if err := List(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "ID ") || !strings.Contains(out.String(), thresholds.DefaultID+" (default)") {
		t.Errorf("list:\n%s", out.String())
	}
}
