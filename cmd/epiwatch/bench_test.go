package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
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

// runBench runs `epiwatch bench args...` as main does and returns its
// output and the exit code realMain would give.
func runBench(ctx context.Context, t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := benchRoot()
	root.SetArgs(append([]string{"bench"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(ctx)
	if err != nil {
		code = 1
		var ee *exitError
		var ae *app.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.code
		case errors.As(err, &ae):
			code = ae.Code
		}
	}
	return out.String(), errb.String(), code, err
}

// TestBenchExternalFlags: --external needs nats.url and refuses --sync (the
// servers' own setting holds), both as usage errors before anything runs.
func TestBenchExternalFlags(t *testing.T) {
	t.Setenv("EPIWATCH_CONFIG", os.DevNull)
	t.Setenv("EPIWATCH_NATS_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--external"}, "nats.url is empty"},
		{[]string{"--external", "--nats-url", "nats://127.0.0.1:1", "--sync", "1s"}, "--sync applies to the embedded server"},
	} {
		_, _, code, err := runBench(context.Background(), t, tc.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: exit %d, %v; want exit 2 with %q", tc.args, code, err, tc.want)
		}
	}
	help, _, _, err := runBench(context.Background(), t, "--help")
	if err != nil || !strings.Contains(help, "--external") || !strings.Contains(help, "refuses to run") {
		t.Errorf("bench --help does not explain --external (%v):\n%s", err, help)
	}
}

// TestBenchExternalRefusesDeployment: a NATS server that already has
// epiwatch's streams (here empty, as a fresh deployment's) is refused with
// exit 2, and its streams are left as they were.
func TestBenchExternalRefusesDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates before it connects")
	}
	t.Setenv("EPIWATCH_CONFIG", os.DevNull)
	s := streamtest.New(t) // with epiwatch's streams, as a deployment
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, stderr, code, err := runBench(ctx, t, "--external", "--nats-url", s.URL, "--data-dir", t.TempDir(),
		"--clickhouse-addr", chtest.Addr(), "--events", "50", "--days", "10", "--regions", "KZ-75",
		"--rate", "50", "--latency-duration", "1s")
	if code != 2 || err == nil || !strings.Contains(err.Error(), schemas.StreamEvents) {
		t.Fatalf("exit %d, %v; want exit 2 naming %s\nstderr:\n%s", code, err, schemas.StreamEvents, stderr)
	}
	t.Log(err)
	for _, name := range []string{schemas.StreamEvents, "KV_" + schemas.BucketProcessState} {
		if _, err := s.JS.Stream(ctx, name); err != nil {
			t.Errorf("stream %s of the deployment: %v", name, err)
		}
	}
}

// TestBenchExternal runs every phase against a NATS server started here as
// the "external" one (real, embedded in the test, without epiwatch's
// streams): the report names it, and the streams and buckets the run
// created are gone afterwards.
func TestBenchExternal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	t.Setenv("EPIWATCH_CONFIG", os.DevNull)
	srv, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stdout, stderr, _, err := runBench(ctx, t, "--external", "--nats-url", url, "--data-dir", t.TempDir(),
		"--clickhouse-addr", chtest.Addr(), "--events", "300", "--days", "30", "--regions", "KZ-75,KZ-71",
		"--rate", "200", "--latency-duration", "2s", "--json")
	if err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr)
	}
	t.Logf("stderr:\n%s\nstdout:\n%s", stderr, stdout)
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout)
	}
	if rep["nats"] != url || rep["stream_replicas"] != 1.0 || rep["sync_interval"] != "external" {
		t.Errorf("nats %v, stream_replicas %v, sync_interval %v; want %s, 1, external", rep["nats"], rep["stream_replicas"], rep["sync_interval"], url)
	}
	for _, key := range []string{"raw_publish_eps", "raw_atomic_eps", "end_to_end_eps", "ratio"} {
		if v, _ := rep[key].(float64); v <= 0 {
			t.Errorf("%s = %v, want > 0", key, rep[key])
		}
	}
	if lat, matched := rep["latency_events"].(float64), rep["latency_matched"].(float64); lat < 200 || matched != lat {
		t.Errorf("latency phase: %v events accepted, %v covered by indicators; want ≥ 200, all covered", lat, matched)
	}

	// Nothing of the run is left on the server.
	_, js, err := stream.Connect(url, "bench-test")
	if err != nil {
		t.Fatal(err)
	}
	defer js.Conn().Close()
	var names []string
	l := js.StreamNames(ctx)
	for n := range l.Name() {
		names = append(names, n)
	}
	if err = l.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Errorf("streams left on the external server: %v", names)
	}
	db, _ := rep["clickhouse_database"].(string)
	conn, err := chsink.Open(ctx, chtest.Config("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var dbs uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&dbs); err != nil {
		t.Fatal(err)
	}
	if db == "" || dbs != 0 {
		t.Errorf("database %q was not dropped", db)
	}
}
