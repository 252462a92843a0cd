package repotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is this repository's module path; every project import starts with it.
const module = "github.com/epiwatch/epiwatch"

// layer says which project packages the packages matching pkgs may import
// (non-test imports). Patterns are relative to the module: "x" is the package
// x, "x/..." is x and every package below it, "..." is every package.
type layer struct {
	pkgs   []string
	may    []string
	except []string // never, even if may matches
	rule   string   // printed after "A imports B: "
}

// layers is STYLE.md's table: imports point toward schemas, against the flow
// of data. The first layer whose pkgs match a package applies to it, so more
// specific patterns come first; a package no layer matches fails the test, so
// a new package is placed in the table on purpose.
var layers = []layer{
	// The contract is what every other package agrees on; if it imported one
	// of them, the agreement would depend on an implementation.
	{pkgs: []string{"schemas/..."}, may: []string{"schemas/..."},
		rule: "schemas imports nothing but itself"},
	// The bus moves events the contract defines and knows nothing of what
	// the stages do with them.
	{pkgs: []string{"pipeline/stream"}, may: []string{"schemas/..."},
		rule: "pipeline/stream imports only schemas"},
	// The science takes values and returns values (STYLE.md rule 2), which
	// is what makes it checkable against EpiEstim and the plan; the
	// subtest "science is pure" adds the ban on I/O, clocks and goroutines.
	{pkgs: []string{"pipeline/science/..."}, may: []string{"schemas/...", "pipeline/science/..."},
		rule: "pipeline/science imports only schemas and other science packages"},
	// Ingest is the top of the flow: it validates, pseudonymises and
	// publishes; pseudo is the only place a raw national ID exists.
	{pkgs: []string{"pipeline/ingest/..."}, may: []string{"schemas/...", "pipeline/stream", "pipeline/ingest/pseudo", "pipeline/science/..."},
		rule: "pipeline/ingest imports only schemas, stream, pseudo and science"},
	// The stages talk through the stream, never by calling each other: a
	// stage importing another would couple two deployables. None does today.
	{pkgs: []string{"pipeline/process", "pipeline/decide", "pipeline/detect"}, may: []string{"schemas/...", "pipeline/stream", "pipeline/science/..."},
		rule: "a stage imports only schemas, stream and science, never another stage"},
	// Consumers take results out of the stream idempotently; they read what
	// the stages published, not the stages, and are independent sinks.
	{pkgs: []string{"pipeline/erase"}, may: []string{"schemas/...", "pipeline/stream"},
		rule: "pipeline/erase (the streams half of an erasure) imports only schemas and stream"},
	{pkgs: []string{"consumers/..."}, may: []string{"schemas/...", "pipeline/stream", "pipeline/science/..."},
		rule: "a consumer imports only schemas, stream and science, never a stage, ingest or another consumer"},
	// The generator, and what it alone uses (dashboards/internal), may ask
	// the science for the thresholds a panel draws; the dashboards package
	// itself may not import them, so what it draws is handed to it.
	{pkgs: []string{"dashboards/cmd/...", "dashboards/internal/..."}, may: []string{"dashboards/...", "schemas/...", "pipeline/science/..."},
		rule: "the dashboards generator imports only dashboards, schemas and science"},
	// Dashboards are built from the table and metric names in schemas.
	{pkgs: []string{"dashboards/..."}, may: []string{"schemas/..."},
		rule: "dashboards imports only schemas"},
	// Tools sit beside the flow and may use any of it, but are called by
	// cmd and internal/app, not the other way round.
	{pkgs: []string{"internal/tools/..."}, may: []string{"..."}, except: []string{"cmd/...", "internal/app/..."},
		rule: "internal/tools never imports cmd or internal/app"},
	// Test kits start real servers for any package's tests.
	{pkgs: []string{"internal/testkit/..."}, may: []string{"..."}, except: []string{"cmd/...", "internal/app/..."},
		rule: "internal/testkit never imports cmd or internal/app"},
	// Repository-wide tests have no code of their own.
	{pkgs: []string{"internal/repotest"}, may: nil,
		rule: "internal/repotest imports nothing"},
	// The wiring assembles everything below it so that cmd stays flags only.
	{pkgs: []string{"internal/app/..."}, may: []string{"..."}, except: []string{"cmd/..."},
		rule: "internal/app never imports cmd"},
	// Tests of the deployment files read files and start processes; they
	// may borrow a test kit but nothing else of the project.
	{pkgs: []string{"deploy/..."}, may: []string{"internal/testkit/..."},
		rule: "deploy tests import only test kits"},
	// cmd is cobra flags and one call into internal/app (STYLE.md); the
	// names a flag shows come from schemas.
	{pkgs: []string{"cmd/..."}, may: []string{"internal/app/...", "internal/tools/...", "schemas/..."},
		rule: "cmd imports only internal/app, internal/tools and schemas"},
}

// onlyImporter restricts who may import a package at all (non-test imports).
type onlyImporter struct {
	imported []string // import path prefixes, full paths
	by       []string // module-relative patterns as in layer
	oneFile  []string // patterns allowed in at most one non-test file
	rule     string
}

var onlyImporters = []onlyImporter{
	// One package owns JetStream so that the ack policy, dead letters and
	// message IDs are decided in one place (STYLE.md rule 3). streamtest
	// needs a client to inspect what a test published; bench's baseline
	// file measures the raw client against our wrapper, which is the point
	// of that one file.
	{imported: []string{"github.com/nats-io/nats.go"},
		by:      []string{"pipeline/stream", "internal/testkit/streamtest"},
		oneFile: []string{"internal/tools/bench"},
		rule:    "only pipeline/stream imports the NATS client"},
	// Test kits are not public API, and production code must not depend on
	// what exists only to test it. deploy/ holds test helpers only.
	{imported: []string{module + "/internal/testkit"},
		by:   []string{"internal/testkit/...", "deploy/..."},
		rule: "no production package imports internal/testkit"},
	// cmd is the top: a package importing it would make the CLI a library.
	{imported: []string{module + "/cmd"},
		rule: "nothing imports cmd"},
}

// ioImports are packages that reach a file, a socket, a process, a clock
// source or another goroutine. Pure science imports none of them directly.
var ioImports = []string{
	"os", "os/exec", "os/signal", "os/user", "io/ioutil", "net", "net/http", "syscall",
	"log", "log/slog", "database/sql", "runtime/pprof", "crypto/rand", "sync", "sync/atomic", "context",
}

// ioDeps are packages that must not be even indirect dependencies of the
// science: network, database and bus clients. (os itself comes in through
// fmt, so only the direct imports above can ban it.)
var ioDeps = []string{
	"net/http", "os/exec", "database/sql",
	"github.com/nats-io/", "github.com/ClickHouse/", "github.com/prometheus/",
}

// pureThirdParty are the only modules outside the standard library the
// science may import: numerics and the rule-set file format.
var pureThirdParty = []string{"gonum.org/v1/gonum/", "gopkg.in/yaml.v3"}

// goPackage is the part of `go list -json` this test reads.
type goPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// rel is the package path relative to the module, "" for the root.
func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func project(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// match reports whether the module-relative path p matches a pattern.
func match(p string, patterns []string) bool {
	for _, pat := range patterns {
		switch {
		case pat == "...":
			return true
		case strings.HasSuffix(pat, "/..."):
			base := strings.TrimSuffix(pat, "/...")
			if p == base || strings.HasPrefix(p, base+"/") {
				return true
			}
		case p == pat:
			return true
		}
	}
	return false
}

func hasPrefix(path string, prefixes []string) bool {
	for _, pre := range prefixes {
		if path == strings.TrimSuffix(pre, "/") || strings.HasPrefix(path, strings.TrimSuffix(pre, "/")+"/") {
			return true
		}
	}
	return false
}

// loadPackages runs `go list -deps -json` on the module with every build tag
// the repository uses, so tagged files are checked too. It returns the
// project's packages and all packages by path. The patterns name each
// top-level folder but skipDirs: ./... would also walk data/, where a
// running ClickHouse creates and removes folders under go list's feet.
func loadPackages(t *testing.T) (own []*goPackage, all map[string]*goPackage) {
	t.Helper()
	root := repoRoot(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-e", "-deps", "-json", "-tags", "chdb"}
	for _, e := range entries {
		if e.IsDir() && !skipDirs[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			args = append(args, "./"+e.Name()+"/...")
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	all = map[string]*goPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(goPackage)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		all[p.ImportPath] = p
		if p.Module != nil && p.Module.Path == module {
			if p.Error != nil {
				t.Errorf("go list %s: %s", rel(p.ImportPath), p.Error.Err)
			}
			own = append(own, p)
		}
	}
	if len(own) < 20 {
		t.Fatalf("go list found %d packages of %s: not the repository root?", len(own), module)
	}
	return own, all
}

// TestLayers fails on every import that points the wrong way in the layer
// table, printing each as "A imports B: rule".
func TestLayers(t *testing.T) {
	own, all := loadPackages(t)

	t.Run("table", func(t *testing.T) {
		for _, p := range own {
			from := rel(p.ImportPath)
			i := slices.IndexFunc(layers, func(l layer) bool { return match(from, l.pkgs) })
			if i < 0 {
				t.Errorf("%s has no layer rule; add it to layers in %s", from, "internal/repotest/layers_test.go")
				continue
			}
			l := layers[i]
			for _, imp := range p.Imports {
				if !project(imp) {
					continue
				}
				to := rel(imp)
				if !match(to, l.may) || match(to, l.except) {
					t.Errorf("%s imports %s: %s", from, to, l.rule)
				}
			}
		}
	})

	t.Run("only importers", func(t *testing.T) {
		for _, o := range onlyImporters {
			for _, p := range own {
				from := rel(p.ImportPath)
				if match(from, o.by) {
					continue
				}
				var bad []string
				for _, imp := range p.Imports {
					if hasPrefix(imp, o.imported) {
						bad = append(bad, imp)
					}
				}
				if len(bad) == 0 {
					continue
				}
				if match(from, o.oneFile) {
					files := filesImporting(t, p, o.imported)
					if len(files) <= 1 {
						continue
					}
					t.Errorf("%s imports %s in %d files %v: %s (an exception for one file only)", from, bad[0], len(files), files, o.rule)
					continue
				}
				for _, imp := range bad {
					t.Errorf("%s imports %s: %s", from, rel(imp), o.rule)
				}
			}
		}
	})

	t.Run("science is pure", func(t *testing.T) {
		for _, p := range own {
			from := rel(p.ImportPath)
			if !match(from, []string{"pipeline/science/..."}) {
				continue
			}
			for _, imp := range p.Imports {
				switch {
				case slices.Contains(ioImports, imp):
					t.Errorf("%s imports %s: pipeline/science does no I/O, keeps no clock and starts no goroutine", from, imp)
				case !project(imp) && !all[imp].isStandard() && !hasPrefix(imp, pureThirdParty):
					t.Errorf("%s imports %s: pipeline/science imports only the standard library, %v", from, imp, pureThirdParty)
				}
			}
			for _, dep := range p.Deps {
				if hasPrefix(dep, ioDeps) {
					t.Errorf("%s depends on %s (indirectly): pipeline/science must not reach a network, database or bus client", from, dep)
				}
			}
			for _, f := range p.GoFiles {
				for _, bad := range clockAndGoroutines(t, filepath.Join(p.Dir, f)) {
					t.Errorf("%s/%s: %s; pipeline/science is passed the time and runs nothing concurrently", from, f, bad)
				}
			}
		}
	})
}

func (p *goPackage) isStandard() bool { return p != nil && p.Standard }

// filesImporting lists the package's non-test files that import a path
// starting with one of prefixes.
func filesImporting(t *testing.T, p *goPackage, prefixes []string) []string {
	t.Helper()
	var files []string
	for _, f := range append(slices.Clone(p.GoFiles), p.CgoFiles...) {
		ast, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); hasPrefix(path, prefixes) {
				files = append(files, f)
				break
			}
		}
	}
	return files
}

// clockAndGoroutines finds reads of the wall clock and go statements in a
// file: science code is given the time and runs sequentially.
func clockAndGoroutines(t *testing.T, file string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			found = append(found, fmt.Sprintf("line %d starts a goroutine", fset.Position(n.Pos()).Line))
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && slices.Contains([]string{"Now", "Since", "Until", "Sleep", "After", "Tick", "NewTimer", "NewTicker", "AfterFunc"}, n.Sel.Name) {
				found = append(found, fmt.Sprintf("line %d calls time.%s", fset.Position(n.Pos()).Line, n.Sel.Name))
			}
		}
		return true
	})
	return found
}

// TestLayerPatterns is the negative control: the matcher and the table catch
// arrows known to be wrong and pass arrows known to be right.
func TestLayerPatterns(t *testing.T) {
	layerOf := func(p string) layer {
		i := slices.IndexFunc(layers, func(l layer) bool { return match(p, l.pkgs) })
		if i < 0 {
			t.Fatalf("no layer for %s", p)
		}
		return layers[i]
	}
	allowed := func(from, to string) bool {
		l := layerOf(from)
		return match(to, l.may) && !match(to, l.except)
	}
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"schemas", "schemas/nationalid", true},
		{"schemas", "pipeline/stream", false},
		{"pipeline/stream", "schemas", true},
		{"pipeline/science/nowcast", "pipeline/science/epi", true},
		{"pipeline/science/epi", "pipeline/stream", false},
		{"pipeline/decide", "pipeline/process", false},
		{"pipeline/process", "pipeline/science/thresholds", true},
		{"consumers/alerts", "consumers/clickhouse", false},
		{"consumers/clickhouse", "pipeline/process", false},
		{"dashboards", "pipeline/science/thresholds", false},
		{"dashboards/cmd/gen", "pipeline/science/thresholds", true},
		{"dashboards", "dashboards/internal/fromrules", false},
		{"internal/tools/replay", "pipeline/process", true},
		{"internal/tools/replay", "internal/app", false},
		{"internal/testkit/chtest", "cmd/epiwatch", false},
		{"internal/app", "internal/tools/simulate", true},
		{"internal/app", "cmd/epiwatch", false},
		{"cmd/epiwatch", "internal/app", true},
		{"cmd/epiwatch", "pipeline/process", false},
	} {
		if got := allowed(c.from, c.to); got != c.want {
			t.Errorf("%s -> %s allowed = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	// A pattern names whole path elements: pipeline/stream is not a prefix
	// of pipeline/streamer.
	if match("pipeline/streamer", []string{"pipeline/stream", "pipeline/stream/..."}) {
		t.Error("pattern pipeline/stream matches pipeline/streamer")
	}
	if !hasPrefix("github.com/nats-io/nats.go/jetstream", onlyImporters[0].imported) {
		t.Error("the NATS rule misses the jetstream package")
	}
	if hasPrefix("github.com/nats-io/nats-server/v2/server", onlyImporters[0].imported) {
		t.Error("the NATS client rule matches nats-server")
	}
}

// TestClockAndGoroutinesFinds is the negative control of the purity scan.
func TestClockAndGoroutinesFinds(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.go")
	src := "package x\n\nimport \"time\"\n\nfunc f() {\n\t_ = time.Now()\n\tgo f()\n\t_ = time.Duration(3) * time.Second\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := clockAndGoroutines(t, file)
	want := []string{"line 6 calls time.Now", "line 7 starts a goroutine"}
	if !slices.Equal(got, want) {
		t.Errorf("found %q, want %q", got, want)
	}
}
