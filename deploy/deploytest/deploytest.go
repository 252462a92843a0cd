// Package deploytest checks the deployment files under deploy/ (Compose,
// Kubernetes, Prometheus, Alertmanager, Grafana provisioning) statically: no
// Docker or cluster is needed, only promtool and amtool from Debian's
// prometheus and prometheus-alertmanager packages. Its exported helpers let
// other packages' tests (dashboards) find those tools the same way.
package deploytest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// SetupScript installs promtool and amtool (and everything else the tests
// need) on a fresh machine.
const SetupScript = "deploy/local/setup.sh"

// SkipEnv, set to 1, skips the checks that need promtool or amtool instead of
// failing them.
const SkipEnv = "EPIWATCH_SKIP_PROMTOOL"

// Tool returns the path of a Prometheus tool (promtool, amtool). A missing
// tool fails the test, naming the setup script, unless EPIWATCH_SKIP_PROMTOOL=1
// skips it: a check that silently does not run is worse than one that fails.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping the %s checks", SkipEnv, name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		pkg := map[string]string{"promtool": "prometheus", "amtool": "prometheus-alertmanager"}[name]
		t.Fatalf("%s is not installed: run %s (it apt-installs Debian's %s package), or set %s=1 to skip these checks", name, SetupScript, pkg, SkipEnv)
	}
	return path
}

// Run runs a tool and returns its standard output; if it fails, the test
// fails with both outputs.
func Run(t testing.TB, tool string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(tool), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

// RepoRoot returns the module root (the directory holding go.mod), found
// upwards from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(fmt.Errorf("no go.mod above %s", dir))
		}
		dir = parent
	}
}

// histogramSuffixRe strips the series suffixes of a histogram or summary.
var histogramSuffixRe = regexp.MustCompile(`_(bucket|sum|count)$`)

// MetricsIn returns the epiwatch_* metric names a PromQL expression reads,
// with histogram series suffixes removed when the base name is declared
// (a key of declared, e.g. schemas.MetricNames()).
func MetricsIn(expr string, declared map[string]bool) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\bepiwatch_[a-z0-9_]+`).FindAllString(expr, -1) {
		if base := histogramSuffixRe.ReplaceAllString(m, ""); !declared[m] && declared[base] {
			m = base
		}
		out = append(out, m)
	}
	return out
}
