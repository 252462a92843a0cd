package decide

import (
	"errors"
	"fmt"
	"strings"
	"time"

	// The decider resolves decide.timezone (Asia/Almaty by default) itself;
	// embedding the zone database keeps that working in minimal containers
	// without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// Trigger modes (Config.Mode).
const (
	// ModeSchedule decides every region once a day at Config.At in
	// Config.Timezone, on its latest complete day. The dwell clock counts
	// local calendar days.
	//
	// The latest complete day is the newest day at least Config.CompleteAfterDays
	// before today whose record is not provisional. If that day is more than
	// Config.MaxStaleness days old, or there is none, the decision is keep with
	// the reason "stale input: newest data is N days old" — never a guess. A round
	// with no new complete day since the last decision records nothing new (that
	// day's decision stands); a stale keep is recorded once per day.
	ModeSchedule = "schedule"
	// ModeData decides a region's data day D as soon as indicators for day
	// D+Config.CompleteAfterDays exist: each data day once, in order. For
	// simulation and replay, where simulated days pass in seconds; the dwell
	// clock counts data days.
	//
	// A provisional day is waited for (its complete version) until the data are
	// MaxStaleness days newer, then decided as keep; a missing day is decided as
	// keep with the flag missing_input.
	ModeData = "data"
)

// R statistics a configuration may force (Config.RStatistic).
const (
	RStatisticMean   = string(thresholds.RMean)
	RStatisticBounds = string(thresholds.RBounds)
)

// Config configures the decider. Start from DefaultConfig; cmd/epiwatch maps
// it to the viper keys decide.*.
type Config struct {
	// RuleSet is the id of a shipped rule set or the path of a rule file
	// (thresholds.Open). Every decision records its id and version.
	RuleSet string `json:"rule_set" mapstructure:"rule_set"`
	// RStatistic, when set, overrides which R the rule set compares: "mean"
	// (the posterior mean) or "bounds" (the 95 % credible bounds; see
	// thresholds.RBounds). Empty keeps the rule set's own r.statistic. An
	// override is recorded in the rule-set version ("1+r.statistic=bounds"),
	// so decisions under it are told apart and get their own DecisionIDs.
	RStatistic string `json:"r_statistic" mapstructure:"r_statistic"`
	// RNowcast, when set, overrides the rule set's r.nowcast: "on" decides a
	// day that is still provisional on its nowcast R (process.nowcast) as
	// soon as that rests on enough cases and the rule set agrees across the
	// interval R's final mean is expected in (Decider.nowcastClear), "off"
	// waits for complete days.
	// Empty keeps the rule set's own. Recorded in the rule-set version
	// ("1+r.nowcast=on") like r_statistic.
	RNowcast string `json:"r_nowcast" mapstructure:"r_nowcast"`
	// Levels are the restriction levels: names (mildest first), the minimum
	// whole days at a level before an ease takes effect (hysteresis), and
	// the level a region without state starts at.
	Levels thresholds.LevelConfig `json:"levels" mapstructure:"levels"`
	// Mode is ModeSchedule or ModeData.
	Mode string `json:"mode" mapstructure:"mode"`
	// At is the local time of the daily decision in schedule mode, "HH:MM".
	At string `json:"at" mapstructure:"at"`
	// Timezone is the IANA zone At and "today" are read in.
	Timezone string `json:"timezone" mapstructure:"timezone"`
	// MaxStaleness is how many days old the newest complete day may be
	// (relative to today in schedule mode, to the newest data day in data
	// mode). Older input gives keep with the reason "stale input: newest data
	// is N days old". In data mode it is also how long a provisional day is
	// waited for before it is decided as keep.
	MaxStaleness int `json:"max_staleness" mapstructure:"max_staleness"`
	// CompleteAfterDays: day D counts as complete once D+CompleteAfterDays
	// has begun (schedule mode: today ≥ D+n; data mode: indicators for
	// D+n exist). 1 means "yesterday is the newest complete day".
	CompleteAfterDays int `json:"complete_after_days" mapstructure:"complete_after_days"`
	// UseProvisional lets decisions use days the processor marks
	// Provisional (still expected to grow). Off by default: decisions use
	// complete days only.
	UseProvisional bool `json:"use_provisional" mapstructure:"use_provisional"`
	// WindowDays is how many days of indicators are kept per region (the
	// newest and the WindowDays-1 before it). It must cover the comparisons
	// rule sets make (the week-before positivity needs 8 days).
	WindowDays int `json:"window_days" mapstructure:"window_days"`
	// InitialLevels are per-region starting levels (region code → level,
	// 1-based), for regions that enter epiwatch already under restrictions;
	// other regions start at levels.initial.
	InitialLevels map[string]int `json:"initial_levels" mapstructure:"initial_levels"`
	// UncertainRMayEase: with R marked uncertain (fewer than
	// process.r_min_cases cases in its window), decisions treat R as
	// unknown, so no rule that needs R strengthens or eases. With this set,
	// an uncertain R may still ease — when it is below the rule's threshold
	// and the beds allow it — but never strengthen. Off by default: a wrong
	// ease is the worst decision to send.
	UncertainRMayEase bool `json:"uncertain_r_may_ease" mapstructure:"uncertain_r_may_ease"`
	// ManualDays is how long a manual level holds when its request names no
	// end (`epiwatch level set … --until`): whole days including the day
	// it is set. 0 holds until released.
	ManualDays int `json:"manual_days" mapstructure:"manual_days"`
}

// DefaultConfig returns the defaults: the plan's rule set read literally with
// R's posterior mean, four levels easing at most every 14 days, decisions
// daily at 09:00 Asia/Almaty on complete days at most 3 days old.
func DefaultConfig() Config {
	return Config{
		RuleSet:           thresholds.DefaultID,
		Levels:            thresholds.DefaultLevelConfig(),
		Mode:              ModeSchedule,
		At:                "09:00",
		Timezone:          "Asia/Almaty",
		MaxStaleness:      3,
		CompleteAfterDays: 1,
		WindowDays:        60,
		ManualDays:        14,
	}
}

// Validate returns every problem of the configuration, each naming its key.
// It does not open the rule set; New does.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("decide.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.RuleSet) == "" {
		bad("rule_set", "is empty; give a shipped rule set id (see `epiwatch rules list`, default %s) or the path of a rule file", thresholds.DefaultID)
	}
	switch c.RStatistic {
	case "", RStatisticMean, RStatisticBounds:
	default:
		bad("r_statistic", "must be %q, %q or empty (the rule set's own), got %q", RStatisticMean, RStatisticBounds, c.RStatistic)
	}
	switch c.RNowcast {
	case "", "on", "off":
	default:
		bad("r_nowcast", "must be \"on\", \"off\" or empty (the rule set's own r.nowcast), got %q", c.RNowcast)
	}
	if err := c.Levels.Validate(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("decide.%w", e))
		}
	}
	switch c.Mode {
	case ModeSchedule, ModeData:
	default:
		bad("mode", "must be %q or %q, got %q", ModeSchedule, ModeData, c.Mode)
	}
	if _, _, err := parseAt(c.At); err != nil {
		bad("at", "%v", err)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		bad("timezone", "unknown time zone %q; use an IANA name such as Asia/Almaty or Asia/Bishkek", c.Timezone)
	}
	if c.MaxStaleness < 0 {
		bad("max_staleness", "must be 0 or more days, got %d", c.MaxStaleness)
	}
	if c.CompleteAfterDays < 0 || c.CompleteAfterDays > 30 {
		bad("complete_after_days", "must be 0..30 days, got %d", c.CompleteAfterDays)
	}
	for r, l := range c.InitialLevels {
		if l < 1 || l > len(c.Levels.Names) {
			bad("initial_levels."+r, "must be a level from 1 to %d, got %d", len(c.Levels.Names), l)
		}
	}
	if c.ManualDays < 0 {
		bad("manual_days", "must be 0 (until released) or more days, got %d", c.ManualDays)
	}
	if c.WindowDays < 8 {
		bad("window_days", "must be at least 8 (the week-before positivity reads the day 7 days back), got %d", c.WindowDays)
	} else if c.WindowDays <= c.MaxStaleness+c.CompleteAfterDays {
		bad("window_days", "must exceed max_staleness + complete_after_days (%d), got %d", c.MaxStaleness+c.CompleteAfterDays, c.WindowDays)
	}
	return errors.Join(errs...)
}

// Incomplete reports whether data mode waits for a day's record to be
// completed: it is provisional (and decisions do not use provisional days)
// or one of its feeds has not reported through it.
func (c Config) Incomplete(provisional bool, staleFeeds []string) bool {
	return provisional && !c.UseProvisional || len(staleFeeds) > 0
}

// parseAt reads "HH:MM".
func parseAt(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, 0, fmt.Errorf("want a local time HH:MM such as 09:00, got %q", s)
	}
	return t.Hour(), t.Minute(), nil
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// ready says whether data mode decides day now that the newest data are
// of day newest; provisional is whether day's record is incomplete: marked
// provisional (unless UseProvisional), or with a feed that has not reported
// through the day. Day D is ready once D+CompleteAfterDays has data and D's
// record is complete. An incomplete day is waited for until the data are
// more than MaxStaleness days newer, then decided as keep (waitedOut).
func (c Config) ready(day, newest schemas.Date, provisional bool) (ready, waitedOut bool) {
	if day.AddDays(c.CompleteAfterDays) > newest {
		return false, false
	}
	if provisional {
		if int(newest-day) <= c.MaxStaleness {
			return false, false
		}
		return true, true
	}
	return true, false
}

// LastDecidable is the newest day data mode has decided for a region once
// its data reach day newest and every record has arrived, days being
// decided in order: the day before the first day that is not ready (see
// the decider's advance). provisional tells whether a day's record is
// incomplete (Config.Incomplete). Callers that wait for the decider (the quick start, tests)
// use it instead of re-deriving the rule.
func (c Config) LastDecidable(newest schemas.Date, provisional func(schemas.Date) bool) schemas.Date {
	// Days older than this are ready whatever they hold.
	d := newest.AddDays(-c.MaxStaleness - c.CompleteAfterDays)
	for {
		if ready, _ := c.ready(d, newest, provisional(d)); !ready {
			return d.AddDays(-1)
		}
		d = d.AddDays(1)
	}
}
