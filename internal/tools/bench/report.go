package bench

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// report is the outcome; Config.JSON prints it as one JSON object.
type report struct {
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
	WritesPerEvent map[string]float64 `json:"stream_writes_per_event,omitempty"`
	LatencyRate    float64            `json:"latency_offered_eps"`
	LatencyEvents  int                `json:"latency_events"`
	LatencySecs    float64            `json:"latency_seconds,omitempty"`
	LatencyEPS     float64            `json:"latency_accepted_eps"`
	LatencyRefused int                `json:"latency_refused"`
	LatencyMatched int                `json:"latency_matched"`
	LatencyP50Ms   float64            `json:"latency_p50_ms"`
	LatencyP99Ms   float64            `json:"latency_p99_ms"`
	LatencyMaxMs   float64            `json:"latency_max_ms"`
	ClickHouseDB   string             `json:"clickhouse_database"`
	// NATS is "embedded" or the external server's URLs (without
	// credentials); StreamReplicas the streams' replicas there.
	NATS              string      `json:"nats"`
	StreamReplicas    int         `json:"stream_replicas"`
	ClickHouseAddr    string      `json:"clickhouse_addr"`
	ClickHouseCluster string      `json:"clickhouse_cluster,omitempty"`
	Machine           machine     `json:"machine"`
	Soak              *soakReport `json:"soak,omitempty"`
	Senders           int         `json:"senders"`
	BatchSize         int         `json:"batch"`
	ProcessPublishMs  int64       `json:"process_publish_interval_ms"`
	SinkFlushMs       int64       `json:"sink_flush_interval_ms"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
}

// soakReport is the outcome of a soak run (Config.Soak).
type soakReport struct {
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
	// it is not 0: `epiwatch bench --help`.
	HeapPerMinute []uint64 `json:"heap_inuse_per_minute_bytes,omitempty"`
	HeapPerEvent  float64  `json:"heap_growth_bytes_per_event,omitempty"`
}

// printTable writes r as the table a person reads; rate is the offered load
// of a soak run.
func printTable(w io.Writer, r report, rate float64) {
	m := r.Machine
	cpu := m.CPUModel
	if cpu == "" {
		cpu = "unknown CPU"
	}
	chCluster := ""
	if r.ClickHouseCluster != "" {
		chCluster = ", cluster " + r.ClickHouseCluster
	}
	fmt.Fprintf(w, "epiwatch bench: %d CPU (%s), %s/%s, %s\nNATS %s, stream.replicas %d, nats.sync_interval %s; ClickHouse %s%s, database %s\n\n",
		m.CPUs, cpu, m.OS, m.Arch, m.GoVersion, r.NATS, r.StreamReplicas, r.SyncInterval, r.ClickHouseAddr, chCluster, r.ClickHouseDB)
	if s := r.Soak; s != nil {
		fmt.Fprintf(w, "soak %s at %.0f events/s offered: %d accepted (%.0f events/s), %d refused, %d in ClickHouse\n",
			time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), rate, s.Accepted, s.AcceptedEPS, s.Refused, s.Landed)
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

// machineInfo describes the machine the figures belong to.
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
