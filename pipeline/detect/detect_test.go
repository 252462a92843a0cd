package detect

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/science/signals"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

var d0 = schemas.MustDate("2024-03-04") // a Monday

func fp(v float64) *float64 { return &v }

// rec is an indicator record with cases, positive tests and occupied beds;
// a negative count is a missing one (its feed's rate nil).
func rec(region string, n int, version uint64, cases, pos, beds int) schemas.Indicator {
	in := schemas.Indicator{Region: region, Date: d0.AddDays(n), Version: version, Cases: cases, TestsPositive: pos, BedsOccupied: beds,
		ComputedAt: time.Unix(int64(version), 0).UTC()}
	if cases >= 0 {
		in.Cases7dPer100k = fp(1)
	}
	if pos >= 0 {
		in.Tests7dPer100k = fp(1)
	}
	if beds >= 0 {
		in.BedOccupancyPct = fp(50)
	}
	return in
}

func find(sigs []schemas.Signal, stream, method string) *schemas.Signal {
	for i := range sigs {
		if sigs[i].Stream == stream && sigs[i].Method == method {
			return &sigs[i]
		}
	}
	return nil
}

// TestDailyVerdicts: the stage hands the detectors exactly the days before
// the evaluated one (the bound is the detector's own on that window), and
// says why where there is no verdict.
func TestDailyVerdicts(t *testing.T) {
	base := []int{20, 22, 19, 25, 21, 23, 20, 24, 22, 21, 23}
	tests := []struct {
		name      string
		today     int // cases on day 11
		mutate    func(st *state)
		wantAlarm bool
		wantBound bool
		wantNote  string
		observed  bool
	}{
		{name: "usual day", today: 23, wantBound: true, observed: true},
		{name: "surge", today: 60, wantAlarm: true, wantBound: true, observed: true},
		{name: "missing today", today: -1, wantNote: "count missing"},
		{name: "missing baseline day", today: 60, observed: true, wantNote: "1 of the 9 days before it are missing",
			mutate: func(st *state) { r := rec("KZ-75", 4, 99, -1, 1, 1); st.put(&r) }},
		{name: "too little history", today: 60, observed: true, wantNote: "needs 9 days of history",
			mutate: func(st *state) {
				for i := range 3 {
					delete(st.regions["KZ-75"].days, d0.AddDays(i))
				}
				st.regions["KZ-75"].first = d0.AddDays(3)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newState(DefaultConfig())
			for i, c := range base {
				r := rec("KZ-75", i, uint64(i+1), c, 1, 1)
				st.put(&r)
			}
			r := rec("KZ-75", 11, 50, tc.today, 1, 1)
			st.put(&r)
			if tc.mutate != nil {
				tc.mutate(st)
			}
			sigs := st.daily("KZ-75", d0.AddDays(11))
			if len(sigs) != 6 {
				t.Fatalf("%d signals, want 3 series × 2 methods", len(sigs))
			}
			g := find(sigs, schemas.SignalCases, schemas.MethodEARSC2)
			if g.Alarm != tc.wantAlarm || (g.UpperBound != nil) != tc.wantBound || (g.Observed != nil) != tc.observed {
				t.Fatalf("%+v", g)
			}
			if tc.wantNote != "" && !contains(g.Note, tc.wantNote) {
				t.Errorf("note %q, want it to say %q", g.Note, tc.wantNote)
			}
			if tc.wantBound {
				// The same window through the detector directly.
				counts := make([]float64, 12)
				for i := range base {
					counts[i] = float64(base[i])
				}
				counts[11] = float64(tc.today)
				cfg := signals.DefaultEARS(signals.C2)
				cfg.MinSigma, cfg.From = 1, 12
				res, err := signals.EARS(counts, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if *g.UpperBound != res[0].UpperBound || g.Alarm != res[0].Alarm {
					t.Errorf("bound %v alarm %v, detector on the window: %v %v", *g.UpperBound, g.Alarm, res[0].UpperBound, res[0].Alarm)
				}
				if g.Version != 50 || !g.ComputedAt.Equal(time.Unix(50, 0)) {
					t.Errorf("version %d computed_at %s: want the newest record's", g.Version, g.ComputedAt)
				}
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}

// TestFewCasesNeverAlarm: above the bound but below detect.min_alarm_count
// is not evidence.
func TestFewCasesNeverAlarm(t *testing.T) {
	st := newState(DefaultConfig())
	for i := range 11 {
		r := rec("KZ-75", i, uint64(i+1), 0, 0, 0)
		st.put(&r)
	}
	r := rec("KZ-75", 11, 12, 4, 0, 0)
	st.put(&r)
	g := find(st.daily("KZ-75", d0.AddDays(11)), schemas.SignalCases, schemas.MethodEARSC2)
	if g.UpperBound == nil || *g.Observed <= *g.UpperBound {
		t.Fatalf("4 cases after 11 empty days should be above the bound: %+v", g)
	}
	if g.Alarm || !contains(g.Note, "fewer than detect.min_alarm_count") {
		t.Errorf("alarm %v note %q", g.Alarm, g.Note)
	}
}

// TestVersionsAndAffectedDays: an older version never replaces a newer one,
// and a change reaches every day whose baseline holds it.
func TestVersionsAndAffectedDays(t *testing.T) {
	st := newState(DefaultConfig())
	for i := range 30 {
		r := rec("KZ-75", i, uint64(100+i), 10, 1, 1)
		st.put(&r)
	}
	old := rec("KZ-75", 5, 3, 99, 1, 1)
	if st.put(&old) {
		t.Error("an older version changed the day")
	}
	same := rec("KZ-75", 5, 105, 10, 1, 1)
	if st.put(&same) {
		t.Error("the same record counted as a change")
	}
	got := st.affected("KZ-75", d0.AddDays(5))
	if len(got) != 12 || got[0] != d0.AddDays(5) || got[11] != d0.AddDays(16) {
		t.Errorf("affected %v", got)
	}
	if got := st.affected("KZ-75", d0.AddDays(25)); len(got) != 5 {
		t.Errorf("affected near the end: %v", got)
	}
}

// TestWeekly: Farrington and Noufaily run on ISO-week totals (Monday to
// Sunday) once the history is long enough, and say what they need before.
func TestWeekly(t *testing.T) {
	cfg := DefaultConfig()
	st := newState(cfg)
	weeks := 3*52 + 3 + 1
	for i := range weeks * 7 {
		c := 3 + (i/7)%4 // weekly totals of 21..42
		r := rec("KZ-75", i, uint64(i+1), c, 1, 1)
		st.put(&r)
	}
	sunday := d0.AddDays(weeks*7 - 1)
	if sundayOf(sunday) != sunday || sundayOf(d0) != d0.AddDays(6) || sundayOf(sunday) != sunday {
		t.Fatal("ISO week arithmetic")
	}
	sigs := st.weekly("KZ-75", sunday)
	g := find(sigs, schemas.SignalCases, schemas.MethodFarrington)
	if g == nil || g.Period != schemas.PeriodWeek || g.Observed == nil || *g.Observed != float64(7*(3+(weeks-1)%4)) {
		t.Fatalf("%+v", g)
	}
	if g.UpperBound == nil {
		t.Fatalf("no bound after %d weeks: %s", weeks, g.Note)
	}
	short := st.weekly("KZ-75", d0.AddDays(7*100-1))
	if g := find(short, schemas.SignalCases, schemas.MethodNoufaily); g.UpperBound != nil || !contains(g.Note, "needs 160 weeks of history") {
		t.Errorf("after 100 weeks: %+v", g)
	}
	if got := st.weekly("KZ-75", sunday.AddDays(7)); got != nil {
		t.Errorf("a week beyond the data: %v", got)
	}
}

// TestStage: through a real JetStream, indicator records become signals;
// a restart (a new detector on the same streams) republishes nothing new,
// and a late record changes the days it reaches.
func TestStage(t *testing.T) {
	ns := streamtest.New(t)
	ctx := context.Background()
	pub := ns.Bus.Publisher()
	send := func(ins ...schemas.Indicator) {
		t.Helper()
		for _, in := range ins {
			b, _ := json.Marshal(in)
			if r := pub.Publish(ctx, stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: in.MsgID(b), Data: b}); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	// Bad input is dead-lettered, the rest of the batch lands.
	if r := pub.Publish(ctx, stream.Msg{Subject: schemas.IndicatorSubject("KZ-75"), ID: "bad", Data: []byte("{")}); r.Err != nil {
		t.Fatal(r.Err)
	}
	for i := range 14 {
		c := 20 + i%3
		if i == 13 {
			c = 80
		}
		send(rec("KZ-75", i, uint64(i+1), c, 2, 3))
	}
	cfg := DefaultConfig()
	cfg.Methods = []string{schemas.MethodEARSC2, schemas.MethodEARSC3}
	runDetector := func() func() {
		d, err := New(cfg, Deps{Bus: ns.Bus})
		if err != nil {
			t.Fatal(err)
		}
		d.maxWait = 50 * time.Millisecond
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(cctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	wait := func(n int) []streamtest.StoredMsg {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			msgs := streamtest.Messages(t, ns.JS, schemas.StreamSignals)
			if len(msgs) >= n || time.Now().After(deadline) {
				return msgs
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop := runDetector()
	// 14 days × 3 series × 2 methods.
	msgs := wait(84)
	stop()
	if len(msgs) != 84 {
		t.Fatalf("%d signal messages, want 84", len(msgs))
	}
	alarm := latest(t, msgs)["KZ-75/"+d0.AddDays(13).String()+"/cases/ears-c2"]
	if !alarm.Alarm || alarm.Excess == nil || *alarm.Excess <= 1 {
		t.Errorf("80 cases after ~21 a day: %+v", alarm)
	}
	if dl := streamtest.Messages(t, ns.JS, schemas.StreamDeadLetter); len(dl) != 1 {
		t.Errorf("%d dead letters, want the malformed record", len(dl))
	}

	// Restart: nothing new to say.
	stop = runDetector()
	time.Sleep(500 * time.Millisecond)
	send(rec("KZ-75", 13, 14, 80, 2, 3)) // a duplicate record: no change
	time.Sleep(500 * time.Millisecond)
	if n := len(streamtest.Messages(t, ns.JS, schemas.StreamSignals)); n != 84 {
		t.Errorf("after a restart and a repeated record: %d messages, want 84", n)
	}
	// A late correction of day 13: its signals change (version 20).
	send(rec("KZ-75", 13, 20, 21, 2, 3))
	msgs = wait(85)
	stop()
	got := latest(t, msgs)["KZ-75/"+d0.AddDays(13).String()+"/cases/ears-c2"]
	if got.Alarm || got.Version != 20 {
		t.Errorf("after the correction: %+v", got)
	}
}

// latest keeps the highest version of each signal, the later of equal ones.
func latest(t *testing.T, msgs []streamtest.StoredMsg) map[string]schemas.Signal {
	t.Helper()
	out := map[string]schemas.Signal{}
	for _, m := range msgs {
		var g schemas.Signal
		if err := json.Unmarshal(m.Data, &g); err != nil {
			t.Fatal(err)
		}
		if old, ok := out[g.Key()]; !ok || old.Version <= g.Version {
			out[g.Key()] = g
		}
	}
	return out
}
