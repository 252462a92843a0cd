package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/internal/tools/bench"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
)

// benchOptions are the flags of `epiwatch bench`: the harness's load and
// output, the sync policy and the simulator's model.
type benchOptions struct {
	bench.Config
	sync string
	sim  simulateOptions
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine: raw JetStream publish, end-to-end events/s, acceptance-to-indicator latency",
		Long: `Runs the whole pipeline in this process — embedded NATS JetStream with the configured
nats.sync_interval (or --sync), the ingest API on a free loopback port, the processor, the
decision maker and the ClickHouse sink (no alerter) — against the configured ClickHouse, in a
fresh database epiwatch_bench_<unix time> that is dropped at the end (unless --keep), with the
JetStream store in a temporary directory (unless --data-dir or data_dir is set). The embedded
server is one node: nats.url is ignored and stream.replicas is 1 (see --external). It measures:

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
state by design (the NATS server's index of the events stream's subjects, one per event, and
the processor's applied event_ids), one to two hundred bytes each with the embedded server; a
figure that stays the same over longer runs is that state. The goroutines stay flat.

With --external the pipeline and both raw baselines use the NATS server or cluster of nats.url
(--nats-url, EPIWATCH_NATS_URL) instead of the embedded server, with the configured
stream.replicas, so the ratios compare against the same servers; --sync does not apply (the
servers' own sync setting holds; the report says "external"). ClickHouse is clickhouse.* as
always; with clickhouse.cluster set the fresh database is migrated in cluster mode (replicated
tables ON CLUSTER, Distributed tables) and dropped ON CLUSTER at the end. The pipeline's
stream, consumer and bucket names are fixed (EPI_EVENTS, ..., KV_epi_*), so bench cannot keep
to names of its own there: it refuses to run (exit 2) when the server already has any of
epiwatch's streams or buckets — a deployment's, even with no messages, or a bench run's left
with --keep — and deletes the ones it created at the end unless --keep. Point it at a cluster
without an epiwatch deployment, never at production. The report names the server (the URLs
without credentials) and the replicas.

Progress goes to stderr, the table (or with --json one JSON object) to stdout.`,
		Example: `  epiwatch bench
  epiwatch bench --sync 1s --json
  epiwatch bench --events 20000 --rate 2000 --latency-duration 10s
  epiwatch bench --soak 30m --rate 1000
  eval "$(deploy/local/cluster.sh env)"; epiwatch bench --external --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Events < 1 || o.Senders < 1 || o.Batch < 1 || !(o.Rate > 0) || o.LatencyDuration <= 0 || o.Soak < 0 {
				return &exitError{2, fmt.Errorf("--events, --senders, --batch, --rate and --latency-duration must be positive")}
			}
			var err error
			if o.Sim, err = o.sim.Config(time.Now()); err != nil {
				return &exitError{2, err}
			}
			o.FixedScale = cmd.Flags().Changed("scale")
			o.RunID = time.Now().Unix()
			return toolExit(app.Bench(cmd.Context(), envOf(cmd), o.Config, o.sync))
		},
	}
	f := c.Flags()
	f.IntVar(&o.Events, "events", 100000, "events of the raw-publish and end-to-end phases")
	f.IntVar(&o.Senders, "senders", 4, "concurrent senders to the ingest API in the end-to-end phase")
	f.IntVar(&o.Batch, "batch", simulate.DefaultBatch, "events per request in the end-to-end phase")
	f.Float64Var(&o.Rate, "rate", 5000, "offered load of the latency phase (and --soak), events/s")
	f.DurationVar(&o.LatencyDuration, "latency-duration", 20*time.Second, "how long the latency phase offers --rate")
	f.StringVar(&o.sync, "sync", "", `nats.sync_interval of the embedded server: "always" or a duration such as 1s (default: the configuration's); not with --external`)
	f.BoolVar(&o.External, "external", false, "use the NATS server or cluster of nats.url with stream.replicas instead of the embedded server; refuses one that already has epiwatch's streams")
	f.DurationVar(&o.Soak, "soak", 0, "instead of the phases, offer --rate for this long and report heap and goroutines at start and end")
	f.BoolVar(&o.Keep, "keep", false, "keep the ClickHouse database and the temporary data directory (with --external, the streams too)")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object instead of the table")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile (pprof) of each phase to FILE-<phase>.pprof; the embedded NATS server runs in this process and is included")
	f.StringVar(&o.MemProfile, "memprofile", "", "write the allocations (pprof) before and after each phase to FILE-<phase>.start.pprof and FILE-<phase>.pprof; compare with go tool pprof -sample_index=alloc_space -base")
	o.sim.addModelFlags(f)
	return c
}
