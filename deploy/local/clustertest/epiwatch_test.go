package clustertest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/paneltest"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// epiwatchOnCluster runs epiwatch's own pieces against the cluster:
//
//   - `migrate` in cluster mode (clickhouse.cluster) creates every table and
//     view on all four ClickHouse nodes — replicated local tables,
//     Distributed tables under the analysts' names — and runs again
//     harmlessly; an unknown cluster name is a clear error naming the
//     setting.
//   - the streams with 3 replicas on the 3 NATS nodes, and the real sink
//     landing simulated events through the Distributed tables while ch-3 is
//     killed (SIGKILL) and restarted: the sink keeps inserting into the
//     surviving replica of its shard, a re-sent half lands again harmlessly,
//     and afterwards the distributed epiwatch.events has exactly one row per
//     event_id and both replicas of each shard hold the same rows after
//     SYSTEM SYNC REPLICA.
//   - ZooKeeper killed: the replicated tables refuse inserts, the sink holds
//     the batches unacknowledged and retries; they drain when it returns.
//   - every shipped query runs on the distributed tables.
func epiwatchOnCluster(t *testing.T, c *cluster, natsURL, chAddr, clusterName string) ([]step, *processorPair) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const db = "epiwatch_ct"
	conn, err := chsink.Open(ctx, chsink.Config{Addr: chAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if _, err := chsink.Migrate(ctx, conn, db, "no_such_cluster", schemas.DefaultRegions()); err == nil ||
		!strings.Contains(err.Error(), "clickhouse.cluster") || !strings.Contains(err.Error(), clusterName) {
		t.Fatalf("an unknown cluster: %v; want an error naming clickhouse.cluster and the clusters known", err)
	}
	began := time.Now()
	if _, err := chsink.Migrate(ctx, conn, db, clusterName, schemas.DefaultRegions()); err != nil {
		t.Fatalf("migrate in cluster mode: %v", err)
	}
	t.Logf("cluster migrate: %s", time.Since(began).Round(time.Millisecond))
	if _, err := chsink.Migrate(ctx, conn, db, clusterName, schemas.DefaultRegions()); err != nil {
		t.Fatalf("migrate in cluster mode, second run: %v", err)
	}
	tables := func(node string) string {
		return c.query(node, "SELECT groupArray(name || ':' || engine) FROM (SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name)")
	}
	first := tables("ch-1")
	for _, want := range []string{"events:View", "events_v2_store:Distributed", "events_v2_store_local:ReplicatedReplacingMergeTree",
		"indicators_latest:View", "decisions:View", "nowcast_mv:MaterializedView", "regions_store:ReplicatedReplacingMergeTree"} {
		if !strings.Contains(first, "'"+want+"'") {
			t.Errorf("ch-1 lacks %s: %s", want, first)
		}
	}
	for _, n := range []string{"ch-2", "ch-3", "ch-4"} {
		if got := tables(n); got != first {
			t.Errorf("%s has other tables than ch-1:\n%s\n%s", n, got, first)
		}
	}
	// The region reference is replicated whole to every node.
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		c.query(n, "SYSTEM SYNC REPLICA "+db+".regions_store")
		if got := c.query(n, "SELECT count() FROM "+db+".regions"); got != strconv.Itoa(len(schemas.DefaultRegions().All())) {
			t.Errorf("%s: %s regions, want all %d", n, got, len(schemas.DefaultRegions().All()))
		}
	}

	// Streams on the NATS cluster, the real sink, and the real ingest API.
	nc, js, err := stream.Connect(natsURL, "clustertest-epiwatch")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bus := stream.NewBus(js)
	scfg := stream.DefaultConfig()
	scfg.Replicas = 3
	scfg.EventsMaxBytes = 256 << 20 // the local cluster's servers reserve less than the 20 GiB default
	if _, err := bus.Ensure(ctx, scfg); err != nil {
		t.Fatalf("streams with 3 replicas: %v", err)
	}
	sink, err := chsink.New(chsink.SinkConfig{BatchSize: 5000, FlushInterval: 200 * time.Millisecond, RetryMax: time.Second, AckWait: 30 * time.Second},
		chsink.Deps{Conn: conn, Database: db, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	sinkDone := make(chan error, 1)
	go func() { sinkDone <- sink.Run(sctx) }()
	defer func() {
		stop()
		if err := <-sinkDone; err != nil {
			t.Errorf("sink: %v", err)
		}
	}()
	api := newIngestAPI(t, bus)
	// Two processors, one active and one standby, through the load.
	procs := startProcessors(t, natsURL)

	count := func(node string) int {
		n, _ := strconv.Atoi(c.query(node, "SELECT count() FROM "+db+".events"))
		return n
	}
	waitCount := func(want int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			got := count("ch-2")
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("distributed events: %d rows, want %d", got, want)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	// ≥ 100k simulated events posted through the ingest API while nats-2
	// and ch-3 are killed (SIGKILL) and restarted: the API answers 503
	// with Retry-After while the stream elects a leader, the producer
	// retries, and the sink fails over to ch-4 for shard 2.
	events := simulatedEvents(t, 7, 8, "", "KZ-75", "KZ-71", "KZ-19", "KG-GB")
	if len(events) < 100000 {
		t.Fatalf("the simulation gave %d events, want ≥ 100,000", len(events))
	}
	var posted atomic.Int64
	postDone := make(chan simulate.SendResult, 1)
	began = time.Now()
	go func() { postDone <- api.post(ctx, t, events, &posted) }()
	waitPosted := func(n int) {
		t.Helper()
		for posted.Load() < int64(n) {
			select {
			case res := <-postDone:
				postDone <- res
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitPosted(len(events) * 3 / 10)
	// nats-2 leads the events stream when it is killed, so the stream
	// must elect a new leader under load.
	leadOn(ctx, t, js, schemas.StreamEvents, "nats-2")
	killedAt := posted.Load()
	c.must(30*time.Second, "kill", "nats-2")
	c.must(30*time.Second, "kill", "ch-3")
	waitPosted(len(events) * 45 / 100)
	procKilledAt := posted.Load()
	procs.killActive()
	waitPosted(len(events) * 6 / 10)
	restartedAt := posted.Load()
	c.must(90*time.Second, "restart", "nats-2")
	c.must(120*time.Second, "restart", "ch-3")
	res := <-postDone
	elapsed := time.Since(began)
	waitCount(len(events))
	t.Logf("%d events posted through the ingest API in %s (%.0f/s); nats-2 (leading the events stream) and ch-3 killed after %d, the active processor after %d, nats-2 and ch-3 restarted after %d: %+v; all in ClickHouse after %s",
		len(events), elapsed.Round(time.Millisecond), float64(len(events))/elapsed.Seconds(), killedAt, procKilledAt, restartedAt,
		simulate.SendResult{Sent: res.Sent, Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: res.Rejected, Retries: res.Retries},
		time.Since(began).Round(time.Millisecond))
	steps := []step{{events: events}}

	// A re-send of 5,000 stored events under new message ids (a producer
	// retrying after the duplicate window): stored again in the stream,
	// landed again by the sink, shown once.
	api.resend(ctx, t, 5000)
	steps = append(steps, step{resend: 5000})
	time.Sleep(2 * time.Second)
	waitCount(len(events))

	perNode := map[string]string{}
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		c.query(n, "SYSTEM SYNC REPLICA "+db+".events_v2_store_local")
		perNode[n] = c.query(n, "SELECT count(), uniqExact(source, event_id), sum(cityHash64(source, event_id)) FROM "+db+".events_v2_store_local FINAL")
	}
	if perNode["ch-1"] != perNode["ch-2"] || perNode["ch-3"] != perNode["ch-4"] {
		t.Errorf("replicas of a shard differ after SYNC REPLICA: %v", perNode)
	}
	if got := count("ch-3"); got != len(events) {
		t.Errorf("distributed events via ch-3 after its restart: %d, want %d", got, len(events))
	}
	if got := c.query("ch-4", "SELECT count() - uniqExact(event_id) FROM "+db+".events"); got != "0" {
		t.Errorf("%s event_ids appear more than once in %s.events", got, db)
	}
	want := map[string]bool{}
	for _, e := range events {
		want[e.EventID] = true
	}
	ids := strings.Fields(c.query("ch-1", "SELECT event_id FROM "+db+".events FORMAT TSV"))
	for _, id := range ids {
		delete(want, id)
	}
	if len(ids) != len(events) || len(want) != 0 {
		t.Errorf("%d event_ids in ClickHouse, %d of the %d posted missing", len(ids), len(want), len(events))
	}
	t.Logf("per shard replica (rows, event_ids, hash): %v", perNode)

	// ZooKeeper down: the replicated tables turn read-only, the sink's
	// inserts fail, it keeps the batches unacknowledged in JetStream and
	// retries with backoff; when ZooKeeper returns they drain.
	extra := simulatedEvents(t, 8, 1, "zk-", "KZ-61", "KZ-55")
	c.must(30*time.Second, "kill", "zk-1")
	api.post(ctx, t, extra, nil)
	steps = append(steps, step{events: extra})
	time.Sleep(5 * time.Second)
	if got := count("ch-1"); got != len(events) {
		t.Errorf("with ZooKeeper down: %d rows, want still %d (inserts into replicated tables must fail)", got, len(events))
	}
	zkDown := time.Now()
	c.must(120*time.Second, "restart", "zk-1")
	waitCount(len(events) + len(extra))
	t.Logf("ZooKeeper down 5 s: %d events held in JetStream, landed %s after its restart began", len(extra), time.Since(zkDown).Round(100*time.Millisecond))

	// Erasure: a few events of every region (both shards) deleted by
	// stream sequence, ALTER TABLE … ON CLUSTER DELETE on the local
	// tables; gone from every replica, the audit row on every node.
	var erased []uint64
	for _, f := range strings.Fields(c.query("ch-1", "SELECT any(seq) FROM "+db+".events_v2_store GROUP BY region FORMAT TSV")) {
		s, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		erased = append(erased, s)
	}
	rec := &schemas.Erasure{ID: "clustertest-1", Kind: schemas.ErasureEvent, By: "clustertest", Reason: "test", At: time.Now().UTC(), Events: len(erased), Seqs: erased}
	if n, err := chsink.Erase(ctx, conn, db, clusterName, rec, 1, 2*time.Minute); err != nil || n < uint64(len(erased)) {
		t.Errorf("erase %d events on the cluster: %d rows, %v", len(erased), n, err)
	}
	list := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(erased)), ","), "[]")
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		c.query(n, "SYSTEM SYNC REPLICA "+db+".events_v2_store_local")
		c.query(n, "SYSTEM SYNC REPLICA "+db+".erasures")
		if got := c.query(n, "SELECT count() FROM "+db+".events_v2_store_local WHERE seq IN ("+list+")"); got != "0" {
			t.Errorf("%s still has %s erased rows", n, got)
		}
		if got := c.query(n, "SELECT count() FROM "+db+".erasures WHERE erasure_id = 'clustertest-1'"); got != "1" {
			t.Errorf("%s has %s audit rows of the erasure, want 1", n, got)
		}
	}

	// Every shipped query runs on the distributed tables.
	qs, err := ddl.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		for _, stmt := range ddl.Statements(ddl.Render(q.SQL, db)) {
			rows, err := conn.Query(ctx, stmt)
			if err != nil {
				t.Errorf("shipped query %s on the cluster: %v", q.Name, err)
				continue
			}
			for rows.Next() {
			}
			if err := rows.Err(); err != nil {
				t.Errorf("shipped query %s on the cluster: %v", q.Name, err)
			}
			rows.Close()
		}
	}

	// Every dashboard panel query runs on the distributed tables and
	// returns what its panel draws, on the dashboards' simulation loaded
	// through them (a connection whose default database is db, as
	// Grafana's data source has).
	began = time.Now()
	pconn, err := chsink.Open(ctx, chsink.Config{Addr: chAddr, Database: db, DefaultDatabase: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	sim := paneltest.DefaultSimulation()
	if err := sim.Load(ctx, t, pconn, db); err != nil {
		t.Fatalf("load the dashboards' simulation through the distributed tables: %v", err)
	}
	// A Distributed read picks any replica of a shard: all caught up first.
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		for _, tbl := range append(slices.Clone(paneltest.Tables), "nowcast_store") {
			c.query(n, "SYSTEM SYNC REPLICA "+db+"."+tbl+ddl.LocalSuffix)
		}
	}
	paneltest.Check(t, sim.Expander(), paneltest.ConnRunner(pconn))
	t.Logf("dashboard panel queries on the cluster: %s with the load", time.Since(began).Round(time.Millisecond))
	return steps, procs
}

// leadOn moves the leadership of a stream to the server named (a leader
// step-down with a preferred placement, nats-server ≥ 2.11) and waits
// until that server leads it.
func leadOn(ctx context.Context, t *testing.T, js jetstream.JetStream, name, server string) {
	t.Helper()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := st.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader == server {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not led by %s after 30 s: %+v, %v", name, server, info, err)
		}
		req := []byte(`{"placement":{"preferred":"` + server + `"}}`)
		if _, err := js.Conn().Request("$JS.API.STREAM.LEADER.STEPDOWN."+name, req, 5*time.Second); err != nil {
			t.Logf("step down %s towards %s: %v", name, server, err)
		}
		time.Sleep(time.Second)
	}
}

// simulatedEvents are the simulator's events of regions over 40 days, the
// population scaled by scale, their event_ids prefixed with prefix.
func simulatedEvents(t *testing.T, seed int64, scale float64, prefix string, regions ...string) []schemas.Event {
	t.Helper()
	cfg := simulate.DefaultConfig()
	cfg.Regions, cfg.Days, cfg.Seed, cfg.Scale = regions, 40, seed, scale
	sim, err := simulate.New(cfg, schemas.DefaultRegions())
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Event
	if err := sim.Run(context.Background(), func(_ schemas.Date, evs []schemas.Event) error {
		for _, e := range evs {
			e.EventID = prefix + e.EventID
			out = append(out, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
