package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// BenchmarkReplayYear measures `epiwatch replay` over a year of national
// events: the simulator's outbreak in every region of Kazakhstan for 365
// days (2020-03-01..2021-02-28, scale EPIWATCH_REPLAY_BENCH_SCALE, default
// 1), pseudonymised as ingest does and stored in a JetStream events stream
// (embedded server, fsync every minute). Timed: the whole command, from
// reading the stream to the last decision and indicator record queryable in
// the side ClickHouse database.
//
//	go test -run '^$' -bench BenchmarkReplayYear -benchtime 1x ./cmd/epiwatch/
func BenchmarkReplayYear(b *testing.B) {
	ctx := context.Background()
	scale := 1.0
	if s := os.Getenv("EPIWATCH_REPLAY_BENCH_SCALE"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatalf("EPIWATCH_REPLAY_BENCH_SCALE=%q: %v", s, err)
		}
		scale = v
	}
	sc := simulate.DefaultConfig()
	sc.Country = "KZ"
	sc.Start = schemas.MustDate("2020-03-01")
	sc.Days = 365
	sc.Scale = scale
	begin := time.Now()
	msgs, regions := simulatedStream(b, sc)
	b.Logf("simulated %d events (%d regions, %d days, scale %g) in %s", len(msgs), regions, sc.Days, scale, time.Since(begin).Round(time.Millisecond))

	dir := b.TempDir()
	srv, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), SyncInterval: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, js, err := stream.Connect(srv.ClientURL(), "replay-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := stream.NewBus(js).Ensure(ctx, stream.DefaultConfig()); err != nil {
		b.Fatal(err)
	}
	if msgs, err = refMsgs(js, msgs); err != nil {
		b.Fatal(err)
	}
	begin = time.Now()
	pub := stream.NewBus(js).Publisher()
	for off := 0; off < len(msgs); off += 5000 {
		for i, r := range pub.PublishBatch(ctx, msgs[off:min(off+5000, len(msgs))]) {
			if r.Err != nil {
				b.Fatalf("publish event %d: %v", off+i, r.Err)
			}
		}
	}
	b.Logf("stored in JetStream in %s", time.Since(begin).Round(time.Millisecond))

	db := chtest.New(b)
	into := db.Name + "_replay"
	b.Cleanup(func() { _ = db.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+into+"`") })
	cfgFile := filepath.Join(dir, "epiwatch.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nnats:\n  url: %s\nclickhouse:\n  addr: %s\n  database: %s\n", dir, srv.ClientURL(), chtest.Addr(), db.Name)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total time.Duration
	for n := 0; n < b.N; n++ {
		var out, errw strings.Builder
		start := time.Now()
		args := []string{"replay", "--config", cfgFile, "--from", "2020-09-01", "--rules", "kz-2020-monotone", "--into", into, "--work-dir", dir}
		if code := realMain(ctx, args, &out, &errw); code != 0 {
			b.Fatalf("replay exited with %d:\n%s\n%s", code, out.String(), tailLines(errw.String(), 40))
		}
		total += time.Since(start)
		if n == 0 {
			b.Logf("%s", strings.TrimSpace(out.String()))
			b.Logf("progress (stderr, last lines):\n%s", tailLines(errw.String(), 8))
		}
	}
	b.StopTimer()
	secs := total.Seconds() / float64(b.N)
	b.ReportMetric(float64(len(msgs))/secs, "events/s")
	b.ReportMetric(secs, "s/replay")
	b.Logf("a year of national events: %d events replayed in %.1f s (%.0f events/s) on %d cores (GOMAXPROCS %d)",
		len(msgs), secs, float64(len(msgs))/secs, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// simulatedStream runs the simulator and turns its events into the
// messages ingest would publish: persons pseudonymised with a keyed HMAC,
// raw identifiers removed (refMsgs then sets subject and Nats-Msg-Id as
// ingest does).
func simulatedStream(b *testing.B, sc simulate.Config) (msgs []stream.Msg, regions int) {
	b.Helper()
	sim, err := simulate.New(sc, nil)
	if err != nil {
		b.Fatal(err)
	}
	ps, err := pseudo.New(pseudo.KeyConfig{ID: "bench", Key: "replay-bench-key-0123456789abcdef0123456789abcdef"}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	err = sim.Run(context.Background(), func(_ schemas.Date, evs []schemas.Event) error {
		for i := range evs {
			e := &evs[i]
			if err := ps.Apply(e); err != nil {
				return fmt.Errorf("pseudonymise %s: %w", e.EventID, err)
			}
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			msgs = append(msgs, stream.Msg{Data: data}) // named by refMsgs
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return msgs, len(sim.Regions())
}
