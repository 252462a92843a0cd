package deploytest_test

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/epiwatch/epiwatch/deploy/deploytest"
)

// root returns the repository root.
func root(t *testing.T) string { return deploytest.RepoRoot(t) }

// readYAMLDocs parses every document of a YAML file into generic values.
func readYAMLDocs(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseYAMLDocs(b)
	if err != nil {
		t.Fatalf("%s: %v", rel(t, path), err)
	}
	return docs
}

func parseYAMLDocs(b []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	docs := readYAMLDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: want one YAML document, got %d", rel(t, path), len(docs))
	}
	m, ok := docs[0].(map[string]any)
	if !ok {
		t.Fatalf("%s: want a mapping at the top", rel(t, path))
	}
	return m
}

func rel(t *testing.T, path string) string {
	r, err := filepath.Rel(root(t), path)
	if err != nil {
		return path
	}
	return r
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func list(v any) []any { l, _ := v.([]any); return l }

func mapping(v any) map[string]any { m, _ := v.(map[string]any); return m }

// configKeys flattens a configuration document into dotted keys (leaves
// only; a list is a leaf).
func configKeys(prefix string, v any, out map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok {
		if prefix != "" {
			out[prefix] = true
		}
		return
	}
	if len(m) == 0 && prefix != "" {
		out[prefix] = true
	}
	for k, val := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		configKeys(key, val, out)
	}
}

// envName is the variable epiwatch reads for a key: EPIWATCH_ + the key in
// upper case with dots as underscores (cmd/epiwatch's viper key replacer).
func envName(key string) string {
	return "EPIWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// exampleConfig is deploy/epiwatch.example.yaml: every configuration key
// epiwatch reads, documented.
type exampleConfig struct {
	doc  map[string]any
	keys map[string]bool   // dotted keys
	env  map[string]string // EPIWATCH_* name → key
}

// readExample reads deploy/epiwatch.example.yaml.
func readExample(t *testing.T) exampleConfig {
	t.Helper()
	path := filepath.Join(root(t), "deploy", "epiwatch.example.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("deploy/epiwatch.example.yaml is missing (%v): it documents every configuration key, and these tests take the list of keys and EPIWATCH_* variables epiwatch reads from it", err)
	}
	ex := exampleConfig{doc: readYAML(t, path), keys: map[string]bool{}, env: map[string]string{}}
	configKeys("", ex.doc, ex.keys)
	for k := range ex.keys {
		ex.env[envName(k)] = k
	}
	// Read by cmd/epiwatch directly, not a configuration key.
	ex.env["EPIWATCH_CONFIG"] = "(--config)"
	return ex
}

// checkConfigFile checks that a configuration file epiwatch is given uses
// only keys the example documents.
func checkConfigFile(t *testing.T, where string, doc any, ex exampleConfig) {
	t.Helper()
	keys := map[string]bool{}
	configKeys("", doc, keys)
	for _, k := range sortedKeys(keys) {
		if !ex.keys[k] && !ex.hasPrefixOf(k) {
			t.Errorf("%s: key %s is not in deploy/epiwatch.example.yaml (a typo, or a key epiwatch does not read: its configuration loader rejects unknown keys)", where, k)
		}
	}
}

// hasPrefixOf reports whether k lies under a key the example gives as a
// leaf (a list or an empty map, whose items the example does not spell out).
func (ex exampleConfig) hasPrefixOf(k string) bool {
	for p := range ex.keys {
		if strings.HasPrefix(k, p+".") {
			return true
		}
	}
	return false
}

func checkEnv(t *testing.T, where, name string, ex exampleConfig) {
	t.Helper()
	if !strings.HasPrefix(name, "EPIWATCH_") {
		return
	}
	if _, ok := ex.env[name]; !ok {
		t.Errorf("%s: %s is not a variable epiwatch reads: no key %s in deploy/epiwatch.example.yaml", where, name,
			strings.ToLower(strings.Replace(strings.TrimPrefix(name, "EPIWATCH_"), "_", ".", 1))+" (or similar)")
	}
}

// subcommands returns epiwatch's top-level subcommands, read from
// cmd/epiwatch's source: the constructors newRootCmd adds or that register
// themselves in extraCommands, and the Use of the cobra.Command each builds.
func subcommands(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(root(t), "cmd", "epiwatch")
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatalf("parse cmd/epiwatch: %v", err)
	}
	funcs := map[string]*ast.FuncDecl{}
	constructors := map[string]bool{}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
					funcs[fd.Name.Name] = fd
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch fn := call.Fun.(type) {
				case *ast.SelectorExpr: // root.AddCommand(newXCmd(), ...)
					if fn.Sel.Name == "AddCommand" {
						if id, ok := fn.X.(*ast.Ident); ok && id.Name == "root" {
							for _, a := range call.Args {
								if c, ok := a.(*ast.CallExpr); ok {
									if id, ok := c.Fun.(*ast.Ident); ok {
										constructors[id.Name] = true
									}
								}
							}
						}
					}
				case *ast.Ident: // extraCommands = append(extraCommands, newXCmd)
					if fn.Name == "append" && len(call.Args) > 1 {
						if id, ok := call.Args[0].(*ast.Ident); ok && id.Name == "extraCommands" {
							for _, a := range call.Args[1:] {
								if id, ok := a.(*ast.Ident); ok {
									constructors[id.Name] = true
								}
							}
						}
					}
				}
				return true
			})
		}
	}
	out := map[string]bool{}
	for name := range constructors {
		fd := funcs[name]
		if fd == nil {
			continue
		}
		var use string
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if use != "" {
				return false
			}
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, ok := cl.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Command" {
				return true
			}
			for _, e := range cl.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Use" {
					if lit, ok := kv.Value.(*ast.BasicLit); ok {
						s, _ := strconv.Unquote(lit.Value)
						use = strings.Fields(s)[0]
					}
				}
			}
			return false
		})
		if use != "" {
			out[use] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("found no subcommand in cmd/epiwatch")
	}
	return out
}

// hostPort splits an address and checks the port.
func hostPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s: %q is not host:port", where, addr)
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Errorf("%s: port of %q", where, addr)
	}
	return h, n
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
