package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Clauses of decisions that did not evaluate the rule set on a day's data.
const (
	// ClauseStaleInput: the newest complete day is older than
	// decide.max_staleness (or the region has no complete day): keep.
	ClauseStaleInput = "stale input"
	// ClauseProvisionalInput: in data mode, a day stayed provisional for
	// longer than decide.max_staleness later days; it is decided as keep
	// rather than on provisional data.
	ClauseProvisionalInput = "provisional input"
)

// StageDecide names the decider in dead letters.
const StageDecide = "decide"

// Deps are the decider's connections and shared services.
type Deps struct {
	// Bus is the connection to JetStream; the streams and the levels bucket
	// must exist (Bus.Ensure).
	Bus *stream.Bus
	// Regions is the region reference: names for decisions, and the regions
	// the daily schedule decides (plus any region indicators arrive for).
	Regions *schemas.Regions
	// Logger may be nil (discard).
	Logger *slog.Logger
	// Registerer receives the decider's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Clock is the wall clock (nil: time.Now). Schedule mode reads "today"
	// and the 09:00 deadline from it; every decision's DecidedAt comes from it.
	Clock func() time.Time
	// StreamMetrics, if not nil, records the consumer's delivery metrics.
	StreamMetrics *stream.Metrics
}

// Decider makes the restriction decisions: it keeps a window of each
// region's daily indicators (durable consumer schemas.ConsumerDecide on
// schemas.StreamIndicators), evaluates the rule set on a region's complete
// day, moves the region's level one step with thresholds.Next, publishes the
// decision to schemas.StreamDecisions and keeps the level in the KV bucket
// schemas.BucketLevels.
//
// Idempotency keys: an indicator record is kept per (region, date), highest
// Version wins; a decision is keyed by its DecisionID
// "<region>:<date>:<rule set id>@<version>" (the data day decided on; stale
// keeps add ":stale" and use the day they were due), which is its Nats-Msg-Id
// and its ClickHouse key; a region's level moves at most once per data day
// (LevelRecord.LastDay) and every move is a compare-and-set on the region's
// KV revision. See claim for the order of writes.
type Decider struct {
	cfg     Config
	rs      *thresholds.RuleSet
	version string // rule-set version recorded (with an r.statistic override)
	loc     *time.Location
	atHour  int
	atMin   int
	bus     *stream.Bus
	regions *schemas.Regions
	log     *slog.Logger
	m       *metrics
	smet    *stream.Metrics
	clock   func() time.Time
	pub     *stream.Publisher
	fields  []metricField

	// poll is how often the schedule loop looks at the clock; maxWait is the
	// consumer's fetch wait. Tests shorten both.
	poll    time.Duration
	maxWait time.Duration
	// opTimeout bounds one decision (claim, publish, commit). It runs to
	// completion even when shutdown starts, so shutdown leaves no claim
	// behind unless NATS is unreachable.
	opTimeout time.Duration

	started atomic.Bool
	// lease fences every level write and decision publish when the
	// decider runs under one (RunLeased); nil otherwise.
	lease *stream.Lease

	// mu serialises everything below: the consumer's handler, the schedule
	// and DecideNow.
	mu      sync.Mutex
	loaded  bool
	kv      *stream.KV
	hist    *history
	levels  map[string]*regionLevel
	crashed bool
	hooks   hooks
}

// hooks are fault-injection points for tests.
type hooks struct {
	// afterClaim and afterPublish run after the claim is stored and after
	// the decision is published; an error simulates a crash right there.
	afterClaim   func(schemas.Decision) error
	afterPublish func(schemas.Decision) error
	// noRecovery and msgID break the protocol on purpose for the negative
	// control: a pending claim is dropped instead of completed (and the
	// stream is not checked before publishing), and the Nats-Msg-Id differs from the DecisionID (a re-send after JetStream's
	// duplicate window).
	noRecovery bool
	msgID      func(string) string
}

// New validates the configuration, opens the rule set and registers the
// metrics. It does no network I/O: Run (or DecideNow) loads the state.
func New(cfg Config, deps Deps) (*Decider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("decide config: %w", err)
	}
	if deps.Bus == nil {
		return nil, errors.New("decide: Deps.Bus is required")
	}
	if deps.Regions == nil {
		return nil, errors.New("decide: Deps.Regions is required (schemas.DefaultRegions())")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "decide")
	clock := deps.Clock
	if clock == nil {
		clock = time.Now
	}
	rs, err := thresholds.Open(cfg.RuleSet, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("decide.rule_set %q: %w", cfg.RuleSet, err)
	}
	version := rs.Version
	if st := thresholds.RStatistic(cfg.RStatistic); st != "" && st != rs.RStatistic {
		if st == thresholds.RBounds && rs.RMethod != thresholds.RCori {
			return nil, fmt.Errorf("decide.r_statistic: rule set %s compares the %s R, which has no credible bounds; use a rule set with r.method cori", rs.ID, rs.RMethod)
		}
		// A copy: the shipped rule set stays as parsed. The override is part
		// of the recorded version, so its decisions have their own ids.
		cp := *rs
		cp.RStatistic = st
		rs = &cp
		version += "+r.statistic=" + string(st)
	}
	if on := cfg.RNowcast == "on"; cfg.RNowcast != "" && on != rs.RNowcast {
		if on && rs.RMethod != thresholds.RCori {
			return nil, fmt.Errorf("decide.r_nowcast: rule set %s compares the %s R; the nowcast R is Cori's, use a rule set with r.method cori", rs.ID, rs.RMethod)
		}
		cp := *rs
		cp.RNowcast = on
		rs = &cp
		version += "+r.nowcast=" + cfg.RNowcast
	}
	for _, w := range rs.Warnings {
		log.Warn("rule set warning", "rule_set", rs.ID, "warning", w)
	}
	fields := indicatorMetrics()
	var unsupplied []string
	for _, m := range rs.Metrics() {
		if !slices.Contains(suppliedMetrics(fields), m) {
			unsupplied = append(unsupplied, m)
		}
	}
	if len(unsupplied) > 0 {
		log.Warn("the rule set reads metrics the indicators do not carry; decisions that need them will keep with the metric named",
			"rule_set", rs.ID, "metrics", strings.Join(unsupplied, ", "))
	}
	// Region codes are upper case; a configuration file's map keys may come
	// lower-cased (viper folds keys).
	initial := make(map[string]int, len(cfg.InitialLevels))
	for r, l := range cfg.InitialLevels {
		code := strings.ToUpper(r)
		if !deps.Regions.Known(code) {
			return nil, fmt.Errorf("decide.initial_levels: unknown region %q (an ISO 3166-2 code from the region reference, e.g. KZ-75)", r)
		}
		initial[code] = l
	}
	cfg.InitialLevels = initial
	loc, _ := time.LoadLocation(cfg.Timezone) // checked by Validate
	h, mi, _ := parseAt(cfg.At)
	return &Decider{
		cfg: cfg, rs: rs, version: version, loc: loc, atHour: h, atMin: mi,
		bus: deps.Bus, regions: deps.Regions, log: log, m: newMetrics(deps.Registerer), smet: deps.StreamMetrics,
		clock: clock, pub: deps.Bus.Publisher(), fields: fields,
		poll: 30 * time.Second, maxWait: 250 * time.Millisecond, opTimeout: 15 * time.Second,
		hist: newHistory(cfg.WindowDays), levels: make(map[string]*regionLevel),
	}, nil
}

// RuleSet returns the rule set decisions are made with (after any
// decide.r_statistic override) and the version they record.
func (d *Decider) RuleSet() (*thresholds.RuleSet, string) { return d.rs, d.version }

// RunLeased is Run under a lease held through stream.Bus.RunExclusive: every
// level write and decision publish first checks the lease, so a decider that
// lost it (or could not confirm it for two thirds of its TTL) writes
// nothing; decisions carry its token (schemas.HeaderLeaseToken).
func (d *Decider) RunLeased(ctx context.Context, l *stream.Lease) error {
	d.lease = l
	return d.Run(ctx)
}

// Run loads the state (level records, the window of indicators replayed from
// the stream, any decision a crash left half-done), then consumes
// indicators until ctx is cancelled. In schedule mode it decides every
// region daily at decide.at; in data mode it decides each region's days as
// they become complete. Shutdown is cancel + drain: a decision in progress is
// finished (published and committed), the message in hand is settled, and Run
// returns nil. Run may be called once.
func (d *Decider) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("decide: Run called twice")
	}
	d.mu.Lock()
	err := d.prepare(ctx)
	if err == nil && d.cfg.Mode == ModeData {
		for _, r := range d.hist.codes() {
			if aerr := d.advance(ctx, r); aerr != nil && ctx.Err() == nil {
				d.log.Warn("catching up decisions failed; will retry on the next indicator", "region", r, "err", aerr)
			}
		}
	}
	d.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cons, err := d.bus.Consumer(ctx, stream.ConsumerSpec{
		Stream:         schemas.StreamIndicators,
		Durable:        schemas.ConsumerDecide,
		Description:    "decider: per-region indicator window for restriction decisions",
		FilterSubjects: []string{schemas.SubjectIndicators + ".>"},
		Stage:          StageDecide,
		BatchSize:      256,
		MaxWait:        d.maxWait,
		AckWait:        2 * time.Minute,
	}, d.log, d.smet)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	if d.cfg.Mode == ModeSchedule {
		wg.Go(func() { d.runSchedule(ctx) })
	}
	err = cons.Run(ctx, d.handle)
	wg.Wait()
	return err
}

// DecideNow decides region now, as `epiwatch decide --region KZ-75` does: on
// the region's latest complete day (schedule mode: relative to today in
// decide.timezone; data mode: after deciding the days that are ready, relative
// to the newest data day). If that day was decided already it returns that
// decision (from the decisions stream) and changes nothing; stale input gives
// a keep with the reason. It works with or without Run: without, it loads the
// state first.
func (d *Decider) DecideNow(ctx context.Context, region string) (schemas.Decision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.prepare(ctx); err != nil {
		return schemas.Decision{}, err
	}
	if !d.regions.Known(region) && d.hist.newest(region) == 0 {
		return schemas.Decision{}, fmt.Errorf("decide: unknown region %q and no indicators for it; give an ISO 3166-2 code from the region reference such as KZ-75", region)
	}
	ref := d.today()
	if d.cfg.Mode == ModeData {
		if err := d.advance(ctx, region); err != nil {
			return schemas.Decision{}, err
		}
		if n := d.hist.newest(region); n != 0 {
			ref = n
		}
	}
	dec, fresh, err := d.decideLatest(ctx, region, ref)
	if err != nil {
		return schemas.Decision{}, err
	}
	if !fresh {
		return d.lastDecision(ctx, region)
	}
	return dec, nil
}

// prepare opens the levels bucket, replays the indicator window and
// completes pending decisions, once. Callers hold mu.
func (d *Decider) prepare(ctx context.Context) error {
	if d.loaded {
		return nil
	}
	if err := d.open(ctx); err != nil {
		return err
	}
	n, err := d.replay(ctx)
	if err != nil {
		return err
	}
	regions, err := d.kv.Keys(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", schemas.BucketLevels, err)
	}
	for _, r := range regions {
		if _, err := d.loadLevel(ctx, r); err != nil {
			return err
		}
	}
	d.loaded = true
	d.log.Info("decider ready", "mode", d.cfg.Mode, "rule_set", d.rs.ID, "rule_set_version", d.version,
		"indicators_replayed", n, "regions_with_levels", len(regions))
	return nil
}

// replayLookback is how far back (in stream time, beyond the window) the
// start-up replay reads: records of days in the window may have been
// published some time after the day itself.
const replayLookback = 30 * 24 * time.Hour

// replay reads the indicators stream into the window (an ordered,
// ephemeral consumer from WindowDays+30 days ago up to the stream's last
// message at start). The durable consumer then delivers what follows; a
// record seen by both is stored once (history's key).
func (d *Decider) replay(ctx context.Context) (int, error) {
	start := d.clock().Add(-time.Duration(d.cfg.WindowDays)*24*time.Hour - replayLookback)
	n := 0
	_, err := d.bus.ReadAll(ctx, schemas.StreamIndicators, schemas.SubjectIndicators+".>", &start, func(m stream.Msg) {
		if in, err := decodeIndicator(m.Data); err == nil { // the durable consumer dead-letters bad ones
			d.hist.put(in)
			d.hist.sawThrough(in.Region, dataThrough(m.Header))
			n++
		}
	})
	return n, err
}

// handle stores one indicator record and, in data mode, decides the days it
// makes complete. An invalid record is dead-lettered; a failed decision naks
// the record so its redelivery retries the decision (storing it again is a
// no-op).
func (d *Decider) handle(ctx context.Context, m stream.Msg) error {
	in, err := decodeIndicator(m.Data)
	if err != nil {
		return stream.Permanent(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return errCrashed
	}
	d.hist.put(in)
	d.hist.sawThrough(in.Region, dataThrough(m.Header))
	if d.cfg.Mode == ModeData {
		return d.advance(ctx, in.Region)
	}
	return nil
}

// dataThrough reads schemas.HeaderDataThrough (0 when absent or unreadable).
func dataThrough(h stream.Header) schemas.Date {
	d, err := schemas.ParseDate(h.Get(schemas.HeaderDataThrough))
	if err != nil {
		return 0
	}
	return d
}

func decodeIndicator(b []byte) (schemas.Indicator, error) {
	var in schemas.Indicator
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("indicator: %w", err)
	}
	if in.Region == "" || in.Date.IsZero() {
		return in, fmt.Errorf("indicator: region and date are required (got region %q, date %s)", in.Region, in.Date)
	}
	return in, nil
}
