package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// benchOptions are the flags of `epiwatch bench`.
type benchOptions struct {
	events      int
	senders     int
	batch       int
	rate        float64
	latencyTime time.Duration
	sync        string
	soak        time.Duration
	keep        bool
	json        bool
	cpuProfile  string
	memProfile  string
	sim         simulateOptions
}

// benchRawStream is the scratch stream of the baseline publish: the events
// stream's configuration on other subjects, deleted afterwards, so that the
// baseline leaves nothing for the processors or the sink.
const (
	benchRawStream     = "BENCH_RAW"
	benchRawSubject    = "bench.raw"
	benchAtomicStream  = "BENCH_RAW_ATOMIC"
	benchAtomicSubject = "bench.atomic"
)

// latencyDays is how many recent days the latency and soak events cover: a
// live pipeline receives reports about the last days, not about months ago.
const latencyDays = 14

func newBenchCmd() *cobra.Command {
	var o benchOptions
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: raw JetStream publish, end-to-end events/s, acceptance-to-indicator latency",
		Long: `Runs the whole pipeline in this process — embedded NATS JetStream with the configured
nats.sync_interval (or --sync), the ingest API on a free loopback port, the processor, the
decision maker and the ClickHouse sink (no alerter) — against the configured ClickHouse, in a
fresh database epiwatch_bench_<unix time> that is dropped at the end (unless --keep), with the
JetStream store in a temporary directory (unless --data-dir or data_dir is set). It measures:

  raw publish   the ceiling: the pseudonymised bytes ingest would publish, published with
                JetStream async publish and Nats-Msg-Id into a scratch stream with the
                events stream's configuration (deleted afterwards);
  raw atomic    the same messages in JetStream atomic batches of --batch, --senders at a
                time, with ingest's headers: how ingest publishes a request (one fsync per
                batch under sync "always", where async publish fsyncs every message);
  end to end    the same events posted to the ingest API (gzipped NDJSON, --batch events per
                request, encoded before the clock starts, --senders concurrent senders), timed
                until every one is queryable in ClickHouse; ratio = end-to-end / raw publish,
                ratio_atomic = end-to-end / raw atomic;
  latency       at a fixed offered load (--rate events/s for --latency-duration) of fresh
                events on the last days: the time from the API's answer to the first
                indicator record of the event's region that covers it (its version, the
                highest events-stream sequence applied, reaches the event's); p50 and p99.

The events come from the simulator (see 'epiwatch simulate --help'); unless --scale is given,
the scale is chosen so that --days give about --events events. nats.sync_interval "always"
fsyncs before every acknowledgement and usually dominates; compare with --sync 1s.

With --soak DURATION it instead offers --rate events/s for that long and reports the heap in
use and the goroutines at the start and the end (after garbage collection), the heap at each
minute and its growth per event accepted from the first minute to the last. Stored events keep
state by design (the NATS server's index of the events stream's subjects, one per event_id, and
the processor's applied event_ids), one to two hundred bytes each with the embedded server; a
figure that stays the same over longer runs is that state. The goroutines stay flat.

Progress goes to stderr, the table (or with --json one JSON object) to stdout.`,
		Example: `  epiwatch bench
  epiwatch bench --sync 1s --json
  epiwatch bench --events 20000 --rate 2000 --latency-duration 10s
  epiwatch bench --soak 30m --rate 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.events < 1 || o.senders < 1 || o.batch < 1 || !(o.rate > 0) || o.latencyTime <= 0 || o.soak < 0 {
				return &exitError{2, fmt.Errorf("--events, --senders, --batch, --rate and --latency-duration must be positive")}
			}
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			b := &bench{a: a, o: o, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), runID: time.Now().Unix()}
			b.fixedScale = cmd.Flags().Changed("scale")
			if err := b.configure(cmd); err != nil {
				return err
			}
			defer b.cleanup()
			return b.run(cmd.Context())
		},
	}
	f := c.Flags()
	f.IntVar(&o.events, "events", 100000, "events of the raw-publish and end-to-end phases")
	f.IntVar(&o.senders, "senders", 4, "concurrent senders to the ingest API in the end-to-end phase")
	f.IntVar(&o.batch, "batch", simulate.DefaultBatch, "events per request in the end-to-end phase")
	f.Float64Var(&o.rate, "rate", 5000, "offered load of the latency phase (and --soak), events/s")
	f.DurationVar(&o.latencyTime, "latency-duration", 20*time.Second, "how long the latency phase offers --rate")
	f.StringVar(&o.sync, "sync", "", `nats.sync_interval of the embedded server: "always" or a duration such as 1s (default: the configuration's)`)
	f.DurationVar(&o.soak, "soak", 0, "instead of the phases, offer --rate for this long and report heap and goroutines at start and end")
	f.BoolVar(&o.keep, "keep", false, "keep the ClickHouse database and the temporary data directory")
	f.BoolVar(&o.json, "json", false, "print one JSON object instead of the table")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of each phase to FILE-<phase>.pprof; the embedded NATS server runs in this process and is included")
	f.StringVar(&o.memProfile, "memprofile", "", "write the allocations (pprof) before and after each phase to FILE-<phase>.start.pprof and FILE-<phase>.pprof; compare with go tool pprof -sample_index=alloc_space -base")
	o.sim.addModelFlags(f)
	return c
}

// benchReport is the outcome; --json prints it.
type benchReport struct {
	Events         int     `json:"events"`
	SyncInterval   string  `json:"sync_interval"`
	SimScale       float64 `json:"sim_scale"`
	RawPublishSecs float64 `json:"raw_publish_seconds,omitempty"`
	RawPublishEPS  float64 `json:"raw_publish_eps"`
	IngestSecs     float64 `json:"ingest_seconds,omitempty"`
	IngestEPS      float64 `json:"ingest_eps"`
	EndToEndSecs   float64 `json:"end_to_end_seconds,omitempty"`
	EndToEndEPS    float64 `json:"end_to_end_eps"`
	Ratio          float64 `json:"ratio"`
	// The second baseline: the same messages in atomic batches, as ingest
	// publishes them; RatioAtomic = end to end / it.
	RawAtomicSecs float64 `json:"raw_atomic_seconds,omitempty"`
	RawAtomicEPS  float64 `json:"raw_atomic_eps"`
	RatioAtomic   float64 `json:"ratio_atomic"`
	// WritesPerEvent is each stream's stored messages (sequence numbers
	// used) during the end-to-end phase per event: under sync "always" each
	// is an fsync, so together they bound end to end against raw publish.
	WritesPerEvent   map[string]float64 `json:"stream_writes_per_event,omitempty"`
	LatencyRate      float64            `json:"latency_offered_eps"`
	LatencyEvents    int                `json:"latency_events"`
	LatencySecs      float64            `json:"latency_seconds,omitempty"`
	LatencyEPS       float64            `json:"latency_accepted_eps"`
	LatencyRefused   int                `json:"latency_refused"`
	LatencyMatched   int                `json:"latency_matched"`
	LatencyP50Ms     float64            `json:"latency_p50_ms"`
	LatencyP99Ms     float64            `json:"latency_p99_ms"`
	LatencyMaxMs     float64            `json:"latency_max_ms"`
	ClickHouseDB     string             `json:"clickhouse_database"`
	Machine          machine            `json:"machine"`
	Soak             *soak              `json:"soak,omitempty"`
	Senders          int                `json:"senders"`
	BatchSize        int                `json:"batch"`
	ProcessPublishMs int64              `json:"process_publish_interval_ms"`
	SinkFlushMs      int64              `json:"sink_flush_interval_ms"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
}

// soak is the outcome of --soak.
type soak struct {
	Seconds         float64 `json:"seconds"`
	Accepted        int     `json:"accepted"`
	Refused         int     `json:"refused"`
	AcceptedEPS     float64 `json:"accepted_eps"`
	Landed          uint64  `json:"landed"`
	HeapInuseStart  uint64  `json:"heap_inuse_start_bytes"`
	HeapInuseEnd    uint64  `json:"heap_inuse_end_bytes"`
	GoroutinesStart int     `json:"goroutines_start"`
	GoroutinesEnd   int     `json:"goroutines_end"`
	// HeapPerMinute is the heap in use (after GC) at each minute of the run,
	// while events are in flight; HeapPerEvent is heapPerEvent of it. Why
	// it is not 0: the command's help.
	HeapPerMinute []uint64 `json:"heap_inuse_per_minute_bytes,omitempty"`
	HeapPerEvent  float64  `json:"heap_growth_bytes_per_event,omitempty"`
}

// bench is one run of `epiwatch bench`.
type bench struct {
	a              *app
	o              benchOptions
	stdout, stderr io.Writer
	runID          int64
	fixedScale     bool
	tempDir        string // removed at the end unless --keep
	rep            benchReport

	pipelineDone chan error // nil until the pipeline runs
	stopPipeline context.CancelCauseFunc
}

// configure points the configuration at throwaway places: a fresh database,
// a temporary store, free loopback ports, no tokens, the chosen sync policy.
func (b *bench) configure(cmd *cobra.Command) error {
	cfg := &b.a.cfg
	if !cmd.Flags().Changed("data-dir") && !b.a.explicitlySet("data_dir") {
		dir, err := os.MkdirTemp("", "epiwatch-bench-")
		if err != nil {
			return err
		}
		b.tempDir, cfg.DataDir = dir, dir
	}
	if b.o.sync != "" {
		cfg.NATS.SyncInterval = b.o.sync
	}
	if _, err := cfg.SyncInterval(); err != nil {
		return &exitError{2, fmt.Errorf("--sync: %w", err)}
	}
	if strings.TrimSpace(cfg.NATS.SyncInterval) == "" {
		cfg.NATS.SyncInterval = "always"
	}
	cfg.NATS.URL = "" // the benchmark is of the embedded server
	cfg.NATS.Listen = "127.0.0.1:0"
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	cfg.HTTP.Addr, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey = addr, "", ""
	cfg.Ingest.Tokens = nil // loopback only
	cfg.ClickHouse.Database = fmt.Sprintf("epiwatch_bench_%d", b.runID)
	if !cmd.Flags().Changed("log-level") && !b.a.explicitlySet("log_level") {
		cfg.LogLevel = "error" // the components' lines (every refused batch under overload) would drown the progress
		b.a.log = newLogger(*cfg, b.stderr)
	}
	b.rep = benchReport{
		Events: b.o.events, SyncInterval: cfg.NATS.SyncInterval, ClickHouseDB: cfg.ClickHouse.Database,
		Machine: machineInfo(), Senders: b.o.senders, BatchSize: b.o.batch,
		ProcessPublishMs: cfg.Process.PublishInterval.Milliseconds(), SinkFlushMs: cfg.ClickHouse.Sink.FlushInterval.Milliseconds(),
	}
	return nil
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	regions := b.a.regions
	// Everything is simulated before the clock starts.
	var phaseEvents, recent []schemas.Event
	var recentWant int
	if b.o.soak > 0 {
		recentWant = min(int(b.o.rate*60), 200000) // a minute's worth, offered again and again under fresh ids
	} else {
		recentWant = min(int(math.Ceil(b.o.rate*b.o.latencyTime.Seconds())), 500000)
		b.progress("simulating %d events (%d days)", b.o.events, b.o.sim.days)
		sc, err := b.o.sim.simConfig(time.Now())
		if err != nil {
			return &exitError{2, err}
		}
		phaseEvents, sc, err = simulateN(ctx, sc, regions, b.o.events, b.fixedScale)
		if err != nil {
			return err
		}
		b.rep.SimScale = sc.Scale
		b.rep.Events = len(phaseEvents)
		if len(phaseEvents) < b.o.events {
			b.progress("  the simulation gave only %d events at --scale %g", len(phaseEvents), sc.Scale)
		}
		renameEvents(phaseEvents, fmt.Sprintf("bench%d-", b.runID))
	}
	b.progress("simulating %d events on the last %d days for the %s phase", recentWant, latencyDays, map[bool]string{true: "soak", false: "latency"}[b.o.soak > 0])
	sc, err := b.o.sim.simConfig(time.Now())
	if err != nil {
		return &exitError{2, err}
	}
	sc.Seed++
	sc.Days = latencyDays
	sc.Start = schemas.DateOf(time.Now().UTC()).AddDays(-latencyDays)
	if recent, _, err = simulateN(ctx, sc, regions, recentWant, false); err != nil {
		return err
	}

	b.progress("starting embedded NATS (sync_interval %s, store %s)", b.a.cfg.NATS.SyncInterval, b.a.cfg.NATSStoreDir())
	if err := b.a.connectNATS(ctx, "bench", true); err != nil {
		return err
	}
	in, err := b.a.newIngester()
	if err != nil {
		return err
	}
	if b.o.soak == 0 {
		msgs, err := prepareMsgs(in, phaseEvents)
		if err != nil {
			return err
		}
		if err := b.profiled("raw", func() error { return b.rawPublish(ctx, msgs) }); err != nil {
			return err
		}
		if err := b.profiled("raw-atomic", func() error { return b.rawAtomic(ctx, msgs) }); err != nil {
			return err
		}
	}
	pctx, err := b.startPipeline(ctx, in)
	if err != nil {
		return err
	}
	conn, err := b.a.openClickHouse(pctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	url := defaultIngestURL(b.a.cfg.HTTP)
	countQ := fmt.Sprintf("SELECT count() FROM `%s`.events", b.a.cfg.ClickHouse.Database)

	if b.o.soak > 0 {
		err = b.profiled("soak", func() error {
			return b.soak(pctx, url, recent, func(want uint64) error { return waitCount(pctx, conn, countQ, want, b.stderr) }, func() (uint64, error) {
				var n uint64
				err := conn.QueryRow(pctx, countQ).Scan(&n)
				return n, err
			})
		})
	} else {
		before, serr := b.streamSeqs(pctx)
		err = b.profiled("e2e", func() error {
			return b.endToEnd(pctx, url, phaseEvents, func(want uint64) error { return waitCount(pctx, conn, countQ, want, b.stderr) })
		})
		if after, aerr := b.streamSeqs(pctx); err == nil && serr == nil && aerr == nil {
			b.rep.WritesPerEvent = map[string]float64{}
			for name, seq := range after {
				if d := seq - before[name]; d > 0 {
					b.rep.WritesPerEvent[name] = math.Round(float64(d)/float64(len(phaseEvents))*1000) / 1000
				}
			}
		}
		if err == nil {
			err = b.profiled("latency", func() error { return b.latency(pctx, url, recent) })
		}
	}
	if cause := context.Cause(pctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause // the pipeline failed: that is the story
	}
	if err != nil {
		return err
	}
	if err := b.stop(); err != nil {
		return err
	}
	if b.o.json {
		enc := json.NewEncoder(b.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b.rep)
	}
	b.printTable()
	return nil
}

// streamSeqs returns every stream's last sequence.
func (b *bench) streamSeqs(ctx context.Context) (map[string]uint64, error) {
	seqs := map[string]uint64{}
	l := b.a.js.ListStreams(ctx)
	for info := range l.Info() {
		seqs[info.Config.Name] = info.State.LastSeq
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return seqs, nil
}

// profiled runs one phase, under the CPU profiler if --cpuprofile is set,
// between two allocation profiles if --memprofile is.
func (b *bench) profiled(phase string, f func() error) error {
	if b.o.memProfile != "" {
		if err := writeAllocs(b.o.memProfile + "-" + phase + ".start.pprof"); err != nil {
			return err
		}
		defer func() {
			name := b.o.memProfile + "-" + phase + ".pprof"
			if err := writeAllocs(name); err != nil {
				b.progress("  %v", err)
				return
			}
			b.progress("  allocation profile of the %s phase: %s (with -base %s)", phase, name, b.o.memProfile+"-"+phase+".start.pprof")
		}()
	}
	if b.o.cpuProfile == "" {
		return f()
	}
	name := b.o.cpuProfile + "-" + phase + ".pprof"
	out, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	err = f()
	pprof.StopCPUProfile()
	b.progress("  CPU profile of the %s phase: %s", phase, name)
	return err
}

// writeAllocs writes the allocations since the start of the process; the
// profile only counts what the last completed GC cycle has seen, hence the GC.
func writeAllocs(name string) error {
	runtime.GC()
	out, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
		out.Close()
		return fmt.Errorf("--memprofile %s: %w", name, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

// simulateN simulates about n events, the first n in the order of the days.
// Unless fixed, it adjusts sc.Scale so that the whole period gives about n.
// The events grow less than linearly with the scale (bed snapshots and
// background tests, for one, do not follow the epidemic), so the search
// steps in log-log space with the elasticity of the last two tries.
func simulateN(ctx context.Context, sc simulate.Config, regions *schemas.Regions, n int, fixed bool) ([]schemas.Event, simulate.Config, error) {
	if !fixed {
		sc.Scale = 0.05 // a quick probe of the events per unit of scale
	}
	prevScale, prevN, elasticity := 0.0, 0, 1.0
	for try := 0; ; try++ {
		events, err := simulateUpTo(ctx, sc, regions, n)
		if err != nil {
			return nil, sc, err
		}
		if len(events) >= n || fixed || try == 10 || sc.Scale >= 1000 {
			return events, sc, nil
		}
		if prevN > 0 && len(events) > prevN {
			elasticity = min(max(math.Log(float64(len(events))/float64(prevN))/math.Log(sc.Scale/prevScale), 0.2), 1.5)
		}
		prevScale, prevN = sc.Scale, len(events)
		grow := 10.0
		if len(events) > 0 {
			grow = math.Pow(1.02*float64(n)/float64(len(events)), 1/elasticity)
		}
		sc.Scale = min(1000, sc.Scale*grow)
	}
}

var errEnough = errors.New("enough events")

// simulateUpTo runs the simulation until it has produced n events.
func simulateUpTo(ctx context.Context, sc simulate.Config, regions *schemas.Regions, n int) ([]schemas.Event, error) {
	sim, err := simulate.New(sc, regions)
	if err != nil {
		return nil, &exitError{2, err}
	}
	var out []schemas.Event
	err = sim.Run(ctx, func(_ schemas.Date, events []schemas.Event) error {
		out = append(out, events[:min(len(events), n-len(out))]...)
		if len(out) >= n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// renameEvents prefixes every event_id, so that a run is fresh even on a
// reused store (JetStream and the ingest digests would take a re-sent
// simulation for duplicates).
func renameEvents(events []schemas.Event, prefix string) {
	for i := range events {
		events[i].EventID = prefix + events[i].EventID
	}
}

// prepareMsgs turns events into the messages ingest would publish: the same
// validation, pseudonymisation and bytes.
func prepareMsgs(in *ingest.Ingester, events []schemas.Event) ([]stream.Msg, error) {
	raws := make([][]byte, len(events))
	for i := range events {
		raw, err := json.Marshal(&events[i])
		if err != nil {
			return nil, err
		}
		raws[i] = raw
	}
	ok, rejected := in.Prepare(raws, 0)
	if len(rejected) > 0 {
		return nil, fmt.Errorf("ingest rejects %d simulated events, e.g. %s: %s", len(rejected), rejected[0].EventID, rejected[0].Reason)
	}
	msgs := make([]stream.Msg, len(ok))
	for i, p := range ok {
		msgs[i] = stream.Msg{Subject: schemas.EventSubject(p.Event.EventID, p.Event.Type, p.Event.Region), ID: p.Event.ID(), Data: p.Data}
	}
	return msgs, nil
}

// scratchStream creates a stream with the events stream's configuration on
// subject.>; the returned func deletes it.
func (b *bench) scratchStream(ctx context.Context, name, subject string) (func(), error) {
	a := b.a
	var sc jetstream.StreamConfig
	for _, c := range a.cfg.StreamLayout().StreamConfigs() {
		if c.Name == schemas.StreamEvents {
			sc = c
		}
	}
	sc.Name, sc.Subjects, sc.Description = name, []string{subject + ".>"}, "epiwatch bench: baseline publish (scratch)"
	if _, err := a.js.CreateOrUpdateStream(ctx, sc); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.js.DeleteStream(dctx, name); err != nil {
			b.progress("could not delete the scratch stream %s: %v", name, err)
		}
	}, nil
}

// rawAtomic is the second baseline: the same messages in atomic batches of
// --batch, --senders at a time, the way ingest publishes a request (with
// its Nats-Msg-Id and expected-subject-sequence headers).
func (b *bench) rawAtomic(ctx context.Context, msgs []stream.Msg) error {
	drop, err := b.scratchStream(ctx, benchAtomicStream, benchAtomicSubject)
	if err != nil {
		return err
	}
	defer drop()
	size := min(b.o.batch, stream.MaxAtomicBatch)
	batches := make(chan []stream.Msg, len(msgs)/size+1)
	for rest := msgs; len(rest) > 0; {
		n := min(size, len(rest))
		chunk := make([]stream.Msg, n)
		for i, m := range rest[:n] {
			tok, _, _ := strings.Cut(strings.TrimPrefix(m.Subject, schemas.SubjectEvents+"."), ".")
			chunk[i] = stream.Msg{Subject: benchAtomicSubject + strings.TrimPrefix(m.Subject, schemas.SubjectEvents), ID: m.ID, Data: m.Data,
				Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}, jetstream.ExpectedLastSubjSeqSubjHeader: {benchAtomicSubject + "." + tok + ".>"}}}
		}
		batches <- chunk
		rest = rest[n:]
	}
	close(batches)
	b.progress("raw atomic batches: %d messages to %s, %d per batch, %d at a time", len(msgs), benchAtomicStream, size, b.o.senders)
	pub := stream.NewPublisher(b.a.js)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range b.o.senders {
		g.Go(func() error {
			for chunk := range batches {
				if err := pub.PublishAtomic(gctx, chunk); err != nil {
					return fmt.Errorf("raw atomic batches: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.rep.RawAtomicSecs = elapsed.Seconds()
	b.rep.RawAtomicEPS = float64(len(msgs)) / elapsed.Seconds()
	b.progress("  %d in %s: %.0f events/s", len(msgs), elapsed.Round(time.Millisecond), b.rep.RawAtomicEPS)
	return nil
}

// rawPublish is the baseline: async publish with Nats-Msg-Id into the
// scratch stream, timed until every acknowledgement is in.
func (b *bench) rawPublish(ctx context.Context, msgs []stream.Msg) error {
	a := b.a
	drop, err := b.scratchStream(ctx, benchRawStream, benchRawSubject)
	if err != nil {
		return err
	}
	defer drop()
	js, err := jetstream.New(a.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	b.progress("raw publish: %d messages to %s", len(msgs), benchRawStream)
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	start := time.Now()
	for _, m := range msgs {
		nm := &nats.Msg{Subject: benchRawSubject + strings.TrimPrefix(m.Subject, schemas.SubjectEvents), Data: m.Data}
		for {
			f, err := js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				select { // the window is full: let it drain
				case <-js.PublishAsyncComplete():
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("raw publish: %w", err)
			}
			futs = append(futs, f)
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	elapsed := time.Since(start)
	failed := 0
	var firstErr error
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if failed++; firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("raw publish: %d of %d not acknowledged: %w", failed, len(msgs), firstErr)
	}
	b.rep.RawPublishSecs = elapsed.Seconds()
	b.rep.RawPublishEPS = float64(len(msgs)) / elapsed.Seconds()
	b.progress("  %d in %s: %.0f events/s", len(msgs), elapsed.Round(time.Millisecond), b.rep.RawPublishEPS)
	return nil
}

// startPipeline runs ingest, processor, decision maker and sink until
// b.stop; the returned context ends with the pipeline's error if it fails.
func (b *bench) startPipeline(ctx context.Context, in *ingest.Ingester) (context.Context, error) {
	a := b.a
	ic, err := a.ingestComponent(in, nil)
	if err != nil {
		return nil, err
	}
	pc, err := a.processComponent()
	if err != nil {
		return nil, err
	}
	dc, _, err := a.decideComponent()
	if err != nil {
		return nil, err
	}
	sc, err := a.sinkComponent(ctx) // migrates the fresh database
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancelCause(ctx)
	b.stopPipeline, b.pipelineDone = cancel, make(chan error, 1)
	go func() {
		err := runAll(pctx, []component{ic, pc, dc, sc})
		if err != nil {
			cancel(err)
		}
		b.pipelineDone <- err
	}()
	if err := waitReady(pctx, defaultIngestURL(a.cfg.HTTP)); err != nil {
		return nil, errors.Join(err, context.Cause(pctx))
	}
	return pctx, nil
}

// stop ends the pipeline and returns its error.
func (b *bench) stop() error {
	if b.pipelineDone == nil {
		return nil
	}
	b.stopPipeline(nil)
	err := <-b.pipelineDone
	b.pipelineDone = nil
	return err
}

// cleanup stops everything and removes what the run created.
func (b *bench) cleanup() {
	_ = b.stop()
	b.a.close()
	if b.o.keep {
		b.progress("kept ClickHouse database %s and data directory %s", b.a.cfg.ClickHouse.Database, b.a.cfg.DataDir)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := b.a.cfg.ClickHouse.Config
	admin.Database = "default"
	if conn, err := chsink.Open(ctx, admin); err != nil {
		b.progress("could not drop ClickHouse database %s: %v", b.a.cfg.ClickHouse.Database, err)
	} else {
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+b.a.cfg.ClickHouse.Database+"`"); err != nil {
			b.progress("could not drop ClickHouse database %s: %v", b.a.cfg.ClickHouse.Database, err)
		}
		conn.Close()
	}
	if b.tempDir != "" {
		_ = os.RemoveAll(b.tempDir)
	}
}

// endToEnd posts the events with concurrent senders and times until every
// accepted one is queryable in ClickHouse.
func (b *bench) endToEnd(ctx context.Context, url string, events []schemas.Event, waitLanded func(uint64) error) error {
	b.progress("end to end: %d events to %s, %d senders, %d per request", len(events), url, b.o.senders, b.o.batch)
	sender := b.sender(url, b.o.batch)
	// The requests are encoded before the clock starts, as the raw phase's
	// messages are: the load generator shares the machine and its gzip would
	// be counted against the pipeline.
	var bodies []simulate.Body
	for rest := events; len(rest) > 0; {
		n := min(b.o.batch, len(rest))
		body, err := simulate.Encode(rest[:n])
		if err != nil {
			return err
		}
		bodies = append(bodies, body)
		rest = rest[n:]
	}
	batches := make(chan simulate.Body)
	var mu sync.Mutex
	var total simulate.SendResult
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		for _, body := range bodies {
			select {
			case batches <- body:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	start := time.Now()
	for range b.o.senders {
		g.Go(func() error {
			for batch := range batches {
				res, err := sender.Post(gctx, batch)
				mu.Lock()
				total.Add(res)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	accepted := time.Since(start)
	if total.Rejected > 0 || total.Duplicates > 0 {
		return fmt.Errorf("the ingest API accepted %d of %d events (%d duplicates, %d rejected, e.g. %v)", total.Accepted, len(events), total.Duplicates, total.Rejected, total.Rejections[:min(len(total.Rejections), 3)])
	}
	b.rep.IngestSecs = accepted.Seconds()
	b.rep.IngestEPS = float64(total.Accepted) / accepted.Seconds()
	b.progress("  accepted %d in %s (%.0f events/s); waiting until ClickHouse has them", total.Accepted, accepted.Round(time.Millisecond), b.rep.IngestEPS)
	if err := waitLanded(uint64(total.Accepted)); err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.rep.EndToEndSecs = elapsed.Seconds()
	b.rep.EndToEndEPS = float64(total.Accepted) / elapsed.Seconds()
	if b.rep.RawPublishEPS > 0 {
		b.rep.Ratio = b.rep.EndToEndEPS / b.rep.RawPublishEPS
	}
	if b.rep.RawAtomicEPS > 0 {
		b.rep.RatioAtomic = b.rep.EndToEndEPS / b.rep.RawAtomicEPS
	}
	b.progress("  in ClickHouse after %s: %.0f events/s", elapsed.Round(time.Millisecond), b.rep.EndToEndEPS)
	return nil
}

func (b *bench) sender(url string, batch int) *simulate.Sender {
	return &simulate.Sender{
		Client: &http.Client{Timeout: 60 * time.Second}, URL: url, Batch: batch,
		OnRetry: func(reason string, wait time.Duration) {
			b.progress("  ingest API busy (%s); retrying in %s", oneLine(reason), wait.Round(time.Millisecond))
		},
	}
}

// offer posts events at a fixed rate for d, in batches of a fiftieth of a
// second's worth, each batch in its own request so that a slow answer does
// not lower the offered load (up to 256 requests in flight). Past the end of
// pool it starts over under fresh event_ids. accepted hears of every batch
// the API accepted, with the time of the answer. A batch the API keeps
// refusing (503: the pipeline cannot keep up with the offered load) is
// retried for up to 30 s and then counted as refused, not an error: an
// overloaded pipeline is a result.
func (b *bench) offer(ctx context.Context, url string, pool []schemas.Event, rate float64, d time.Duration, accepted func([]schemas.Event, time.Time)) (res offerResult, err error) {
	batch := max(1, int(rate/50))
	interval := time.Duration(float64(batch) / rate * float64(time.Second))
	var mu sync.Mutex
	var busy sync.Once
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(256)
	start := time.Now()
	next, round := 0, 0
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-gctx.Done():
			case <-time.After(wait):
			}
		}
		if gctx.Err() != nil {
			break
		}
		events := make([]schemas.Event, 0, batch)
		for len(events) < batch {
			if next == len(pool) {
				next, round = 0, round+1
			}
			e := pool[next]
			e.EventID = fmt.Sprintf("bench%d-r%d-%s", b.runID, round, e.EventID)
			events = append(events, e)
			next++
		}
		g.Go(func() error {
			bctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			s := &simulate.Sender{Client: http.DefaultClient, URL: url, Batch: batch, MaxWait: time.Hour,
				OnRetry: func(reason string, _ time.Duration) {
					busy.Do(func() {
						b.progress("  the ingest API refuses requests (%s): the pipeline cannot keep up", oneLine(reason))
					})
				}}
			r, err := s.Send(bctx, events)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && bctx.Err() != nil && gctx.Err() == nil {
					res.Refused += len(events)
					return nil
				}
				return err
			}
			if accepted != nil {
				accepted(events, time.Now())
			}
			res.Add(r)
			return nil
		})
	}
	err = g.Wait()
	res.Elapsed = time.Since(start)
	if err == nil && res.Rejected > 0 {
		err = fmt.Errorf("the ingest API rejected %d events, e.g. %v", res.Rejected, res.Rejections[:min(len(res.Rejections), 3)])
	}
	return res, err
}

type offerResult struct {
	simulate.SendResult
	Refused int // in batches the API still refused after 30 s
	Elapsed time.Duration
}

// latencyTracker joins three sources: when the API accepted an event, its
// sequence in the events stream (from a headers-only ordered consumer), and
// the arrival of indicator records with their versions.
type latencyTracker struct {
	mu       sync.Mutex
	accepted map[string]time.Time
	seq      map[string]eventSeq
	ind      map[string][]indicatorArrival // by region, in arrival order
	lastInd  time.Time
}

type eventSeq struct {
	region string
	seq    uint64
}

type indicatorArrival struct {
	at      time.Time
	version uint64
}

func (b *bench) latency(ctx context.Context, url string, pool []schemas.Event) error {
	a := b.a
	t := &latencyTracker{accepted: map[string]time.Time{}, seq: map[string]eventSeq{}, ind: map[string][]indicatorArrival{}}
	sub, err := a.nc.Subscribe(schemas.SubjectIndicators+".>", func(m *nats.Msg) {
		now := time.Now()
		var in struct {
			Region  string `json:"region"`
			Version uint64 `json:"version"`
		}
		if json.Unmarshal(m.Data, &in) != nil {
			return
		}
		t.mu.Lock()
		t.ind[in.Region] = append(t.ind[in.Region], indicatorArrival{now, in.Version})
		t.lastInd = now
		t.mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	cons, err := a.js.OrderedConsumer(ctx, schemas.StreamEvents, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: true})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		subj := m.Subject()
		region := subj[strings.LastIndexByte(subj, '.')+1:]
		id := m.Headers().Get(jetstream.MsgIDHeader)
		t.mu.Lock()
		t.seq[id] = eventSeq{region, md.Sequence.Stream}
		t.mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer cc.Stop()

	b.progress("latency: offering %.0f events/s for %s", b.o.rate, b.o.latencyTime)
	res, err := b.offer(ctx, url, pool, b.o.rate, b.o.latencyTime, func(events []schemas.Event, at time.Time) {
		t.mu.Lock()
		for i := range events {
			t.accepted[events[i].EventID] = at
		}
		t.mu.Unlock()
	})
	if err != nil {
		return err
	}
	elapsed := res.Elapsed
	b.rep.LatencyRate = b.o.rate
	b.rep.LatencyEvents = res.Accepted + res.Duplicates // a batch retried after a timeout may have been stored
	b.rep.LatencyRefused = res.Refused
	b.rep.LatencySecs = elapsed.Seconds()
	b.rep.LatencyEPS = float64(b.rep.LatencyEvents) / elapsed.Seconds()
	b.progress("  accepted %d in %s (%.0f events/s); waiting for the indicators", b.rep.LatencyEvents, elapsed.Round(time.Millisecond), b.rep.LatencyEPS)

	// Wait until every accepted event is covered, or indicators stop coming.
	for {
		lat, pending := t.latencies()
		if pending == 0 || time.Since(t.lastArrival()) > 15*time.Second {
			if pending > 0 {
				b.progress("  %d events not covered by an indicator record", pending)
			}
			b.rep.LatencyMatched = len(lat)
			if len(lat) > 0 {
				b.rep.LatencyP50Ms = ms(percentile(lat, 0.50))
				b.rep.LatencyP99Ms = ms(percentile(lat, 0.99))
				b.rep.LatencyMaxMs = ms(lat[len(lat)-1])
			}
			b.progress("  p50 %.0f ms, p99 %.0f ms over %d events", b.rep.LatencyP50Ms, b.rep.LatencyP99Ms, len(lat))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (t *latencyTracker) lastArrival() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastInd
}

// latencies returns the sorted latencies of the covered events and how many
// accepted events are not covered yet. An event is covered by the first
// record of its region whose version reaches its sequence; the record may
// come before the API's answer did (then 0).
func (t *latencyTracker) latencies() ([]time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	reach := make(map[string][]uint64, len(t.ind)) // running maximum of the versions
	for region, arr := range t.ind {
		m := make([]uint64, len(arr))
		for i, x := range arr {
			m[i] = x.version
			if i > 0 {
				m[i] = max(m[i], m[i-1])
			}
		}
		reach[region] = m
	}
	var out []time.Duration
	pending := 0
	for id, at := range t.accepted {
		s, ok := t.seq[id]
		if !ok {
			pending++
			continue
		}
		m := reach[s.region]
		i := sort.Search(len(m), func(i int) bool { return m[i] >= s.seq })
		if i == len(m) {
			pending++
			continue
		}
		out = append(out, max(0, t.ind[s.region][i].at.Sub(at)))
	}
	slices.Sort(out)
	return out, pending
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// soak offers the rate for the soak duration and compares heap and
// goroutines at the start and at the end, once ClickHouse has caught up.
func (b *bench) soak(ctx context.Context, url string, pool []schemas.Event, waitLanded func(uint64) error, count func() (uint64, error)) error {
	heap0, gr0 := memStats()
	before, err := count()
	if err != nil {
		return err
	}
	b.progress("soak: offering %.0f events/s for %s (heap in use %s, %d goroutines)", b.o.rate, b.o.soak, mib(heap0), gr0)
	stopTicker, tickerDone := make(chan struct{}), make(chan struct{})
	// A line a minute; perMinute is the ticker goroutine's until tickerDone.
	var perMinute []uint64
	go func() {
		defer close(tickerDone)
		tk := time.NewTicker(time.Minute)
		defer tk.Stop()
		for {
			select {
			case <-stopTicker:
				return
			case <-tk.C:
				h, g := memStats()
				perMinute = append(perMinute, h)
				b.progress("  heap in use %s, %d goroutines", mib(h), g)
			}
		}
	}()
	res, err := b.offer(ctx, url, pool, b.o.rate, b.o.soak, nil)
	elapsed := res.Elapsed
	close(stopTicker)
	<-tickerDone
	if err != nil {
		return err
	}
	b.progress("  accepted %d in %s; waiting until ClickHouse has them", res.Accepted, elapsed.Round(time.Second))
	if err := waitLanded(before + uint64(res.Accepted)); err != nil {
		return err
	}
	landed, err := count()
	if err != nil {
		return err
	}
	heap1, gr1 := memStats()
	b.rep.Events = 0
	b.rep.Soak = &soak{
		Seconds: elapsed.Seconds(), Accepted: res.Accepted, Refused: res.Refused, AcceptedEPS: float64(res.Accepted) / elapsed.Seconds(), Landed: landed - before,
		HeapInuseStart: heap0, HeapInuseEnd: heap1, GoroutinesStart: gr0, GoroutinesEnd: gr1,
	}
	b.rep.Soak.HeapPerMinute = perMinute
	b.rep.Soak.HeapPerEvent = heapPerEvent(perMinute, b.o.rate, res.Accepted, res.Refused)
	return nil
}

// heapPerEvent is the heap's growth from the first sample a minute to the
// last per event accepted in between: the offered rate less the share
// refused. 0 without two samples or an accepted event.
func heapPerEvent(perMinute []uint64, rate float64, accepted, refused int) float64 {
	n := len(perMinute)
	if n < 2 || accepted <= 0 {
		return 0
	}
	events := rate * 60 * float64(n-1) * float64(accepted) / float64(accepted+refused)
	return (float64(perMinute[n-1]) - float64(perMinute[0])) / events
}

func memStats() (heapInuse uint64, goroutines int) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, runtime.NumGoroutine()
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (b *bench) printTable() {
	r, w := b.rep, b.stdout
	m := r.Machine
	cpu := m.CPUModel
	if cpu == "" {
		cpu = "unknown CPU"
	}
	fmt.Fprintf(w, "epiwatch bench: %d CPU (%s), %s/%s, %s; nats.sync_interval %s; ClickHouse database %s\n\n",
		m.CPUs, cpu, m.OS, m.Arch, m.GoVersion, r.SyncInterval, r.ClickHouseDB)
	if s := r.Soak; s != nil {
		fmt.Fprintf(w, "soak %s at %.0f events/s offered: %d accepted (%.0f events/s), %d refused, %d in ClickHouse\n",
			time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), b.o.rate, s.Accepted, s.AcceptedEPS, s.Refused, s.Landed)
		fmt.Fprintf(w, "  %-12s %12s %12s\n", "", "start", "end")
		fmt.Fprintf(w, "  %-12s %12s %12s\n", "heap in use", mib(s.HeapInuseStart), mib(s.HeapInuseEnd))
		fmt.Fprintf(w, "  %-12s %12d %12d\n", "goroutines", s.GoroutinesStart, s.GoroutinesEnd)
		if len(s.HeapPerMinute) >= 2 {
			fmt.Fprintf(w, "heap growth per event accepted, from the first minute to the last: %.0f bytes (the stored events' state: NATS's subject index, the processor's event_ids)\n", s.HeapPerEvent)
		}
		return
	}
	fmt.Fprintf(w, "%-34s %9s %9s %10s\n", "phase", "events", "seconds", "events/s")
	row := func(name string, n int, secs, eps float64) {
		fmt.Fprintf(w, "%-34s %9d %9.2f %10.0f\n", name, n, secs, eps)
	}
	row("raw JetStream publish (ceiling)", r.Events, r.RawPublishSecs, r.RawPublishEPS)
	row(fmt.Sprintf("raw atomic batches of %d", min(r.BatchSize, stream.MaxAtomicBatch)), r.Events, r.RawAtomicSecs, r.RawAtomicEPS)
	row("ingest API accepted", r.Events, r.IngestSecs, r.IngestEPS)
	row("end to end (queryable)", r.Events, r.EndToEndSecs, r.EndToEndEPS)
	row(fmt.Sprintf("latency phase (%.0f/s offered)", r.LatencyRate), r.LatencyEvents, r.LatencySecs, r.LatencyEPS)
	fmt.Fprintf(w, "\nratio end to end / raw publish: %.3f (/ raw atomic batches: %.3f)\n", r.Ratio, r.RatioAtomic)
	if len(r.WritesPerEvent) > 0 {
		names := slices.Sorted(maps.Keys(r.WritesPerEvent))
		parts := make([]string, len(names))
		total := 0.0
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %.3f", n, r.WritesPerEvent[n])
			total += r.WritesPerEvent[n]
		}
		fmt.Fprintf(w, "stream writes per event, end to end: %.3f (%s)\n", total, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "latency, acceptance to indicator: p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d of %d events)\n",
		r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencyMatched, r.LatencyEvents)
	if r.LatencyRefused > 0 {
		fmt.Fprintf(w, "the pipeline could not take the offered load: %d events refused (503) for 30 s\n", r.LatencyRefused)
	}
	fmt.Fprintf(w, "(simulation scale %.3g, %d senders × %d events per request, process.publish_interval %s, clickhouse.sink.flush_interval %s)\n",
		r.SimScale, r.Senders, r.BatchSize, time.Duration(r.ProcessPublishMs)*time.Millisecond, time.Duration(r.SinkFlushMs)*time.Millisecond)
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
