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
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
	// Regions is the region reference (populations, names).
	Regions *schemas.Regions
	// Landing lands the scratch streams (indicators, decisions) somewhere
	// durable, e.g. a ClickHouse sink on the scratch bus, until ctx ends.
	// LandConsumers are its durable consumers: the replay ends when each
	// has taken and acknowledged everything on its stream. Landing may be
	// nil (tests).
	Landing       func(ctx context.Context, scratch *stream.Bus) error
	LandConsumers []Consumer
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

// Run replays the events stream stored in Deps.Live up to its last
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
	refs, err := stream.LoadEventRefs(ctx, deps.Live)
	if err != nil {
		return res, fmt.Errorf("the live events stream: %w", err)
	}
	rp.SetLookup(process.StreamLookup(deps.Live, refs, schemas.StreamEvents, 30*time.Second))
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
