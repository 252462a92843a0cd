package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Stage names the detector in dead letters.
const Stage = "detect"

// Deps are the detector's connections.
type Deps struct {
	// Bus is the connection to JetStream; the streams must exist
	// (Bus.Ensure).
	Bus *stream.Bus
	// Logger may be nil (discard).
	Logger *slog.Logger
	// Registerer receives the detector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// StreamMetrics, if not nil, records the consumer's delivery metrics.
	StreamMetrics *stream.Metrics
}

// Detector is the early-warning stage (see the package documentation).
type Detector struct {
	cfg  Config
	bus  *stream.Bus
	log  *slog.Logger
	smet *stream.Metrics
	pub  *stream.Publisher
	st   *state
	// sent is a checksum of the content (without the version) of the last
	// signal published per key, so a new indicator version that changes
	// nothing the detectors read publishes nothing. It starts empty: after
	// a restart the first change republishes, which ClickHouse replaces.
	sent map[string]uint32

	published *prometheus.CounterVec
	alarms    *prometheus.CounterVec

	maxWait time.Duration
	started atomic.Bool
}

// New validates the configuration and registers the metrics; Run does the
// I/O.
func New(cfg Config, deps Deps) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect config: %w", err)
	}
	if deps.Bus == nil {
		return nil, errors.New("detect: Deps.Bus is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Detector{
		cfg: cfg, bus: deps.Bus, log: log, smet: deps.StreamMetrics, pub: deps.Bus.Publisher(),
		st: newState(cfg), sent: map[string]uint32{}, maxWait: 500 * time.Millisecond,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricSignalsPublished,
			Help: "Signal records published (new or changed verdicts), by method.",
		}, []string{"method"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricSignalAlarmsPublished,
			Help: "Signal records published with an alarm, by series and method (a day's alarm counts again when a late report changes it).",
		}, []string{"stream", "method"}),
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{d.published, d.alarms} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register detect metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Run rebuilds the state from the indicators stream, then consumes it
// (durable consumer schemas.ConsumerDetect) until ctx is cancelled,
// publishing the signals each batch changes before acking it. Run may be
// called once.
//
// Delivery: a durable consumer on the indicators stream, acked after the
// signals a batch changed are published. The state is rebuilt at start by
// reading the indicators stream (only the latest version of each region's day
// counts), so a crash republishes at most the signals of unacked records: the
// same bytes under the same Nats-Msg-Id, dropped by JetStream, and the same
// version, replaced by ClickHouse's ReplacingMergeTree.
func (d *Detector) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("detect: Run called twice")
	}
	n, err := d.replay(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	d.log.Info("detector ready", "methods", d.cfg.Methods, "series", d.cfg.Streams, "indicators_replayed", n, "regions", len(d.st.regions))
	cons, err := d.bus.Consumer(ctx, stream.ConsumerSpec{
		Stream:         schemas.StreamIndicators,
		Durable:        schemas.ConsumerDetect,
		Description:    "detector: aberration signals on each region's daily series",
		FilterSubjects: []string{schemas.SubjectIndicators + ".>"},
		Stage:          Stage,
		BatchSize:      512,
		MaxWait:        d.maxWait,
		AckWait:        2 * time.Minute,
	}, d.log, d.smet)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return cons.RunBatch(ctx, d.handle)
}

// replay reads every indicator record the stream holds at start into the
// state (an ordered consumer, nothing acked). The durable consumer then
// delivers what it has not acked; storing a record twice changes nothing.
func (d *Detector) replay(ctx context.Context) (int, error) {
	n := 0
	progress := time.Now()
	_, err := d.bus.ReadAll(ctx, schemas.StreamIndicators, schemas.SubjectIndicators+".>", nil, func(m stream.Msg) {
		var in schemas.Indicator
		if json.Unmarshal(m.Data, &in) == nil && in.Region != "" && !in.Date.IsZero() {
			d.st.put(&in)
			n++
		}
		if time.Since(progress) > 5*time.Second {
			progress = time.Now()
			d.log.Info("detector replaying indicators", "records", n)
		}
	})
	return n, err
}

// handle applies a batch of indicator records, recomputes the signals of
// the days they can change and publishes those whose verdict changed.
// Undecodable records are dead-lettered; a failed publish retries the
// batch (recomputing gives the same records, which JetStream de-duplicates).
func (d *Detector) handle(ctx context.Context, msgs []stream.Msg) error {
	rejected := map[int]error{}
	type rd struct {
		region string
		day    schemas.Date
	}
	touched := map[rd]bool{}
	for i, m := range msgs {
		var in schemas.Indicator
		if err := json.Unmarshal(m.Data, &in); err != nil {
			rejected[i] = fmt.Errorf("decode indicator: %w", err)
			continue
		}
		if in.Region == "" || in.Date.IsZero() {
			rejected[i] = errors.New("indicator lacks region or date")
			continue
		}
		// Every record delivered is evaluated, changed or not: the
		// start-up replay may have stored it already, and what was
		// published before is only known in memory (sent), which
		// keeps the unchanged verdicts from being published again.
		d.st.put(&in)
		touched[rd{in.Region, in.Date}] = true
	}
	days := map[rd]bool{}
	weeks := map[rd]bool{}
	for k := range touched {
		for _, t := range d.st.affected(k.region, k.day) {
			days[rd{k.region, t}] = true
		}
		if d.st.hasWeekly() {
			weeks[rd{k.region, sundayOf(k.day)}] = true
		}
	}
	var out []schemas.Signal
	keys := make([]rd, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rd) int {
		if a.region != b.region {
			return strings.Compare(a.region, b.region)
		}
		return int(a.day) - int(b.day)
	})
	for _, k := range keys {
		out = append(out, d.st.daily(k.region, k.day)...)
	}
	for k := range weeks {
		out = append(out, d.st.weekly(k.region, k.day)...)
	}
	if err := d.publish(ctx, out); err != nil {
		return err
	}
	if len(rejected) > 0 {
		return &stream.BatchError{Rejected: rejected}
	}
	return nil
}

// publish sends the signals whose verdict differs from the last one sent.
func (d *Detector) publish(ctx context.Context, sigs []schemas.Signal) error {
	var msgs []stream.Msg
	var sums []uint32
	var kept []*schemas.Signal
	for i := range sigs {
		g := &sigs[i]
		sum := verdictSum(g)
		if prev, ok := d.sent[g.Key()]; ok && prev == sum {
			continue
		}
		data, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encode signal %s: %w", g.Key(), err)
		}
		msgs = append(msgs, stream.Msg{Subject: schemas.SignalSubject(g.Region), ID: g.MsgID(data), Data: data})
		sums = append(sums, sum)
		kept = append(kept, g)
	}
	const chunk = 512
	for off := 0; off < len(msgs); off += chunk {
		part := msgs[off:min(off+chunk, len(msgs))]
		for i, r := range d.pub.PublishBatch(ctx, part) {
			if r.Err != nil {
				return fmt.Errorf("publish signal %s: %w", part[i].ID, r.Err)
			}
		}
	}
	for i, g := range kept {
		d.sent[g.Key()] = sums[i]
		d.published.WithLabelValues(g.Method).Inc()
		if g.Alarm {
			d.alarms.WithLabelValues(g.Stream, g.Method).Inc()
		}
	}
	return nil
}

// verdictSum is a checksum of what a signal says, without its version and
// time: a new indicator version that changes none of it is not news.
func verdictSum(g *schemas.Signal) uint32 {
	b := make([]byte, 0, 96)
	f := func(p *float64) {
		if p == nil {
			b = append(b, 'n')
			return
		}
		b = strconv.AppendUint(b, math.Float64bits(*p), 16)
	}
	f(g.Observed)
	f(g.UpperBound)
	b = strconv.AppendBool(b, g.Alarm)
	b = strconv.AppendBool(b, g.Provisional)
	b = append(b, g.Note...)
	return crc32.ChecksumIEEE(b)
}
