package thresholds

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// LevelConfig configures the restriction levels every region moves through.
type LevelConfig struct {
	// Names are the level names from the mildest (level 1) to the strictest.
	Names []string `json:"names" yaml:"names" mapstructure:"names"`
	// MinDaysBeforeEase is how many whole days a region must have spent at
	// its current level before an ease takes effect (hysteresis: one good
	// day must not undo a strengthening). Strengthening is always immediate.
	MinDaysBeforeEase int `json:"min_days_before_ease" yaml:"min_days_before_ease" mapstructure:"min_days_before_ease"`
	// MinDaysBetweenStrengthen is the pause between two strengthening
	// steps: a strengthen is held until this many whole days have passed
	// since the region's last strengthening, so a surge that meets the rule
	// every day moves one level per pause instead of to the top in a few
	// days. The first strengthening (and one after an ease) is immediate.
	MinDaysBetweenStrengthen int `json:"min_days_between_strengthen" yaml:"min_days_between_strengthen" mapstructure:"min_days_between_strengthen"`
	// Initial is the level a region without state starts at (1-based).
	Initial int `json:"initial" yaml:"initial" mapstructure:"initial"`
}

// DefaultLevelConfig is four levels, starting at the mildest, easing at most
// once every 14 days and strengthening at most once every 7. Both pauses are
// project choices, not from the plan: 14 days is the upper end of COVID-19's
// incubation period, so the effect of one change is visible in the data
// before the next easing; 7 days is about how long a change of restrictions
// takes to show in reported cases (incubation ~5 days plus reporting), so a
// second strengthening waits until the first could have worked.
func DefaultLevelConfig() LevelConfig {
	return LevelConfig{
		Names:                    []string{"1 - baseline", "2 - moderate", "3 - high", "4 - maximum"},
		MinDaysBeforeEase:        14,
		MinDaysBetweenStrengthen: 7,
		Initial:                  1,
	}
}

// Validate reports every problem in the configuration, naming the field.
func (c LevelConfig) Validate() error {
	var errs []error
	if len(c.Names) < 2 {
		errs = append(errs, fmt.Errorf("levels.names: give at least two level names, mildest first (got %d)", len(c.Names)))
	}
	for i, n := range c.Names {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, fmt.Errorf("levels.names[%d] is empty", i))
		} else if slices.Index(c.Names, n) != i {
			errs = append(errs, fmt.Errorf("levels.names[%d] %q repeats an earlier name", i, n))
		}
	}
	if c.MinDaysBeforeEase < 0 {
		errs = append(errs, fmt.Errorf("levels.min_days_before_ease must be 0 or more, not %d", c.MinDaysBeforeEase))
	}
	if c.MinDaysBetweenStrengthen < 0 {
		errs = append(errs, fmt.Errorf("levels.min_days_between_strengthen must be 0 or more, not %d", c.MinDaysBetweenStrengthen))
	}
	if c.Initial < 1 || c.Initial > len(c.Names) {
		errs = append(errs, fmt.Errorf("levels.initial must be between 1 and %d, not %d", len(c.Names), c.Initial))
	}
	return errors.Join(errs...)
}

// Name returns the name of a 1-based level, or "level N" if it has none.
func (c LevelConfig) Name(level int) string {
	if level >= 1 && level <= len(c.Names) {
		return c.Names[level-1]
	}
	return fmt.Sprintf("level %d", level)
}

// LevelState is a region's restriction level and when it entered it. The
// processor stores it as JSON (in JetStream KV) and passes it back to Next.
type LevelState struct {
	// Level is 1-based: 1 is the mildest. Zero means "no state yet".
	Level int `json:"level"`
	// Since is when the region entered Level.
	Since time.Time `json:"since"`
	// LastStrengthen is when the region was last strengthened (zero: never,
	// or not since an ease); the strengthening pause counts from it.
	LastStrengthen time.Time `json:"last_strengthen,omitzero"`
}

// NewLevelState is the state of a region that starts now at cfg.Initial.
func NewLevelState(cfg LevelConfig, now time.Time) LevelState {
	return LevelState{Level: min(max(cfg.Initial, 1), max(len(cfg.Names), 1)), Since: now}
}

// Transition describes what Next did: the level before and after and why.
type Transition struct {
	// Action is the decision that was applied.
	Action Action `json:"action"`
	// From and To are the 1-based levels before and after, with their names.
	From     int    `json:"from"`
	To       int    `json:"to"`
	FromName string `json:"from_name"`
	ToName   string `json:"to_name"`
	// Changed is true when the level moved.
	Changed bool `json:"changed"`
	// Held is true when an ease was refused because the region has not been
	// at its level for MinDaysBeforeEase days, or a strengthen because its
	// last strengthening is fewer than MinDaysBetweenStrengthen days ago.
	Held bool `json:"held"`
	// DaysAtLevel is the whole days spent at From before now.
	DaysAtLevel int `json:"days_at_level"`
	// Reason says what happened in words, e.g. "ease held: 3 of 7 days at
	// level 3 - high".
	Reason string `json:"reason"`
}

// Next applies one decision to a region's level state at time now.
//
// Strengthen moves one level up, unless the region's last strengthening was
// fewer than cfg.MinDaysBetweenStrengthen whole days ago (then it is held:
// the pause); ease moves one level down if the region has been at its level
// for at least cfg.MinDaysBeforeEase whole days, otherwise it is held; keep
// changes nothing. An ease clears the strengthening pause: a region eased too
// early is strengthened again at once. The level never leaves
// 1..len(cfg.Names). A zero state starts at cfg.Initial entered at now; a
// state whose level is outside the configured range (the configuration
// shrank) is clamped into it. Next is pure: the same arguments give the same
// result.
func Next(state LevelState, action Action, now time.Time, cfg LevelConfig) (LevelState, Transition) {
	top := max(len(cfg.Names), 1)
	var note string
	if state.Level == 0 {
		state = NewLevelState(cfg, now)
		note = fmt.Sprintf(" (no previous state: started at %s)", cfg.Name(state.Level))
	} else if state.Level < 1 || state.Level > top {
		clamped := min(max(state.Level, 1), top)
		note = fmt.Sprintf(" (stored level %d is outside 1..%d: clamped to %d)", state.Level, top, clamped)
		state.Level = clamped
	}
	days := 0
	if d := now.Sub(state.Since); d > 0 {
		days = int(d / (24 * time.Hour))
	}
	t := Transition{Action: action, From: state.Level, To: state.Level, DaysAtLevel: days}
	next := state
	switch action {
	case Strengthen:
		if state.Level == top {
			t.Reason = fmt.Sprintf("strengthen: already at the strictest level %s", cfg.Name(top))
			break
		}
		if !state.LastStrengthen.IsZero() {
			since := 0
			if d := now.Sub(state.LastStrengthen); d > 0 {
				since = int(d / (24 * time.Hour))
			}
			if since < cfg.MinDaysBetweenStrengthen {
				t.Held = true
				t.Reason = fmt.Sprintf("strengthen paused: %d of %d days since the last strengthening (to %s on %s)",
					since, cfg.MinDaysBetweenStrengthen, cfg.Name(state.Level), state.LastStrengthen.Format("2006-01-02"))
				break
			}
		}
		next = LevelState{Level: state.Level + 1, Since: now, LastStrengthen: now}
		t.Reason = fmt.Sprintf("strengthen: %s → %s", cfg.Name(state.Level), cfg.Name(next.Level))
	case Ease:
		switch {
		case state.Level == 1:
			t.Reason = fmt.Sprintf("ease: already at the mildest level %s", cfg.Name(1))
		case days < cfg.MinDaysBeforeEase:
			t.Held = true
			t.Reason = fmt.Sprintf("ease held: %d of %d days at level %s", days, cfg.MinDaysBeforeEase, cfg.Name(state.Level))
		default:
			next = LevelState{Level: state.Level - 1, Since: now} // LastStrengthen cleared
			t.Reason = fmt.Sprintf("ease: %s → %s after %d days at level", cfg.Name(state.Level), cfg.Name(next.Level), days)
		}
	case Keep:
		t.Reason = fmt.Sprintf("keep: stays at %s", cfg.Name(state.Level))
	default:
		t.Reason = fmt.Sprintf("unknown action %q: stays at %s", action, cfg.Name(state.Level))
	}
	t.To = next.Level
	t.FromName, t.ToName = cfg.Name(t.From), cfg.Name(t.To)
	t.Changed = t.From != t.To
	t.Reason += note
	return next, t
}
