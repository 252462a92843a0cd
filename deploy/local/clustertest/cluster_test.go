// Package clustertest proves deploy/local/cluster.sh with real processes: a
// 3-node NATS JetStream cluster (the official nats-server), ZooKeeper, and
// ClickHouse 18.16 as 2 shards x 2 replicas, all on loopback.
package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cluster runs deploy/local/cluster.sh with this test's data dir and ports.
type cluster struct {
	t      *testing.T
	script string
	env    []string
}

func (c *cluster) run(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script, args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return string(out), err
}

func (c *cluster) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	start := time.Now()
	out, err := c.run(timeout, args...)
	if err != nil {
		c.t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.t.Logf("cluster.sh %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out
}

// query runs SQL on a ClickHouse node through `cluster.sh client`.
func (c *cluster) query(node, sql string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script, "client", node, "--query", sql)
	cmd.Env = c.env
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		c.t.Fatalf("%s: %s: %v\n%s", node, sql, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// The ports cluster.sh uses before the offset (see its header).
var basePorts = []int{
	14222, 14223, 14224, 16222, 16223, 16224, 18222, 18223, 18224, // NATS
	12181,                      // ZooKeeper
	19001, 19002, 19003, 19004, // ClickHouse native
	18131, 18132, 18133, 18134, // ClickHouse HTTP
	19011, 19012, 19013, 19014, // ClickHouse interserver
}

// freeOffset picks a port offset at which every cluster port is free, so the
// test runs beside a developer's cluster (offset 0) and other tests.
func freeOffset(t *testing.T) int {
	for range 50 {
		off := 100 * (1 + rand.IntN(40))
		free := true
		for _, p := range basePorts {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return off
		}
	}
	t.Fatal("no free port offset for the cluster")
	return 0
}

func missingBinaries(root string) []string {
	var missing []string
	nats := filepath.Join(root, "bin", "nats-server")
	if b := os.Getenv("NATS_SERVER_BIN"); b != "" {
		nats = b
	}
	if _, err := os.Stat(nats); err != nil {
		missing = append(missing, nats)
	}
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if _, err := os.Stat("/usr/sbin/clickhouse-server"); err != nil {
			missing = append(missing, "clickhouse-server")
		}
	}
	if _, err := exec.LookPath("clickhouse-client"); err != nil {
		missing = append(missing, "clickhouse-client")
	}
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil {
		missing = append(missing, "/usr/share/java/zookeeper.jar (Debian zookeeper)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		missing = append(missing, "java")
	}
	return missing
}

func TestLocalCluster(t *testing.T) {
	began := time.Now()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if m := missingBinaries(root); len(m) > 0 {
		// deploy/local/test.sh (CI) runs setup.sh first and sets
		// EPIWATCH_TEST_CLUSTER=require: there, a missing piece is a failure.
		msg := fmt.Sprintf("local cluster pieces missing: %s; run deploy/local/setup.sh", strings.Join(m, ", "))
		if os.Getenv("EPIWATCH_TEST_CLUSTER") == "require" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	off := freeOffset(t)
	env := []string{
		"EPIWATCH_DATA_DIR=" + t.TempDir(),
		"EPIWATCH_CLUSTER_PORT_OFFSET=" + strconv.Itoa(off),
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EPIWATCH_") {
			env = append(env, kv)
		}
	}
	c := &cluster{t: t, script: filepath.Join(root, "deploy", "local", "cluster.sh"), env: env}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run(10*time.Second, "status")
			t.Logf("status at failure:\n%s", out)
		}
		if out, err := c.run(90*time.Second, "stop"); err != nil {
			t.Errorf("cluster.sh stop: %v\n%s", err, out)
		}
		t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
	})
	c.must(120*time.Second, "start")
	c.must(60*time.Second, "start") // idempotent
	c.must(10*time.Second, "status")

	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(c.must(10*time.Second, "env")))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	urls := strings.Split(vars["EPIWATCH_NATS_URL"], ",")
	if len(urls) != 3 || vars["EPIWATCH_STREAM_REPLICAS"] != "3" || vars["EPIWATCH_CLICKHOUSE_CLUSTER"] != "epiwatch" ||
		vars["EPIWATCH_CLICKHOUSE_ADDR"] != fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", 19001+off, 19002+off, 19003+off, 19004+off) {
		t.Fatalf("cluster.sh env: %v", vars)
	}

	// --- ClickHouse: ON CLUSTER DDL, a replicated table on every node, replication.
	cluster := vars["EPIWATCH_CLICKHOUSE_CLUSTER"]
	c.query("ch-1", "CREATE DATABASE IF NOT EXISTS ct ON CLUSTER "+cluster)
	c.query("ch-1", `CREATE TABLE IF NOT EXISTS ct.cases ON CLUSTER `+cluster+` (
		id UInt64, region String, version UInt32
	) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ct/cases', '{replica}', version)
	ORDER BY id`)
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		got := c.query(n, "SELECT engine FROM system.tables WHERE database = 'ct' AND name = 'cases'")
		if got != "ReplicatedReplacingMergeTree" {
			t.Fatalf("%s: ct.cases engine %q, want ReplicatedReplacingMergeTree", n, got)
		}
	}
	c.query("ch-1", "INSERT INTO ct.cases VALUES (1, 'north', 1), (2, 'south', 1), (1, 'north', 2)")
	c.query("ch-2", "SYSTEM SYNC REPLICA ct.cases")
	if got := c.query("ch-2", "SELECT count(), sum(version) FROM ct.cases FINAL"); got != "2\t3" {
		t.Fatalf("ch-2 (replica of ch-1) after SYNC REPLICA: %q, want 2 rows, versions 2+1", got)
	}
	if got := c.query("ch-3", "SELECT count() FROM ct.cases"); got != "0" {
		t.Fatalf("ch-3 (the other shard) has %s rows, want 0", got)
	}
	if got := c.query("ch-4", "SELECT count() FROM system.clusters WHERE cluster = '"+cluster+"'"); got != "4" {
		t.Fatalf("ch-4: system.clusters has %s replicas of %s, want 4", got, cluster)
	}

	// --- NATS: a 3-replica stream through the three URLs.
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "CLUSTERTEST", Subjects: []string{"ct.>"}, Replicas: 3, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatalf("create 3-replica stream: %v", err)
	}
	publish := func(n int) {
		t.Helper()
		for i := range n {
			deadline := time.Now().Add(30 * time.Second)
			for {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "ct.events", []byte(strconv.Itoa(i)))
				pcancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("publish %d: %v", i, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	publish(10)
	// Every URL alone sees the stream with three replicas.
	for _, u := range urls {
		one, err := nats.Connect(u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		ojs, _ := jetstream.New(one)
		st, err := ojs.Stream(ctx, "CLUSTERTEST")
		if err != nil {
			t.Fatalf("%s: stream: %v", u, err)
		}
		if info := st.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Name != "epiwatch" || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: stream cluster info %+v", u, info.Cluster)
		}
		one.Close()
	}

	// Kill nats-2 (SIGKILL): the stream still takes writes.
	c.must(30*time.Second, "kill", "nats-2")
	publish(10)
	// Bring it back on its data; it catches up with the 20 messages.
	c.must(90*time.Second, "restart", "nats-2")
	n2, err := nats.Connect(urls[1])
	if err != nil {
		t.Fatalf("nats-2 after restart: %v", err)
	}
	defer n2.Close()
	js2, _ := jetstream.New(n2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s.Info(ctx)
		current := 0
		if err == nil && info.Cluster != nil {
			for _, r := range info.Cluster.Replicas {
				if r.Current && !r.Offline {
					current++
				}
			}
		}
		if err == nil && info.State.Msgs == 20 && current == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restarting nats-2: err %v, info %+v", err, info)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s2, err := js2.Stream(ctx, "CLUSTERTEST")
	if err != nil {
		t.Fatalf("stream via nats-2: %v", err)
	}
	if got := s2.CachedInfo().State.Msgs; got != 20 {
		t.Fatalf("stream via nats-2: %d messages, want 20", got)
	}

	// --- epiwatch itself in cluster mode, on the same servers: ≥ 100k
	// events through the ingest API with nodes killed, into ClickHouse.
	// Two processors run through it; the active one is killed mid-load.
	steps, procs := epiwatchOnCluster(t, c, strings.Join(urls, ","), vars["EPIWATCH_CLICKHOUSE_ADDR"], cluster)
	if t.Failed() {
		return
	}
	// The same events on one embedded server, uninterrupted: the reference.
	ref, want := singleNodeRun(t, steps)
	// The standby took over; its indicators equal the reference's.
	procs.finish(want)
	// --- two deciders, one killed, on the indicators the processors left.
	decidersOnCluster(t, strings.Join(urls, ","), ref)
}
