package deploytest_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/dashboards"
	"github.com/epiwatch/epiwatch/deploy/deploytest"
	"github.com/epiwatch/epiwatch/schemas"
)

// deployDirs are the folders of deployment files these tests own.
var deployDirs = []string{"compose", "k8s", "prometheus", "alertmanager", "grafana"}

// TestYAMLParses parses every YAML file of the deployment folders (every
// document of multi-document files).
func TestYAMLParses(t *testing.T) {
	n := 0
	for _, d := range deployDirs {
		dir := filepath.Join(root(t), "deploy", d)
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return nil
			}
			n++
			if len(readYAMLDocs(t, path)) == 0 {
				t.Errorf("%s: no YAML document", rel(t, path))
			}
			return nil
		})
		if err != nil {
			t.Errorf("deploy/%s: %v", d, err)
		}
	}
	if n < 10 {
		t.Errorf("found only %d YAML files under deploy/{%s}", n, strings.Join(deployDirs, ","))
	}
}

// TestPrometheusConfig runs promtool on the shipped configuration and rules
// and runs the rules' unit tests.
func TestPrometheusConfig(t *testing.T) {
	promtool := deploytest.Tool(t, "promtool")
	dir := filepath.Join(root(t), "deploy", "prometheus")
	out := deploytest.Run(t, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))
	if !strings.Contains(out, "1 rule files found") {
		t.Errorf("prometheus.yml does not load the rule file:\n%s", out)
	}
	deploytest.Run(t, promtool, "check", "rules", filepath.Join(dir, "rules", "epiwatch.rules.yml"))
	deploytest.Run(t, promtool, "test", "rules", filepath.Join(dir, "tests", "epiwatch.rules.test.yml"))
}

// TestPrometheusRulesCoverage: the plan's two signals and the pipeline's
// health each have a rule, every rule routes (category) and every metric a
// rule reads is named in schemas (TestMetricNamesOneHome checks the code
// declares it; TestAlertThresholdsFromPlan checks the plan's numbers).
func TestPrometheusRulesCoverage(t *testing.T) {
	named := map[string]bool{}
	for _, m := range schemas.MetricNames() {
		named[m] = true
	}
	alerts := map[string]string{}
	for _, r := range alertRules(t) {
		name, expr := str(get(r, "alert")), str(get(r, "expr"))
		alerts[name] = expr
		if str(get(r, "labels", "category")) == "" || str(get(r, "labels", "severity")) == "" {
			t.Errorf("rule %s: needs labels category (Alertmanager routes on it) and severity", name)
		}
		if str(get(r, "annotations", "summary")) == "" {
			t.Errorf("rule %s: needs a summary annotation", name)
		}
		for _, m := range deploytest.MetricsIn(expr, named) {
			if !named[m] {
				t.Errorf("rule %s reads %s, which schemas/metrics.go does not name (renamed, or not written yet?)", name, m)
			}
		}
	}
	for _, want := range []struct{ alert, contains string }{
		{"EpiwatchRegionRAbove1_3", schemas.MetricRegionRUpper + " >"},
		{"EpiwatchRegionBedOccupancyCritical", schemas.MetricRegionBedOccupancy + " >="},
		{"EpiwatchConsumerLagGrowing", schemas.MetricConsumerPending},
		{"EpiwatchSinkInsertFailing", schemas.MetricSinkInsertFailures},
		{"EpiwatchIngestRejectRatioHigh", `outcome="rejected"`},
		{"EpiwatchAlertDeliveryFailing", schemas.MetricAlertsFailed},
		{"EpiwatchComponentDown", "up{"},
	} {
		expr, ok := alerts[want.alert]
		if !ok {
			t.Errorf("no rule %s", want.alert)
		} else if !strings.Contains(expr, want.contains) {
			t.Errorf("rule %s: expr %q does not contain %q", want.alert, expr, want.contains)
		}
	}
}

// alertRules returns the alerting rules of every group of the shipped rule
// file.
func alertRules(t *testing.T) []any {
	t.Helper()
	doc := readYAML(t, filepath.Join(root(t), "deploy", "prometheus", "rules", "epiwatch.rules.yml"))
	var out []any
	for _, g := range list(doc["groups"]) {
		out = append(out, list(get(g, "rules"))...)
	}
	return out
}

// TestAlertmanagerConfig runs amtool on the shipped configuration and checks
// the routing tree: every region of the reference reaches its own
// headquarters (and the national one), pipeline alerts the operators.
func TestAlertmanagerConfig(t *testing.T) {
	amtool := deploytest.Tool(t, "amtool")
	file := filepath.Join(root(t), "deploy", "alertmanager", "alertmanager.yml")
	deploytest.Run(t, amtool, "check-config", file)

	doc := readYAML(t, file)
	routed := map[string]string{}
	receivers := map[string]bool{}
	for _, r := range list(get(doc, "receivers")) {
		receivers[str(get(r, "name"))] = true
	}
	matcherRe := regexp.MustCompile(`^region="([A-Z]{2}-[A-Z0-9]+)"$`)
	for _, r := range list(get(doc, "route", "routes")) {
		for _, m := range list(get(r, "matchers")) {
			if sub := matcherRe.FindStringSubmatch(str(m)); sub != nil {
				routed[sub[1]] = str(get(r, "receiver"))
			}
		}
	}
	regions := schemas.DefaultRegions()
	for code, recv := range routed {
		if !regions.Known(code) {
			t.Errorf("alertmanager.yml routes region %s, which is not in schemas/regions.csv", code)
		}
		if !receivers[recv] {
			t.Errorf("alertmanager.yml: route for %s names receiver %s, which is not defined", code, recv)
		}
	}
	routes := func(labels ...string) string {
		args := append([]string{"config", "routes", "test", "--config.file", file}, labels...)
		return strings.TrimSpace(deploytest.Run(t, amtool, args...))
	}
	for _, code := range regions.Codes() {
		if _, ok := routed[code]; !ok {
			t.Errorf("alertmanager.yml has no route for region %s", code)
			continue
		}
		got := routes("region="+code, "category=epidemiology", "alertname=EpiwatchRegionRAbove1_3")
		want := "national-hq," + routed[code]
		if got != want {
			t.Errorf("an alert about %s goes to %q, want %q", code, got, want)
		}
	}
	if got := routes("category=pipeline", "alertname=EpiwatchSinkInsertFailing"); got != "operations" {
		t.Errorf("a pipeline alert goes to %q, want operations", got)
	}
	if got := routes("alertname=Unknown"); got != "operations" {
		t.Errorf("an alert without region or category goes to %q, want operations (the default)", got)
	}
}

// TestGrafanaProvisioning: the data sources have the uids the dashboards
// use, every variable the provisioning file expands is set by Compose, and
// the dashboard provider reads the folder Compose mounts dashboards/json at.
func TestGrafanaProvisioning(t *testing.T) {
	dsFile := filepath.Join(root(t), "deploy", "grafana", "provisioning", "datasources", "epiwatch.yaml")
	ds := readYAML(t, dsFile)
	byUID := map[string]map[string]any{}
	for _, d := range list(ds["datasources"]) {
		byUID[str(get(d, "uid"))] = mapping(d)
	}
	ch, prom := byUID[dashboards.ClickHouseUID], byUID[dashboards.PrometheusUID]
	if ch == nil || str(ch["type"]) != dashboards.ClickHousePluginID {
		t.Errorf("no data source uid %s of type %s", dashboards.ClickHouseUID, dashboards.ClickHousePluginID)
	} else {
		for _, k := range []string{"host", "port", "protocol", "username", "defaultDatabase"} {
			if get(ch, "jsonData", k) == nil {
				t.Errorf("ClickHouse data source: jsonData.%s is not set", k)
			}
		}
		if get(ch, "secureJsonData", "password") == nil {
			t.Error("ClickHouse data source: secureJsonData.password is not set")
		}
	}
	if prom == nil || str(prom["type"]) != "prometheus" {
		t.Errorf("no data source uid %s of type prometheus", dashboards.PrometheusUID)
	}

	compose := readCompose(t)
	grafana := compose.services["grafana"]
	env := envOf(grafana)
	raw, _ := os.ReadFile(dsFile)
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("datasources/epiwatch.yaml expands ${%s}, which compose.yaml does not set for grafana", m[1])
		}
	}
	if !strings.Contains(str(env["GF_INSTALL_PLUGINS"]), dashboards.ClickHousePluginID) {
		t.Errorf("compose.yaml: grafana must install %s (GF_INSTALL_PLUGINS)", dashboards.ClickHousePluginID)
	}

	prov := readYAML(t, filepath.Join(root(t), "deploy", "grafana", "provisioning", "dashboards", "epiwatch.yaml"))
	path := str(get(prov, "providers", 0, "options", "path"))
	mounts := compose.mounts("grafana")
	src, ok := mounts[path]
	if !ok {
		t.Fatalf("the dashboard provider reads %s, which compose.yaml does not mount into grafana (mounts: %v)", path, mounts)
	}
	if want := filepath.Join(root(t), "dashboards", "json"); src != want {
		t.Errorf("compose.yaml mounts %s at %s, want dashboards/json", rel(t, src), path)
	}
	if _, ok := mounts["/etc/grafana/provisioning"]; !ok {
		t.Error("compose.yaml does not mount deploy/grafana/provisioning at /etc/grafana/provisioning")
	}
}

// envOf returns a Compose service's environment (mapping form).
func envOf(svc map[string]any) map[string]any {
	return mapping(svc["environment"])
}

// composeFile is deploy/compose/compose.yaml, parsed (anchors and merge keys
// resolved by the YAML decoder, as Compose does).
type composeFile struct {
	dir      string
	services map[string]map[string]any
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "compose")
	doc := readYAML(t, filepath.Join(dir, "compose.yaml"))
	c := composeFile{dir: dir, services: map[string]map[string]any{}}
	for name, s := range mapping(doc["services"]) {
		c.services[name] = mapping(s)
	}
	return c
}

// mounts maps a service's container paths to the host paths bound there.
func (c composeFile) mounts(service string) map[string]string {
	out := map[string]string{}
	for _, v := range list(c.services[service]["volumes"]) {
		parts := strings.Split(str(v), ":")
		if len(parts) < 2 || !(strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")) {
			continue // a named volume
		}
		out[parts[1]] = filepath.Clean(filepath.Join(c.dir, parts[0]))
	}
	return out
}

func (c composeFile) isEpiwatch(name string) bool {
	s := c.services[name]
	return strings.HasPrefix(str(s["image"]), "epiwatch") || get(s, "build", "dockerfile") != nil
}

// TestCompose checks deploy/compose/compose.yaml against epiwatch itself:
// real subcommands, configuration keys and variables epiwatch reads,
// listen ports that Prometheus scrapes, and the services the brief asks for.
func TestCompose(t *testing.T) {
	ex := readExample(t)
	subs := subcommands(t)
	c := readCompose(t)
	prom := promJobs(t)
	defaults := exampleDefaults(t, ex)

	seen := map[string]bool{}
	for _, name := range sortedKeys(c.services) {
		svc := c.services[name]
		if !c.isEpiwatch(name) {
			if img := str(svc["image"]); img == "" || strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
				t.Errorf("service %s: pin the image version (got %q)", name, img)
			}
			continue
		}
		where := "compose.yaml service " + name
		cmd := list(svc["command"])
		if len(cmd) == 0 {
			t.Errorf("%s: no command (an epiwatch subcommand)", where)
			continue
		}
		sub := str(cmd[0])
		seen[sub] = true
		if !subs[sub] {
			t.Errorf("%s runs `epiwatch %s`, which is not a subcommand of cmd/epiwatch (it has: %s)", where, sub, strings.Join(sortedKeys(subs), ", "))
		}
		// --config names a file mounted from the repository, whose keys epiwatch knows.
		for i, a := range cmd {
			if str(a) == "--config" && i+1 < len(cmd) {
				cfg := str(cmd[i+1])
				src, ok := c.mounts(name)[cfg]
				if !ok {
					t.Errorf("%s: --config %s is not mounted", where, cfg)
					continue
				}
				checkConfigFile(t, rel(t, src), readYAML(t, src), ex)
			}
		}
		env := envOf(svc)
		for _, k := range sortedKeys(env) {
			checkEnv(t, where, k, ex)
		}
		// Listen addresses: reachable from other containers, on the port
		// Prometheus scrapes and the default one.
		addrVar, addrKey := "EPIWATCH_METRICS_ADDR", "metrics.addr"
		if sub == "ingest" {
			addrVar, addrKey = "EPIWATCH_HTTP_ADDR", "http.addr"
		}
		if sub == "migrate" {
			continue // one-shot, serves nothing
		}
		addr := str(env[addrVar])
		if addr == "" {
			t.Errorf("%s: set %s=0.0.0.0:<port>: the default (%s) listens on loopback only, unreachable from Prometheus", where, addrVar, defaults[addrKey])
			continue
		}
		host, port := hostPort(t, where+" "+addrVar, addr)
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s: %s=%s listens on %s only; use 0.0.0.0 in a container", where, addrVar, addr, host)
		}
		if _, defPort := hostPort(t, "deploy/epiwatch.example.yaml "+addrKey, defaults[addrKey]); defPort != port {
			t.Errorf("%s: %s port %d differs from the default %s (%s): keep one port per role so docs and scrape configs agree", where, addrVar, port, addrKey, defaults[addrKey])
		}
		job, ok := prom["epiwatch-"+name]
		if !ok {
			t.Errorf("prometheus.yml has no job epiwatch-%s scraping service %s", name, name)
		} else if job.port != port || !job.names[name] {
			t.Errorf("prometheus.yml job epiwatch-%s scrapes %v port %d; %s listens on %d", name, sortedKeys(job.names), job.port, where, port)
		}
		if sub == "ingest" {
			published := false
			for _, p := range list(svc["ports"]) {
				if strings.HasSuffix(str(p), fmt.Sprintf(":%d", port)) {
					published = true
				}
			}
			if !published {
				t.Errorf("%s: container port %d is not published", where, port)
			}
		}
	}
	for _, want := range []string{"ingest", "process", "detect", "decide", "sink", "alert", "migrate"} {
		if !seen[want] {
			t.Errorf("compose.yaml runs no `epiwatch %s` service", want)
		}
	}
	if r := get(c.services["ingest"], "deploy", "replicas"); r == nil || str(r) == "1" {
		t.Errorf("compose.yaml: ingest should run more than one replica (it is stateless), got %v", r)
	}
	// The stateful components run as one active replica under a lease and a
	// hot standby, as in deploy/k8s and cluster.sh's shape.
	for _, name := range []string{"process", "decide"} {
		if r := get(c.services[name], "deploy", "replicas"); r == nil || str(r) != "2" {
			t.Errorf("compose.yaml: %s should run 2 replicas (one active under its lease, one hot standby), got %v", name, r)
		}
	}

	// Three NATS servers in one JetStream cluster with file storage.
	var nats []string
	for name, svc := range c.services {
		if strings.HasPrefix(str(svc["image"]), "nats:") {
			nats = append(nats, name)
		}
	}
	if len(nats) != 3 {
		t.Errorf("compose.yaml: want 3 NATS servers, got %v", nats)
	}
	for _, name := range nats {
		cmd := strings.Join(strs(list(c.services[name]["command"])), " ")
		for _, want := range []string{"--jetstream", "--store_dir", "--cluster_name epiwatch", "--server_name " + name} {
			if !strings.Contains(cmd, want) {
				t.Errorf("compose.yaml %s: command lacks %q", name, want)
			}
		}
		for _, peer := range nats {
			if !strings.Contains(cmd, "nats://"+peer+":6222") {
				t.Errorf("compose.yaml %s: routes lack %s", name, peer)
			}
		}
	}
	chNodes := c.clickhouseNodes()
	if len(chNodes) == 0 {
		t.Errorf("compose.yaml: no ClickHouse service (image %s…)", clickhouseImage)
	}
	for _, name := range chNodes {
		if img := str(c.services[name]["image"]); img != clickhouseImage+":25.8" {
			t.Errorf("compose.yaml %s: ClickHouse image %q, want the current LTS %s:25.8", name, img, clickhouseImage)
		}
	}
	// The NATS URL lists every server (TestComposeCluster checks the one in
	// epiwatch.yaml).
	for name := range c.services {
		if u := str(envOf(c.services[name])["EPIWATCH_NATS_URL"]); u != "" {
			for _, n := range nats {
				if !strings.Contains(u, "nats://"+n+":4222") {
					t.Errorf("compose.yaml %s: EPIWATCH_NATS_URL %s lacks %s", name, u, n)
				}
			}
		}
	}
	// Every host path mounted exists in the repository.
	for name := range c.services {
		for target, src := range c.mounts(name) {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("compose.yaml %s mounts %s at %s: %v", name, rel(t, src), target, err)
			}
		}
	}
}

// TestDockerfile: multi-stage, Go build of cmd/epiwatch, distroless result.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "compose", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	from := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(s, -1)
	if len(from) != 2 || !strings.HasPrefix(from[0][1], "golang:") || !strings.HasPrefix(from[1][1], "gcr.io/distroless/") {
		t.Errorf("Dockerfile: want FROM golang:… AS build, then FROM gcr.io/distroless/…; got %v", from)
	}
	gomod, _ := os.ReadFile(filepath.Join(root(t), "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if goVersion != nil && !strings.HasPrefix(strings.TrimPrefix(from[0][1], "golang:"), string(goVersion[1])) {
		t.Errorf("Dockerfile builds with %s; go.mod asks for go %s", from[0][1], goVersion[1])
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/epiwatch", `ENTRYPOINT ["/usr/local/bin/epiwatch"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// promJob is one scrape job of deploy/prometheus/prometheus.yml.
type promJob struct {
	names map[string]bool // DNS names (Compose services)
	port  int
}

func promJobs(t *testing.T) map[string]promJob {
	t.Helper()
	doc := readYAML(t, filepath.Join(root(t), "deploy", "prometheus", "prometheus.yml"))
	out := map[string]promJob{}
	for _, j := range list(doc["scrape_configs"]) {
		job := promJob{names: map[string]bool{}}
		for _, sd := range list(get(j, "dns_sd_configs")) {
			for _, n := range list(get(sd, "names")) {
				job.names[str(n)] = true
			}
			fmt.Sscan(str(get(sd, "port")), &job.port)
		}
		out[str(get(j, "job_name"))] = job
	}
	return out
}

// exampleDefaults reads the default listen addresses from the example
// configuration.
func exampleDefaults(t *testing.T, ex exampleConfig) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range []string{"http.addr", "metrics.addr"} {
		parts := strings.Split(k, ".")
		v := str(get(ex.doc, parts[0], parts[1]))
		if v == "" {
			t.Fatalf("deploy/epiwatch.example.yaml: %s has no value (its default listen address)", k)
		}
		out[k] = v
	}
	return out
}

func strs(l []any) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = str(v)
	}
	return out
}
