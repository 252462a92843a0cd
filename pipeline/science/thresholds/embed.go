package thresholds

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// DefaultID is the rule set used when none is configured: Kazakhstan's 2020
// plan made monotone, so a worse R or a worse occupancy is never answered
// with a milder action. The plan read literally (kz-2020-plan, the law as
// written) keeps at R 2.0 and ПЗК 85 % where it strengthens at R 1.2: it
// stays shipped and selectable, with that gap documented.
const DefaultID = "kz-2020-monotone"

//go:embed rulesets/*.yaml
var shipped embed.FS

// Info identifies a rule set for `epiwatch rules list`.
type Info struct {
	ID      string `json:"id"`      // stable name, e.g. kz-2020-plan
	Version string `json:"version"` // changes whenever the rules change
	Title   string `json:"title"`   // one-line human name
	Source  string `json:"source"`  // citation of the published thresholds
	Shape   Shape  `json:"shape"`   // how the conditions combine
	Default bool   `json:"default"` // true for DefaultID
}

// Info returns the rule set's identification.
func (rs *RuleSet) Info() Info {
	return Info{ID: rs.ID, Version: rs.Version, Title: rs.Title, Source: rs.Source, Shape: rs.Shape, Default: rs.ID == DefaultID}
}

// List returns the rule sets shipped inside the binary, sorted by id. An
// error means a shipped file is invalid, which the package tests prevent.
func List() ([]Info, error) {
	names, err := fs.Glob(shipped, "rulesets/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list shipped rule sets: %w", err)
	}
	var out []Info
	for _, n := range names {
		rs, err := loadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, rs.Info())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Load returns the shipped rule set with the given id (its file is
// rulesets/<id>.yaml).
func Load(id string) (*RuleSet, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("load rule set %q: not a rule set id; see `epiwatch rules list`", id)
	}
	rs, err := loadFile(path.Join("rulesets", id+".yaml"))
	if err != nil {
		if _, statErr := fs.Stat(shipped, path.Join("rulesets", id+".yaml")); statErr != nil {
			return nil, fmt.Errorf("load rule set %q: no shipped rule set has this id; see `epiwatch rules list`, or pass a file path", id)
		}
		return nil, err
	}
	return rs, nil
}

// Default returns the default rule set (DefaultID).
func Default() (*RuleSet, error) { return Load(DefaultID) }

// Open resolves what a user typed after --rules: the id of a shipped rule set,
// or else a path that read returns the bytes of (the CLI passes os.ReadFile;
// this package does no file I/O of its own).
func Open(nameOrPath string, read func(path string) ([]byte, error)) (*RuleSet, error) {
	if _, err := fs.Stat(shipped, path.Join("rulesets", nameOrPath+".yaml")); err == nil && idPattern.MatchString(nameOrPath) {
		return Load(nameOrPath)
	}
	if read == nil {
		return nil, fmt.Errorf("open rule set %q: not a shipped rule set id and no file reader given", nameOrPath)
	}
	data, err := read(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("open rule set %q: not a shipped rule set id (see `epiwatch rules list`) and not readable as a file: %w", nameOrPath, err)
	}
	return Parse(nameOrPath, data)
}

func loadFile(name string) (*RuleSet, error) {
	data, err := shipped.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read shipped rule set %s: %w", name, err)
	}
	rs, err := Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("shipped rule set %s is invalid: %w", name, err)
	}
	return rs, nil
}
