package deploytest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is one manifest document.
type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc["kind"]) }
func (o k8sObject) name() string { return str(get(o.doc, "metadata", "name")) }
func (o k8sObject) where() string {
	return fmt.Sprintf("deploy/k8s/%s %s/%s", o.file, o.kind(), o.name())
}

// readKustomization returns the objects of every resource the
// kustomization lists, and checks that it lists every manifest.
func readKustomization(t *testing.T) []k8sObject {
	t.Helper()
	dir := filepath.Join(root(t), "deploy", "k8s")
	k := readYAML(t, filepath.Join(dir, "kustomization.yaml"))
	listed := map[string]bool{}
	var objs []k8sObject
	for _, r := range list(k["resources"]) {
		f := str(r)
		listed[f] = true
		for _, d := range readYAMLDocs(t, filepath.Join(dir, f)) {
			objs = append(objs, k8sObject{file: f, doc: mapping(d)})
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !listed[b] {
			t.Errorf("deploy/k8s/%s is not listed in kustomization.yaml resources", b)
		}
	}
	return objs
}

// TestKubernetes checks the manifests against epiwatch and against each
// other: subcommands, variables and configuration keys epiwatch reads, ports
// (container, probes, Service, scrape annotation), label selectors, and the
// ConfigMap and Secret keys the pods refer to.
func TestKubernetes(t *testing.T) {
	ex := readExample(t)
	subs := subcommands(t)
	defaults := exampleDefaults(t, ex)
	objs := readKustomization(t)

	byKind := map[string]map[string]k8sObject{}
	for _, o := range objs {
		if o.kind() == "" || o.name() == "" || str(o.doc["apiVersion"]) == "" {
			t.Errorf("%s: every object needs apiVersion, kind and metadata.name", o.where())
		}
		if byKind[o.kind()] == nil {
			byKind[o.kind()] = map[string]k8sObject{}
		}
		if _, dup := byKind[o.kind()][o.name()]; dup {
			t.Errorf("%s: defined twice", o.where())
		}
		byKind[o.kind()][o.name()] = o
	}

	// The configuration file in the ConfigMap uses only known keys.
	configMaps := map[string]map[string]any{}
	for name, o := range byKind["ConfigMap"] {
		configMaps[name] = mapping(o.doc["data"])
		if cfg, ok := mapping(o.doc["data"])["epiwatch.yaml"]; ok {
			var doc any
			if err := yaml.Unmarshal([]byte(str(cfg)), &doc); err != nil {
				t.Errorf("%s: epiwatch.yaml: %v", o.where(), err)
			} else {
				checkConfigFile(t, o.where()+" epiwatch.yaml", doc, ex)
			}
		}
	}
	secrets := map[string]map[string]any{}
	for name, o := range byKind["Secret"] {
		secrets[name] = mapping(o.doc["stringData"])
	}

	seen := map[string]int{} // subcommand → replicas
	podLabels := map[string]map[string]any{}
	podPorts := map[string]map[string]int{} // workload → port name → number
	type workload struct {
		obj  k8sObject
		spec map[string]any // pod spec
	}
	var workloads []workload
	for _, kind := range []string{"Deployment", "Job"} {
		for _, name := range sortedKeys(byKind[kind]) {
			o := byKind[kind][name]
			workloads = append(workloads, workload{o, mapping(get(o.doc, "spec", "template", "spec"))})
		}
	}
	for _, w := range workloads {
		o := w.obj
		labels := mapping(get(o.doc, "spec", "template", "metadata", "labels"))
		podLabels[o.name()] = labels
		if o.kind() == "Deployment" {
			for k, v := range mapping(get(o.doc, "spec", "selector", "matchLabels")) {
				if str(labels[k]) != str(v) {
					t.Errorf("%s: selector %s=%v does not match the pod template's labels", o.where(), k, v)
				}
			}
		}
		containers := list(w.spec["containers"])
		if len(containers) != 1 {
			t.Errorf("%s: want one container, got %d", o.where(), len(containers))
			continue
		}
		c := mapping(containers[0])
		args := strs(list(c["args"]))
		if len(args) == 0 {
			t.Errorf("%s: no args (an epiwatch subcommand)", o.where())
			continue
		}
		sub := args[0]
		if !subs[sub] {
			t.Errorf("%s runs `epiwatch %s`, which is not a subcommand of cmd/epiwatch (it has: %s)", o.where(), sub, strings.Join(sortedKeys(subs), ", "))
		}
		replicas := 1
		if r := get(o.doc, "spec", "replicas"); r != nil {
			fmt.Sscan(str(r), &replicas)
		}
		seen[sub] = replicas
		if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(w.spec, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: run as non-root with a read-only root filesystem", o.where())
		}
		if get(c, "resources", "requests") == nil || get(c, "resources", "limits", "memory") == nil {
			t.Errorf("%s: set resource requests and a memory limit", o.where())
		}
		// --config names a file of a mounted ConfigMap.
		volumes := map[string]map[string]any{}
		for _, v := range list(w.spec["volumes"]) {
			volumes[str(get(v, "name"))] = mapping(v)
		}
		for i, a := range args {
			if a != "--config" || i+1 >= len(args) {
				continue
			}
			dir, file := filepath.Split(args[i+1])
			found := false
			for _, m := range list(c["volumeMounts"]) {
				if filepath.Clean(str(get(m, "mountPath"))) != filepath.Clean(dir) {
					continue
				}
				cm := str(get(volumes[str(get(m, "name"))], "configMap", "name"))
				if data, ok := configMaps[cm]; !ok {
					t.Errorf("%s: --config %s: volume %s is not a ConfigMap of the kustomization", o.where(), args[i+1], str(get(m, "name")))
				} else if _, ok := data[file]; !ok {
					t.Errorf("%s: --config %s: ConfigMap %s has no key %s", o.where(), args[i+1], cm, file)
				}
				found = true
			}
			if !found {
				t.Errorf("%s: --config %s is not mounted", o.where(), args[i+1])
			}
		}
		env := map[string]string{}
		for _, e := range list(c["env"]) {
			name := str(get(e, "name"))
			env[name] = str(get(e, "value"))
			checkEnv(t, o.where(), name, ex)
			if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
				s, ok := secrets[str(get(ref, "name"))]
				if !ok {
					t.Errorf("%s: %s refers to Secret %s, which the kustomization does not define", o.where(), name, str(get(ref, "name")))
				} else if _, ok := s[str(get(ref, "key"))]; !ok {
					t.Errorf("%s: %s refers to key %s of Secret %s, which it lacks", o.where(), name, str(get(ref, "key")), str(get(ref, "name")))
				}
			}
		}
		ports := map[string]int{}
		for _, p := range list(c["ports"]) {
			var n int
			fmt.Sscan(str(get(p, "containerPort")), &n)
			ports[str(get(p, "name"))] = n
		}
		podPorts[o.name()] = ports
		if sub == "migrate" {
			continue
		}
		addrVar, addrKey := "EPIWATCH_METRICS_ADDR", "metrics.addr"
		if sub == "ingest" {
			addrVar, addrKey = "EPIWATCH_HTTP_ADDR", "http.addr"
		}
		addr, ok := env[addrVar]
		if !ok {
			t.Errorf("%s: set %s=0.0.0.0:<port>: the default (%s) listens on loopback only", o.where(), addrVar, defaults[addrKey])
			continue
		}
		host, port := hostPort(t, o.where()+" "+addrVar, addr)
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s: %s=%s is not reachable from outside the pod", o.where(), addrVar, addr)
		}
		if _, defPort := hostPort(t, addrKey, defaults[addrKey]); defPort != port {
			t.Errorf("%s: %s port %d differs from the default %s %s", o.where(), addrVar, port, addrKey, defaults[addrKey])
		}
		hasPort := false
		for _, n := range ports {
			hasPort = hasPort || n == port
		}
		if !hasPort {
			t.Errorf("%s: listens on %d (%s) but declares container ports %v", o.where(), port, addrVar, ports)
		}
		// Ingest may serve /metrics and the probes on their own listener.
		scrape := port
		if ma, ok := env["EPIWATCH_HTTP_METRICS_ADDR"]; ok && sub == "ingest" {
			_, scrape = hostPort(t, o.where()+" EPIWATCH_HTTP_METRICS_ADDR", ma)
			declared := false
			for _, n := range ports {
				declared = declared || n == scrape
			}
			if !declared {
				t.Errorf("%s: metrics listen on %d but the container declares ports %v", o.where(), scrape, ports)
			}
		}
		if a := str(get(o.doc, "spec", "template", "metadata", "annotations", "prometheus.io/port")); a != fmt.Sprint(scrape) {
			t.Errorf("%s: annotation prometheus.io/port=%q, want %d", o.where(), a, scrape)
		}
		for _, probe := range []string{"readinessProbe", "livenessProbe"} {
			pp := str(get(c, probe, "httpGet", "port"))
			if _, named := ports[pp]; !named && pp != fmt.Sprint(port) {
				t.Errorf("%s: %s probes port %q, which the container does not declare", o.where(), probe, pp)
			}
		}
	}
	for _, want := range []string{"ingest", "process", "detect", "decide", "sink", "alert", "migrate"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("deploy/k8s runs no `epiwatch %s`", want)
		}
	}
	if seen["ingest"] != 2 {
		t.Errorf("deploy/k8s: ingest replicas %d, want 2 (stateless, behind a Service)", seen["ingest"])
	}
	// One active replica and a hot standby, fenced by the lease.
	for _, sub := range []string{"process", "decide"} {
		if seen[sub] != 2 {
			t.Errorf("deploy/k8s: %s replicas %d, want 2 (one active under the lease, one hot standby)", sub, seen[sub])
		}
	}
	if _, ok := byKind["Job"]["epiwatch-migrate"]; !ok {
		t.Error("deploy/k8s: migrate must be a Job")
	}

	// Services select pods and target ports they have.
	for _, name := range sortedKeys(byKind["Service"]) {
		o := byKind["Service"][name]
		if str(get(o.doc, "spec", "type")) == "ExternalName" {
			if str(get(o.doc, "spec", "externalName")) == "" {
				t.Errorf("%s: no externalName", o.where())
			}
			continue
		}
		sel := mapping(get(o.doc, "spec", "selector"))
		var matched []string
		for w, labels := range podLabels {
			ok := len(sel) > 0
			for k, v := range sel {
				ok = ok && str(labels[k]) == str(v)
			}
			if ok {
				matched = append(matched, w)
			}
		}
		sort.Strings(matched)
		if len(matched) == 0 {
			t.Errorf("%s: selects no pod", o.where())
		}
		for _, p := range list(get(o.doc, "spec", "ports")) {
			target := str(get(p, "targetPort"))
			for _, w := range matched {
				if _, named := podPorts[w][target]; named {
					continue
				}
				found := false
				for _, n := range podPorts[w] {
					found = found || fmt.Sprint(n) == target
				}
				if !found {
					t.Errorf("%s: targetPort %s is not a port of %s", o.where(), target, w)
				}
			}
		}
	}
	// NATS and ClickHouse are external, under the names the configuration uses.
	cfg := str(configMaps["epiwatch-config"]["epiwatch.yaml"])
	for _, svc := range []string{"nats", "clickhouse"} {
		o, ok := byKind["Service"][svc]
		if !ok || str(get(o.doc, "spec", "type")) != "ExternalName" {
			t.Errorf("deploy/k8s: want an ExternalName Service %s pointing at the Helm-installed %s", svc, svc)
		}
		if !strings.Contains(cfg, svc+":") {
			t.Errorf("deploy/k8s: epiwatch.yaml does not refer to %s", svc)
		}
	}
	if _, err := os.Stat(filepath.Join(root(t), "deploy", "k8s", "README.md")); err != nil {
		t.Errorf("deploy/k8s/README.md: %v", err)
	}
}
