package clustertest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
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
func epiwatchOnCluster(t *testing.T, c *cluster, natsURL, chAddr, clusterName string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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
	for _, want := range []string{"events:View", "events_store:Distributed", "events_store_local:ReplicatedReplacingMergeTree",
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

	// Streams on the NATS cluster, and the real sink.
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
	sink, err := chsink.New(chsink.SinkConfig{BatchSize: 500, FlushInterval: 200 * time.Millisecond, RetryMax: time.Second, AckWait: 20 * time.Second},
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

	msgs := simulatedEvents(t, 7, "", "KZ-75", "KZ-71", "KZ-19", "KG-GB")
	pub := bus.Publisher()
	publish := func(ms []stream.Msg) {
		t.Helper()
		for off := 0; off < len(ms); off += 1000 {
			for i, r := range pub.PublishBatch(ctx, ms[off:min(off+1000, len(ms))]) {
				if r.Err != nil {
					t.Fatalf("publish event %d: %v", off+i, r.Err)
				}
			}
		}
	}
	count := func(node string) int {
		n, _ := strconv.Atoi(c.query(node, "SELECT count() FROM "+db+".events"))
		return n
	}
	waitCount := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
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
	half := len(msgs) / 2
	publish(msgs[:half])
	waitCount(half)

	// Kill a replica of shard 2 and go on: inserts fail over to ch-4.
	c.must(30*time.Second, "kill", "ch-3")
	publish(msgs[half:])
	// A re-send of the first half under new message ids (after the
	// duplicate window): stored again in the stream, landed again by the
	// sink, shown once.
	resent := make([]stream.Msg, half)
	for i, m := range msgs[:half] {
		m.ID += "-resent"
		resent[i] = m
	}
	publish(resent)
	waitCount(len(msgs))
	c.must(120*time.Second, "restart", "ch-3")

	perNode := map[string]string{}
	for _, n := range []string{"ch-1", "ch-2", "ch-3", "ch-4"} {
		c.query(n, "SYSTEM SYNC REPLICA "+db+".events_store_local")
		perNode[n] = c.query(n, "SELECT count(), uniqExact(event_id), sum(cityHash64(event_id)) FROM "+db+".events_store_local FINAL")
	}
	if perNode["ch-1"] != perNode["ch-2"] || perNode["ch-3"] != perNode["ch-4"] {
		t.Errorf("replicas of a shard differ after SYNC REPLICA: %v", perNode)
	}
	if got := count("ch-3"); got != len(msgs) {
		t.Errorf("distributed events via ch-3 after its restart: %d, want %d", got, len(msgs))
	}
	if got := c.query("ch-4", "SELECT count() - uniqExact(event_id) FROM "+db+".events"); got != "0" {
		t.Errorf("%s event_ids appear more than once in %s.events", got, db)
	}
	t.Logf("%d events (and %d re-sent) landed through the Distributed tables with ch-3 killed; per shard replica: %v", len(msgs), half, perNode)

	// ZooKeeper down: the replicated tables turn read-only, the sink's
	// inserts fail, it keeps the batches unacknowledged in JetStream and
	// retries with backoff; when ZooKeeper returns they drain.
	extra := simulatedEvents(t, 8, "zk-", "KZ-61", "KZ-55")
	c.must(30*time.Second, "kill", "zk-1")
	publish(extra)
	time.Sleep(5 * time.Second)
	if got := count("ch-1"); got != len(msgs) {
		t.Errorf("with ZooKeeper down: %d rows, want still %d (inserts into replicated tables must fail)", got, len(msgs))
	}
	zkDown := time.Now()
	c.must(120*time.Second, "restart", "zk-1")
	waitCount(len(msgs) + len(extra))
	t.Logf("ZooKeeper down 5 s: %d events held in JetStream, landed %s after its restart began", len(extra), time.Since(zkDown).Round(100*time.Millisecond))

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
}

// simulatedEvents are the simulator's events of regions over 40 days as
// ingest would publish them, their event_ids prefixed with prefix.
func simulatedEvents(t *testing.T, seed int64, prefix string, regions ...string) []stream.Msg {
	t.Helper()
	cfg := simulate.DefaultConfig()
	cfg.Regions, cfg.Days, cfg.Seed = regions, 40, seed
	sim, err := simulate.New(cfg, schemas.DefaultRegions())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []stream.Msg
	if err := sim.Run(context.Background(), func(_ schemas.Date, evs []schemas.Event) error {
		for i := range evs {
			e := &evs[i]
			e.EventID = prefix + e.EventID
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			msgs = append(msgs, stream.Msg{Subject: schemas.EventSubject(e.EventID, e.Type, e.Region), ID: e.EventID, Data: data})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msgs
}
