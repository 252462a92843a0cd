package deploytest_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestMetricNamesOneHome: every Prometheus metric is named once, in
// schemas/metrics.go, which the alert rules and the dashboards are checked
// against. So that list must be whole and true: schemas.MetricNames has
// every constant of that file, the pipeline's code declares each metric
// under its constant (a name nobody exports would leave a panel or an alert
// silently empty), and no other Go file spells a name again.
func TestMetricNamesOneHome(t *testing.T) {
	consts := metricConstants(t)
	listed := map[string]bool{}
	for _, m := range schemas.MetricNames() {
		listed[m] = true
	}
	inFile := map[string]bool{}
	for c, m := range consts {
		inFile[m] = true
		if !listed[m] {
			t.Errorf("schemas.%s (%s) is missing from schemas.MetricNames", c, m)
		}
	}
	for m := range listed {
		if !inFile[m] {
			t.Errorf("schemas.MetricNames lists %s, which is not a constant of schemas/metrics.go", m)
		}
	}

	useRe := regexp.MustCompile(`\bschemas\.(Metric[A-Za-z0-9]+)\b`)
	literalRe := regexp.MustCompile(`"(epiwatch_[a-z0-9_]+)"`)
	declared := map[string]string{} // metric name -> a file declaring it
	walkGo(t, func(rel string, src []byte) {
		for _, m := range literalRe.FindAllStringSubmatch(string(src), -1) {
			if listed[m[1]] {
				t.Errorf("%s spells the metric name %s: use its constant in schemas/metrics.go", rel, m[1])
			}
		}
		if strings.HasPrefix(rel, "dashboards"+string(filepath.Separator)) {
			return // reads metrics, declares none
		}
		for _, m := range useRe.FindAllStringSubmatch(string(src), -1) {
			if name, ok := consts[m[1]]; ok {
				declared[name] = rel
			}
		}
	})
	for _, m := range schemas.MetricNames() {
		if _, ok := declared[m]; !ok {
			t.Errorf("metric %s is named in schemas/metrics.go but no Go file of the pipeline uses its constant (declare it where it changes, or delete the name)", m)
		}
	}
}

// metricConstants returns the Metric* constants of schemas/metrics.go,
// constant -> metric name.
func metricConstants(t *testing.T) map[string]string {
	t.Helper()
	file := filepath.Join(root(t), "schemas", "metrics.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Metric") {
					continue
				}
				var lit *ast.BasicLit
				if i < len(vs.Values) {
					lit, _ = vs.Values[i].(*ast.BasicLit)
				}
				if lit == nil || lit.Kind != token.STRING {
					t.Errorf("schemas/metrics.go: %s is not a string literal", n.Name)
					continue
				}
				out[n.Name], _ = strconv.Unquote(lit.Value)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("schemas/metrics.go declares no Metric* constant")
	}
	return out
}

// walkGo calls fn with every non-test Go file of the repository outside
// schemas/ and deploy/ (relative path and contents).
func walkGo(t *testing.T, fn func(rel string, src []byte)) {
	t.Helper()
	top := root(t)
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, path)
		if d.IsDir() {
			switch rel {
			case ".git", "schemas", "deploy", "data", "bin", "tmpdeps":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fn(rel, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
