// Package replay rebuilds indicators and decisions from the stored events
// stream with the live code (`epiwatch replay`): the processor's own core
// (process.Replayer) applies every stored event in sequence order, and a real
// data-mode decide.Decider with the rule set under study decides on the
// records, both against a scratch embedded JetStream in a temporary directory.
// The live NATS is only read (one ephemeral ordered consumer on the events
// stream); whatever lands the results (the ClickHouse sink, in cmd/epiwatch)
// consumes the scratch streams. Config.From says what --from means, loop.flush
// as of when each day is decided, Run why a replay changes nothing live.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Config configures one replay.
type Config struct {
	// From is the first data day decided.
	//
	// The processor still sees every stored event, those before From included (R's
	// serial-interval history, 7-day windows, cumulative vaccination and the
	// latest bed snapshots need them), and indicators are published for every day.
	// Each region's decisions start on From at the initial level
	// (decide.levels.initial), as if the rule set had been adopted that day
	// (decide.StartAt); the dwell clock before easing counts from there.
	From schemas.Date
	// Process is the processor's configuration (only its science keys
	// matter: serial interval, R window and prior, r_date, bed age, contact
	// follow-up). Use the live one to reproduce the live indicators.
	Process process.Config
	// Decide is the decider's configuration; RuleSet is the rule set under
	// study. Mode is forced to data (each data day decided once, in order).
	Decide decide.Config
	// WorkDir is where the scratch JetStream store is created (in a fresh
	// temporary directory, removed at the end); empty: the system's.
	WorkDir string
	// FetchBatch is how many events are read from the live stream at once.
	FetchBatch int
	// ProgressEvery is how often progress is logged (0: every 5 s).
	ProgressEvery time.Duration
}

// Consumer names a durable consumer on the scratch JetStream.
type Consumer struct{ Stream, Durable string }

// Deps are the replay's connections.
type Deps struct {
	// Live is the bus whose schemas.StreamEvents is replayed. It is only
	// read.
	Live *stream.Bus
	// Source is the live JetStream, used when Live is nil.
	//
	// Deprecated: set Live.
	Source stream.JetStream
	// Regions is the region reference (populations, names).
	Regions *schemas.Regions
	// Landing lands the scratch streams (indicators, decisions) somewhere
	// durable, e.g. a ClickHouse sink on the scratch bus, until ctx ends.
	// LandConsumers are its durable consumers: the replay ends when each
	// has taken and acknowledged everything on its stream. Landing may be
	// nil (tests).
	Landing       func(ctx context.Context, scratch *stream.Bus) error
	LandConsumers []Consumer
	// Land is Landing on the scratch bus's JetStream context, used when
	// Landing is nil.
	//
	// Deprecated: set Landing.
	Land func(ctx context.Context, js stream.JetStream) error
	// Observe, if not nil, gets the scratch bus once everything is landed
	// and before it is discarded (tests read the streams).
	Observe func(ctx context.Context, scratch *stream.Bus) error
	// Logger gets progress (Info) and problems; nil discards.
	Logger *slog.Logger
	// Clock gives the replay's start time, which every decision records as
	// decided_at (nil: time.Now).
	Clock func() time.Time
}

// Result summarises a replay.
type Result struct {
	StartedAt         time.Time
	RuleSet           string
	RuleSetVersion    string
	Events            uint64 // events read from the stream
	Rejected          uint64 // events the processor cannot apply (dead-lettered live too)
	Duplicates        uint64 // events whose event_id was applied before
	FirstSeq, LastSeq uint64 // events-stream sequences replayed
	FirstDay, LastDay schemas.Date
	Indicators        uint64 // indicator records published (every version)
	Decisions         uint64
	Regions           int
	// Apply is the time spent reading and applying events (with the
	// indicator publishing); Total includes deciding and landing the tail.
	Apply, Total time.Duration
}

// EventsPerSecond is the replay's throughput over its whole duration.
func (r Result) EventsPerSecond() float64 {
	if r.Total <= 0 {
		return 0
	}
	return float64(r.Events) / r.Total.Seconds()
}

// Run replays the events stream stored in Deps.Source up to its last
// message at the start, and returns when every decision and record is landed
// (or ctx ends, or a component fails).
//
// Everything the replay writes is in the scratch JetStream, discarded at the
// end, and in what Deps.Landing writes to (a separate ClickHouse database,
// rebuilt by each replay). Indicator records keep the live keys: Version is
// the live events-stream sequence and ComputedAt its timestamp, so a replayed
// record equals the live one for the same (region, date, version).
func Run(ctx context.Context, cfg Config, deps Deps) (Result, error) {
	if cfg.From.IsZero() {
		return Result{}, errors.New("replay: the first day to decide (--from) is required")
	}
	if deps.Live == nil && deps.Source != nil {
		deps.Live = stream.NewBus(deps.Source)
	}
	if deps.Landing == nil && deps.Land != nil {
		land := deps.Land
		deps.Landing = func(ctx context.Context, b *stream.Bus) error { return land(ctx, b.JetStream()) }
	}
	if deps.Live == nil || deps.Regions == nil {
		return Result{}, errors.New("replay: Deps.Live and Deps.Regions are required")
	}
	if cfg.FetchBatch <= 0 {
		cfg.FetchBatch = 5000
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := deps.Clock
	if clock == nil {
		clock = time.Now
	}
	started := clock().UTC().Truncate(time.Second)
	res := Result{StartedAt: started}

	info, err := deps.Live.StreamInfo(ctx, schemas.StreamEvents)
	if err != nil {
		return res, fmt.Errorf("the live events stream: %w", err)
	}
	if info.Msgs == 0 {
		return res, fmt.Errorf("the live events stream %s is empty: nothing to replay", schemas.StreamEvents)
	}
	res.FirstSeq, res.LastSeq = info.FirstSeq, info.LastSeq

	rp, err := process.NewReplayer(cfg.Process, deps.Regions)
	if err != nil {
		return res, err
	}
	// Corrections read the events they withdraw back from the live stream,
	// as the live processor does.
	rp.SetLookup(process.StreamLookup(deps.Live, schemas.StreamEvents, 30*time.Second))
	dcfg := cfg.Decide
	dcfg.Mode = decide.ModeData

	scratch, err := startScratch(cfg.WorkDir)
	if err != nil {
		return res, err
	}
	defer scratch.close(log)
	bus := scratch.bus

	dec, err := decide.New(dcfg, decide.Deps{
		Bus: bus, Regions: deps.Regions, Logger: quiet(log), Clock: func() time.Time { return started },
	})
	if err != nil {
		return res, err
	}
	rs, version := dec.RuleSet()
	res.RuleSet, res.RuleSetVersion = rs.ID, version
	levels, err := bus.KV(ctx, schemas.BucketLevels)
	if err != nil {
		return res, fmt.Errorf("scratch levels bucket: %w", err)
	}

	// The decider and the landing run beside the replay loop; either failing
	// stops everything.
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	runComp := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(rctx); err != nil && rctx.Err() == nil {
				cancel(fmt.Errorf("replay %s: %w", name, err))
			}
		}()
	}
	runComp("decider", dec.Run)
	if deps.Landing != nil {
		runComp("landing", func(ctx context.Context) error { return deps.Landing(ctx, bus) })
	}
	stop := func(err error) (Result, error) {
		cancel(err)
		wg.Wait()
		if c := context.Cause(rctx); c != nil && !errors.Is(c, context.Canceled) {
			return res, c
		}
		if err != nil {
			return res, err
		}
		return res, ctx.Err()
	}
	// The decider replays the (empty) indicators stream at start; records
	// published before its durable consumer exists could be seen twice in a
	// different order. Wait for the consumer.
	if err := waitConsumer(rctx, bus, schemas.StreamIndicators, schemas.ConsumerDecide); err != nil {
		return stop(err)
	}

	l := &loop{cfg: cfg, rp: rp, pub: bus.Publisher(), levels: levels, seeded: map[string]bool{}, res: &res}
	prog := startProgress(rctx, log, cfg.ProgressEvery, &l.events, info.Msgs)
	begin := time.Now()
	err = l.run(rctx, deps.Live)
	res.Apply = time.Since(begin)
	prog.stop()
	if err != nil {
		return stop(err)
	}
	log.Info("replay: events applied; waiting for the decisions and the landing",
		"events", res.Events, "indicators", res.Indicators, "took", res.Apply.Round(time.Millisecond))

	wait := append([]Consumer{{schemas.StreamIndicators, schemas.ConsumerDecide}}, deps.LandConsumers...)
	// Decisions are published while indicators are handled, so the decisions
	// landing is waited for after the decider has taken every record.
	for _, c := range wait {
		if err := waitDrained(rctx, bus, c, log, cfg.ProgressEvery); err != nil {
			return stop(err)
		}
	}
	res.Total = time.Since(begin)
	dinfo, err := bus.StreamInfo(rctx, schemas.StreamDecisions)
	res.Decisions = dinfo.Msgs
	if err != nil {
		return stop(fmt.Errorf("count the replayed decisions: %w", err))
	}
	if deps.Observe != nil {
		if err := deps.Observe(rctx, bus); err != nil {
			return stop(err)
		}
	}
	cancel(nil)
	wg.Wait()
	if c := context.Cause(rctx); c != nil && !errors.Is(c, context.Canceled) {
		return res, c
	}
	log.Info("replay done", "events", res.Events, "indicators", res.Indicators, "decisions", res.Decisions,
		"rule_set", res.RuleSet, "took", res.Total.Round(time.Millisecond), "events_per_s", int(res.EventsPerSecond()))
	return res, nil
}

// loop reads the live stream and applies it.
type loop struct {
	cfg     Config
	rp      *process.Replayer
	pub     *stream.Publisher
	levels  *stream.KV
	seeded  map[string]bool
	res     *Result
	events  atomic.Uint64
	inds    []schemas.Indicator
	unacked []unacked
}

func (l *loop) run(ctx context.Context, src *stream.Bus) error {
	// A continuous pull keeps the next events coming while these are applied.
	r, err := src.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{FromSeq: l.res.FirstSeq, PullAhead: l.cfg.FetchBatch})
	if err != nil {
		return fmt.Errorf("read the live events stream %s: %w", schemas.StreamEvents, err)
	}
	defer r.Stop()
	var newest schemas.Date
	for ctx.Err() == nil {
		m, err := r.Next(ctx, 10*time.Second)
		if errors.Is(err, stream.ErrNoMessage) {
			// The stream no longer holds the rest (limits, or a deleted tail).
			break
		}
		if ctx.Err() != nil {
			break // reported below
		}
		if err != nil {
			return fmt.Errorf("read the live events stream %s: %w", schemas.StreamEvents, err)
		}
		seq := m.Seq
		if seq > l.res.LastSeq {
			break // published after the replay started: not replayed
		}
		l.events.Add(1)
		l.res.Events++
		e, err := l.rp.Decode(m.Data, m.Time)
		if err != nil {
			l.res.Rejected++
		} else {
			// A new day: what the stream held up to the day before is
			// published first, so decisions see the data as it stood.
			if d := e.Date(); d > newest {
				if newest != 0 {
					if err := l.flush(ctx); err != nil {
						return err
					}
				}
				newest = d
			}
			if l.res.FirstDay == 0 || e.Date() < l.res.FirstDay {
				l.res.FirstDay = e.Date()
			}
			applied, err := l.rp.Apply(e, seq, m.Time)
			if err != nil && !process.IsPermanent(err) {
				return fmt.Errorf("replay event at sequence %d: %w", seq, err)
			}
			switch {
			case err != nil:
				l.res.Rejected++
			case !applied:
				l.res.Duplicates++
			}
		}
		if seq == l.res.LastSeq {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.res.LastDay = l.rp.Last()
	if err := l.flush(ctx); err != nil {
		return err
	}
	if err := l.settle(ctx, 0); err != nil {
		return err
	}
	l.res.Regions = len(l.seeded)
	return nil
}

// maxUnacked bounds the indicator publishes awaiting their acknowledgement.
const maxUnacked = 8000

// flush publishes the pending indicator records on the scratch stream, as
// the live processor publishes them (same subject, Nats-Msg-Id and bytes),
// after setting each new region's first decided day. The publishes are
// pipelined across flushes (one connection keeps their order); settle
// checks their acknowledgements, and any failure ends the replay.
//
// Decisions are made on the indicators as they stood when the stream had
// reached each day: before applying an event dated after every event before
// it, the replay publishes the records changed so far, so day D is decided
// (decide.mode=data: once records of D+complete_after_days exist) on what had
// arrived by then, and a late report changes later records, not the decision
// already made — as it did live. The cut depends only on the stream's content
// and order, so replaying the same stream with the same configuration gives
// the same decisions; only decided_at (the replay's start time) differs
// between runs.
func (l *loop) flush(ctx context.Context) error {
	if !l.rp.Dirty() {
		return nil
	}
	l.inds = l.rp.Pending(l.inds[:0])
	through := l.rp.Last().String()
	for i := range l.inds {
		in := &l.inds[i]
		if !l.seeded[in.Region] {
			if err := decide.StartAt(ctx, l.levels, in.Region, l.cfg.From); err != nil {
				return err
			}
			l.seeded[in.Region] = true
		}
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode indicator %s: %w", in.Key(), err)
		}
		id := in.MsgIDAt(data, l.rp.Last(), l.res.LastSeq)
		msg := stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: id, Data: data, Header: stream.Header{schemas.HeaderDataThrough: {through}}}
		f, err := l.pub.PublishAsync(msg, time.Minute)
		if err != nil {
			return fmt.Errorf("publish indicator %s on the scratch stream: %w", id, err)
		}
		l.unacked = append(l.unacked, unacked{f, id})
	}
	l.rp.MarkPublished()
	l.res.Indicators += uint64(len(l.inds))
	return l.settle(ctx, maxUnacked)
}

// unacked is a publish awaiting its acknowledgement.
type unacked struct {
	f  stream.Pending
	id string
}

// settle checks the acknowledgements that have arrived, and waits for the
// oldest until at most keep remain outstanding.
func (l *loop) settle(ctx context.Context, keep int) error {
	done := 0
	// One minute for all the waits of this call.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for done < len(l.unacked) {
		u := l.unacked[done]
		if len(l.unacked)-done <= keep {
			ok, err := u.f.Done()
			if err != nil {
				return fmt.Errorf("publish indicator %s on the scratch stream: %w", u.id, err)
			}
			if !ok {
				break // not acknowledged yet: keep it and the ones after it
			}
			done++
			continue
		}
		if err := u.f.Wait(wctx); err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case wctx.Err() != nil:
				return fmt.Errorf("publish indicator %s on the scratch stream: no acknowledgement within a minute", u.id)
			}
			return fmt.Errorf("publish indicator %s on the scratch stream: %w", u.id, err)
		}
		done++
	}
	l.unacked = l.unacked[:copy(l.unacked, l.unacked[done:])]
	return nil
}

// scratch is the replay's own embedded JetStream.
type scratch struct {
	dir string
	srv *stream.Embedded
	bus *stream.Bus
}

func startScratch(workDir string) (*scratch, error) {
	dir, err := os.MkdirTemp(workDir, "epiwatch-replay-")
	if err != nil {
		return nil, fmt.Errorf("create the replay's scratch directory in %q: %w", workDir, err)
	}
	// No fsync per acknowledgement: the store is thrown away, and a crash
	// means running the replay again.
	srv, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir, SyncInterval: 2 * time.Minute})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the replay's scratch NATS: %w", err)
	}
	s := &scratch{dir: dir, srv: srv}
	s.bus, err = stream.Open(srv.ClientURL(), "epiwatch-replay", stream.ClientConfig{})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = s.bus.Ensure(ctx, stream.DefaultConfig())
		cancel()
	}
	if err != nil {
		s.close(nil)
		return nil, fmt.Errorf("replay's scratch JetStream: %w", err)
	}
	return s, nil
}

func (s *scratch) close(log *slog.Logger) {
	if s.bus != nil {
		s.bus.Close()
	}
	s.srv.Shutdown()
	if err := os.RemoveAll(s.dir); err != nil && log != nil {
		log.Warn("could not remove the replay's scratch directory", "dir", s.dir, "err", err)
	}
}

// waitConsumer waits until the durable consumer exists.
func waitConsumer(ctx context.Context, bus *stream.Bus, streamName, durable string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := bus.ConsumerInfo(ctx, streamName, durable)
		if err == nil {
			return nil
		}
		if !errors.Is(err, stream.ErrConsumerNotFound) || time.Now().After(deadline) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scratch consumer %s on %s did not start: %w", durable, streamName, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDrained waits until consumer c has been delivered every message its
// stream holds and has acknowledged them all.
func waitDrained(ctx context.Context, bus *stream.Bus, c Consumer, log *slog.Logger, every time.Duration) error {
	if err := waitConsumer(ctx, bus, c.Stream, c.Durable); err != nil {
		return err
	}
	last := time.Now()
	for {
		si, err := bus.StreamInfo(ctx, c.Stream)
		if err != nil {
			return fmt.Errorf("scratch stream: %w", err)
		}
		ci, err := bus.ConsumerInfo(ctx, c.Stream, c.Durable)
		if err != nil {
			return fmt.Errorf("scratch consumer: %w", err)
		}
		if ci.Pending == 0 && ci.AckPending == 0 && ci.AckFloor >= si.LastSeq {
			return nil
		}
		if time.Since(last) >= every {
			last = time.Now()
			log.Info("replay: waiting", "consumer", c.Durable, "stream", c.Stream, "pending", ci.Pending+uint64(ci.AckPending))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// progress logs the replay's progress periodically.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(ctx context.Context, log *slog.Logger, every time.Duration, events *atomic.Uint64, total uint64) *progress {
	p := &progress{done: make(chan struct{})}
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case <-t.C:
			}
			n := events.Load()
			el := time.Since(start)
			log.Info("replay progress", "events", n, "of", total,
				"pct", fmt.Sprintf("%.1f", 100*float64(n)/float64(max(total, 1))),
				"events_per_s", int(float64(n)/el.Seconds()), "elapsed", el.Round(time.Second))
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// quiet passes only warnings and errors: the decider logs every decision at
// Info, which would drown the replay's progress.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn})
}

type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{h: m.h.WithGroup(n), min: m.min} }
