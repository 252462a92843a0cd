package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// SinkConfig tunes batching.
type SinkConfig struct {
	// BatchSize is the most rows per insert; FlushInterval the longest a
	// partial batch waits. A batch flushes at whichever comes first.
	BatchSize     int           `mapstructure:"batch_size"`
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// RetryMax caps the backoff while ClickHouse is unavailable.
	RetryMax time.Duration `mapstructure:"retry_max"`
	// AckWait is how long JetStream waits before redelivering a batch whose
	// sink died mid-insert. Longer than any insert must take; shorter means
	// faster recovery after a crash.
	AckWait time.Duration `mapstructure:"ack_wait"`
}

// DefaultSinkConfig returns the defaults. Each insert creates a part per
// monthly partition, and on 18.16 that file work (not CPU) is most of an
// insert's cost, so the batch is large: 20,000 rows landed the most events
// per second of the sizes tried (README, "Performance").
func DefaultSinkConfig() SinkConfig {
	return SinkConfig{BatchSize: 20000, FlushInterval: time.Second, RetryMax: 15 * time.Second, AckWait: time.Minute}
}

// Sink lands the events, indicators, signals, decisions and alert streams in ClickHouse.
type Sink struct {
	cfg  SinkConfig
	conn driver.Conn
	db   string
	caps Capabilities
	// distributed: cluster mode. Each insert then waits until every shard
	// holds its rows (insert_distributed_sync): acknowledging the batch after
	// a Distributed table merely queued it on this node would lose it with
	// the node. A retried batch splits into the same per-shard blocks, which
	// the replicated tables' block de-duplication drops, and the
	// ReplacingMergeTree key collapses whatever gets through.
	distributed bool
	bus         *stream.Bus
	log         *slog.Logger
	sm          *stream.Metrics
	m           *sinkMetrics
}

// Deps are the sink's connections and shared services.
type Deps struct {
	// Conn is the ClickHouse connection (Open); Database the database the
	// tables are in (Migrate creates them).
	Conn     driver.Conn
	Database string
	// Bus is the connection to JetStream; the streams must exist
	// (Bus.Ensure).
	Bus *stream.Bus
	// Logger may be nil (discard).
	Logger *slog.Logger
	// Registerer receives the sink's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// StreamMetrics, if not nil, records the consumers' delivery metrics.
	StreamMetrics *stream.Metrics
}

// New returns a sink writing into deps.Database. It asks ClickHouse for its
// capabilities; Run consumes.
func New(cfg SinkConfig, deps Deps) (*Sink, error) {
	if deps.Conn == nil || deps.Bus == nil {
		return nil, errors.New("clickhouse sink: Deps.Conn and Deps.Bus are required")
	}
	conn, db, log := deps.Conn, deps.Database, deps.Logger
	def := DefaultSinkConfig()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = def.BatchSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = def.FlushInterval
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = def.RetryMax
	}
	caps, err := Detect(conn)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	distributed, err := isDistributed(conn, db)
	if err != nil {
		return nil, err
	}
	log.Info("ClickHouse sink", "server", caps.Version, "insert_dedup_token", caps.DedupToken, "database", db, "cluster_mode", distributed)
	return &Sink{cfg: cfg, conn: conn, db: db, caps: caps, distributed: distributed, bus: deps.Bus, log: log, sm: deps.StreamMetrics, m: newSinkMetrics(deps.Registerer)}, nil
}

// isDistributed reports whether db was migrated in cluster mode: its tables
// are then Distributed over replicated local tables.
func isDistributed(conn driver.Conn, db string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'events_v2_store' AND engine = 'Distributed'", db).Scan(&n); err != nil {
		return false, fmt.Errorf("read the engine of %s.events_v2_store: %w", db, err)
	}
	return n > 0, nil
}

// rowFunc decodes one message into its partition key and row.
type rowFunc func(m stream.Msg) (partition string, row []any, err error)

// route is one stream → table pairing.
type route struct {
	durable, streamName string
	t                   table
	rows                rowFunc
}

func (s *Sink) routes() []route {
	// dec serves the events route, whose rows run on its consumer's
	// goroutine one message at a time.
	var dec schemas.EventDecoder
	return []route{
		{schemas.ConsumerSinkEvents, schemas.StreamEvents, eventsTable, func(m stream.Msg) (string, []any, error) {
			e, err := dec.Unmarshal(m.Data)
			if err != nil {
				return "", nil, fmt.Errorf("decode event: %w", err)
			}
			if e.EventID == "" || !e.Type.Valid() || e.Date().IsZero() {
				return "", nil, errors.New("event lacks event_id, type or date")
			}
			return month(e.Date().Time()), eventRow(e, m.Seq, m.Time, m.Data), nil
		}},
		{schemas.ConsumerSinkIndicators, schemas.StreamIndicators, indicatorsTable, func(m stream.Msg) (string, []any, error) {
			var in schemas.Indicator
			if err := json.Unmarshal(m.Data, &in); err != nil {
				return "", nil, fmt.Errorf("decode indicator: %w", err)
			}
			if in.Region == "" || in.Date.IsZero() {
				return "", nil, errors.New("indicator lacks region or date")
			}
			return month(in.Date.Time()), indicatorRow(&in), nil
		}},
		{schemas.ConsumerSinkDecisions, schemas.StreamDecisions, decisionsTable, func(m stream.Msg) (string, []any, error) {
			var d schemas.Decision
			if err := json.Unmarshal(m.Data, &d); err != nil {
				return "", nil, fmt.Errorf("decode decision: %w", err)
			}
			if d.DecisionID == "" || d.Date.IsZero() {
				return "", nil, errors.New("decision lacks decision_id or date")
			}
			return month(d.Date.Time()), decisionRow(&d, m.Seq), nil
		}},
		{schemas.ConsumerSinkSignals, schemas.StreamSignals, signalsTable, func(m stream.Msg) (string, []any, error) {
			var g schemas.Signal
			if err := json.Unmarshal(m.Data, &g); err != nil {
				return "", nil, fmt.Errorf("decode signal: %w", err)
			}
			if g.Region == "" || g.Date.IsZero() || g.Stream == "" || g.Method == "" {
				return "", nil, errors.New("signal lacks region, date, stream or method")
			}
			return month(g.Date.Time()), signalRow(&g), nil
		}},
		{schemas.ConsumerSinkAlerts, schemas.StreamAlerts, alertsTable, func(m stream.Msg) (string, []any, error) {
			var a schemas.AlertRecord
			if err := json.Unmarshal(m.Data, &a); err != nil {
				return "", nil, fmt.Errorf("decode alert record: %w", err)
			}
			if a.AlertID == "" || a.At.IsZero() {
				return "", nil, errors.New("alert record lacks alert_id or time")
			}
			return month(a.At), alertRow(&a, m.Seq), nil
		}},
	}
}

func month(t time.Time) string { return t.UTC().Format("200601") }

// Run consumes every result stream until ctx is cancelled; each batch is acked
// only after ClickHouse accepted it.
func (s *Sink) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(s.routes()))
	for _, r := range s.routes() {
		c, err := s.bus.Consumer(ctx, stream.ConsumerSpec{
			Stream: r.streamName, Durable: r.durable, Stage: schemas.DeadLetterStageSink,
			Description: "lands " + r.streamName + " in ClickHouse " + r.t.name,
			BatchSize:   s.cfg.BatchSize, MaxWait: s.cfg.FlushInterval, RetryMax: s.cfg.RetryMax, AckWait: s.cfg.AckWait,
		}, s.log, s.sm)
		if err != nil {
			return err
		}
		wg.Add(2)
		go func() { defer wg.Done(); c.WatchLag(ctx, 5*time.Second) }()
		go func() {
			defer wg.Done()
			if err := c.RunBatch(ctx, s.handler(r)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// handler inserts a batch, one insert per monthly partition (a single block
// insert is atomic; one spanning partitions is not), and reports undecodable
// messages for the dead-letter stream.
func (s *Sink) handler(r route) stream.BatchHandler {
	return func(ctx context.Context, msgs []stream.Msg) error {
		groups := map[string]*group{}
		rejected := map[int]error{}
		for i, m := range msgs {
			part, row, err := r.rows(m)
			if err != nil {
				rejected[i] = err
				continue
			}
			g := groups[part]
			if g == nil {
				g = &group{h: fnv.New64a()}
				groups[part] = g
			}
			g.rows = append(g.rows, row)
			g.h.Write(strconv.AppendUint(nil, m.Seq, 10))
			g.h.Write([]byte{','})
		}
		// The partitions' inserts run side by side: on ClickHouse before
		// compact parts (18.16) an insert's cost is mostly creating the new
		// part's files, a wait on the disk rather than CPU, and a batch of
		// recent events spans two or three months.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(partitionInserts)
		for p, grp := range groups {
			// The token names exactly the stream messages in this insert, so
			// a retry of the same batch is recognised; a different batch never
			// shares it.
			token := fmt.Sprintf("%s:%s:%d:%x", r.t.name, p, len(grp.rows), grp.h.Sum64())
			g.Go(func() error { return s.insert(gctx, r.t, grp.rows, token) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if len(rejected) > 0 {
			return &stream.BatchError{Rejected: rejected}
		}
		return nil
	}
}

// partitionInserts bounds the concurrent inserts of one batch.
const partitionInserts = 4

type group struct {
	rows [][]any
	h    interface {
		Write([]byte) (int, error)
		Sum64() uint64
	}
}

func (s *Sink) insert(ctx context.Context, t table, rows [][]any, token string) (err error) {
	start := time.Now()
	defer func() {
		s.m.observe(t.name, len(rows), time.Since(start), err)
		if err != nil {
			s.log.Warn("ClickHouse insert failed; batch kept in JetStream and retried", "table", t.name, "rows", len(rows), "err", err)
		}
	}()
	settings := ch.Settings{}
	if s.caps.DedupToken {
		settings["insert_deduplication_token"] = token
	}
	if s.distributed {
		settings["insert_distributed_sync"] = 1
	}
	if len(settings) > 0 {
		ctx = ch.Context(ctx, ch.WithSettings(settings))
	}
	b, err := s.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", quoteIdent(s.db), t.name, t.columns))
	if err != nil {
		return fmt.Errorf("prepare insert of %d rows into %s.%s: %w", len(rows), s.db, t.name, err)
	}
	for _, row := range rows {
		if err := b.Append(row...); err != nil {
			_ = b.Abort()
			// A row the driver cannot encode is a defect, not an outage: the
			// error surfaces, and the batch is retried until fixed.
			return fmt.Errorf("append row to %s.%s: %w", s.db, t.name, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s.%s: %w", len(rows), s.db, t.name, err)
	}
	return nil
}

type sinkMetrics struct {
	rows     *prometheus.CounterVec
	batch    *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

func newSinkMetrics(reg prometheus.Registerer) *sinkMetrics {
	m := &sinkMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricSinkRows, Help: "Rows inserted into ClickHouse, by table."}, []string{"table"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: schemas.MetricSinkBatchRows, Help: "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}, []string{"table"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: schemas.MetricSinkInsertDuration, Help: "Duration of one ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricSinkInsertFailures, Help: "Failed ClickHouse inserts (retried)."}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.batch, m.latency, m.failures)
	}
	return m
}

func (m *sinkMetrics) observe(table string, n int, d time.Duration, err error) {
	if err != nil {
		m.failures.WithLabelValues(table).Inc()
		return
	}
	m.rows.WithLabelValues(table).Add(float64(n))
	m.batch.WithLabelValues(table).Observe(float64(n))
	m.latency.WithLabelValues(table).Observe(d.Seconds())
}
