package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// must exist (stream.EnsureStreams).
	Bus *stream.Bus
	// JS is the client's JetStream context, used when Bus is nil.
	//
	// Deprecated: set Bus.
	JS stream.JetStream
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
	if deps.Bus == nil && deps.JS != nil {
		deps.Bus = stream.NewBus(deps.JS)
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

// runSchedule decides every region once a day at decide.at local time. It
// looks at the clock every poll (and exactly at the deadline), so clock
// jumps and an injected clock work; a start after the deadline decides that
// day at once. A failed round is retried at the next look; rounds are
// idempotent (see Decider).
func (d *Decider) runSchedule(ctx context.Context) {
	var done schemas.Date // the local day whose round succeeded
	for {
		now := d.clock().In(d.loc)
		today := schemas.DateOf(now)
		due := time.Date(now.Year(), now.Month(), now.Day(), d.atHour, d.atMin, 0, 0, d.loc)
		wait := d.poll
		switch {
		case now.Before(due):
			wait = min(wait, due.Sub(now))
		case done != today:
			if err := d.round(ctx, today); err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("daily decisions incomplete; will retry", "day", today, "retry_in", d.poll, "err", err)
			} else {
				done = today
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round decides every region (the reference and any with indicators) on
// its latest complete day relative to today.
func (d *Decider) round(ctx context.Context, today schemas.Date) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.prepare(ctx); err != nil {
		return err
	}
	codes := d.regions.Codes()
	for _, c := range d.hist.codes() {
		if !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	var errs []error
	made := 0
	for _, r := range codes {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_, fresh, err := d.decideLatest(ctx, r, today)
		if err != nil {
			errs = append(errs, fmt.Errorf("decide %s: %w", r, err))
			continue
		}
		if fresh {
			made++
		}
	}
	d.log.Info("daily decisions", "day", today, "regions", len(codes), "new", made, "failed", len(errs))
	return errors.Join(errs...)
}

// today is the current calendar day in decide.timezone.
func (d *Decider) today() schemas.Date { return schemas.DateOf(d.clock().In(d.loc)) }

// levelTime is the time the dwell clock reads for a decision: in data mode
// the data day decided on, in schedule mode the local day the decision is
// made (ref). Both count whole calendar days, so a 09:00 round 14 days after
// a strengthening sees exactly 14 days at the level.
func (d *Decider) levelTime(day, ref schemas.Date) time.Time {
	if d.cfg.Mode == ModeData && day != 0 {
		return day.Time()
	}
	return ref.Time()
}

// decideLatest decides region on its newest complete day relative to ref
// (today in schedule mode, the newest data day in data mode): the newest
// day ≤ ref-complete_after_days with a record that is not provisional. If
// that day is more than max_staleness days before ref, or there is none, it
// is a keep with the reason ("stale input"), once per ref day. fresh is false
// when the day (or that day's stale keep) was decided already.
func (d *Decider) decideLatest(ctx context.Context, region string, ref schemas.Date) (schemas.Decision, bool, error) {
	// The level a nowcast day is checked at is the one last committed
	// (another replica's newer one only changes whether this day waits).
	level := d.levelsFor(region).Initial
	if rl, ok := d.levels[region]; ok {
		level = currentLevel(rl.rec.LevelState, d.levelsFor(region))
	}
	c, ok := d.hist.latestComplete(region, ref.AddDays(-d.cfg.CompleteAfterDays), func(in *schemas.Indicator) bool {
		return !in.Provisional || d.cfg.UseProvisional || d.nowcastClear(in, level)
	})
	if ok && int(ref-c) <= d.cfg.MaxStaleness {
		return d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
			if c <= cur.LastDay {
				return PendingDecision{}, false
			}
			return d.dayPending(region, c, cur, d.levelTime(c, ref), false), true
		})
	}
	id := d.decisionID(region, ref) + ":stale"
	reason := d.staleReason(region, ref, c, ok)
	return d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
		if cur.LastDecisionID == id {
			return PendingDecision{}, false
		}
		return d.stalePending(region, ref, id, reason, cur, d.levelTime(0, ref)), true
	})
}

func (d *Decider) staleReason(region string, ref, complete schemas.Date, ok bool) string {
	newest := d.hist.newest(region)
	switch {
	case newest == 0:
		return fmt.Sprintf("stale input: no indicators for %s in the last %d days; keep", region, d.cfg.WindowDays)
	case !ok:
		return fmt.Sprintf("stale input: no complete day for %s (newest data %s is provisional or not yet complete, decide.complete_after_days is %d); keep",
			region, newest, d.cfg.CompleteAfterDays)
	}
	s := fmt.Sprintf("stale input: newest data is %d days old (newest complete day %s, as of %s; decide.max_staleness is %d)",
		int(ref-complete), complete, ref, d.cfg.MaxStaleness)
	if newest > complete {
		s += fmt.Sprintf("; days up to %s are provisional or not yet complete", newest)
	}
	return s + "; keep"
}

// advance decides, in data mode, every day of region that is ready, in
// order: day D is ready when indicators for D+complete_after_days exist and
// D's record is not provisional. A provisional day is waited for until the
// data are max_staleness days newer, then decided as keep; a day without a
// record is decided as keep with missing_input. Each day is decided once
// (LevelRecord.LastDay). A region's first decided day is firstDay.
func (d *Decider) advance(ctx context.Context, region string) error {
	for ctx.Err() == nil {
		newest := d.hist.newest(region)
		_, fresh, err := d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
			var day schemas.Date
			if cur.LastDay != 0 {
				day = max(cur.LastDay.AddDays(1), d.hist.oldest(region))
			} else {
				day = d.firstDay(region)
			}
			if day == 0 {
				return PendingDecision{}, false
			}
			in, ok := d.hist.get(region, day)
			level := currentLevel(cur.LevelState, d.levelsFor(region))
			ready, waitedOut := d.cfg.ready(day, newest, ok && d.cfg.Incomplete(in.Provisional && !d.nowcastClear(&in, level), in.StaleFeeds))
			if !ready {
				return PendingDecision{}, false // wait for D+1, or for the complete version
			}
			return d.dayPending(region, day, cur, d.levelTime(day, newest), waitedOut), true
		})
		if err != nil || !fresh {
			return err
		}
	}
	return ctx.Err()
}

// firstDay is where data mode starts deciding a region that has never been
// decided: the first day whose record shows the region reporting what
// decisions read (cases or tests in its 7-day window, or infectious-bed
// snapshots), and no earlier than decide.window_days before the newest data
// day the processor had when it published the records
// (schemas.HeaderDataThrough). A region whose only events
// are old or hold nothing decisions read (a stray vaccination dated years
// ago) is recorded and counted by the processor but opens no run of daily
// "missing input" decisions. 0: nothing to decide yet.
func (d *Decider) firstDay(region string) schemas.Date {
	through := d.hist.through(region)
	from := max(d.hist.oldest(region), through.AddDays(-d.cfg.WindowDays+1))
	for day := from; day != 0 && day <= d.hist.newest(region); day = day.AddDays(1) {
		if in, ok := d.hist.get(region, day); ok && reports(in) {
			return day
		}
	}
	return 0
}

// reports says whether a record holds anything a rule set decides on:
// cases or tests in its window, or beds. (Not R: with no cases in its window
// Cori's posterior is the prior, mean 5, which is no report at all.)
func reports(in schemas.Indicator) bool {
	return in.Cases7d > 0 || in.Tests7d > 0 || in.BedsTotal > 0 || in.StaleFacilities > 0 ||
		in.Positivity7dPct != nil || in.BedOccupancyPct != nil
}

// decisionID is the idempotency key of a decision on a data day:
// "<region>:<date>:<rule set id>@<version>".
func (d *Decider) decisionID(region string, day schemas.Date) string {
	return fmt.Sprintf("%s:%s:%s@%s", region, day, d.rs.ID, d.version)
}

// baseDecision fills what every decision of region on day carries.
func (d *Decider) baseDecision(region string, day schemas.Date, id string) schemas.Decision {
	name := region
	if r, ok := d.regions.Get(region); ok {
		name = r.NameEN
	}
	method := string(d.rs.RMethod)
	if d.rs.RMethod == thresholds.RCori {
		method += "/" + string(d.rs.RStatistic)
	}
	return schemas.Decision{
		DecisionID: id, Region: region, RegionName: name, Date: day, DecidedAt: d.clock().UTC(),
		RuleSet: d.rs.ID, RuleSetVersion: d.version, RMethod: method, DataAsOf: d.hist.newest(region),
	}
}

// currentLevel is the level the rule set is told the region is at.
func currentLevel(s thresholds.LevelState, cfg thresholds.LevelConfig) int {
	if s.Level == 0 {
		return thresholds.NewLevelState(cfg, time.Time{}).Level
	}
	return min(max(s.Level, 1), len(cfg.Names))
}

// dayPending decides data day `day` of region from the stored records and
// the committed level: evaluate the rule set, then move the level with
// thresholds.Next at levelNow (or hold it at a manual level). waitedOut
// marks an incomplete day (provisional, or a feed that has not reported)
// decided as keep because its complete version never came.
func (d *Decider) dayPending(region string, day schemas.Date, cur LevelRecord, levelNow time.Time, waitedOut bool) PendingDecision {
	dec := d.baseDecision(region, day, d.decisionID(region, day))
	lc := d.levelsFor(region)
	level := currentLevel(cur.LevelState, lc)
	weekBefore := d.weekBefore(region, day)
	in, ok := d.hist.get(region, day)
	var action thresholds.Action
	switch {
	case !ok:
		dec.Flags = []string{schemas.FlagMissingInput}
		res := thresholds.Evaluate(d.rs, inputsOf(d.fields, nil, weekBefore, level), dec.Flags)
		action, dec.Clause = thresholds.Keep, res.Clause
		dec.Reason = fmt.Sprintf("no indicator for %s: %s", day, res.Reason)
	case waitedOut:
		dec.Flags = evalFlags(in.Flags)
		if in.Provisional {
			dec.Flags = append(dec.Flags, schemas.FlagProvisional)
		}
		action, dec.Clause = thresholds.Keep, ClauseProvisionalInput
		dec.Reason = fmt.Sprintf("keep: %s is still incomplete (%s) with data up to %s", day, incompleteWhy(in, d.cfg.UseProvisional, d.rs.RNowcast), dec.DataAsOf)
	default:
		dec.Flags = evalFlags(in.Flags)
		res := d.evaluate(&in, weekBefore, level, dec.Flags)
		action, dec.Clause, dec.Reason = res.Action, res.Clause, res.Reason
		if in.Provisional {
			dec.Flags = append(dec.Flags, schemas.FlagProvisional)
		}
	}
	nowcast := ok && !waitedOut && usesNowcast(d.rs, &in)
	if ok {
		dec.RMean, dec.RQ025, dec.RQ975, dec.BedOccupancyPct = in.RMean, in.RQ025, in.RQ975, in.BedOccupancyPct
		dec.RStatus, dec.RCases, dec.RProbAbove1, dec.Trend = in.RStatus, in.RCases, in.RProbAbove1, in.Trend
		if nowcast {
			// The decision records the R it compared.
			dec.Flags = append(dec.Flags, schemas.FlagNowcast)
			dec.RMethod += "/nowcast"
			dec.RMean, dec.RQ025, dec.RQ975, dec.RProbAbove1 = in.RNowcastMean, in.RNowcastQ025, in.RNowcastQ975, nil
			dec.Reason += fmt.Sprintf("; R from the nowcast as of %s (%s is still provisional): %.2f, 95 %% CrI %.2f–%.2f",
				in.NowcastAsOf, day, *in.RNowcastMean, *in.RNowcastQ025, *in.RNowcastQ975)
			if d.nowcastClear(&in, level) {
				dec.Reason += ", the same recommendation across it"
			}
		}
		if why := dataReasons(in); why != "" {
			dec.Reason += "; data: " + why
		}
	}
	return d.move(dec, cur, action, levelNow, lc, day)
}

// evaluate applies the rule set to a day. Uncertain metrics (R from few
// cases, positivity from few tests) are unknown to the rules; with
// decide.uncertain_r_may_ease an uncertain R may still ease, never
// strengthen: the rules are evaluated again with it, and only an ease is
// taken from that evaluation.
func (d *Decider) evaluate(in, weekBefore *schemas.Indicator, level int, flags []string) thresholds.Result {
	inputs := inputsOf(d.fields, in, weekBefore, level)
	if usesNowcast(d.rs, in) {
		nowcastR(inputs, in)
		return thresholds.Evaluate(d.rs, inputs, flags)
	}
	res := thresholds.Evaluate(d.rs, inputs, flags)
	if !d.cfg.UncertainRMayEase || in.RStatus != schemas.RStatusFewCases || res.Action == thresholds.Strengthen {
		return res
	}
	with := thresholds.Evaluate(d.rs, inputsOf(d.fields, in, weekBefore, level, in.Uncertain...), flags)
	if with.Action == thresholds.Ease {
		with.Reason += fmt.Sprintf(" (R from %d cases, uncertain; decide.uncertain_r_may_ease lets it ease)", in.RCases)
		return with
	}
	return res
}

// nowcastClear says whether a provisional day is decided now on its
// nowcast R (r.nowcast) rather than waited for: only when the rule set
// recommends the same at the lower end, the mean and the upper end of the
// nowcast R's 95 % credible interval, all else as the day reports it. The
// nowcast R of a recent day is wide; deciding on its mean alone would let
// the unreported cases' noise pick the action (on the simulator, about one
// nowcast decision in ten was contradicted by the final data). Waiting
// until the interval clears the thresholds decides early where the
// evidence is already plain — a surge well above them, a decline well
// below — and leaves the rest to the complete days.
func (d *Decider) nowcastClear(in *schemas.Indicator, level int) bool {
	if !usesNowcast(d.rs, in) {
		return false
	}
	flags := evalFlags(in.Flags)
	base := inputsOf(d.fields, in, d.weekBefore(in.Region, in.Date), level)
	nowcastR(base, in)
	var first thresholds.Action
	for i, r := range []float64{*in.RNowcastQ025, *in.RNowcastMean, *in.RNowcastQ975} {
		x := maps.Clone(base)
		x[thresholds.MetricRMean], x[thresholds.MetricRQ025], x[thresholds.MetricRQ975] = r, r, r
		if _, ok := x["r_median"]; ok {
			x["r_median"] = r
		}
		a := thresholds.Evaluate(d.rs, x, flags).Action
		if i > 0 && a != first {
			return false
		}
		first = a
	}
	return true
}

// weekBefore is region's record of 7 days before day (nil: none), for the
// week-before positivity.
func (d *Decider) weekBefore(region string, day schemas.Date) *schemas.Indicator {
	if wb, ok := d.hist.get(region, day.AddDays(-7)); ok {
		return &wb
	}
	return nil
}

// incompleteWhy says why an incomplete day was waited for.
func incompleteWhy(in schemas.Indicator, useProvisional, rnowcast bool) string {
	var why []string
	switch {
	case in.Provisional && !useProvisional && rnowcast && in.RNowcastMean == nil:
		why = append(why, "provisional, without a nowcast R")
	case in.Provisional && !useProvisional && rnowcast:
		why = append(why, "provisional, and its nowcast R rests on too few cases or its 95 % CrI spans a threshold")
	case in.Provisional && !useProvisional:
		why = append(why, "provisional, and decide.use_provisional is false")
	}
	for _, f := range in.StaleFeeds {
		why = append(why, f+" feed not reported")
	}
	return strings.Join(why, "; ")
}

// dataReasons are the record's flag reasons that qualify what the decision
// rests on (missing feeds, uncertain metrics, facilities), so every decision
// says what it was based on.
func dataReasons(in schemas.Indicator) string {
	var out []string
	for i, f := range in.Flags {
		switch f {
		case schemas.FlagStaleFeed, schemas.FlagFewCases, schemas.FlagFewTests, schemas.FlagPresumedClosed,
			schemas.FlagUnknownFacility, schemas.FlagOverCapacity, schemas.FlagMissingInput, schemas.FlagBacklogDump:
			if i < len(in.FlagReasons) {
				out = append(out, in.FlagReasons[i])
			}
		}
	}
	return strings.Join(out, "; ")
}

// stalePending is the keep recorded when a region has no recent complete
// day. It decides no data day (LastDay is unchanged).
func (d *Decider) stalePending(region string, ref schemas.Date, id, reason string, cur LevelRecord, levelNow time.Time) PendingDecision {
	dec := d.baseDecision(region, ref, id)
	dec.Flags = []string{schemas.FlagMissingInput}
	dec.Clause, dec.Reason = ClauseStaleInput, reason
	return d.move(dec, cur, thresholds.Keep, levelNow, d.levelsFor(region), 0)
}

// move applies a decision's action to the region's level at levelNow: one
// step by the rule set (thresholds.Next), or — while a manual level is in
// force — no move, with where the rule alone would have gone beside it
// (RuleLevelTo). A manual level past its last day expires here and the rule
// set decides again from the level it left. day is the data day decided
// (0: none).
func (d *Decider) move(dec schemas.Decision, cur LevelRecord, action thresholds.Action, levelNow time.Time, lc thresholds.LevelConfig, day schemas.Date) PendingDecision {
	manual := cur.Manual
	if manual != nil && manual.Until != 0 && schemas.DateOf(levelNow) > manual.Until {
		dec.Reason += fmt.Sprintf("; the manual level %s set by %s expired after %s: the rule set decides again", lc.Name(manual.Level), manual.By, manual.Until)
		manual = nil
	}
	state, tr := thresholds.Next(cur.LevelState, action, levelNow, lc)
	dec.RuleLevelTo = tr.To
	if manual == nil {
		dec.Origin = schemas.OriginRule
		d.fillTransition(&dec, action, tr)
		return PendingDecision{Decision: dec, State: state, Day: day}
	}
	dec.Origin, dec.SetBy, dec.ManualUntil = schemas.OriginManual, manual.By, manual.Until
	held := thresholds.Transition{From: cur.Level, To: cur.Level, FromName: lc.Name(cur.Level), ToName: lc.Name(cur.Level)}
	held.Reason = fmt.Sprintf("held at the manual level %s (set by %s on %s: %s; %s); the rule alone: %s",
		lc.Name(manual.Level), manual.By, manual.At.Format("2006-01-02"), manual.Reason, manual.until(), tr.Reason)
	d.fillTransition(&dec, action, held)
	return PendingDecision{Decision: dec, State: cur.LevelState, Day: day, Manual: manual}
}

// levelsFor is the level configuration of a region: decide.levels with the
// region's own starting level (decide.initial_levels).
func (d *Decider) levelsFor(region string) thresholds.LevelConfig {
	lc := d.cfg.Levels
	if l, ok := d.cfg.InitialLevels[region]; ok {
		lc.Initial = l
	}
	return lc
}

func (d *Decider) fillTransition(dec *schemas.Decision, action thresholds.Action, tr thresholds.Transition) {
	dec.Action = string(action)
	dec.LevelFrom, dec.LevelTo = tr.From, tr.To
	dec.LevelFromName, dec.LevelToName = tr.FromName, tr.ToName
	dec.Reason += "; level: " + tr.Reason
}
