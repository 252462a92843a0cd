package thresholds

import (
	"errors"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

func TestShippedRuleSets(t *testing.T) {
	infos, err := List()
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []string{
		"kz-2020-monotone", "kz-2020-plan", "kz-2020-plan-bounds", "ru-rpn-2020-stages",
		"us-can-2021-risk-levels", "us-cdc-2022-community-levels", "who-2020-positivity",
	}
	var ids []string
	for _, in := range infos {
		ids = append(ids, in.ID)
		rs := mustLoad(t, in.ID)
		if len(rs.Warnings) > 0 {
			t.Errorf("%s: warnings %q", in.ID, rs.Warnings)
		}
		if len(rs.Source) < 40 {
			t.Errorf("%s: source %q is too short to be a citation", in.ID, rs.Source)
		}
		if in.Default != (in.ID == DefaultID) {
			t.Errorf("%s: default %v", in.ID, in.Default)
		}
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("List ids %v, want %v", ids, wantIDs)
	}
	// Each file is named after its id, so Load(id) finds it.
	files, _ := fs.Glob(shipped, "rulesets/*.yaml")
	for _, f := range files {
		rs, err := loadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(path.Base(f), ".yaml"); rs.ID != want {
			t.Errorf("%s has id %q", f, rs.ID)
		}
	}
	rs, err := Default()
	if err != nil || rs.ID != "kz-2020-monotone" {
		t.Errorf("Default: %v %v", rs, err)
	}
}

func TestLoadAndOpen(t *testing.T) {
	if _, err := Load("kz-2021-plan"); err == nil || !strings.Contains(err.Error(), "no shipped rule set has this id") {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := Load("../etc/passwd"); err == nil {
		t.Error("a path was accepted as an id")
	}
	read := func(p string) ([]byte, error) {
		if p == "mine.yaml" {
			return []byte(head + "clauses:\n  - {name: a, action: ease, when: {r: {lt: 1}}}\n"), nil
		}
		return nil, os.ErrNotExist
	}
	if rs, err := Open("kz-2020-monotone", read); err != nil || rs.ID != "kz-2020-monotone" {
		t.Errorf("Open id: %v %v", rs, err)
	}
	if rs, err := Open("mine.yaml", read); err != nil || rs.ID != "x" || rs.File != "mine.yaml" {
		t.Errorf("Open file: %v %v", rs, err)
	}
	if _, err := Open("nope.yaml", read); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open missing file: %v", err)
	}
}

// TestPure keeps the package free of I/O, clocks, randomness and goroutines:
// only the listed imports are allowed outside tests. That no file reads the
// clock or starts a goroutine is checked for every science package by
// internal/repotest (TestLayers).
func TestPure(t *testing.T) {
	allowed := []string{
		"bufio", "bytes", "embed", "errors", "fmt", "io", "io/fs", "math", "path", "regexp",
		"slices", "strconv", "strings", "time", "gopkg.in/yaml.v3",
		// the contract's names (the data-quality flags), as the layer table allows
		"github.com/epiwatch/epiwatch/schemas",
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(allowed, p) {
				t.Errorf("%s imports %s; the package must stay pure", name, p)
			}
		}
	}
}

// TestContractNames catches drift between this package and schemas: the
// action strings stored in decisions and the metric names, which are
// schemas.Indicator's JSON fields so the processor can map them one to one.
func TestContractNames(t *testing.T) {
	for a, s := range map[Action]string{Strengthen: schemas.ActionStrengthen, Keep: schemas.ActionKeep, Ease: schemas.ActionEase} {
		if string(a) != s {
			t.Errorf("action %q, schemas says %q", a, s)
		}
	}
	tags := map[string]bool{}
	typ := reflect.TypeFor[schemas.Indicator]()
	for i := range typ.NumField() {
		tags[strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	notInIndicator := []string{MetricR, MetricPositivityPrev7dPct, MetricNewAdmissions7dPer100k, MetricInpatientBedsCovidPct, MetricRestrictionLevel}
	for _, m := range KnownMetrics() {
		if !slices.Contains(notInIndicator, m.Name) && !tags[m.Name] {
			t.Errorf("metric %q is not a JSON field of schemas.Indicator", m.Name)
		}
	}
}
