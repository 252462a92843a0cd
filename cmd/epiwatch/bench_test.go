package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
)

// benchRoot is the root command with `bench` under it, as main wires it.
func benchRoot() *cobra.Command {
	root := &cobra.Command{Use: "epiwatch", SilenceUsage: true, SilenceErrors: true}
	app.AddFlags(root.PersistentFlags())
	root.AddCommand(newBenchCmd())
	return root
}

// TestBenchSmall runs every phase with a few hundred events and checks that
// the report is complete and consistent (not how fast this machine is).
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	t.Setenv("EPIWATCH_CONFIG", os.DevNull) // no stray ./epiwatch.yaml
	var stdout, stderr bytes.Buffer
	root := benchRoot()
	root.SetArgs([]string{"bench", "--data-dir", t.TempDir(), "--clickhouse-addr", chtest.Addr(),
		"--events", "400", "--days", "30", "--regions", "KZ-75,KZ-71",
		"--rate", "200", "--latency-duration", "2s", "--sync", "1s", "--json"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	var rep map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	num := func(key string) float64 {
		t.Helper()
		v, ok := rep[key].(float64)
		if !ok {
			t.Fatalf("%s missing or not a number in %s", key, stdout.String())
		}
		return v
	}
	if n := num("events"); n != 400 {
		t.Errorf("events = %v, want 400", n)
	}
	raw, e2e := num("raw_publish_eps"), num("end_to_end_eps")
	if raw <= 0 || e2e <= 0 {
		t.Errorf("raw_publish_eps %v, end_to_end_eps %v: want both positive", raw, e2e)
	}
	if r := num("ratio"); r <= 0 || (r-e2e/raw)/r > 1e-6 || (e2e/raw-r)/r > 1e-6 {
		t.Errorf("ratio %v, want end_to_end_eps / raw_publish_eps = %v", r, e2e/raw)
	}
	p50, p99 := num("latency_p50_ms"), num("latency_p99_ms")
	if p50 < 0 || p99 < p50 || p99 > 120000 {
		t.Errorf("latency p50 %v ms, p99 %v ms: want 0 ≤ p50 ≤ p99 < 2 min", p50, p99)
	}
	if lat, matched := num("latency_events"), num("latency_matched"); lat < 200 || matched != lat {
		t.Errorf("latency phase: %v events accepted, %v covered by indicators; want ≥ 200, all covered", lat, matched)
	}
	if s := rep["sync_interval"]; s != "1s" {
		t.Errorf("sync_interval = %v, want 1s", s)
	}

	// The bench database is gone afterwards.
	db, _ := rep["clickhouse_database"].(string)
	if !strings.HasPrefix(db, "epiwatch_bench_") {
		t.Fatalf("clickhouse_database = %q", db)
	}
	conn, err := chsink.Open(ctx, chtest.Config("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var left uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = '"+db+"'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("database %s was not dropped", db)
	}
}
