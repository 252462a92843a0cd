// Package bench is the load-test harness of `epiwatch bench`: it runs the
// whole pipeline in one process against throwaway places and measures raw
// JetStream publish (the ceiling), end-to-end events/s, acceptance-to-
// indicator latency, or, in a soak run, heap and goroutines over time. The
// caller (cmd/epiwatch) wires the pipeline and hands it in as Deps; this
// package only drives load through it and reports what it saw.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Config is one run: the load (the flags of `epiwatch bench`) and the
// throwaway places the caller has pointed the pipeline at.
type Config struct {
	Events          int           // events of the raw-publish and end-to-end phases
	Senders         int           // concurrent senders to the ingest API (and atomic batches in flight)
	Batch           int           // events per request, and per atomic batch
	Rate            float64       // offered load of the latency phase and the soak, events/s
	LatencyDuration time.Duration // how long the latency phase offers Rate
	Soak            time.Duration // > 0: offer Rate this long instead of the phases
	Keep            bool          // keep the ClickHouse database and TempDir
	JSON            bool          // one JSON object instead of the table
	CPUProfile      string        // file prefix of a CPU profile per phase
	MemProfile      string        // file prefix of allocation profiles around each phase

	// Sim is the simulator's model. Unless FixedScale, its Scale is searched
	// so that the simulated period gives about Events events.
	Sim        simulate.Config
	FixedScale bool
	// RunID prefixes the run's event_ids, so that a reused store takes
	// them for new events (the caller names the database after it too).
	RunID int64

	// External: the pipeline uses the NATS server or cluster of nats.url
	// (NATSURL, for the report: without credentials) instead of the
	// embedded server. The run then refuses a server that already has any
	// of epiwatch's streams or buckets (their names are fixed: schemas) and
	// deletes the ones it created at the end unless Keep.
	External bool
	NATSURL  string

	SyncInterval string // the embedded server's nats.sync_interval, for the report ("external" with External)
	StoreDir     string // the embedded server's JetStream store, for the progress
	DataDir      string // for the line --keep prints
	TempDir      string // a directory the caller created for the run; removed at the end unless Keep
	IngestURL    string // where the pipeline's ingest API listens
	// ClickHouse is where the sink writes: a fresh database, dropped at the
	// end unless Keep (ON CLUSTER when ClickHouse.Cluster is set).
	ClickHouse chsink.Config
	Streams    stream.Config // the stream layout; the baselines copy the events stream's

	ProcessPublishInterval time.Duration // for the report
	SinkFlushInterval      time.Duration // for the report
}

// Ingester is ingest's worker, named here so that a caller wiring Deps
// needs no import of pipeline/ingest (cmd imports only internal/app,
// internal/tools and schemas).
type Ingester = ingest.Ingester

// Bus is the pipeline's connection to the embedded server, named here for
// the same reason. The harness also publishes the baselines and watches the
// streams on it (baseline.go).
type Bus = stream.Bus

// Deps is what the caller wires: the pipeline under measurement and where
// the output goes. The funcs are called in this order: Connect,
// NewIngester, Components (whose run the harness starts), WaitReady,
// WaitCount as often as needed, and Close always, even after a failure.
type Deps struct {
	Stdout  io.Writer // the table, or the JSON object
	Stderr  io.Writer // progress lines
	Regions *schemas.Regions

	// Connect starts the embedded NATS server (or, with Config.External,
	// dials nats.url) and connects to it, with the streams in place.
	Connect func(ctx context.Context) (*Bus, error)
	// Dial, with Config.External only, connects to nats.url without
	// creating anything: the harness looks there for epiwatch's streams
	// before Connect creates them, and closes it.
	Dial func(ctx context.Context) (*Bus, error)
	// NewIngester builds the ingest worker; its Prepare makes the baseline
	// messages, and Components serves it.
	NewIngester func() (*Ingester, error)
	// Components builds the ingest API around in, the processor, the
	// decision maker and the sink (migrating its database); run runs them
	// until its context ends or one fails.
	Components func(ctx context.Context, in *Ingester) (run func(context.Context) error, err error)
	// WaitReady returns once the ingest API at ingestURL is ready.
	WaitReady func(ctx context.Context, ingestURL string) error
	// WaitCount polls the count query q until it reaches want, with
	// progress lines on progress.
	WaitCount func(ctx context.Context, conn driver.Conn, q string, want uint64, progress io.Writer) error
	// Close drains the connections and stops the embedded server (the
	// harness deletes the streams it created on an external server before).
	Close func()
}

// Run runs the phases (or the soak), prints the report on Deps.Stdout and
// removes what the run created. A simulator configuration it cannot run is
// a cli.BadInputError.
func Run(ctx context.Context, cfg Config, d Deps) error {
	b := &bench{cfg: cfg, d: d, rep: report{
		Events: cfg.Events, SyncInterval: cfg.SyncInterval, ClickHouseDB: cfg.ClickHouse.Database,
		NATS: "embedded", StreamReplicas: max(cfg.Streams.Replicas, 1),
		ClickHouseAddr: cfg.ClickHouse.Addr, ClickHouseCluster: cfg.ClickHouse.Cluster,
		Machine: machineInfo(), Senders: cfg.Senders, BatchSize: cfg.Batch,
		ProcessPublishMs: cfg.ProcessPublishInterval.Milliseconds(), SinkFlushMs: cfg.SinkFlushInterval.Milliseconds(),
	}}
	defer b.cleanup()
	return b.run(ctx)
}

// bench is one run.
type bench struct {
	cfg Config
	d   Deps
	bus *Bus // after d.Connect
	rep report

	// ownsStreams: on an external server, none of epiwatch's streams and
	// buckets existed before the run (checkAbsent), so those there at the
	// end are the run's to delete.
	ownsStreams bool

	pipelineDone chan error // nil until the pipeline runs
	stopPipeline context.CancelCauseFunc
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.d.Stderr, format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	regions := b.d.Regions
	// Everything is simulated before the clock starts.
	var phaseEvents, recent []schemas.Event
	var recentWant int
	if b.cfg.Soak > 0 {
		recentWant = min(int(b.cfg.Rate*60), 200000) // a minute's worth, offered again and again under fresh ids
	} else {
		recentWant = min(int(math.Ceil(b.cfg.Rate*b.cfg.LatencyDuration.Seconds())), 500000)
		b.progress("simulating %d events (%d days)", b.cfg.Events, b.cfg.Sim.Days)
		var sc simulate.Config
		var err error
		phaseEvents, sc, err = simulateN(ctx, b.cfg.Sim, regions, b.cfg.Events, b.cfg.FixedScale)
		if err != nil {
			return err
		}
		b.rep.SimScale = sc.Scale
		b.rep.Events = len(phaseEvents)
		if len(phaseEvents) < b.cfg.Events {
			b.progress("  the simulation gave only %d events at --scale %g", len(phaseEvents), sc.Scale)
		}
		renameEvents(phaseEvents, fmt.Sprintf("bench%d-", b.cfg.RunID))
	}
	b.progress("simulating %d events on the last %d days for the %s phase", recentWant, latencyDays, map[bool]string{true: "soak", false: "latency"}[b.cfg.Soak > 0])
	sc := b.cfg.Sim
	sc.Seed++
	sc.Days = latencyDays
	sc.Start = schemas.DateOf(time.Now().UTC()).AddDays(-latencyDays)
	var err error
	if recent, _, err = simulateN(ctx, sc, regions, recentWant, false); err != nil {
		return err
	}

	if b.cfg.External {
		b.rep.NATS = b.cfg.NATSURL
		b.progress("external NATS at %s (stream.replicas %d)", b.cfg.NATSURL, b.rep.StreamReplicas)
		if err := b.checkAbsent(ctx); err != nil {
			return err
		}
		b.ownsStreams = true
	} else {
		b.progress("starting embedded NATS (sync_interval %s, store %s)", b.cfg.SyncInterval, b.cfg.StoreDir)
	}
	if b.bus, err = b.d.Connect(ctx); err != nil {
		return err
	}
	in, err := b.d.NewIngester()
	if err != nil {
		return err
	}
	if b.cfg.Soak == 0 {
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
	conn, err := chsink.Open(pctx, b.cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	url := b.cfg.IngestURL
	countQ := fmt.Sprintf("SELECT count() FROM `%s`.events", b.cfg.ClickHouse.Database)
	waitLanded := func(want uint64) error { return b.d.WaitCount(pctx, conn, countQ, want, b.d.Stderr) }

	if b.cfg.Soak > 0 {
		err = b.profiled("soak", func() error {
			return b.soak(pctx, url, recent, waitLanded, func() (uint64, error) {
				var n uint64
				err := conn.QueryRow(pctx, countQ).Scan(&n)
				return n, err
			})
		})
	} else {
		before, serr := b.streamSeqs(pctx)
		err = b.profiled("e2e", func() error { return b.endToEnd(pctx, url, phaseEvents, waitLanded) })
		if after, aerr := b.streamSeqs(pctx); err == nil && serr == nil && aerr == nil {
			b.rep.WritesPerEvent = writesPerEvent(before, after, len(phaseEvents))
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
	if b.cfg.JSON {
		enc := json.NewEncoder(b.d.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b.rep)
	}
	printTable(b.d.Stdout, b.rep, b.cfg.Rate)
	return nil
}

// startPipeline runs ingest, processor, decision maker and sink until
// b.stop; the returned context ends with the pipeline's error if it fails.
func (b *bench) startPipeline(ctx context.Context, in *ingest.Ingester) (context.Context, error) {
	run, err := b.d.Components(ctx, in)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancelCause(ctx)
	b.stopPipeline, b.pipelineDone = cancel, make(chan error, 1)
	go func() {
		err := run(pctx)
		if err != nil {
			cancel(err)
		}
		b.pipelineDone <- err
	}()
	if err := b.d.WaitReady(pctx, b.cfg.IngestURL); err != nil {
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
	if b.ownsStreams && b.bus != nil && !b.cfg.Keep {
		b.deleteStreams()
	}
	b.d.Close()
	db := b.cfg.ClickHouse.Database
	if b.cfg.Keep {
		b.progress("kept ClickHouse database %s and data directory %s", db, b.cfg.DataDir)
		if b.ownsStreams {
			b.progress("kept epiwatch's streams and buckets on %s: a later bench --external there refuses to run until they are deleted", b.cfg.NATSURL)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := b.cfg.ClickHouse
	admin.Database = "default"
	if conn, err := chsink.Open(ctx, admin); err != nil {
		b.progress("could not drop ClickHouse database %s: %v", db, err)
	} else {
		drop := "DROP DATABASE IF EXISTS `" + db + "`"
		if c := b.cfg.ClickHouse.Cluster; c != "" {
			drop += " ON CLUSTER `" + c + "`" // the database is on every node
		}
		if err := conn.Exec(ctx, drop); err != nil {
			b.progress("could not drop ClickHouse database %s: %v", db, err)
		}
		conn.Close()
	}
	if b.cfg.TempDir != "" {
		_ = os.RemoveAll(b.cfg.TempDir)
	}
}
