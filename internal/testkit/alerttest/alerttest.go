// Package alerttest runs a real Prometheus Alertmanager for tests (Debian's
// prometheus-alertmanager, which deploy/local/setup.sh installs). There is
// no fake: a test that needs Alertmanager and cannot find it fails and says
// how to install it.
package alerttest

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/proc"
)

// Binary finds a real Alertmanager: Debian's package installs
// /usr/bin/prometheus-alertmanager, upstream's tarball "alertmanager".
func Binary(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager", "/usr/bin/prometheus-alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Alertmanager is not installed: these tests need a real one. Install the Debian package " +
		"prometheus-alertmanager (apt-get install -y prometheus-alertmanager; deploy/local/setup.sh does it), " +
		"or put upstream's alertmanager binary on PATH.")
	return ""
}

// Render fills a text/template configuration file with data.
func Render(t testing.TB, templateFile string, data any) []byte {
	t.Helper()
	raw, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(filepath.Base(templateFile)).Parse(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	return out.Bytes()
}

// Start runs Alertmanager with the configuration config on a free loopback
// port, clustering off, storage in a temporary directory; it is killed when
// the test ends. It returns the base URL once Alertmanager is ready.
func Start(t testing.TB, config []byte) string {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, config, 0o600); err != nil {
		t.Fatal(err)
	}
	var out proc.Buffer
	for try := 0; try < 3; try++ { // a free port can be taken between probe and bind
		addr := proc.FreeAddr(t)
		cmd := exec.Command(bin,
			"--config.file="+cfgFile,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--cluster.listen-address=", // no clustering: no gossip port, no settle wait
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
		base := "http://" + addr
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if resp, err := http.Get(base + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return base
				}
			}
		}
		_ = cmd.Process.Kill()
	}
	t.Fatalf("Alertmanager did not become ready:\n%s", out.String())
	return ""
}
