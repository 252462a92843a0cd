package thresholds

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2020, 8, 1, 6, 0, 0, 0, time.UTC)

func days(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }

// testLevels eases after 7 days at a level and strengthens without a pause
// (TestStrengthenPause tests the pause).
func testLevels() LevelConfig {
	c := DefaultLevelConfig()
	c.MinDaysBeforeEase = 7
	c.MinDaysBetweenStrengthen = 0
	return c
}

func TestNextOneStepAndBounds(t *testing.T) {
	cfg := testLevels()
	s := LevelState{Level: 1, Since: t0}
	for i, want := range []int{2, 3, 4, 4, 4} {
		var tr Transition
		s, tr = Next(s, Strengthen, days(i+1), cfg)
		if s.Level != want || tr.To != want {
			t.Fatalf("strengthen #%d: level %d, want %d (%s)", i+1, s.Level, want, tr.Reason)
		}
		if want == 4 && i >= 3 {
			if tr.Changed || s.Since != days(3) || tr.Reason != "strengthen: already at the strictest level 4 - maximum" {
				t.Errorf("at the top: changed %v since %v reason %q", tr.Changed, s.Since, tr.Reason)
			}
		}
	}
	// Ease one step per decision once the dwell has passed each time.
	s = LevelState{Level: 4, Since: t0}
	for i, want := range []int{3, 2, 1, 1} {
		var tr Transition
		s, tr = Next(s, Ease, days(7*(i+1)), cfg)
		if s.Level != want {
			t.Fatalf("ease #%d: level %d, want %d (%s)", i+1, s.Level, want, tr.Reason)
		}
	}
	if _, tr := Next(LevelState{Level: 1, Since: t0}, Ease, days(30), cfg); tr.Changed || tr.Reason != "ease: already at the mildest level 1 - baseline" {
		t.Errorf("ease at the bottom: %+v", tr)
	}
}

func TestNextDwell(t *testing.T) {
	cfg := testLevels()
	start := LevelState{Level: 3, Since: t0}
	tests := []struct {
		name   string
		now    time.Time
		level  int
		held   bool
		reason string
	}{
		{"3 days", days(3), 3, true, "ease held: 3 of 7 days at level 3 - high"},
		{"6 days 23 hours", days(7).Add(-time.Hour), 3, true, "ease held: 6 of 7 days at level 3 - high"},
		{"exactly 7 days", days(7), 2, false, "ease: 3 - high → 2 - moderate after 7 days at level"},
		{"30 days", days(30), 2, false, "ease: 3 - high → 2 - moderate after 30 days at level"},
		{"clock before since", t0.Add(-time.Hour), 3, true, "ease held: 0 of 7 days at level 3 - high"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, tr := Next(start, Ease, tt.now, cfg)
			if s.Level != tt.level || tr.Held != tt.held || tr.Reason != tt.reason {
				t.Errorf("got level %d held %v %q, want %d %v %q", s.Level, tr.Held, tr.Reason, tt.level, tt.held, tt.reason)
			}
			if tt.held && s.Since != t0 {
				t.Errorf("a held ease moved since to %v", s.Since)
			}
			if !tt.held && !s.Since.Equal(tt.now) {
				t.Errorf("since %v, want %v", s.Since, tt.now)
			}
		})
	}
	// Strengthening is immediate, and restarts the dwell.
	s, tr := Next(start, Strengthen, days(1), cfg)
	if s.Level != 4 || !s.Since.Equal(days(1)) || !tr.Changed {
		t.Errorf("strengthen: %+v %+v", s, tr)
	}
	if _, tr := Next(s, Ease, days(5), cfg); !tr.Held {
		t.Errorf("ease 4 days after a strengthen should be held: %+v", tr)
	}
	// Keep changes nothing, not even since.
	if s2, tr := Next(start, Keep, days(9), cfg); s2 != start || tr.Changed || tr.Reason != "keep: stays at 3 - high" {
		t.Errorf("keep: %+v %+v", s2, tr)
	}
	// No dwell configured: ease immediately.
	cfg.MinDaysBeforeEase = 0
	if s, _ := Next(start, Ease, t0, cfg); s.Level != 2 {
		t.Errorf("dwell 0: level %d, want 2", s.Level)
	}
}

func TestNextEdgeStates(t *testing.T) {
	cfg := testLevels()
	cfg.Initial = 2
	s, tr := Next(LevelState{}, Strengthen, t0, cfg)
	if s.Level != 3 || tr.From != 2 || !strings.Contains(tr.Reason, "no previous state: started at 2 - moderate") {
		t.Errorf("zero state: %+v %+v", s, tr)
	}
	s, tr = Next(LevelState{Level: 9, Since: t0}, Keep, days(1), cfg)
	if s.Level != 4 || !strings.Contains(tr.Reason, "stored level 9 is outside 1..4: clamped to 4") {
		t.Errorf("clamp: %+v %+v", s, tr)
	}
	s, tr = Next(LevelState{Level: 2, Since: t0}, Action("tighten"), days(1), cfg)
	if s.Level != 2 || tr.Changed {
		t.Errorf("unknown action moved the level: %+v", tr)
	}
	// Names and count come from configuration.
	two := LevelConfig{Names: []string{"open", "closed"}, Initial: 1}
	s, tr = Next(LevelState{Level: 1, Since: t0}, Strengthen, t0, two)
	if s.Level != 2 || tr.FromName != "open" || tr.ToName != "closed" {
		t.Errorf("two levels: %+v", tr)
	}
}

func TestLevelStateJSON(t *testing.T) {
	s := LevelState{Level: 3, Since: t0}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"level":3,"since":"2020-08-01T06:00:00Z"}` {
		t.Errorf("JSON %s", b)
	}
	var back LevelState
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func TestLevelConfigValidate(t *testing.T) {
	if err := DefaultLevelConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	err := LevelConfig{Names: []string{"a", "a", ""}, MinDaysBeforeEase: -1, MinDaysBetweenStrengthen: -2, Initial: 5}.Validate()
	want := []string{
		`levels.names[1] "a" repeats an earlier name`,
		`levels.names[2] is empty`,
		`levels.min_days_before_ease must be 0 or more, not -1`,
		`levels.min_days_between_strengthen must be 0 or more, not -2`,
		`levels.initial must be between 1 and 3, not 5`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got %v\nwant %s", err, strings.Join(want, "\n"))
	}
	if err := (LevelConfig{Names: []string{"only"}, Initial: 1}).Validate(); err == nil {
		t.Error("one level accepted")
	}
}

// TestStrengthenPause: a surge that meets the strengthen rule every day moves
// one level per pause (7 days by default), each held day saying why; an ease
// clears the pause.
func TestStrengthenPause(t *testing.T) {
	cfg := DefaultLevelConfig()
	s := NewLevelState(cfg, t0)
	var trail []int
	held := 0
	for d := range 30 {
		var tr Transition
		s, tr = Next(s, Strengthen, days(d), cfg)
		trail = append(trail, s.Level)
		if tr.Held {
			held++
			if !strings.HasPrefix(tr.Reason, "strengthen paused: ") || !strings.Contains(tr.Reason, " of 7 days since the last strengthening") {
				t.Errorf("day %d: held with reason %q", d, tr.Reason)
			}
		}
	}
	// Day 0 strengthens at once (1 → 2), then days 7 and 14 (→ 3, → 4).
	want := []int{2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}
	for i := range want {
		if trail[i] != want[i] {
			t.Fatalf("levels by day %v, want %v", trail, want)
		}
	}
	if held != 12 {
		t.Errorf("%d held strengthenings, want 12 (the 6 days of each of two pauses)", held)
	}
	// An ease clears the pause: strengthening again right after is immediate.
	cfg.MinDaysBeforeEase = 0
	s = LevelState{Level: 3, Since: t0, LastStrengthen: t0}
	s, _ = Next(s, Ease, days(1), cfg)
	if s, tr := Next(s, Strengthen, days(2), cfg); s.Level != 3 || tr.Held {
		t.Errorf("strengthen after an ease: %+v %+v", s, tr)
	}
}

// TestDecisionsDriveLevels runs a month of daily plan decisions through the
// state machine, as the processor does.
func TestDecisionsDriveLevels(t *testing.T) {
	rs := mustLoad(t, "kz-2020-plan")
	cfg := testLevels()
	s := NewLevelState(cfg, t0)
	var trail []int
	for d := range 30 {
		r, occ := 1.2, 80.0 // strengthen for 3 days
		switch {
		case d >= 3 && d < 10:
			r, occ = 1.1, 60 // keep
		case d >= 10:
			r, occ = 0.8, 30 // ease, once a week at most
		}
		s, _ = Next(s, Check(rs, r, occ).Action, days(d), cfg)
		trail = append(trail, s.Level)
	}
	// Days 0–2 strengthen one step each; days 3–9 keep; from day 10 every
	// day says ease, but each ease needs 7 days at the level: days 10, 17, 24.
	want := []int{2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1}
	for i := range want {
		if trail[i] != want[i] {
			t.Fatalf("levels by day %v, want %v", trail, want)
		}
	}
}
