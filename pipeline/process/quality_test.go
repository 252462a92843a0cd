package process

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// storedAt is after every test day: events are never dated after they were
// stored.
var storedAt = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

// feeder applies events to an engine in order, as the stream would hold
// them, and publishes after each call.
type feeder struct {
	t   *testing.T
	g   *engine
	seq uint64
	// published is every record published, latest last.
	published map[string][]schemas.Indicator
	// stored is every event applied, by source and event_id, and seqs their stream
	// sequences: the events stream, for corrections to read back.
	stored map[string]schemas.Event
	seqs   map[string]uint64
}

func newFeeder(t *testing.T) *feeder {
	f := &feeder{t: t, g: newTestEngine(t), published: map[string][]schemas.Indicator{}, stored: map[string]schemas.Event{}, seqs: map[string]uint64{}}
	f.g.lookup = func(source, id string) (*schemas.Event, uint64, error) {
		e, ok := f.stored[source+"\x00"+id]
		if !ok {
			return nil, 0, nil
		}
		return &e, f.seqs[source+"\x00"+id], nil
	}
	return f
}

func (f *feeder) apply(evs ...schemas.Event) []schemas.Indicator {
	f.t.Helper()
	for _, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			f.t.Fatal(err)
		}
		f.seq++
		f.stored[e.Source+"\x00"+e.EventID] = e
		f.seqs[e.Source+"\x00"+e.EventID] = f.seq
		if _, _, err := f.g.applyMsg(data, f.seq, storedAt.Add(time.Duration(f.seq)*time.Millisecond)); err != nil {
			f.t.Fatalf("%s: %v", e.EventID, err)
		}
	}
	out := f.g.pending(nil)
	f.g.markPublished()
	for _, in := range out {
		f.published[in.Key()] = append(f.published[in.Key()], in)
	}
	return out
}

// latest is the newest published record of region on day n.
func (f *feeder) latest(region string, n int) schemas.Indicator {
	f.t.Helper()
	recs := f.published[region+"/"+day(n).String()]
	if len(recs) == 0 {
		f.t.Fatalf("no record for %s day %d", region, n)
	}
	return recs[len(recs)-1]
}

func reasonOf(in schemas.Indicator, flag string) string {
	for i, fl := range in.Flags {
		if fl == flag && i < len(in.FlagReasons) {
			return in.FlagReasons[i]
		}
	}
	return ""
}

// steadyCases gives region n cases a day on days from..to, onset 1 day
// before report (a normal delay), with one negative PCR test a day.
func steadyCases(region string, from, to, n int) []schemas.Event {
	var evs []schemas.Event
	for d := from; d <= to; d++ {
		for i := range n {
			evs = append(evs, caseEv(fmt.Sprintf("%s-c%d-%d", region, d, i), region, d, onset(d-1)))
		}
		evs = append(evs, testEv(fmt.Sprintf("%s-t%d", region, d), region, d, schemas.ResultNegative))
	}
	return evs
}

// TestProvisionalDays: days younger than the 95th percentile of the test
// turnaround are provisional; they are published again, complete, once
// newer days arrive.
func TestProvisionalDays(t *testing.T) {
	f := newFeeder(t)
	const r = "KZ-75"
	var evs []schemas.Event
	// 40 tests with a 3-day turnaround, 60 with 1 day: the 95th percentile
	// is 3 days, so the newest 3 days are provisional.
	for i := range 100 {
		e := testEv(fmt.Sprintf("t%d", i), r, i%20, schemas.ResultNegative)
		if i%5 < 2 {
			e.ResultDate = e.SampleDate.AddDays(3)
		}
		evs = append(evs, e)
	}
	f.apply(evs...)
	for n := 0; n < 20; n++ {
		if got, want := f.latest(r, n).Provisional, n >= 17; got != want {
			t.Errorf("day %d provisional = %v, want %v (newest day 19, horizon 3)", n, got, want)
		}
	}
	// Two newer days: days 17 and 18 become complete and are republished.
	f.apply(testEv("t-20", r, 20, schemas.ResultNegative), testEv("t-21", r, 21, schemas.ResultNegative))
	for n := 17; n <= 18; n++ {
		recs := f.published[r+"/"+day(n).String()]
		if len(recs) != 2 || !recs[0].Provisional || recs[1].Provisional {
			t.Errorf("day %d: %d records, want a provisional one then a complete one", n, len(recs))
		}
	}
	if !f.latest(r, 19).Provisional || !f.latest(r, 21).Provisional {
		t.Error("days 19 and 21 should still be provisional")
	}

	// Completeness 0: nothing is ever provisional.
	g := newFeeder(t)
	g.g.cfg.Completeness = 0
	g.apply(evs...)
	if g.latest(r, 19).Provisional {
		t.Error("completeness 0 marked a day provisional")
	}
}

// TestProvisionalUsesPooledDelays: a region with too few delay
// observations of its own borrows every region's.
func TestProvisionalUsesPooledDelays(t *testing.T) {
	f := newFeeder(t)
	var evs []schemas.Event
	for i := range 60 {
		e := testEv(fmt.Sprintf("a%d", i), "KZ-75", i%10, schemas.ResultNegative)
		e.ResultDate = e.SampleDate.AddDays(4)
		evs = append(evs, e)
	}
	evs = append(evs, testEv("b1", "KZ-71", 9, schemas.ResultNegative)) // 1 day, alone
	f.apply(evs...)
	if f.g.states["KZ-71"].horizon != 4 {
		t.Errorf("KZ-71 horizon %d, want the pooled 4", f.g.states["KZ-71"].horizon)
	}
}

// TestOnsetDelayCountsOnlyForOnsetR: cases count on their report date by
// default, complete when they arrive; with r_date onset the onset-to-report
// delay makes recent days provisional too.
func TestOnsetDelayCountsOnlyForOnsetR(t *testing.T) {
	var evs []schemas.Event
	for i := range 50 {
		evs = append(evs, caseEv(fmt.Sprintf("c%d", i), "KZ-75", 10+i%5, onset(i%5)))
	}
	for _, tc := range []struct {
		rdate string
		want  int
	}{{RByReport, 0}, {RByOnset, 10}} {
		f := newFeeder(t)
		f.g.cfg.RDate = tc.rdate
		f.apply(evs...)
		if h := f.g.states["KZ-75"].horizon; h != tc.want {
			t.Errorf("r_date %s: horizon %d, want %d", tc.rdate, h, tc.want)
		}
	}
}

// TestBacklogDump: a day with many old cases is flagged, with every day
// whose 7-day window holds it; a surge of fresh cases is not.
func TestBacklogDump(t *testing.T) {
	const r = "KZ-75"
	tests := []struct {
		name    string
		late    int // onset this many days before the report of the big day
		extra   int
		flagged []int
	}{
		{"old cases at once", 12, 200, []int{20, 21, 22, 23, 24, 25, 26}},
		{"fresh surge", 1, 200, nil},
		{"a few old cases", 12, 15, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			evs := steadyCases(r, 0, 30, 20)
			for i := range tc.extra {
				evs = append(evs, caseEv(fmt.Sprintf("x%d", i), r, 20, onset(20-tc.late)))
			}
			f.apply(evs...)
			for n := 7; n <= 30; n++ {
				in := f.latest(r, n)
				got := slices.Contains(in.Flags, schemas.FlagBacklogDump)
				want := slices.Contains(tc.flagged, n)
				if got != want {
					t.Errorf("day %d: backlog_dump %v, want %v (flags %v)", n, got, want, in.Flags)
				}
				if got && !strings.Contains(reasonOf(in, schemas.FlagBacklogDump), day(20).String()+" reported 220 cases") {
					t.Errorf("day %d: reason %q does not name the dump", n, reasonOf(in, schemas.FlagBacklogDump))
				}
			}
		})
	}
}

// TestNegativeCorrection: a bed snapshot corrected to fewer occupied beds
// flags its day, whichever version arrives first; an upward correction or
// a later report of the day does not.
func TestNegativeCorrection(t *testing.T) {
	const r = "KZ-75"
	orig := bedEv("b1", r, "H1", schemas.BedInfectious, 5, 9, 100, 80)
	down := bedEv("b1c", r, "H1", schemas.BedInfectious, 5, 9, 100, 60)
	up := bedEv("b1u", r, "H1", schemas.BedInfectious, 5, 9, 100, 90)
	later := bedEv("b2", r, "H1", schemas.BedInfectious, 5, 15, 100, 50)
	tests := []struct {
		name string
		evs  []schemas.Event
		want bool
	}{
		{"corrected down", []schemas.Event{orig, down}, true},
		{"corrected down, original redelivered", []schemas.Event{orig, down, orig}, true},
		// The later in the stream is the correction: here 80 corrects 60 up.
		{"arriving in the other order", []schemas.Event{down, orig}, false},
		{"corrected up", []schemas.Event{orig, up}, false},
		{"a later report of the day", []schemas.Event{orig, later}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			for _, e := range tc.evs {
				f.apply(e) // one batch each: the second changes a published day
			}
			in := f.latest(r, 5)
			if got := slices.Contains(in.Flags, schemas.FlagNegativeCorrection); got != tc.want {
				t.Fatalf("negative_correction %v, want %v (flags %v)", got, tc.want, in.Flags)
			}
			if tc.want && !strings.Contains(reasonOf(in, schemas.FlagNegativeCorrection), "from 80 to 60") {
				t.Errorf("reason %q", reasonOf(in, schemas.FlagNegativeCorrection))
			}
		})
	}
}

// TestMissingInput: a region that reported before and then sends no case
// or test report for a whole week, or whose every facility went stale, is
// flagged; quiet days within a week are not.
func TestMissingInput(t *testing.T) {
	const r = "KZ-75"
	f := newFeeder(t)
	evs := steadyCases(r, 0, 10, 3)
	evs = append(evs, bedEv("b0", r, "H1", schemas.BedInfectious, 0, 9, 100, 40))
	// Another region carries the newest day on to 25.
	evs = append(evs, steadyCases("KZ-71", 0, 25, 1)...)
	f.apply(evs...)
	for n := 0; n <= 25; n++ {
		in := f.latest(r, n)
		noReports := n >= 17 // days 11..17 hold nothing: the window ending 17 is empty
		noBeds := n >= 2     // the only snapshot (day 0, 09:00) is stale after 48 h
		reasons := strings.Join(in.FlagReasons, "; ")
		if got := strings.Contains(reasons, "no case or test report"); got != noReports {
			t.Errorf("day %d: no-report flag %v, want %v (%s)", n, got, noReports, reasons)
		}
		if got := strings.Contains(reasons, "no fresh infectious-bed snapshot"); got != noBeds {
			t.Errorf("day %d: no-beds flag %v, want %v (%s)", n, got, noBeds, reasons)
		}
		if got := slices.Contains(in.Flags, schemas.FlagMissingInput); got != (noReports || noBeds) {
			t.Errorf("day %d: flags %v", n, in.Flags)
		}
		if len(in.Flags) != len(in.FlagReasons) && !(noReports && noBeds) {
			t.Errorf("day %d: %d flags but %d reasons", n, len(in.Flags), len(in.FlagReasons))
		}
	}
}
