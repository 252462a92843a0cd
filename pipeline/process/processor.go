package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Deps are the processor's connections and shared services.
type Deps struct {
	// Bus is the connection to JetStream; the streams and the checkpoint
	// bucket must exist (Bus.Ensure).
	Bus *stream.Bus
	// Regions gives populations for the per-100k and coverage figures.
	Regions *schemas.Regions
	// Logger may be nil (discard).
	Logger *slog.Logger
	// Registerer receives the processor's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// StreamMetrics, if not nil, records the consumer's delivery metrics
	// (stream.NewMetrics, shared by every consumer of a process).
	StreamMetrics *stream.Metrics
}

// Processor is the live indicator processor: a durable JetStream consumer
// (schemas.ConsumerProcess on schemas.StreamEvents) that applies events to
// per-region daily series, publishes the indicator records of every day an
// event changed, and checkpoints its state with the stream sequence it
// covers.
//
// Idempotency keys: an event is applied once per source and event_id (a duplicate
// published past JetStream's duplicate window, or a redelivery, changes
// nothing); an indicator record is published with Nats-Msg-Id
// "ind:<region>:<date>:<version>:<crc32 of the bytes>:<data through>@<sequence
// applied>/<run>" (schemas.Indicator.MsgIDAt and a random run id drawn at
// New), so a retried publication is dropped by JetStream and publishing a
// record again is harmless in ClickHouse. The run id makes a restarted
// processor's republications new messages: its catch-up may publish a
// record's intermediate content again, and the final content that the
// crashed run had already published must then follow it in the stream, not
// be dropped as a duplicate of the crashed run's message (equal versions are
// ordered by the stream: the later publication wins).
type Processor struct {
	cfg   Config
	bus   *stream.Bus
	log   *slog.Logger
	m     *metrics
	smet  *stream.Metrics
	pub   *stream.Publisher
	eng   *engine
	store *checkpointStore
	refs  *schemas.EventRefs // the deployment's (stream.LoadEventRefs), read by Run
	run   string             // this process's part of the records' message ids
	// lease fences every write when the processor runs under one
	// (RunLeased); nil otherwise.
	lease *stream.Lease

	// mu guards everything below: the batch handler and the publish ticker.
	mu         sync.Mutex
	ckptSeq    uint64 // the low-watermark (done) when the last checkpoint was taken
	appliedSeq uint64 // highest sequence applied to the in-memory state
	done       doneSeqs
	batches    int // batches since the last checkpoint
	lastCkpt   time.Time
	// writing is the checkpoint being written (nil: none).
	writing *ckptWrite
	// erasureChecked is when the erasure log was last asked for new records;
	// erased holds the events-stream sequences its records name.
	erasureChecked time.Time
	erased         map[uint64]struct{}
	lastPublish    time.Time
	lagTimes       []time.Time
	inds           []schemas.Indicator
	msgs           []stream.Msg

	started atomic.Bool
	dead    bool // a test crash: stop without a final checkpoint
	// fatal is why the processor must stop (another processor committed a
	// checkpoint over ours); stop cancels the consumer with it.
	fatal error
	stop  context.CancelCauseFunc
	hooks hooks
}

// hooks are fault-injection points for tests.
type hooks struct {
	// beforeCheckpoint runs after the pending records are published and
	// before the checkpoint is written; an error simulates a crash right
	// there.
	beforeCheckpoint func() error
	// checkpointWrite runs off the lock, in the goroutine writing a
	// checkpoint, before anything is written, with the write's context:
	// it can hold the write up (a slow NATS) or fail it.
	checkpointWrite func(ctx context.Context) error
}

// errCrashed is returned once a test hook simulated a crash.
var errCrashed = errors.New("processor crashed (test hook)")

// deadErr is why a dead processor does nothing more: the cause of a fatal
// stop, else a test's crash. Called with p.mu held.
func (p *Processor) deadErr() error {
	if p.fatal != nil {
		return p.fatal
	}
	return errCrashed
}

// New validates the configuration and registers the metrics. It does no I/O:
// Run restores the checkpoint and consumes.
func New(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	if deps.Bus == nil {
		return nil, errors.New("process: Deps.Bus is required")
	}
	if deps.Regions == nil {
		return nil, errors.New("process: Deps.Regions is required (schemas.DefaultRegions())")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := newRModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	eng, err := newEngine(cfg, deps.Regions, r)
	if err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	return &Processor{
		cfg:  cfg,
		bus:  deps.Bus,
		log:  log.With("component", "process"),
		m:    newMetrics(deps.Registerer),
		smet: deps.StreamMetrics,
		pub:  deps.Bus.Publisher(),
		eng:  eng,
		run:  fmt.Sprintf("%08x", rand.Uint32()),
	}, nil
}

// RunLeased is Run under a lease held through stream.Bus.RunExclusive: before
// every write to shared state (published indicators, dead letters, the
// checkpoint) the lease is checked, and a processor that lost it, or could
// not confirm it for two thirds of its TTL, stops before writing. Its token
// is stamped on every indicator (schemas.HeaderLeaseToken) and recorded in
// the checkpoint manifest.
func (p *Processor) RunLeased(ctx context.Context, l *stream.Lease) error {
	p.lease = l
	return p.Run(ctx)
}

// fence returns nil while the processor may write. A lease lost to another
// replica stops the processor, like a checkpoint conflict: nothing more is
// written, and the batch in hand is not acknowledged and goes to the
// lease's new holder. A lease not confirmed lately only refuses this write.
func (p *Processor) fence() error {
	err := p.lease.Check()
	if err == nil {
		return nil
	}
	if errors.Is(err, stream.ErrLeaseUnconfirmed) {
		// NATS was unreachable (or this process stalled) for two thirds of
		// the TTL: nothing is written now, and the batch is retried. The
		// renewal then either confirms the lease again (the write goes
		// ahead: nobody else can hold it) or finds it taken (lost: stop).
		// Stopping here would end a single-node `run` over a NATS hiccup.
		return fmt.Errorf("process: not writing: %w", err)
	}
	p.dead = true
	if p.fatal == nil {
		p.fatal = fmt.Errorf("process: stopping before a write: %w", err)
		p.log.Error("lease not held: stopping before writing", "seq", p.appliedSeq, "err", err)
	}
	if p.stop != nil {
		p.stop(p.fatal)
	}
	return p.fatal
}

// Run restores the checkpoint, catches up and consumes until ctx is
// cancelled. Shutdown is cancel + drain: the batch in hand is finished,
// published and acknowledged, then a final checkpoint is written and Run
// returns nil. Run may be called once.
func (p *Processor) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("process: Run called twice")
	}
	kv, err := p.bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: nothing applied, nothing to save
		}
		return fmt.Errorf("open checkpoint bucket: %w", err)
	}
	p.store = newCheckpointStore(kv)
	// Whatever path Run leaves by, no checkpoint write of this processor
	// outlives it: RunExclusive releases the lease when Run returns, and a
	// write still in flight would commit under a token another replica may
	// hold by then. The paths that stop cleanly have waited already.
	defer func() {
		p.mu.Lock()
		p.stopCheckpoint(true)
		p.mu.Unlock()
	}()
	// The id key names the events a correction looks up; an events stream
	// of the old subject layout is refused here (stream.OldLayoutError).
	if p.refs, err = stream.LoadEventRefs(ctx, p.bus); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("process: %w", err)
	}
	p.eng.lookup = StreamLookup(p.bus, p.refs, schemas.StreamEvents, p.cfg.AckWait/4)
	if err := p.restore(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: nothing applied, nothing to save
		}
		return err
	}
	cons, err := p.bus.Consumer(ctx, stream.ConsumerSpec{
		Stream:      schemas.StreamEvents,
		Durable:     schemas.ConsumerProcess,
		Description: "indicator processor: per-region series, R, ПЗК, rates",
		Stage:       schemas.DeadLetterStageProcess,
		BatchSize:   p.cfg.BatchSize,
		MaxWait:     p.cfg.MaxWait,
		AckWait:     p.cfg.AckWait,
	}, p.log, p.smet)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Messages acknowledged after the last checkpoint will not be delivered
	// again, yet the restored state lacks them: read them back first.
	info, err := cons.State(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer %s info: %w", schemas.ConsumerProcess, err)
	}
	if err := p.catchUp(ctx, info.Delivered); err != nil {
		if ctx.Err() != nil {
			return p.shutdown(ctx)
		}
		return err
	}
	// A checkpoint the catch-up started may still be writing: the store is
	// read after it ends.
	p.mu.Lock()
	p.waitCheckpoint()
	if p.dead {
		// That write found the checkpoint taken over (or the lease lost);
		// p.stop was not set yet to stop Run.
		err := p.deadErr()
		p.mu.Unlock()
		return err
	}
	var cerr error
	if p.store.erasures > p.store.man.Erasures {
		// Rebuilt at start after an erasure: replace the checkpoint that
		// still counts the erased now, not at the next schedule.
		cerr = p.checkpoint(ctx)
	}
	p.mu.Unlock()
	if cerr != nil {
		return fmt.Errorf("checkpoint after the rebuild for an erasure: %w", cerr)
	}
	// rctx also ends when the processor must stop (fatal).
	rctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	p.mu.Lock()
	p.stop = stop
	if p.dead {
		stop(p.deadErr()) // since the check above (the write of the erasure's checkpoint)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.watchErasures(rctx) }()
	if p.cfg.PublishInterval > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); p.publishTicker(rctx) }()
	}
	err = cons.RunBatch(rctx, p.handle)
	wg.Wait()
	p.mu.Lock()
	// Stopping for good (the lease lost, a conflict, a crash): the write in
	// flight must not commit and would only delay the handover. A clean
	// stop lets it finish; the final checkpoint follows it.
	p.stopCheckpoint(p.dead || p.fatal != nil || errors.Is(context.Cause(ctx), stream.ErrLeaseLost))
	fatal := p.fatal
	p.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if err != nil {
		return err
	}
	return p.shutdown(ctx)
}

// publishTicker publishes records left pending by a full batch when no
// further batch comes to publish them (the backlog ended exactly at a batch
// boundary).
func (p *Processor) publishTicker(ctx context.Context) {
	p.everyLocked(ctx, p.cfg.PublishInterval, func(ctx context.Context) {
		if p.eng.dirty() && time.Since(p.lastPublish) >= p.cfg.PublishInterval {
			pctx, cancel := context.WithTimeout(ctx, p.cfg.AckWait/2)
			defer cancel()
			if err := p.publish(pctx); err != nil {
				p.log.Warn("publishing pending indicators failed; will retry", "err", err)
			}
		}
	})
}

// everyLocked runs fn every d until ctx ends, holding p.mu, unless the
// processor is dead.
func (p *Processor) everyLocked(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		if !p.dead {
			fn(ctx)
		}
		p.mu.Unlock()
	}
}

func (p *Processor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waitCheckpoint()
	if p.dead {
		return p.deadErr()
	}
	// Another replica holds the lease now and may have restored the last
	// checkpoint already: a final one from here would overwrite its state.
	if cause := context.Cause(ctx); errors.Is(cause, stream.ErrLeaseLost) {
		p.log.Warn("lease lost: stopping without a final checkpoint", "checkpoint_seq", p.ckptSeq)
		return cause
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckWait/2)
	defer cancel()
	if err := p.checkpoint(cctx); err != nil {
		return fmt.Errorf("final checkpoint at sequence %d: %w", p.appliedSeq, err)
	}
	p.log.Info("processor stopped", "checkpoint_seq", p.ckptSeq)
	return nil
}

// restore loads the checkpoint into the engine.
func (p *Processor) restore(ctx context.Context) error {
	start := time.Now()
	done, blobs, err := p.store.load(ctx)
	if err != nil {
		return err
	}
	seq := done.low
	if again, err := p.erasedSince(ctx, true); err != nil {
		return err
	} else if again {
		// Erased since this checkpoint was written: it still counts (and
		// holds keys of) the erased. Rebuild from the events stream.
		es, err := p.readErasures(ctx)
		if err != nil {
			return err
		}
		p.log.Warn("an erasure was recorded after the checkpoint; rebuilding the state from the events stream",
			"checkpoint_seq", seq, "erasure_seq", es.last)
		if err := p.freshState(); err != nil {
			return err
		}
		p.eng.floor = es.floor
		p.store.erasures, p.store.floor = es.last, es.floor
		p.erased = es.deleted
		return nil
	}
	p.eng.floor = p.store.floor
	shards := map[string][]byte{}
	for code, blob := range blobs {
		if _, _, ok := parseShardKey(code); ok {
			shards[code] = blob
			continue
		}
		r, err := decodeRegion(blob)
		if errors.Is(err, errOldLayout) {
			// Written by an older epiwatch: it lacks what the state holds
			// now (person-episodes, corrections, feeds, the facility
			// registry). Rebuild from the events stream; the records it
			// republishes replace the old ones (equal versions: the later
			// wins).
			p.log.Warn("the checkpoint was written by an older version of epiwatch; rebuilding the state from the events stream",
				"checkpoint_seq", seq, "region", code)
			return p.freshState()
		}
		if err != nil {
			return fmt.Errorf("restore checkpoint at sequence %d: %w", seq, err)
		}
		if r.code != code {
			return fmt.Errorf("restore checkpoint at sequence %d: blob of %s holds region %s", seq, code, r.code)
		}
		p.eng.addRegion(r)
		p.eng.last = max(p.eng.last, r.last())
	}
	for key, blob := range shards {
		code, shard, _ := parseShardKey(key)
		r := p.eng.states[code]
		if r == nil {
			return fmt.Errorf("restore checkpoint at sequence %d: persons of %s without its state", seq, code)
		}
		if err := decodeShard(blob, r, shard); err != nil {
			return fmt.Errorf("restore checkpoint at sequence %d: %w", seq, err)
		}
	}
	if len(shards) > 0 {
		for _, r := range p.eng.states {
			r.rebuildTri() // the triangle follows the cases, now all read
		}
	}
	p.eng.restored()
	p.eng.done = done
	// Catch-up re-reads from the low-watermark (what above holds is
	// skipped), so appliedSeq starts there, not at the highest done.
	p.ckptSeq, p.appliedSeq, p.lastCkpt = seq, seq, time.Now()
	p.m.ckptSeq.Set(float64(seq))
	p.m.appliedSeq.Set(float64(seq))
	p.log.Info("checkpoint restored", "seq", seq, "above", len(done.above), "regions", len(blobs), "took", time.Since(start))
	return nil
}

// freshState replaces a restored state by an empty one that the catch-up
// fills from the first event of the stream: the records it republishes
// replace the old ones.
func (p *Processor) freshState() error {
	eng, err := newEngine(p.eng.cfg, p.eng.regions, p.eng.r)
	if err != nil {
		return err
	}
	eng.floor = p.eng.floor
	eng.lookup = p.eng.lookup
	p.eng = eng
	p.store.forgetRegions() // the next checkpoint references new blobs only
	p.ckptSeq, p.appliedSeq, p.lastCkpt = 0, 0, time.Now()
	return nil
}

// catchUpResetAttempts bounds the ordered consumer's attempts to create its
// server-side consumer (1 s, 2 s, 4 s… apart) before a catch-up fetch fails.
const catchUpResetAttempts = 5

// catchUp re-applies the events after the checkpoint up to target (the last
// sequence the durable consumer delivered) with an ordered consumer.
func (p *Processor) catchUp(ctx context.Context, target uint64) error {
	if target <= p.appliedSeq {
		return nil
	}
	from := p.appliedSeq + 1
	p.log.Info("catching up from checkpoint", "from", from, "to", target)
	r, err := p.bus.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{
		FromSeq: from,
		// A fetch (re)creates the server-side consumer, retrying with
		// backoff — by default forever, deaf to ctx: a connection closed
		// under it would hang Run. Bounded, the fetch fails instead.
		ResetAttempts: catchUpResetAttempts,
	})
	if err != nil {
		return fmt.Errorf("catch up %d..%d: ordered consumer: %w", from, target, err)
	}
	defer r.Stop()
	empty := 0
	for p.appliedSeq < target && ctx.Err() == nil {
		msgs, err := r.Fetch(min(p.cfg.BatchSize, int(target-p.appliedSeq)), time.Second)
		if err != nil {
			return fmt.Errorf("catch up %d..%d: %w", from, target, err)
		}
		if len(msgs) == 0 {
			// The stream no longer holds the rest (limits): carry on live.
			if empty++; empty >= 3 {
				p.log.Warn("catch-up found no more messages; continuing with the durable consumer", "applied_seq", p.appliedSeq, "target", target)
				return nil
			}
			continue
		}
		empty = 0
		delay := 100 * time.Millisecond
		for {
			// Like RunBatch: a batch in hand is finished even if shutdown starts.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckWait/2)
			err := p.handle(hctx, msgs)
			cancel()
			var be *stream.BatchError
			if err == nil || errors.As(err, &be) { // rejected ones were dead-lettered by handle
				break
			}
			p.mu.Lock() // the checkpoint writer may have set it
			dead := p.dead
			p.mu.Unlock()
			if dead {
				return err
			}
			p.log.Warn("catch-up batch failed; will retry", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
			delay = min(2*delay, 10*time.Second)
		}
	}
	return ctx.Err()
}

// handle is the batch handler: apply, publish (unless a backlog defers it,
// see Config.PublishInterval), maybe checkpoint. Returning nil acks the
// batch; a *stream.BatchError acks all but the undecodable events, which are
// dead-lettered (they never block the others); any other error retries the
// whole batch, which is harmless: re-applying changes nothing and the
// unpublished records are still pending.
//
// Acknowledging before the records are published is safe: a checkpoint is
// only ever taken with nothing pending, and a restart re-applies every event
// after the checkpoint, which marks the same days again.
func (p *Processor) handle(ctx context.Context, msgs []stream.Msg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return p.deadErr()
	}
	if err := p.applyErasures(ctx, false); err != nil {
		return err
	}
	var rejected map[int]error
	var dls []stream.DeadLetter
	waiting := uint64(0) // events in the stream after this batch, as the server counted them
	for i, m := range msgs {
		waiting = m.Pending
		seq := m.Seq
		if _, ok := p.erased[seq]; ok {
			// Fetched before it was erased: never applied.
			p.appliedSeq = max(p.appliedSeq, seq)
			p.eng.done.mark(seq)
			continue
		}
		// The engine skips a sequence it holds already (its done set,
		// checkpointed with the state): a message below the highest
		// applied may be one delivered but never applied (a fetch that
		// gave up under load leaves it unacknowledged, to be redelivered
		// after later ones were applied and checkpointed).
		e, applied, err := p.eng.applyMsg(m.Data, seq, m.Time)
		if err != nil && !IsPermanent(err) {
			// A corrected event could not be read back: retry the batch
			// (what it applied so far is skipped as seen).
			return fmt.Errorf("apply %s: %w", m.Subject, err)
		}
		p.appliedSeq = max(p.appliedSeq, seq)
		p.eng.done.mark(seq) // a dead letter is done too
		switch {
		case err != nil:
			rejected = addRejected(rejected, i, err)
			dl := stream.DeadLetter{Stage: schemas.DeadLetterStageProcess, Reason: err.Error(), Data: m.Data, Subject: m.Subject, Sequence: seq, Index: -1}
			dl.Type, dl.Ref = schemas.EventSubjectType(m.Subject), schemas.EventSubjectRef(m.Subject)
			dls = append(dls, dl)
			p.m.rejected.Inc()
		case applied:
			p.m.applied.WithLabelValues(string(e.Type)).Inc()
			p.lagTimes = append(p.lagTimes, m.Time)
		default:
			p.m.skipped.WithLabelValues("duplicate").Inc()
		}
	}
	p.m.appliedSeq.Set(float64(p.appliedSeq))
	// A backlog is at least another full batch waiting behind this one (the
	// consumer's pending count when the last message was delivered). A full
	// batch alone is no backlog: under a steady load above BatchSize per
	// MaxWait every fetch fills up, yet the processor keeps up, and holding
	// the records for PublishInterval would only add latency.
	backlog := len(msgs) >= p.cfg.BatchSize && waiting >= uint64(p.cfg.BatchSize)
	if !backlog || time.Since(p.lastPublish) >= p.cfg.PublishInterval {
		if err := p.publish(ctx); err != nil {
			return err
		}
	}
	// Dead letters are stored before the checkpoint can cover them (their ID,
	// stage:subject:seq, makes the consumer's own copy a duplicate).
	if len(dls) > 0 {
		if err := p.fence(); err != nil {
			return err
		}
		if err := p.pub.PublishDeadLetters(ctx, dls); err != nil {
			return fmt.Errorf("dead-letter %d events: %w", len(dls), err)
		}
	}
	p.batches++
	if p.writing == nil && (p.batches >= p.cfg.CheckpointBatches || time.Since(p.lastCkpt) >= p.cfg.CheckpointInterval) {
		// A conflict (another processor committed over our checkpoint)
		// comes from the write, off the lock: finishCheckpoint stops us.
		if _, err := p.startCheckpoint(ctx, true); err != nil {
			if p.dead {
				return err
			}
			// Not fatal: the next checkpoint covers this batch too, and a
			// restart replays from the previous one.
			p.log.Warn("checkpoint failed; will retry at the next batch", "seq", p.appliedSeq, "err", err)
		}
	}
	if rejected != nil {
		return &stream.BatchError{Rejected: rejected}
	}
	return nil
}

func addRejected(m map[int]error, i int, err error) map[int]error {
	if m == nil {
		m = make(map[int]error)
	}
	m[i] = err
	return m
}

// doneSeqs is the set of events-stream sequences the state holds (applied,
// skipped as a copy, or dead-lettered): everything up to low, and the
// sequences above it in above. The checkpoint records both: a restart
// re-reads from low and skips what above holds, so a message delivered out
// of order is applied exactly once across crashes, with no set of every
// event_id. above stays small: it holds only what was applied ahead of a
// gap (a redelivery pending, or a sequence not delivered yet).
type doneSeqs struct {
	low   uint64
	above map[uint64]struct{}
}

// doneFrom is the set of every sequence up to low and those in above.
func doneFrom(low uint64, above []uint64) doneSeqs {
	d := doneSeqs{low: low}
	for _, s := range above {
		d.mark(s)
	}
	return d
}

// has reports whether seq is done.
func (d *doneSeqs) has(seq uint64) bool {
	if seq <= d.low {
		return true
	}
	_, ok := d.above[seq]
	return ok
}

// sorted returns above in ascending order (nil when empty).
func (d *doneSeqs) sorted() []uint64 {
	if len(d.above) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(d.above))
	for s := range d.above {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// mark records seq as done and moves low up over every contiguous one.
func (d *doneSeqs) mark(seq uint64) {
	if seq <= d.low {
		return
	}
	if seq != d.low+1 {
		if d.above == nil {
			d.above = make(map[uint64]struct{})
		}
		d.above[seq] = struct{}{}
		return
	}
	d.low = seq
	for {
		if _, ok := d.above[d.low+1]; !ok {
			return
		}
		delete(d.above, d.low+1)
		d.low++
	}
}

// gapChecks bounds the stream reads one checkpoint spends on gaps.
const gapChecks = 64

// closeGaps marks as done the sequences below the highest one applied that
// the stream no longer holds (removed by its age or size limits, or deleted):
// they will never be delivered, and the low-watermark must not wait for them
// for ever. A sequence the stream still holds is simply not applied yet
// (delivered later): the watermark waits.
func (p *Processor) closeGaps(ctx context.Context) {
	if len(p.eng.done.above) == 0 {
		return
	}
	for range gapChecks {
		if len(p.eng.done.above) == 0 {
			return
		}
		next := p.eng.done.low + 1
		_, err := p.bus.GetMsg(ctx, schemas.StreamEvents, next)
		if !errors.Is(err, stream.ErrMsgNotFound) {
			return // held (not delivered yet), or the read failed: wait
		}
		p.eng.done.mark(next)
	}
}

// shardKey names the checkpoint blob of shard s of a region's persons (the
// region's own blob is named by its code; codes hold no dot).
func shardKey(code string, s int) string { return fmt.Sprintf("%s.p%02d", code, s) }

// parseShardKey reads a shardKey.
func parseShardKey(key string) (code string, s int, ok bool) {
	i := strings.LastIndex(key, ".p")
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(key[i+2:])
	if err != nil || n < 0 || n >= personShards {
		return "", 0, false
	}
	return key[:i], n, true
}

// StreamLookup reads events back from the named events stream by source
// and event_id (the subject carries their ref: schemas.EventRefs.Filter),
// each read bounded by timeout: how a correction finds the counts of the
// event it withdraws, and its sequence (whether it was applied). A stored
// event that does not decode was never applied: nil with its sequence. Not
// stored: nil and 0. Not safe for concurrent use (the engine and the replay
// are sequential).
func StreamLookup(bus *stream.Bus, refs *schemas.EventRefs, streamName string, timeout time.Duration) func(source, eventID string) (*schemas.Event, uint64, error) {
	var dec schemas.EventDecoder
	return func(source, id string) (*schemas.Event, uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ref := refs.Ref(source, id)
		m, err := bus.LastMsg(ctx, streamName, schemas.SubjectEvents+"."+ref+".>")
		if errors.Is(err, stream.ErrMsgNotFound) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read event %s from %s: %w", ref, streamName, err)
		}
		e, err := decodeEvent(&dec, m.Data, m.Time)
		if err != nil {
			return nil, m.Seq, nil
		}
		return e, m.Seq, nil
	}
}

// publishChunk bounds the asynchronous publishes in flight.
const publishChunk = 2000

// publish sends every pending indicator record and marks them published.
func (p *Processor) publish(ctx context.Context) error {
	p.lastPublish = time.Now()
	if !p.eng.dirty() {
		return nil
	}
	if err := p.fence(); err != nil {
		return err
	}
	p.inds = p.eng.pending(p.inds[:0])
	p.msgs = p.msgs[:0]
	through := stream.Header{schemas.HeaderDataThrough: {p.eng.last.String()}}
	if p.lease != nil {
		through[schemas.HeaderLeaseToken] = []string{strconv.FormatUint(p.lease.Token(), 10)}
	}
	for i := range p.inds {
		in := &p.inds[i]
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode indicator %s: %w", in.Key(), err)
		}
		p.msgs = append(p.msgs, stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: in.MsgIDAt(data, p.eng.last, p.appliedSeq) + "/" + p.run, Data: data, Header: through})
	}
	for off := 0; off < len(p.msgs); off += publishChunk {
		chunk := p.msgs[off:min(off+publishChunk, len(p.msgs))]
		for i, r := range p.pub.PublishBatch(ctx, chunk) {
			if r.Err != nil {
				return fmt.Errorf("publish indicator %s: %w", chunk[i].ID, r.Err)
			}
		}
	}
	p.eng.markPublished()
	p.m.published.Add(float64(len(p.msgs)))
	now := time.Now()
	for _, t := range p.lagTimes {
		p.m.lag.Observe(now.Sub(t).Seconds())
	}
	p.lagTimes = p.lagTimes[:0]
	for i := range p.inds {
		if p.inds[i].Date == p.eng.last {
			p.m.region(&p.inds[i])
		}
	}
	p.eng.feedLags(func(region, feed string, days int) {
		p.m.feedLag.WithLabelValues(region, feed).Set(float64(days) * 86400)
	})
	return nil
}

// checkpoint publishes what is pending, then writes the changed regions and
// a manifest covering appliedSeq. A checkpoint never holds unpublished
// records: that is what makes acknowledging before publishing safe.
//
// The state and the stream sequence it covers are written together to the
// key-value bucket schemas.BucketProcessState (layout in checkpoint.go). A
// checkpoint is taken every Config.CheckpointBatches batches or
// Config.CheckpointInterval, and at a clean shutdown. Batches are acknowledged
// before the next checkpoint (and, while working through a backlog, before
// their records are published, see Config.PublishInterval), so the durable
// consumer will not deliver them again; a restart therefore re-reads the
// events after the checkpoint up to the last one the consumer delivered (an
// ordered consumer) before consuming again, and re-applying them marks the
// same days for publication. Delivered events at or below the checkpoint are
// skipped without decoding.
func (p *Processor) checkpoint(ctx context.Context) error {
	w, err := p.startCheckpoint(ctx, false)
	if err != nil || w == nil {
		return err
	}
	return p.await(w)
}

// checkpointWriteTimeout bounds one checkpoint's write (its parts and
// manifest), done off the processor's lock. Not AckWait, which bounds a
// batch: on a NATS cluster electing a leader a write can take longer than
// that (5 s on the local cluster test expired under load), and one cut short
// costs a whole checkpoint — its regions are written again by the next one.
// Nothing waits on a write but a stop, an erasure rebuild and an explicit
// checkpoint; batches go on meanwhile, so this only has to end a write that
// hangs.
const checkpointWriteTimeout = 2 * time.Minute

// ckptWrite is a checkpoint being written: its state was encoded under the
// processor's lock, its parts and manifest are written off it (writing
// took up to 2.8 s under load, and every event arriving meanwhile waited).
type ckptWrite struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc // ends the write early (the processor is stopping for good)
	// aborted is set (under p.mu) when cancel was called for a stop.
	aborted bool
}

// ckptMark is what a failed write marks changed again in a region.
type ckptMark struct {
	shards  uint32
	persons bool
}

// startCheckpoint publishes what is pending, encodes the changed regions,
// and starts writing them with the done set of this moment; nil when there
// is nothing to write. A background checkpoint (a batch's, which nobody
// waits for) is skipped while a write is in flight (the next batch tries
// again), and its write outlives ctx, bounded by checkpointWriteTimeout
// alone; otherwise the write in flight is waited for first, and the new
// one ends with ctx too (the caller waits for it: a shutdown's deadline
// bounds its final checkpoint). Called with p.mu held.
func (p *Processor) startCheckpoint(ctx context.Context, background bool) (*ckptWrite, error) {
	if p.writing != nil {
		if background {
			return nil, nil
		}
		p.waitCheckpoint()
	}
	if p.dead {
		return nil, p.deadErr()
	}
	if err := p.publish(ctx); err != nil {
		return nil, err
	}
	if p.hooks.beforeCheckpoint != nil {
		if err := p.hooks.beforeCheckpoint(); err != nil {
			p.dead = true
			return nil, err
		}
	}
	start := time.Now()
	blobs := make(map[string][]byte)
	marks := make(map[*regionState]ckptMark)
	for code, r := range p.eng.states {
		if !r.changed {
			continue
		}
		blob, err := encodeCore(r)
		if err != nil {
			return nil, err
		}
		blobs[code] = blob
		dirty := r.dirtyShards
		if r.hasPersons {
			dirty = 1<<personShards - 1 // the restored core held them: move them out
		}
		shards, err := encodeShards(r, dirty)
		if err != nil {
			return nil, err
		}
		for s, blob := range shards {
			if blob != nil {
				blobs[shardKey(code, s)] = blob
			}
		}
		marks[r] = ckptMark{shards: r.dirtyShards, persons: r.hasPersons}
	}
	p.closeGaps(ctx)
	if len(blobs) == 0 && p.eng.done.low == p.ckptSeq {
		p.batches, p.lastCkpt = 0, time.Now()
		return nil, nil
	}
	// The checkpoint covers the low-watermark and the sequences done above
	// it, not "everything up to the highest applied": a message below that
	// delivered late (after later ones were checkpointed) and then
	// acknowledged would otherwise be lost if the processor died before the
	// next checkpoint. A restart re-reads from the low-watermark and skips
	// the sequences above it that the state holds.
	if err := p.fence(); err != nil {
		return nil, err
	}
	done := doneSeqs{low: p.eng.done.low, above: maps.Clone(p.eng.done.above)}
	token := p.lease.Token()
	// What changes from now on is in the next checkpoint; a failed write
	// marks its regions changed again.
	for r := range marks {
		r.changed, r.dirtyShards, r.hasPersons = false, 0, false
	}
	if background {
		// Not ctx's deadline: ctx is a batch's, and the batch is
		// acknowledged long before a slow write ends.
		ctx = context.WithoutCancel(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, checkpointWriteTimeout)
	w := &ckptWrite{done: make(chan struct{}), cancel: cancel}
	p.writing = w
	p.batches, p.lastCkpt = 0, time.Now()
	hook := p.hooks.checkpointWrite
	go func() {
		defer cancel()
		var n int
		var err error
		if hook != nil {
			err = hook(wctx)
		}
		if err == nil {
			n, err = p.store.save(wctx, done, token, time.Now(), blobs, p.commitCheck)
		}
		p.finishCheckpoint(w, done.low, n, err, marks, start)
	}()
	return w, nil
}

// commitCheck runs before a checkpoint's manifest is committed, off the
// write's goroutine: a processor that crashed (a test's) or does not hold
// its lease any more commits nothing.
func (p *Processor) commitCheck() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return p.deadErr()
	}
	return p.fence()
}

// finishCheckpoint records a write's outcome.
func (p *Processor) finishCheckpoint(w *ckptWrite, low uint64, n int, err error, marks map[*regionState]ckptMark, start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m.ckptBytes.Add(float64(n))
	if err != nil {
		p.m.checkpoints.WithLabelValues("error").Inc()
		for r, m := range marks {
			r.changed = true
			r.dirtyShards |= m.shards
			r.hasPersons = r.hasPersons || m.persons
		}
		switch {
		case errors.Is(err, errCheckpointConflict) && !p.dead:
			// Another processor committed over our checkpoint: it owns
			// the state now. Stop without writing anything more.
			p.dead = true
			p.fatal = fmt.Errorf("process: stopping: %w", err)
			p.log.Error("another processor wrote the checkpoint; stopping (run one processor per stream)", "seq", low, "err", err)
			if p.stop != nil {
				p.stop(p.fatal)
			}
		case w.aborted:
			p.log.Info("checkpoint write abandoned: stopping", "seq", low, "err", err)
		case !p.dead:
			// Not fatal: the next checkpoint covers these regions again,
			// and a restart replays from the previous one.
			p.log.Warn("checkpoint failed; will retry", "seq", low, "err", err)
		}
	} else {
		p.ckptSeq = low
		p.m.checkpoints.WithLabelValues("ok").Inc()
		p.m.ckptSeconds.Observe(time.Since(start).Seconds())
		p.m.ckptSeq.Set(float64(low))
	}
	w.err = err
	p.writing = nil
	close(w.done)
}

// await waits for w with p.mu released. Called with p.mu held.
func (p *Processor) await(w *ckptWrite) error {
	p.mu.Unlock()
	<-w.done
	p.mu.Lock()
	return w.err
}

// waitCheckpoint waits until no checkpoint is being written. Called with
// p.mu held (released while waiting): another goroutine may start a write
// meanwhile, which is waited for too.
func (p *Processor) waitCheckpoint() {
	for p.writing != nil {
		_ = p.await(p.writing)
	}
}

// stopCheckpoint waits for the write in flight, cancelled first if abort
// (its regions are marked changed again, for nobody). Called with p.mu held.
func (p *Processor) stopCheckpoint(abort bool) {
	for p.writing != nil {
		if abort {
			p.writing.aborted = true
			p.writing.cancel()
		}
		_ = p.await(p.writing)
	}
}
