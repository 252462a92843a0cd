package deploytest_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// The cluster shape of deploy/local/cluster.sh (3 NATS servers, one
// ZooKeeper, ClickHouse as 2 shards × 2 replicas in the remote_servers
// cluster its `env` names) is the one deploy/compose runs and deploy/k8s
// expects. These tests hold the three to it.

// clickhouseImage is the repository of the ClickHouse server image Compose
// runs.
const clickhouseImage = "clickhouse/clickhouse-server"

// The ClickHouse layout cluster.sh runs and Compose must declare.
const (
	wantShards           = 2
	wantReplicasPerShard = 2
)

// clickhouseConfigDir is where the server image reads extra configuration
// files, merged into its config.xml.
const clickhouseConfigDir = "/etc/clickhouse-server/config.d"

// clickhouseNativePort is the native-protocol port of the image's default
// configuration, the same in every container.
const clickhouseNativePort = "9000"

// coordinatorPorts are the images that speak ZooKeeper's protocol and the
// client port each listens on by default.
var coordinatorPorts = map[string]string{
	"zookeeper":                    "2181",
	"clickhouse/clickhouse-keeper": "9181",
}

// imageRepo is a service's image without its tag.
func (c composeFile) imageRepo(name string) string {
	img := str(c.services[name]["image"])
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		img = img[:i]
	}
	return img
}

// servicesOf returns the services running one of the image repositories,
// sorted.
func (c composeFile) servicesOf(repos ...string) []string {
	var out []string
	for name := range c.services {
		if slices.Contains(repos, c.imageRepo(name)) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (c composeFile) clickhouseNodes() []string { return c.servicesOf(clickhouseImage) }
func (c composeFile) natsNodes() []string       { return c.servicesOf("nats") }
func (c composeFile) coordinatorNodes() []string {
	return c.servicesOf(sortedKeys(coordinatorPorts)...)
}

// localCluster is what deploy/local/cluster.sh runs, from its own output:
// `env` (the settings it gives epiwatch) and `status` (its nodes; run with
// an empty data directory, it starts nothing and reports every node down).
type localCluster struct {
	env                 map[string]string // EPIWATCH_* → value
	nats, zookeeper, ch []string          // node names, in cluster.sh's order
	shard               map[string]string // ClickHouse node → its {shard}
	script              string            // its path, for messages
}

// localClusterOnce caches cluster.sh's answers for the tests of one run
// (status probes every node's port).
var localClusterOnce struct {
	sync.Mutex
	lc *localCluster
}

func readLocalCluster(t *testing.T) localCluster {
	t.Helper()
	localClusterOnce.Lock()
	defer localClusterOnce.Unlock()
	if localClusterOnce.lc == nil {
		lc := runLocalCluster(t)
		localClusterOnce.lc = &lc
	}
	return *localClusterOnce.lc
}

func runLocalCluster(t *testing.T) localCluster {
	t.Helper()
	script := filepath.Join(root(t), "deploy", "local", "cluster.sh")
	run := func(arg string, okCodes ...int) string {
		cmd := exec.Command("bash", script, arg)
		cmd.Dir = root(t)
		// Its data directory is created if missing: keep it out of the tree.
		cmd.Env = append(os.Environ(), "EPIWATCH_DATA_DIR="+t.TempDir())
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && slices.Contains(okCodes, exit.ExitCode())) {
			t.Fatalf("deploy/local/cluster.sh %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	lc := localCluster{env: map[string]string{}, shard: map[string]string{}, script: "deploy/local/cluster.sh"}
	for _, m := range regexp.MustCompile(`(?m)^export (EPIWATCH_[A-Z0-9_]+)=(.*)$`).FindAllStringSubmatch(run("env"), -1) {
		lc.env[m[1]] = m[2]
	}
	// status exits 1 when a node is down.
	lineRe := regexp.MustCompile(`^(\S+)\s+\S+\s+127\.0\.0\.1\s+(.*)$`)
	shardRe := regexp.MustCompile(`\bshard (\S+)`)
	for _, line := range strings.Split(run("status", 1), "\n") {
		m := lineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch name := m[1]; {
		case strings.HasPrefix(name, "nats-"):
			lc.nats = append(lc.nats, name)
		case strings.HasPrefix(name, "zk-"):
			lc.zookeeper = append(lc.zookeeper, name)
		case strings.HasPrefix(name, "ch-"):
			lc.ch = append(lc.ch, name)
			if s := shardRe.FindStringSubmatch(m[2]); s != nil {
				lc.shard[name] = s[1]
			}
		}
	}
	for _, v := range []string{"EPIWATCH_NATS_URL", "EPIWATCH_STREAM_REPLICAS", "EPIWATCH_CLICKHOUSE_ADDR", "EPIWATCH_CLICKHOUSE_CLUSTER"} {
		if lc.env[v] == "" {
			t.Fatalf("deploy/local/cluster.sh env prints no %s (got %v): these tests compare Compose and Kubernetes with it", v, lc.env)
		}
	}
	if len(lc.nats) == 0 || len(lc.zookeeper) == 0 || len(lc.ch) == 0 || len(lc.shard) != len(lc.ch) {
		t.Fatalf("deploy/local/cluster.sh status: want NATS, ZooKeeper and ClickHouse nodes (each ClickHouse one with its shard), got nats %v zookeeper %v clickhouse %v shards %v", lc.nats, lc.zookeeper, lc.ch, lc.shard)
	}
	return lc
}

// clusterName is the ClickHouse cluster cluster.sh points epiwatch at.
func (lc localCluster) clusterName() string { return lc.env["EPIWATCH_CLICKHOUSE_CLUSTER"] }

// shards groups cluster.sh's ClickHouse nodes by shard, in shard order.
func (lc localCluster) shards() [][]string {
	by := map[string][]string{}
	for _, n := range lc.ch {
		by[lc.shard[n]] = append(by[lc.shard[n]], n)
	}
	var out [][]string
	for _, s := range sortedKeys(by) {
		out = append(out, by[s])
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// TestLocalClusterShape: cluster.sh itself is the 2 × 2 the deployments copy.
func TestLocalClusterShape(t *testing.T) {
	lc := readLocalCluster(t)
	shards := lc.shards()
	if len(shards) != wantShards {
		t.Errorf("%s runs ClickHouse shards %v, want %d shards", lc.script, shards, wantShards)
	}
	for _, s := range shards {
		if len(s) != wantReplicasPerShard {
			t.Errorf("%s: shard %s has replicas %v, want %d", lc.script, lc.shard[s[0]], s, wantReplicasPerShard)
		}
	}
	if got := len(splitList(lc.env["EPIWATCH_NATS_URL"])); got != len(lc.nats) {
		t.Errorf("%s env: EPIWATCH_NATS_URL lists %d servers, status shows %d NATS nodes %v", lc.script, got, len(lc.nats), lc.nats)
	}
	if r := lc.env["EPIWATCH_STREAM_REPLICAS"]; r != strconv.Itoa(len(lc.nats)) {
		t.Errorf("%s env: EPIWATCH_STREAM_REPLICAS=%s, want one replica per NATS node (%d)", lc.script, r, len(lc.nats))
	}
}

// effectiveConfig is the value epiwatch sees for a key: the service's
// EPIWATCH_* variable if set, else the configuration file's.
func effectiveConfig(doc any, env map[string]string, key string) string {
	if v, ok := env[envName(key)]; ok {
		return v
	}
	path := make([]any, 0, 2)
	for _, p := range strings.Split(key, ".") {
		path = append(path, p)
	}
	return str(get(doc, path...))
}

// composeEpiwatchConfig returns the configuration file a Compose epiwatch
// service is given with --config, parsed.
func composeEpiwatchConfig(t *testing.T, c composeFile, name string) (any, string) {
	t.Helper()
	cmd := strs(list(c.services[name]["command"]))
	for i, a := range cmd {
		if a == "--config" && i+1 < len(cmd) {
			if src, ok := c.mounts(name)[cmd[i+1]]; ok {
				return readYAML(t, src), rel(t, src)
			}
		}
	}
	t.Fatalf("compose.yaml %s: no --config file mounted (TestCompose says more)", name)
	return nil, ""
}

// TestComposeCluster: Compose runs cluster.sh's cluster — the same NATS,
// ZooKeeper and ClickHouse nodes, ClickHouse configured as a replicated
// cluster under the name epiwatch's clickhouse.cluster gives, and every
// epiwatch service pointed at all of it.
func TestComposeCluster(t *testing.T) {
	lc := readLocalCluster(t)
	c := readCompose(t)
	chNodes, natsNodes, zkNodes := c.clickhouseNodes(), c.natsNodes(), c.coordinatorNodes()

	// The same nodes as cluster.sh, under the same names.
	for _, n := range []struct {
		what           string
		compose, local []string
	}{
		{"NATS servers (image nats)", natsNodes, lc.nats},
		{"ZooKeeper servers (image " + strings.Join(sortedKeys(coordinatorPorts), " or ") + ")", zkNodes, lc.zookeeper},
		{"ClickHouse nodes (image " + clickhouseImage + ")", chNodes, lc.ch},
	} {
		if !slices.Equal(n.compose, n.local) {
			t.Errorf("compose.yaml runs %s %v; %s runs %v: keep the same nodes and names", n.what, n.compose, lc.script, n.local)
		}
	}

	// Every epiwatch service sees the cluster settings cluster.sh env gives.
	clusterName := ""
	var bad findings // by service
	for _, name := range sortedKeys(c.services) {
		if !c.isEpiwatch(name) {
			continue
		}
		doc, file := composeEpiwatchConfig(t, c, name)
		env := map[string]string{}
		for k, v := range envOf(c.services[name]) {
			env[k] = str(v)
		}
		// Where a key's value comes from, for messages.
		from := func(key string) string {
			if _, ok := env[envName(key)]; ok {
				return "environment " + envName(key)
			}
			return file
		}
		cluster := effectiveConfig(doc, env, "clickhouse.cluster")
		if clusterName == "" {
			clusterName = cluster
		}
		for _, chk := range []struct{ key, got, want, why string }{
			{"clickhouse.cluster", cluster, lc.clusterName(), lc.script + " env's EPIWATCH_CLICKHOUSE_CLUSTER"},
			{"stream.replicas", effectiveConfig(doc, env, "stream.replicas"), strconv.Itoa(len(natsNodes)), "one copy of every stream on each of the NATS servers " + strings.Join(natsNodes, ", ")},
			{"stream.replicas", effectiveConfig(doc, env, "stream.replicas"), lc.env["EPIWATCH_STREAM_REPLICAS"], lc.script + " env's EPIWATCH_STREAM_REPLICAS"},
		} {
			if chk.got != chk.want {
				bad.add(name, "%s is %q (%s), want %q: %s", chk.key, chk.got, from(chk.key), chk.want, chk.why)
			}
		}
		for _, chk := range []struct {
			key, scheme, port string
			nodes             []string
			localVar          string
		}{
			{"nats.url", "nats://", "4222", natsNodes, "EPIWATCH_NATS_URL"},
			{"clickhouse.addr", "", clickhouseNativePort, chNodes, "EPIWATCH_CLICKHOUSE_ADDR"},
		} {
			got := effectiveConfig(doc, env, chk.key)
			var hosts []string
			for _, a := range splitList(got) {
				h, p := hostPort(t, "compose.yaml "+name+" "+chk.key+" ("+from(chk.key)+")", strings.TrimPrefix(a, chk.scheme))
				if strconv.Itoa(p) != chk.port {
					bad.add(name, "%s (%s) lists %s, want port %s", chk.key, from(chk.key), a, chk.port)
				}
				hosts = append(hosts, h)
			}
			if !slices.Equal(hosts, chk.nodes) {
				bad.add(name, "%s is %q (%s), want every one of %v in that order (as %s env lists all of its nodes)", chk.key, got, from(chk.key), chk.nodes, lc.script)
			}
			if n := len(splitList(lc.env[chk.localVar])); n != len(hosts) {
				bad.add(name, "%s (%s) lists %d addresses; %s env's %s lists %d", chk.key, from(chk.key), len(hosts), lc.script, chk.localVar, n)
			}
		}
	}
	bad.report(t, "compose.yaml service")
	if clusterName == "" {
		t.Fatal("compose.yaml: no epiwatch service sets clickhouse.cluster")
	}

	// Each ClickHouse node declares that cluster, 2 shards × 2 replicas of
	// the Compose nodes, with ZooKeeper, and its own macros.
	wantLayout := lc.shards()
	macros := map[string]map[string]string{} // node → macros
	var layout [][]string                    // shards of remote_servers, as declared by the first node
	var chBad findings                       // by node
	files := map[string][]string{}           // node → its config.d files
	for _, node := range chNodes {
		cfg := readClickHouseConfig(t, c, node)
		files[node] = cfg.files
		env := map[string]string{}
		for k, v := range envOf(c.services[node]) {
			env[k] = str(v)
		}
		cl, ok := cfg.clusters[clusterName]
		if !ok {
			chBad.add(node, "remote_servers has no cluster %q (clickhouse.cluster of epiwatch.yaml); it has %v", clusterName, sortedKeys(cfg.clusters))
		} else {
			shards := cl.all("shard")
			var got [][]string
			for i, s := range shards {
				if ir := s.child("internal_replication"); ir == nil || ir.text() != "true" {
					chBad.add(node, "cluster %s shard %d: set internal_replication true (the replicated tables copy the rows; the Distributed table must write one replica)", clusterName, i+1)
				}
				var hosts []string
				for _, r := range s.all("replica") {
					hosts = append(hosts, r.childText("host"))
					checkReplicaLogin(&chBad, node, clusterName, r, env)
				}
				got = append(got, hosts)
			}
			if len(shards) != wantShards {
				chBad.add(node, "cluster %s has %d shards, want %d (× %d replicas, as %s)", clusterName, len(shards), wantShards, wantReplicasPerShard, lc.script)
			}
			for i, hosts := range got {
				if len(hosts) != wantReplicasPerShard {
					chBad.add(node, "cluster %s shard %d has replicas %v, want %d", clusterName, i+1, hosts, wantReplicasPerShard)
				}
			}
			if !equalLayout(got, wantLayout) {
				chBad.add(node, "cluster %s shards are %v; %s's are %v", clusterName, got, lc.script, wantLayout)
			}
			if layout == nil {
				layout = got
			} else if !equalLayout(got, layout) {
				chBad.add(node, "cluster %s shards are %v; %s declares %v: every node needs the same remote_servers", clusterName, got, chNodes[0], layout)
			}
		}

		// Macros: {shard} and {replica} name this node in the replicated
		// tables' ZooKeeper paths (as cluster.sh: shard NN, replica = node).
		macros[node] = cfg.macros
		for _, chk := range []struct{ macro, want, why string }{
			{"shard", lc.shard[node], lc.script + "'s shard of " + node},
			{"replica", node, "the node's name, as " + lc.script + " names replicas"},
		} {
			if got := cfg.macros[chk.macro]; got != chk.want {
				chBad.add(node, "macro %s is %q, want %q (%s)", chk.macro, got, chk.want, chk.why)
			}
		}
		if m, ok := cfg.macros["cluster"]; ok && m != clusterName {
			chBad.add(node, "macro cluster is %q, want %q", m, clusterName)
		}
		if cfg.interserverHost != node {
			chBad.add(node, "interserver_http_host is %q, want %q: replicas fetch parts from the host each registers in ZooKeeper, which must resolve to it", cfg.interserverHost, node)
		}

		// ZooKeeper: the Compose ZooKeeper service(s), on their client port,
		// started first.
		if len(cfg.zookeeper) == 0 {
			chBad.add(node, "no zookeeper section: replicated tables and ON CLUSTER DDL need one (the service(s) %v)", zkNodes)
		}
		for _, z := range cfg.zookeeper {
			want, ok := coordinatorPorts[c.imageRepo(z[0])]
			if !ok || !slices.Contains(zkNodes, z[0]) {
				chBad.add(node, "zookeeper node %s is not a ZooKeeper service of compose.yaml (%v)", z[0], zkNodes)
			} else if z[1] != want {
				chBad.add(node, "zookeeper node %s:%s, but %s listens on %s", z[0], z[1], z[0], want)
			}
			if get(c.services[node], "depends_on", z[0]) == nil {
				chBad.add(node, "depends_on lacks %s (its ZooKeeper)", z[0])
			}
		}
	}

	chBad.report(t, "compose.yaml ClickHouse node")
	if len(chBad.order) > 0 {
		for _, node := range chNodes {
			t.Logf("compose.yaml %s reads %s", node, strings.Join(files[node], ", "))
		}
	}

	// Macros name each replica once and agree with the shards of
	// remote_servers.
	seen := map[string]string{}
	for _, node := range chNodes {
		r := macros[node]["replica"]
		if other, dup := seen[r]; dup && r != "" {
			t.Errorf("compose.yaml: ClickHouse nodes %s and %s have the same replica macro %q", other, node, r)
		}
		seen[r] = node
	}
	shardMacro := map[string]string{} // shard macro → the remote_servers shard holding it
	for i, hosts := range layout {
		for _, h := range hosts {
			m, ok := macros[h]
			if !ok {
				t.Errorf("compose.yaml: cluster %s shard %d lists %s, which is not a ClickHouse service (%v)", clusterName, i+1, h, chNodes)
				continue
			}
			key := fmt.Sprint(i + 1)
			if prev, ok := shardMacro[m["shard"]]; ok && prev != key {
				t.Errorf("compose.yaml: %s (shard %d of cluster %s) has shard macro %q, as shard %s does: each shard needs its own", h, i+1, clusterName, m["shard"], prev)
			}
			shardMacro[m["shard"]] = key
			for _, peer := range hosts {
				if pm := macros[peer]["shard"]; peer > h && pm != m["shard"] {
					t.Errorf("compose.yaml: %s and %s are replicas of one shard of cluster %s but have shard macros %q and %q", h, peer, clusterName, m["shard"], pm)
				}
			}
		}
	}
}

// checkReplicaLogin: the nodes log in to each other as the user the image
// creates (it removes `default` when CLICKHOUSE_USER is set), with its
// password.
func checkReplicaLogin(f *findings, node, cluster string, r xmlNode, env map[string]string) {
	user := env["CLICKHOUSE_USER"]
	if user == "" {
		user = "default"
	}
	host := r.childText("host")
	if got := r.childText("user"); got != user && !(got == "" && user == "default") {
		f.add(node, "cluster %s replica %s logs in as %q, but the node's only user is %q (CLICKHOUSE_USER)", cluster, host, got, user)
	}
	if p := r.childText("port"); p != clickhouseNativePort {
		f.add(node, "cluster %s replica %s port %q, want the native port %s", cluster, host, p, clickhouseNativePort)
	}
	pw := r.child("password")
	got := ""
	if pw != nil {
		got = pw.text()
		if v := pw.attr("from_env"); v != "" {
			val, ok := env[v]
			if !ok {
				f.add(node, "cluster %s replica %s: password from_env %s, which the service's environment does not set", cluster, host, v)
			}
			got = val
		}
	}
	if got != env["CLICKHOUSE_PASSWORD"] {
		f.add(node, "cluster %s replica %s: the password is not the service's CLICKHOUSE_PASSWORD (use from_env=\"CLICKHOUSE_PASSWORD\")", cluster, host)
	}
}

// findings collects failures by their message, so that one found on several
// services (a shared file) is reported once, naming them all.
type findings struct {
	order []string            // messages, first seen first
	who   map[string][]string // message → services
}

func (f *findings) add(who, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if f.who == nil {
		f.who = map[string][]string{}
	}
	if _, ok := f.who[msg]; !ok {
		f.order = append(f.order, msg)
	}
	f.who[msg] = append(f.who[msg], who)
}

func (f *findings) report(t *testing.T, what string) {
	t.Helper()
	for _, msg := range f.order {
		who := f.who[msg]
		plural := ""
		if len(who) > 1 {
			plural = "s"
		}
		t.Errorf("%s%s %s: %s", what, plural, strings.Join(who, ", "), msg)
	}
}

func equalLayout(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// xmlNode is a generic XML element.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []xmlNode  `xml:",any"`
}

func (n xmlNode) text() string { return strings.TrimSpace(n.Text) }

func (n xmlNode) all(name string) []xmlNode {
	var out []xmlNode
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			out = append(out, c)
		}
	}
	return out
}

func (n xmlNode) child(name string) *xmlNode {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == name {
			return &n.Nodes[i]
		}
	}
	return nil
}

func (n xmlNode) childText(name string) string {
	if c := n.child(name); c != nil {
		return c.text()
	}
	return ""
}

func (n xmlNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// clickhouseConfig is what a Compose ClickHouse node's config.d files
// declare about its cluster.
type clickhouseConfig struct {
	files           []string           // repository paths
	clusters        map[string]xmlNode // remote_servers clusters by name
	macros          map[string]string
	zookeeper       [][2]string // host, port
	interserverHost string
}

// readClickHouseConfig parses the files a Compose ClickHouse service mounts
// into config.d (a file each, or the directory). A section declared by two
// files is an error: ClickHouse would merge them, these checks would not.
func readClickHouseConfig(t *testing.T, c composeFile, node string) clickhouseConfig {
	t.Helper()
	var files []string
	for target, src := range c.mounts(node) {
		switch {
		case target == clickhouseConfigDir:
			m, _ := filepath.Glob(filepath.Join(src, "*.xml"))
			files = append(files, m...)
		case strings.HasPrefix(target, clickhouseConfigDir+"/") && strings.HasSuffix(target, ".xml"):
			files = append(files, src)
		}
	}
	sort.Strings(files)
	cfg := clickhouseConfig{clusters: map[string]xmlNode{}, macros: map[string]string{}}
	from := map[string]string{} // section → file declaring it
	once := func(section, file string) bool {
		if prev, dup := from[section]; dup {
			t.Errorf("compose.yaml %s: %s is declared in both %s and %s: keep it in one file", node, section, prev, file)
			return false
		}
		from[section] = file
		return true
	}
	for _, f := range files {
		r := rel(t, f)
		cfg.files = append(cfg.files, r)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("compose.yaml %s: %v", node, err)
			continue
		}
		var doc xmlNode
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if doc.XMLName.Local != "clickhouse" {
			t.Errorf("%s: root element <%s>, want <clickhouse> (%s reads <yandex> only as a deprecated alias)", r, doc.XMLName.Local, clickhouseImage)
		}
		for _, sec := range doc.Nodes {
			switch sec.XMLName.Local {
			case "remote_servers":
				for _, cl := range sec.Nodes {
					if once("remote_servers cluster "+cl.XMLName.Local, r) {
						cfg.clusters[cl.XMLName.Local] = cl
					}
				}
			case "macros":
				for _, m := range sec.Nodes {
					if once("macro "+m.XMLName.Local, r) {
						cfg.macros[m.XMLName.Local] = m.text()
					}
				}
			case "zookeeper":
				if once("zookeeper", r) {
					for _, n := range sec.all("node") {
						cfg.zookeeper = append(cfg.zookeeper, [2]string{n.childText("host"), n.childText("port")})
					}
				}
			case "interserver_http_host":
				if once("interserver_http_host", r) {
					cfg.interserverHost = sec.text()
				}
			}
		}
	}
	if len(files) == 0 {
		t.Errorf("compose.yaml %s: mounts no configuration file into %s", node, clickhouseConfigDir)
	}
	return cfg
}

// TestKubernetesCluster: the Kubernetes configuration points epiwatch at the
// same cluster settings (the ClickHouse cluster name, stream replicas) as
// cluster.sh and Compose; no workload overrides them. (TestKubernetes checks
// the 2 replicas of process and decide.)
func TestKubernetesCluster(t *testing.T) {
	lc := readLocalCluster(t)
	c := readCompose(t)
	objs := readKustomization(t)
	var cfg any
	for _, o := range objs {
		if o.kind() == "ConfigMap" && o.name() == "epiwatch-config" {
			if err := yaml.Unmarshal([]byte(str(get(o.doc, "data", "epiwatch.yaml"))), &cfg); err != nil {
				t.Fatalf("%s: epiwatch.yaml: %v", o.where(), err)
			}
		}
	}
	if cfg == nil {
		t.Fatal("deploy/k8s: no ConfigMap epiwatch-config with epiwatch.yaml")
	}
	want := []struct{ key, want, why string }{
		{"clickhouse.cluster", lc.clusterName(), lc.script + " env's EPIWATCH_CLICKHOUSE_CLUSTER (the ClickHouse installation must declare it: see deploy/k8s/README.md)"},
		{"stream.replicas", lc.env["EPIWATCH_STREAM_REPLICAS"], lc.script + " env's EPIWATCH_STREAM_REPLICAS (a 3-node NATS cluster)"},
		{"stream.replicas", strconv.Itoa(len(c.natsNodes())), "the NATS servers of compose.yaml"},
	}
	var bad findings // by workload
	for _, o := range objs {
		if o.kind() != "Deployment" && o.kind() != "Job" {
			continue
		}
		for _, ctr := range list(get(o.doc, "spec", "template", "spec", "containers")) {
			env := map[string]string{}
			for _, e := range list(get(ctr, "env")) {
				env[str(get(e, "name"))] = str(get(e, "value"))
			}
			for _, w := range want {
				from := "ConfigMap epiwatch-config"
				if _, ok := env[envName(w.key)]; ok {
					from = "environment " + envName(w.key)
				}
				if got := effectiveConfig(cfg, env, w.key); got != w.want {
					bad.add(o.file+" "+o.kind()+"/"+o.name(), "%s is %q (%s), want %q: %s", w.key, got, from, w.want, w.why)
				}
			}
		}
	}
	bad.report(t, "deploy/k8s workload")
}
