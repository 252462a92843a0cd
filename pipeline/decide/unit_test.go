package decide

import (
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // the key the error names
	}{
		{"empty rule set", func(c *Config) { c.RuleSet = " " }, "decide.rule_set"},
		{"r statistic", func(c *Config) { c.RStatistic = "median" }, "decide.r_statistic"},
		{"one level", func(c *Config) { c.Levels.Names = []string{"only"} }, "decide.levels.names"},
		{"initial level", func(c *Config) { c.Levels.Initial = 9 }, "decide.levels.initial"},
		{"negative dwell", func(c *Config) { c.Levels.MinDaysBeforeEase = -1 }, "decide.levels.min_days_before_ease"},
		{"mode", func(c *Config) { c.Mode = "cron" }, "decide.mode"},
		{"at", func(c *Config) { c.At = "9am" }, "decide.at"},
		{"at out of range", func(c *Config) { c.At = "25:00" }, "decide.at"},
		{"timezone", func(c *Config) { c.Timezone = "Asia/Nowhere" }, "decide.timezone"},
		{"empty timezone", func(c *Config) { c.Timezone = "" }, "decide.timezone"},
		{"staleness", func(c *Config) { c.MaxStaleness = -1 }, "decide.max_staleness"},
		{"complete after", func(c *Config) { c.CompleteAfterDays = -1 }, "decide.complete_after_days"},
		{"window", func(c *Config) { c.WindowDays = 7 }, "decide.window_days"},
		{"window vs staleness", func(c *Config) { c.MaxStaleness = 59 }, "decide.window_days"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// fakeJS satisfies jetstream.JetStream for constructors that do no I/O.
type fakeJS struct{ jetstream.JetStream }

// noIO is a bus for constructors that do no I/O.
var noIO = stream.NewBus(fakeJS{})

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(DefaultConfig(), Deps{Regions: schemas.DefaultRegions()}); err == nil || !strings.Contains(err.Error(), "Deps.Bus") {
		t.Errorf("missing bus: %v", err)
	}
	if _, err := New(DefaultConfig(), Deps{Bus: noIO}); err == nil || !strings.Contains(err.Error(), "Deps.Regions") {
		t.Errorf("missing regions: %v", err)
	}
	bad := DefaultConfig()
	bad.Mode = "cron"
	if _, err := New(bad, Deps{Bus: noIO, Regions: schemas.DefaultRegions()}); err == nil || !strings.Contains(err.Error(), "decide.mode") {
		t.Errorf("invalid config: %v", err)
	}
}

func TestRuleSetResolution(t *testing.T) {
	tests := []struct {
		name, ruleSet, stat, wantErr, wantVersion string
	}{
		{"default", thresholds.DefaultID, "", "", "1"},
		{"same statistic is no override", thresholds.DefaultID, RStatisticMean, "", "1"},
		{"bounds override", thresholds.DefaultID, RStatisticBounds, "", "1+r.statistic=bounds"},
		{"bounds on ratio R", "ru-rpn-2020-stages", RStatisticBounds, "decide.r_statistic", ""},
		{"unknown rule set", "no-such-rules", "", "decide.rule_set", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RuleSet, cfg.RStatistic = tc.ruleSet, tc.stat
			d, err := New(cfg, Deps{Bus: noIO, Regions: schemas.DefaultRegions()})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rs, v := d.RuleSet()
			if v != tc.wantVersion {
				t.Errorf("version %q, want %q", v, tc.wantVersion)
			}
			if tc.stat != "" && string(rs.RStatistic) != tc.stat {
				t.Errorf("statistic %s, want %s", rs.RStatistic, tc.stat)
			}
			// The shipped rule set itself is not changed by an override.
			if shipped, _ := thresholds.Load(tc.ruleSet); shipped.RStatistic != thresholds.RMean {
				t.Errorf("shipped rule set changed: %s", shipped.RStatistic)
			}
		})
	}
}

func TestHistory(t *testing.T) {
	const r = "KZ-75"
	type op struct {
		in     schemas.Indicator
		stored bool
	}
	complete := func(in *schemas.Indicator) bool { return !in.Provisional }
	anyDay := func(*schemas.Indicator) bool { return true }
	tests := []struct {
		name       string
		ops        []op
		wantDays   map[int]uint64 // day → version stored
		wantNewest int
		complete   int // latestComplete up to day 100; -1: none
	}{
		{
			name:       "higher version wins, of equal versions the later; redelivery and older versions change nothing",
			ops:        []op{{ind(r, 0, 5, 1, 1), true}, {ind(r, 0, 5, 1, 1), false}, {ind(r, 0, 5, 2, 2), true}, {ind(r, 0, 4, 3, 3), false}, {ind(r, 0, 6, 4, 4), true}},
			wantDays:   map[int]uint64{0: 6},
			wantNewest: 0, complete: 0,
		},
		{
			name:       "window keeps 10 days back from the newest",
			ops:        []op{{ind(r, 0, 1, 1, 1), true}, {ind(r, 5, 2, 1, 1), true}, {ind(r, 10, 3, 1, 1), true}, {ind(r, 0, 9, 1, 1), false}, {ind(r, 1, 4, 1, 1), true}},
			wantDays:   map[int]uint64{1: 4, 5: 2, 10: 3},
			wantNewest: 10, complete: 10,
		},
		{
			name:       "provisional days are not complete",
			ops:        []op{{ind(r, 3, 1, 1, 1), true}, {provisional(ind(r, 4, 2, 1, 1)), true}, {provisional(ind(r, 5, 3, 1, 1)), true}},
			wantDays:   map[int]uint64{3: 1, 4: 2, 5: 3},
			wantNewest: 5, complete: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(10)
			for i, o := range tc.ops {
				if got := h.put(o.in); got != o.stored {
					t.Errorf("op %d: stored %v, want %v", i, got, o.stored)
				}
			}
			for n := -5; n <= 20; n++ {
				in, ok := h.get(r, day(n))
				want, wantOK := tc.wantDays[n]
				if ok != wantOK || (ok && in.Version != want) {
					t.Errorf("day %d: stored %v version %d, want %v version %d", n, ok, in.Version, wantOK, want)
				}
			}
			if h.newest(r) != day(tc.wantNewest) {
				t.Errorf("newest %s, want %s", h.newest(r), day(tc.wantNewest))
			}
			c, ok := h.latestComplete(r, day(100), complete)
			if ok != (tc.complete >= 0) || (ok && c != day(tc.complete)) {
				t.Errorf("latest complete %s %v, want day %d", c, ok, tc.complete)
			}
		})
	}
	h := newHistory(10)
	h.put(provisional(ind(r, 4, 1, 1, 1)))
	if c, ok := h.latestComplete(r, day(4), anyDay); !ok || c != day(4) {
		t.Errorf("with use_provisional: %s %v", c, ok)
	}
	if _, ok := h.latestComplete(r, day(3), anyDay); ok {
		t.Error("latestComplete ignored its upper bound")
	}
}

func TestInputs(t *testing.T) {
	fields := indicatorMetrics()
	in := ind("KZ-75", 10, 3, 1.2, 75)
	in.Cases7d = 70
	in.Positivity7dPct = fp(6)
	in.RRatio = nil
	prev := ind("KZ-75", 3, 1, 1, 1)
	prev.Positivity7dPct = fp(4.5)

	got := inputsOf(fields, &in, &prev, 3)
	want := map[string]float64{
		"r_mean": 1.2, "r_q025": 1.1, "r_q975": 1.3, "bed_occupancy_pct": 75, "cases_7d": 70,
		"positivity_7d_pct": 6, "positivity_prev_7d_pct": 4.5, "restriction_level": 3, "cases": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g-v > 1e-12 || v-g > 1e-12 {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, absent := range []string{"r_ratio", "icu_occupancy_pct", "version", "date", "provisional", "region"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s should be absent", absent)
		}
	}
	// Every metric the shipped rule sets read is supplied, except the two
	// the indicator record does not carry (see thresholds README).
	supplied := suppliedMetrics(fields)
	infos, err := thresholds.List()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, info := range infos {
		rs, err := thresholds.Load(info.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rs.Metrics() {
			if !slices.Contains(supplied, m) && !slices.Contains(missing, m) {
				missing = append(missing, m)
			}
		}
	}
	slices.Sort(missing)
	if want := []string{thresholds.MetricInpatientBedsCovidPct, thresholds.MetricNewAdmissions7dPer100k}; !slices.Equal(missing, want) {
		t.Errorf("metrics no indicator supplies: %v, want %v", missing, want)
	}

	if got := inputsOf(fields, nil, nil, 1); len(got) != 1 || got["restriction_level"] != 1 {
		t.Errorf("no indicator: %v", got)
	}
	if got := evalFlags([]string{"beds_stale", "stale_beds", "no_population"}); !slices.Equal(got, []string{"stale_beds", "no_population"}) {
		t.Errorf("flags %v", got)
	}
}

// TestLastDecidable: the day data mode has decided up to, from the newest
// data day and which recent days are provisional (max_staleness 3,
// complete_after_days 1 unless the case says otherwise).
func TestLastDecidable(t *testing.T) {
	newest := day(20)
	tests := []struct {
		name        string
		provisional []int // days (from d0) whose record is provisional
		stale       []int // days whose case feed has not reported
		edit        func(*Config)
		want        schemas.Date
	}{
		{name: "all complete: the day before the newest", want: day(19)},
		{name: "provisional days wait", provisional: []int{18, 19, 20}, want: day(17)},
		{name: "one provisional among complete ones stops the order", provisional: []int{18}, want: day(17)},
		{name: "a provisional day older than max_staleness is waited out", provisional: []int{16}, want: day(19)},
		{name: "max_staleness days old still waits", provisional: []int{17}, want: day(16)},
		{name: "use_provisional decides them", provisional: []int{18, 19}, edit: func(c *Config) { c.UseProvisional = true }, want: day(19)},
		{name: "a stale feed waits, even with use_provisional", stale: []int{18, 19}, edit: func(c *Config) { c.UseProvisional = true }, want: day(17)},
		{name: "complete_after_days 3", edit: func(c *Config) { c.CompleteAfterDays = 3 }, want: day(17)},
		{name: "complete_after_days 0 decides the newest", edit: func(c *Config) { c.CompleteAfterDays = 0 }, want: day(20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Mode = ModeData
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			prov := func(d schemas.Date) bool {
				var stale []string
				if slices.Contains(tc.stale, int(d-d0)) {
					stale = []string{"case"}
				}
				return cfg.Incomplete(slices.Contains(tc.provisional, int(d-d0)), stale)
			}
			if got := cfg.LastDecidable(newest, prov); got != tc.want {
				t.Errorf("LastDecidable = %s, want %s", got, tc.want)
			}
		})
	}
}
