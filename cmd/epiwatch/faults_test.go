package main

// The pipeline under faults, with real components only: processes killed
// with SIGKILL, ClickHouse stopped for 30 s, NATS stopped and restarted, a
// full events stream. Each test compares what landed with what was
// acknowledged at the source.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/proc"

	"github.com/nats-io/nats.go/jetstream"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// ---- subprocesses ----

// buildEpiwatch builds the binary into dir with the go tool of this run.
func buildEpiwatch(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "epiwatch")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// incarnation is one run of a subprocess.
type incarnation struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process exited; err is then set
	err  error
}

// subproc is an epiwatch component run as a separate process, killed and
// restarted at will.
type subproc struct {
	t      *testing.T
	name   string
	bin    string
	args   []string
	logDir string
	cur    *incarnation
	starts int
}

// start starts a new incarnation; it may be called from any goroutine.
func (s *subproc) start() error {
	s.starts++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("%s-%02d.log", s.name, s.starts))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	inc := &incarnation{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { inc.err = cmd.Wait(); f.Close(); close(inc.done) }()
	s.cur = inc
	return nil
}

// logsContaining counts the incarnations whose log contains text.
func (s *subproc) logsContaining(text string) int {
	n := 0
	for i := 1; i <= s.starts; i++ {
		b, _ := os.ReadFile(filepath.Join(s.logDir, fmt.Sprintf("%s-%02d.log", s.name, i)))
		if bytes.Contains(b, []byte(text)) {
			n++
		}
	}
	return n
}

// exited reports whether the current incarnation ended by itself.
func (s *subproc) exited() bool {
	select {
	case <-s.cur.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the current incarnation and waits for it.
func (s *subproc) kill() {
	_ = s.cur.cmd.Process.Signal(syscall.SIGKILL)
	<-s.cur.done
}

// stop sends SIGTERM (a clean shutdown) and returns the exit code.
func (s *subproc) stop(within time.Duration) (int, error) {
	_ = s.cur.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.cur.done:
		return s.cur.cmd.ProcessState.ExitCode(), nil
	case <-time.After(within):
		s.kill()
		return -1, fmt.Errorf("%s did not stop within %s after SIGTERM", s.name, within)
	}
}

func (s *subproc) tail(n int) string {
	b, _ := os.ReadFile(s.cur.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// subPipeline is `epiwatch process` and `epiwatch sink` as subprocesses on
// their own NATS server and ClickHouse database.
type subPipeline struct {
	name    string
	nats    *fastNATS
	db      *chtest.DB
	process *subproc
	sink    *subproc
}

func newSubPipeline(t *testing.T, bin, name string) *subPipeline {
	t.Helper()
	sp := &subPipeline{name: name, nats: startFastNATS(t), db: chtest.New(t)}
	dir := t.TempDir()
	// Checkpoints every second and a 10 s ack wait, so kills fall before,
	// during and after checkpoints and redeliveries come within the test.
	cfg := fmt.Sprintf(`data_dir: %s
log_level: info
clickhouse:
  sink:
    flush_interval: 200ms
    ack_wait: 10s
process:
  checkpoint_interval: 1s
  ack_wait: 10s
`, dir)
	cfgFile := filepath.Join(dir, "epiwatch.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Flags beat the environment (EPIWATCH_CLICKHOUSE_DATABASE and friends).
	common := []string{"--config", cfgFile, "--nats-url", sp.nats.URL, "--clickhouse-addr", chtest.Addr(), "--clickhouse-db", sp.db.Name}
	for _, c := range []**subproc{&sp.process, &sp.sink} {
		comp := "process"
		if c == &sp.sink {
			comp = "sink"
		}
		args := append([]string{comp}, common...)
		args = append(args, "--metrics-addr", proc.FreeAddr(t))
		*c = &subproc{t: t, name: name + "-" + comp, bin: bin, args: args, logDir: dir}
	}
	t.Cleanup(func() {
		for _, p := range []*subproc{sp.process, sp.sink} {
			if p.cur != nil && !p.exited() {
				p.kill()
			}
		}
		if t.Failed() {
			for _, p := range []*subproc{sp.process, sp.sink} {
				if p.cur != nil {
					t.Logf("%s (incarnation %d) log tail:\n%s", p.name, p.starts, p.tail(40))
				}
			}
		}
	})
	return sp
}

// fastNATS is an embedded NATS JetStream server (as streamtest's) that
// fsyncs once a minute instead of before every acknowledgement: NATS is not
// what this test kills, and with fsync always this box stores only about
// 3,300 events/s (90,000/s without), so publishing 200,000 events to two
// servers would take minutes.
type fastNATS struct {
	URL string
	JS  jetstream.JetStream
}

func startFastNATS(t *testing.T) *fastNATS {
	t.Helper()
	e, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), SyncInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := stream.Connect(e.ClientURL(), "faults-test")
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); e.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := stream.NewBus(js).Ensure(ctx, stream.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return &fastNATS{URL: e.ClientURL(), JS: js}
}

// consumerState returns a durable consumer's undelivered and unacknowledged
// counts; ok is false while it does not exist yet.
func consumerState(js jetstream.JetStream, streamName, durable string) (pending, ackPending uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, streamName, durable)
	if err != nil {
		return 0, 0, false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, false
	}
	return info.NumPending, uint64(info.NumAckPending), true
}

// waitDrained waits until each durable has delivered and had acknowledged
// every message of its stream, failing if one of procs exits meanwhile.
func waitDrained(t *testing.T, js jetstream.JetStream, within time.Duration, procs []*subproc, consumers ...[2]string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		drained := true
		var state []string
		for _, c := range consumers {
			p, ap, ok := consumerState(js, c[0], c[1])
			state = append(state, fmt.Sprintf("%s: exists=%v pending=%d ack_pending=%d", c[1], ok, p, ap))
			if !ok || p > 0 || ap > 0 {
				drained = false
			}
		}
		if drained {
			return
		}
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s exited by itself (%v):\n%s", p.name, p.cur.err, p.tail(40))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained within %s: %s", within, strings.Join(state, "; "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// finish lets the pipeline drain: the processor first, stopped cleanly
// (final checkpoint and publication, exit code 0), then the sink, once it has
// landed every event and indicator record.
func (sp *subPipeline) finish(t *testing.T) {
	t.Helper()
	waitDrained(t, sp.nats.JS, 3*time.Minute, []*subproc{sp.process, sp.sink}, [2]string{schemas.StreamEvents, schemas.ConsumerProcess})
	if code, err := sp.process.stop(60 * time.Second); err != nil || code != 0 {
		t.Fatalf("%s stopped with %d (%v):\n%s", sp.process.name, code, err, sp.process.tail(20))
	}
	waitDrained(t, sp.nats.JS, 3*time.Minute, []*subproc{sp.sink},
		[2]string{schemas.StreamEvents, schemas.ConsumerSinkEvents}, [2]string{schemas.StreamIndicators, schemas.ConsumerSinkIndicators})
	if code, err := sp.sink.stop(60 * time.Second); err != nil || code != 0 {
		t.Fatalf("%s stopped with %d (%v):\n%s", sp.sink.name, code, err, sp.sink.tail(20))
	}
}

// ---- events ----

// kzRegions are Kazakhstan's 20 regions of the shipped reference.
var kzRegions = []string{"KZ-10", "KZ-11", "KZ-15", "KZ-19", "KZ-23", "KZ-27", "KZ-31", "KZ-33", "KZ-35", "KZ-39",
	"KZ-43", "KZ-47", "KZ-55", "KZ-59", "KZ-61", "KZ-62", "KZ-63", "KZ-71", "KZ-75", "KZ-79"}

// crashEventID is the id of the i-th generated event.
func crashEventID(i int) string { return fmt.Sprintf("ev-%07d", i) }

// crashEvents returns n valid, pseudonymised events (as the ingest worker
// publishes them) over regions × days: per region and day one bed snapshot,
// cases following an epidemic curve and lab tests for the rest. They arrive
// in day order, shuffled within a day, 3% of them one to ten days late.
func crashEvents(t *testing.T, n, days int, seed int64) []stream.Msg {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	start := schemas.MustDate("2021-01-01")
	plus5 := time.FixedZone("+05", 5*3600)
	type arrival struct {
		at  int
		ord float64
		ev  schemas.Event
	}
	arr := make([]arrival, 0, n)
	cells := len(kzRegions) * days
	per, extra := n/cells, n%cells
	id := 0
	next := func() string { s := crashEventID(id); id++; return s }
	add := func(d int, e schemas.Event) {
		at := d
		if rng.Intn(100) < 3 {
			at += 1 + rng.Intn(10)
		}
		arr = append(arr, arrival{at: at, ord: rng.Float64(), ev: e})
	}
	for ri, region := range kzRegions {
		peak := 40 + 2*float64(ri)
		for d := 0; d < days; d++ {
			k := per
			if extra > 0 {
				k, extra = k+1, extra-1
			}
			day := start.AddDays(d)
			curve := math.Exp(-math.Pow((float64(d)-peak)/20, 2))
			// One bed snapshot of the region's infectious hospital.
			total, occupied := 500, 60+int(420*curve)+rng.Intn(10)
			st := day.Time()
			snap := time.Date(st.Year(), st.Month(), st.Day(), 8, 0, 0, 0, plus5)
			add(d, schemas.Event{EventID: next(), Type: schemas.TypeBedSnapshot, Region: region, Source: "hospital",
				FacilityID: "ih-" + region, FacilityName: "infectious hospital " + region, SnapshotTime: &snap,
				BedKind: schemas.BedInfectious, Total: &total, Occupied: &occupied})
			cases := int(float64(k-1) * (0.05 + 0.4*curve) * (0.8 + 0.4*rng.Float64()))
			for i := 0; i < k-1; i++ {
				eid := next()
				p := &schemas.Person{Pseudonym: "p-" + eid, KeyID: "k1", AgeBand: "30-39", Sex: "female"}
				if i < cases {
					e := schemas.Event{EventID: eid, Type: schemas.TypeCase, Region: region, Source: "lis", Person: p,
						ReportDate: day, Classification: schemas.ClassConfirmed, Imported: rng.Intn(20) == 0}
					if rng.Intn(10) < 6 {
						e.OnsetDate = day.AddDays(-1 - rng.Intn(4))
					}
					add(d, e)
					continue
				}
				res := schemas.ResultNegative
				if rng.Float64() < 0.05+0.5*curve {
					res = schemas.ResultPositive
				}
				add(d, schemas.Event{EventID: eid, Type: schemas.TypeLabTest, Region: region, Source: "lis", Person: p,
					SampleDate: day, ResultDate: day.AddDays(1), TestKind: schemas.TestPCR, Result: res, Lab: "ncl"})
			}
		}
	}
	sort.Slice(arr, func(i, j int) bool {
		if arr[i].at != arr[j].at {
			return arr[i].at < arr[j].at
		}
		return arr[i].ord < arr[j].ord
	})
	msgs := make([]stream.Msg, len(arr))
	for i := range arr {
		e := &arr[i].ev
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = stream.Msg{Data: data} // subject and id: named by the server's refs (refMsgs)
	}
	if len(msgs) != n {
		t.Fatalf("generated %d events, want %d", len(msgs), n)
	}
	return msgs
}

// refMsgs gives each event message the subject and Nats-Msg-Id ingest would
// give it on the server of js: its ref under that deployment's id key.
func refMsgs(js jetstream.JetStream, msgs []stream.Msg) ([]stream.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refs, err := stream.LoadEventRefs(ctx, stream.NewBus(js))
	if err != nil {
		return nil, err
	}
	out := make([]stream.Msg, len(msgs))
	for i, m := range msgs {
		var e struct {
			EventID string            `json:"event_id"`
			Source  string            `json:"source"`
			Type    schemas.EventType `json:"type"`
			Region  string            `json:"region"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		ref := refs.Ref(e.Source, e.EventID)
		out[i] = stream.Msg{Subject: schemas.RefSubject(ref, e.Type, e.Region), ID: ref, Data: m.Data}
	}
	return out, nil
}

// publishAll publishes msgs in order, 1000 at a time, and fails on any error
// or duplicate. Safe to call from another goroutine (it reports, not stops).
func publishAll(js jetstream.JetStream, msgs []stream.Msg) error {
	msgs, err := refMsgs(js, msgs)
	if err != nil {
		return err
	}
	pub := stream.NewBus(js).Publisher()
	pub.Timeout = 60 * time.Second
	for off := 0; off < len(msgs); off += 1000 {
		chunk := msgs[off:min(off+1000, len(msgs))]
		for i, r := range pub.PublishBatch(context.Background(), chunk) {
			if r.Err != nil {
				return fmt.Errorf("publish event %d: %w", off+i, r.Err)
			}
			if r.Duplicate {
				return fmt.Errorf("publish event %d: unexpected duplicate", off+i)
			}
		}
	}
	return nil
}

// ---- ClickHouse comparisons ----

// indicatorTable reads indicators_latest (one row per region and day after
// FINAL) as text, every column but computed_at (the stream time of the
// version, different on another server). Floats are printed exactly
// (shortest representation that round-trips).
func indicatorTable(t *testing.T, db *chtest.DB) (cols []string, rows [][]string) {
	t.Helper()
	rs, err := db.Conn.Query(context.Background(), "SELECT * FROM `"+db.Name+"`.indicators_latest ORDER BY region, date")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	types := rs.ColumnTypes()
	for _, ct := range types {
		cols = append(cols, ct.Name())
	}
	for rs.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, 0, len(vals))
		for i, v := range vals {
			if cols[i] == "computed_at" {
				continue
			}
			row = append(row, cellText(reflect.ValueOf(v).Elem()))
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	out := cols[:0:0]
	for _, c := range cols {
		if c != "computed_at" {
			out = append(out, c)
		}
	}
	return out, rows
}

func cellText(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.UTC().Format("2006-01-02")
	}
	return fmt.Sprint(v.Interface())
}

// diffTables returns a description of every row of got that differs from
// want (by position; the first two columns are the key), at most limit.
func diffTables(cols []string, want, got [][]string, limit int) []string {
	var diffs []string
	key := func(r []string) string { return r[0] + " " + r[1] }
	for i := 0; i < max(len(want), len(got)) && len(diffs) < limit; i++ {
		switch {
		case i >= len(want):
			diffs = append(diffs, "extra row "+key(got[i]))
		case i >= len(got):
			diffs = append(diffs, "missing row "+key(want[i]))
		default:
			for c := range want[i] {
				if want[i][c] != got[i][c] {
					diffs = append(diffs, fmt.Sprintf("%s %s: got %s, want %s", key(want[i]), cols[c], got[i][c], want[i][c]))
					break
				}
			}
		}
	}
	return diffs
}

// TestCrashSinkAndProcessor kills `epiwatch process` and `epiwatch sink`
// with SIGKILL again and again while 200,000 events stream in, restarting
// them each time, and requires ClickHouse to end with every event exactly
// once and the indicators of an undisturbed run of the same events.
func TestCrashSinkAndProcessor(t *testing.T) {
	if testing.Short() {
		t.Skip("about 90 s: 200,000 events through two pipelines")
	}
	t.Parallel()
	const (
		n         = 200_000
		days      = 120
		minKills  = 3
		killsTill = 120 * time.Second
	)
	bin := buildEpiwatch(t, t.TempDir())
	start := time.Now()
	msgs := crashEvents(t, n, days, 2020)
	t.Logf("%d events over %d regions × %d days generated in %s", len(msgs), len(kzRegions), days, time.Since(start).Round(time.Millisecond))

	crash := newSubPipeline(t, bin, "crash")
	ref := newSubPipeline(t, bin, "ref")
	for _, sp := range []*subPipeline{crash, ref} {
		for _, p := range []*subproc{sp.process, sp.sink} {
			if err := p.start(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Both servers get the same events in the same order, hence the same
	// stream sequences (the indicator versions).
	start = time.Now()
	published := make(chan error, 2)
	pubDone := make(chan struct{})
	for _, sp := range []*subPipeline{crash, ref} {
		go func() { published <- publishAll(sp.nats.JS, msgs) }()
	}
	go func() {
		for range 2 {
			if err := <-published; err != nil {
				t.Errorf("%v", err)
			}
		}
		t.Logf("published %d events to each server in %s", n, time.Since(start).Round(time.Millisecond))
		close(pubDone)
	}()

	// Chaos: each component is killed every 1–3 s until the events are all
	// published and it was killed at least minKills times with work in hand.
	type tally struct{ kills, busy int }
	var wg sync.WaitGroup
	tallies := map[string]*tally{}
	var mu sync.Mutex
	chaos := func(p *subproc, seed int64, consumers ...string) {
		defer wg.Done()
		rng := rand.New(rand.NewSource(seed))
		tl := &tally{}
		mu.Lock()
		tallies[p.name] = tl
		mu.Unlock()
		deadline := time.Now().Add(killsTill)
		for {
			select {
			case <-pubDone:
				if tl.busy >= minKills {
					return
				}
			default:
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: killed %d times, %d of them with work in hand, within %s; want at least %d", p.name, tl.kills, tl.busy, killsTill, minKills)
				return
			}
			time.Sleep(time.Second + time.Duration(rng.Int63n(int64(2*time.Second))))
			if p.exited() {
				t.Errorf("%s exited by itself (%v):\n%s", p.name, p.cur.err, p.tail(40))
				return
			}
			busy := false
			for _, c := range consumers {
				streamName := schemas.StreamEvents
				if c == schemas.ConsumerSinkIndicators {
					streamName = schemas.StreamIndicators
				}
				if pending, ack, ok := consumerState(crash.nats.JS, streamName, c); ok && pending+ack > 0 {
					busy = true
				}
			}
			p.kill()
			mu.Lock()
			tl.kills++
			if busy {
				tl.busy++
			}
			mu.Unlock()
			if err := p.start(); err != nil {
				t.Error(err)
				return
			}
		}
	}
	wg.Add(2)
	go chaos(crash.process, 1, schemas.ConsumerProcess)
	go chaos(crash.sink, 2, schemas.ConsumerSinkEvents, schemas.ConsumerSinkIndicators)
	wg.Wait()
	<-pubDone
	if t.Failed() {
		t.FailNow()
	}
	for name, tl := range tallies {
		t.Logf("%s: killed %d times (%d with work in hand)", name, tl.kills, tl.busy)
	}
	t.Logf("chaos over after %s; %d of %d processor starts restored a checkpoint and caught up", time.Since(start).Round(time.Millisecond),
		crash.process.logsContaining("catching up from checkpoint"), crash.process.starts)

	// Let both finish: the processor first (its records then all go to the
	// indicators stream), a clean stop (final checkpoint and publication),
	// then the sink.
	for _, sp := range []*subPipeline{ref, crash} {
		sp.finish(t)
	}
	t.Logf("both pipelines finished after %s", time.Since(start).Round(time.Millisecond))

	// Every event exactly once, and no other.
	for _, sp := range []*subPipeline{crash, ref} {
		db := "`" + sp.db.Name + "`"
		var cnt, uniq uint64
		if err := sp.db.Conn.QueryRow(context.Background(), "SELECT count(), uniqExact(event_id) FROM "+db+".events").Scan(&cnt, &uniq); err != nil {
			t.Fatal(err)
		}
		if cnt != n || uniq != n {
			t.Errorf("%s: events has %d rows, %d distinct event_ids; want %d and %d", sp.name, cnt, uniq, n, n)
		}
		once := sp.db.Count(t, "SELECT count() FROM (SELECT event_id FROM "+db+".events GROUP BY event_id HAVING count() = 1)")
		ours := sp.db.Count(t, fmt.Sprintf("SELECT count() FROM %s.events WHERE match(event_id, '^ev-[0-9]{7}$') AND toUInt32(substring(event_id, 4, 7)) < %d", db, n))
		if once != n || ours != n {
			t.Errorf("%s: %d event_ids exactly once, %d of the published ids; want %d", sp.name, once, ours, n)
		}
		stored := sp.db.Count(t, "SELECT count() FROM "+db+".events_v2_store")
		t.Logf("%s: events_v2_store holds %d rows for %d events (%d redelivered duplicates, hidden by FINAL)", sp.name, stored, n, stored-n)
		if dl := streamMsgs(t, sp.nats.JS, schemas.StreamDeadLetter); dl != 0 {
			t.Errorf("%s: %d dead letters, want none", sp.name, dl)
		}
		if ev := streamMsgs(t, sp.nats.JS, schemas.StreamEvents); ev != n {
			t.Errorf("%s: events stream holds %d messages, want %d", sp.name, ev, n)
		}
	}

	// The indicators equal those of the undisturbed run, value for value.
	cols, want := indicatorTable(t, ref.db)
	_, got := indicatorTable(t, crash.db)
	if len(want) < len(kzRegions)*days {
		t.Fatalf("reference run has only %d indicator rows, want at least %d", len(want), len(kzRegions)*days)
	}
	withR := ref.db.Count(t, "SELECT count() FROM `"+ref.db.Name+"`.indicators_latest WHERE r_mean IS NOT NULL AND bed_occupancy_pct IS NOT NULL AND tests_7d > 0")
	if withR < uint64(len(want))/2 {
		t.Errorf("only %d of %d reference rows have R, bed occupancy and tests: the comparison would be weak", withR, len(want))
	}
	if d := diffTables(cols, want, got, 20); len(d) > 0 {
		t.Errorf("indicators after the kills differ from the undisturbed run (%d vs %d rows):\n%s", len(got), len(want), strings.Join(d, "\n"))
	}
	// Negative control: the comparison sees one count off by one.
	bad := make([][]string, len(got))
	copy(bad, got)
	row := append([]string(nil), bad[len(bad)/2]...)
	for c, name := range cols {
		if name == "cases" {
			v, _ := strconv.Atoi(row[c])
			row[c] = strconv.Itoa(v + 1)
		}
	}
	bad[len(bad)/2] = row
	if d := diffTables(cols, want, bad, 20); len(d) != 1 {
		t.Errorf("negative control: a changed case count gave %d differences, want 1", len(d))
	}
	t.Logf("%d indicator rows (%d columns) identical; %d with R, bed occupancy and tests", len(want), len(cols), withR)
}

// streamMsgs returns the number of messages a stream holds.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// ---- ingest API under outages ----

// ingestCase is a valid raw case event (with a national ID the ingest worker
// pseudonymises).
func ingestCase(id string, i int) string {
	region := kzRegions[i%len(kzRegions)]
	day := schemas.MustDate("2021-03-01").AddDays(i % 30)
	return fmt.Sprintf(`{"event_id":%q,"type":"case","region":%q,"source":"faults","person":{"national_id":"900101300017","sex":"male"},"report_date":%q}`, id, region, day)
}

// ndjson returns a batch of cases with ids prefix-<from>…<from+k-1>.
func ndjson(prefix string, from, k int) (body []byte, ids []string) {
	var b bytes.Buffer
	for i := from; i < from+k; i++ {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		ids = append(ids, id)
		b.WriteString(ingestCase(id, i))
		b.WriteByte('\n')
	}
	return b.Bytes(), ids
}

// answer is one response of POST /v1/events.
type answer struct {
	code       int
	retryAfter string
	body       []byte
	took       time.Duration
	sum        ingest.Summary
}

// postEvents posts a body without failing the test (callable from any
// goroutine).
func postEvents(client *http.Client, addr string, body []byte) (answer, error) {
	start := time.Now()
	resp, err := client.Post("http://"+addr+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b, took: time.Since(start)}
	if a.code == http.StatusOK {
		if err := json.Unmarshal(b, &a.sum); err != nil {
			return a, fmt.Errorf("decode 200 answer: %w", err)
		}
	}
	return a, nil
}

// acceptedIDs returns the ids a 200 answer reports as stored (accepted now
// or earlier); rejects are errors of the test's own events.
func acceptedIDs(a answer) (ids []string, err error) {
	for _, r := range a.sum.Results {
		switch r.Status {
		case ingest.StatusAccepted, ingest.StatusDuplicate:
			ids = append(ids, r.EventID)
		default:
			return nil, fmt.Errorf("event %s %s: %s", r.EventID, r.Status, r.Reason)
		}
	}
	return ids, nil
}

// landed returns how many rows each event_id has in the events view.
func landed(t *testing.T, db *chtest.DB) map[string]int {
	t.Helper()
	rs, err := db.Conn.Query(context.Background(), "SELECT event_id, toUInt64(count()) FROM `"+db.Name+"`.events GROUP BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]int{}
	for rs.Next() {
		var id string
		var c uint64
		if err := rs.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		out[id] = int(c)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertLandedOnce requires ClickHouse to hold exactly the ids of want, each
// once (after FINAL).
func assertLandedOnce(t *testing.T, db *chtest.DB, want map[string]bool) {
	t.Helper()
	got := landed(t, db)
	var missing, twice, extra []string
	for id := range want {
		switch got[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(twice)+len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(twice)
		sort.Strings(extra)
		t.Errorf("ClickHouse: %d missing %.5v, %d more than once %.5v, %d not expected %.5v", len(missing), missing, len(twice), twice, len(extra), extra)
	}
}

// waitLanded polls until the events view holds want rows (FINAL), or fails.
func waitLanded(t *testing.T, db *chtest.DB, want int, within time.Duration, logs *proc.Buffer) {
	t.Helper()
	deadline := time.Now().Add(within)
	q := "SELECT count() FROM `" + db.Name + "`.events"
	var n uint64
	for time.Now().Before(deadline) {
		if err := db.Conn.QueryRow(context.Background(), q).Scan(&n); err == nil && n >= uint64(want) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%d of %d events in ClickHouse after %s; log tail:\n%s", n, want, within, tailLines(logs.String(), 30))
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// clickhouseServer is a second, private ClickHouse server started with
// deploy/local/clickhouse.sh on free ports and a temporary data directory,
// so that this test can stop it without disturbing the shared one.
type clickhouseServer struct {
	env  []string
	addr string
}

func startClickHouseServer(t *testing.T) *clickhouseServer {
	t.Helper()
	tcp, httpAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	s := &clickhouseServer{
		env:  append(os.Environ(), "EPIWATCH_DATA_DIR="+t.TempDir(), "CLICKHOUSE_TCP_PORT="+port(tcp), "CLICKHOUSE_HTTP_PORT="+port(httpAddr)),
		addr: tcp,
	}
	s.run(t, "start")
	t.Cleanup(func() { s.run(t, "stop") })
	return s
}

func (s *clickhouseServer) run(t *testing.T, verb string) {
	t.Helper()
	cmd := exec.Command("../../deploy/local/clickhouse.sh", verb)
	cmd.Env = s.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh %s: %v\n%s", verb, err, out)
	}
}

// TestClickHouseOutage stops ClickHouse for 30 s while events keep coming:
// ingest keeps answering 200, the sink says it retries, and once ClickHouse
// is back every accepted event lands exactly once.
func TestClickHouseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("about 55 s: a 30 s ClickHouse outage")
	}
	t.Parallel()
	const outage = 30 * time.Second
	chs := startClickHouseServer(t)
	const dbName = "epiwatch_outage"
	p := startPipeline(t, "", "--clickhouse-addr", chs.addr, "--clickhouse-db", dbName)

	var mu sync.Mutex
	accepted := map[string]bool{}
	var posted, answered int
	codes := map[int]int{}
	var problems []string
	stopPosting := make(chan struct{})
	postingDone := make(chan struct{})
	go func() {
		defer close(postingDone)
		client := &http.Client{Timeout: 30 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stopPosting:
				return
			case <-time.After(100 * time.Millisecond):
			}
			body, _ := ndjson("cho", i*20, 20)
			a, err := postEvents(client, p.httpAddr, body)
			mu.Lock()
			posted += 20
			if err != nil {
				problems = append(problems, err.Error())
			} else {
				answered++
				codes[a.code]++
				if a.code != http.StatusOK {
					problems = append(problems, fmt.Sprintf("POST answered %d: %s", a.code, a.body))
				} else if ids, err := acceptedIDs(a); err != nil {
					problems = append(problems, err.Error())
				} else {
					for _, id := range ids {
						accepted[id] = true
					}
				}
			}
			mu.Unlock()
		}
	}()
	acceptedNow := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }

	// Events flow before the outage.
	deadline := time.Now().Add(30 * time.Second)
	for acceptedNow() < 200 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := chsink.Open(context.Background(), chsink.Config{Addr: chs.addr, Database: dbName})
	if err != nil {
		t.Fatal(err)
	}
	db := &chtest.DB{Conn: conn, Name: dbName}
	waitLanded(t, db, 200, 30*time.Second, p.logs)
	conn.Close()

	chs.run(t, "stop")
	stopped := time.Now()
	before := acceptedNow()
	t.Logf("ClickHouse stopped with %d events accepted", before)
	time.Sleep(outage)
	during := acceptedNow() - before
	chs.run(t, "start")
	t.Logf("ClickHouse started again after %s; %d events accepted meanwhile", time.Since(stopped).Round(time.Millisecond), during)
	time.Sleep(3 * time.Second) // some more traffic after the restart
	close(stopPosting)
	<-postingDone

	mu.Lock()
	t.Logf("posted %d events in %d requests: answers %v; %d accepted", posted, answered, codes, len(accepted))
	if len(problems) > 0 {
		t.Errorf("%d requests failed while ClickHouse was down or restarting, first: %s", len(problems), problems[0])
	}
	want := make(map[string]bool, len(accepted))
	for id := range accepted {
		want[id] = true
	}
	mu.Unlock()
	if during < 100 {
		t.Errorf("only %d events accepted during the 30 s outage", during)
	}

	conn, err = chsink.Open(context.Background(), chsink.Config{Addr: chs.addr, Database: dbName})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	db = &chtest.DB{Conn: conn, Name: dbName}
	landStart := time.Now()
	waitLanded(t, db, len(want), 90*time.Second, p.logs)
	t.Logf("all %d accepted events in ClickHouse %s after the posting stopped", len(want), time.Since(landStart).Round(time.Millisecond))
	time.Sleep(time.Second) // anything more would be a duplicate or a stranger
	assertLandedOnce(t, db, want)

	logs := p.logs.String()
	for _, line := range []string{"ClickHouse insert failed; batch kept in JetStream and retried", "batch failed; will retry"} {
		if !strings.Contains(logs, line) {
			t.Errorf("the log does not say %q", line)
		}
	}
	if t.Failed() {
		return
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "ClickHouse insert failed") {
			t.Logf("example retry log line: %.300s", l)
			break
		}
	}
	if code := p.stop(); code != 0 {
		t.Errorf("epiwatch run exited with %d", code)
	}
}

// streamIDs returns how many messages of the events stream carry each
// event_id (read from the event: subjects and Nats-Msg-Id carry its ref).
func streamIDs(t *testing.T, js jetstream.JetStream, name string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	total := streamMsgs(t, js, name)
	out := map[string]int{}
	for got := uint64(0); got < total; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			var e struct {
				EventID string `json:"event_id"`
			}
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatalf("%s: %v", m.Subject(), err)
			}
			out[e.EventID]++
			n++
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages of %s", got, total, name)
		}
		got += uint64(n)
	}
	return out
}

// TestNATSOutage stops the NATS server `epiwatch run` uses: ingest answers
// 503 with Retry-After and a reason; after a restart (same store) every
// event acknowledged before the outage is in the stream and in ClickHouse,
// once each, and re-sent refused batches are accepted.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	p := startPipeline(t, "", "--nats-url", s.URL)
	p.natsURL = s.URL
	client := &http.Client{Timeout: 60 * time.Second}

	acked := map[string]bool{}
	next := 0
	postOK := func(k int) {
		t.Helper()
		body, _ := ndjson("nats", next, k)
		next += k
		a, err := postEvents(client, p.httpAddr, body)
		if err != nil {
			t.Fatal(err)
		}
		if a.code != http.StatusOK {
			t.Fatalf("POST answered %d: %s", a.code, a.body)
		}
		ids, err := acceptedIDs(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			acked[id] = true
		}
	}
	for range 10 {
		postOK(100)
	}
	beforeOutage := len(acked)
	// Stop NATS right after the last acknowledgement: some of these events
	// have not reached ClickHouse yet.
	s.Stop()
	outageStart := time.Now()

	var refused [][]byte
	for range 3 {
		body, _ := ndjson("nats", next, 50)
		next += 50
		refused = append(refused, body)
		a, err := postEvents(client, p.httpAddr, body)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("during the outage: %d in %s, Retry-After %q: %s", a.code, a.took.Round(time.Millisecond), a.retryAfter, bytes.TrimSpace(a.body))
		if a.code != http.StatusServiceUnavailable {
			t.Errorf("POST during the NATS outage answered %d, want 503: %s", a.code, a.body)
		}
		if a.took > 2*time.Second {
			t.Errorf("the 503 took %s: ingest waits for acknowledgements that cannot come", a.took)
		}
		if secs, err := strconv.Atoi(a.retryAfter); err != nil || secs <= 0 {
			t.Errorf("Retry-After = %q, want a number of seconds", a.retryAfter)
		}
		var e struct{ Error string }
		if json.Unmarshal(a.body, &e) != nil || !strings.Contains(e.Error, "unavailable") || !strings.Contains(e.Error, "retry") {
			t.Errorf("503 body does not say the stream is unavailable and to retry: %s", a.body)
		}
	}
	if resp, err := client.Get("http://" + p.httpAddr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz answered %d during the NATS outage, want 503", resp.StatusCode)
		}
	}
	time.Sleep(3*time.Second - time.Since(outageStart))
	s.Restart()
	t.Logf("NATS down for %s, restarted on the same store", time.Since(outageStart).Round(time.Millisecond))

	// The producer re-sends what was refused; ingest takes it once NATS is
	// back (the client reconnects on its own).
	deadline := time.Now().Add(60 * time.Second)
	for _, body := range refused {
		for {
			a, err := postEvents(client, p.httpAddr, body)
			if err != nil {
				t.Fatal(err)
			}
			if a.code == http.StatusOK {
				ids, err := acceptedIDs(a)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ids {
					acked[id] = true
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-sent batch still answered %d after NATS came back: %s", a.code, a.body)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	postOK(100)

	// Every acknowledged event is in the stream, once.
	inStream := streamIDs(t, s.JS, schemas.StreamEvents)
	for id := range acked {
		if inStream[id] != 1 {
			t.Errorf("event %s acknowledged but %d times in the stream", id, inStream[id])
		}
	}
	if len(inStream) != len(acked) {
		t.Errorf("stream holds %d ids, %d acknowledged", len(inStream), len(acked))
	}
	waitLanded(t, p.db, len(acked), 60*time.Second, p.logs)
	time.Sleep(time.Second)
	assertLandedOnce(t, p.db, acked)
	t.Logf("%d events acknowledged before the outage, %d in all; all in the stream and in ClickHouse once", beforeOutage, len(acked))
	if code := p.stop(); code != 0 {
		t.Errorf("epiwatch run exited with %d", code)
	}
}

// TestBackpressure fills a small events stream kept with events_discard:
// new (back pressure instead of dropping the oldest): ingest answers 429 with
// Retry-After instead of buffering, promptly, and what it acknowledged is
// exactly what the stream (and then ClickHouse) holds.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	const maxBytes = 128 << 10
	p := startPipeline(t, fmt.Sprintf("stream:\n  events_max_bytes: %d\n  events_discard: new\n", maxBytes))
	client := &http.Client{Timeout: 30 * time.Second}
	nc, js, err := stream.Connect(p.natsURL, "backpressure-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	acked := map[string]bool{}
	refused := map[string]bool{} // ids of batches answered 429/503
	codes := map[int]int{}
	var slowest time.Duration
	full := 0
	for i := 0; full < 20; i++ {
		if i > 1000 {
			t.Fatalf("no back pressure after %d batches (answers %v)", i, codes)
		}
		body, ids := ndjson("bp", i*25, 25)
		a, err := postEvents(client, p.httpAddr, body)
		if err != nil {
			t.Fatal(err)
		}
		codes[a.code]++
		switch a.code {
		case http.StatusOK:
			got, err := acceptedIDs(a)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range got {
				acked[id] = true
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if full == 0 {
				t.Logf("first refusal after %d acknowledged events: %d, Retry-After %q: %s", len(acked), a.code, a.retryAfter, bytes.TrimSpace(a.body))
			}
			full++
			slowest = max(slowest, a.took)
			if a.retryAfter == "" {
				t.Errorf("%d without Retry-After", a.code)
			}
			if a.code != http.StatusTooManyRequests {
				t.Errorf("a full stream answered %d, want 429 (back pressure, not an outage): %s", a.code, a.body)
			}
			for _, id := range ids {
				refused[id] = true
			}
		default:
			t.Fatalf("POST answered %d: %s", a.code, a.body)
		}
	}
	t.Logf("answers %v; %d events acknowledged; slowest refusal %s", codes, len(acked), slowest.Round(time.Millisecond))
	if slowest > 2*time.Second {
		t.Errorf("a refusal took %s: ingest waits instead of refusing", slowest)
	}

	info := func() jetstream.StreamState {
		st, err := js.Stream(context.Background(), schemas.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		i, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return i.State
	}()
	if info.Bytes > maxBytes {
		t.Errorf("events stream holds %d bytes, above its limit %d", info.Bytes, maxBytes)
	}
	// Every acknowledged event is stored; anything else stored belongs to a
	// refused batch (a batch refused part-way, which the producer re-sends).
	inStream := streamIDs(t, js, schemas.StreamEvents)
	partial := 0
	for id, c := range inStream {
		switch {
		case c != 1:
			t.Errorf("event %s %d times in the stream", id, c)
		case acked[id]:
		case refused[id]:
			partial++
		default:
			t.Errorf("event %s in the stream but never posted", id)
		}
	}
	for id := range acked {
		if inStream[id] == 0 {
			t.Errorf("event %s acknowledged but not in the stream", id)
		}
	}
	t.Logf("stream: %d messages, %d bytes (limit %d); %d acknowledged, %d from batches refused part-way", info.Msgs, info.Bytes, maxBytes, len(acked), partial)

	// The sink lands exactly what the stream holds.
	want := make(map[string]bool, len(inStream))
	for id := range inStream {
		want[id] = true
	}
	waitLanded(t, p.db, len(want), 60*time.Second, p.logs)
	time.Sleep(time.Second)
	assertLandedOnce(t, p.db, want)
	if code := p.stop(); code != 0 {
		t.Errorf("epiwatch run exited with %d", code)
	}
}
