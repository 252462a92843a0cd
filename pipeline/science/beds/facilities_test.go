package beds

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// day0 is day 0 of the tests below, which count days from it.
var day0 = schemas.MustDate("2021-03-01")

// daily returns fac's snapshot of kind taken at 09:00 Almaty time on day d
// (39 h old at the end of the next day, 63 h at the end of the one after).
func daily(fac, kind string, d schemas.Date, total, occ int) Snapshot {
	y, m, dd := d.Time().Date()
	return Snapshot{
		EventID: fmt.Sprintf("%s/%s/%s", fac, kind, d), FacilityID: fac, Kind: kind,
		Time: time.Date(y, m, dd, 9, 0, 0, 0, almaty), Seq: uint64(d), Total: total, Occupied: occ,
	}
}

// agedAt returns fac's snapshot of kind that is exactly age old at the end of
// day d in Almaty time.
func agedAt(fac, kind string, d schemas.Date, age time.Duration, total, occ int) Snapshot {
	y, m, dd := d.Time().Date()
	end := time.Date(y, m, dd, 0, 0, 0, 0, almaty).AddDate(0, 0, 1)
	return Snapshot{EventID: fac + "/" + kind, FacilityID: fac, Kind: kind, Time: end.Add(-age), Seq: 1, Total: total, Occupied: occ}
}

func status(fac, st string, eff schemas.Date, seq uint64) FacilityStatus {
	return FacilityStatus{FacilityID: fac, Status: st, Effective: eff, EventID: fmt.Sprintf("%s/%s/%s", fac, st, eff), Seq: seq}
}

func withCapacity(f FacilityStatus, c map[string]int) FacilityStatus { f.Capacity = c; return f }

func build(t testing.TB, snaps []Snapshot, statuses []FacilityStatus) *History {
	t.Helper()
	var h History
	for _, s := range snaps {
		if _, err := h.Add(s); err != nil {
			t.Fatalf("add %+v: %v", s, err)
		}
	}
	for _, f := range statuses {
		if _, err := h.SetFacility(f); err != nil {
			t.Fatalf("set facility %+v: %v", f, err)
		}
	}
	return &h
}

// view is what the tests compare of an Occupancy: counts, and every list with
// (facility, kind) units written "facility/kind". Empty lists are nil.
type view struct {
	Counts                        [3]Count // infectious, icu, provisional
	Stale, PresumedClosed         []string
	Closed, Unknown, OverCapacity []string
}

func viewOf(o Occupancy) view {
	units := func(l []Stale) []string {
		var out []string
		for _, s := range l {
			out = append(out, s.FacilityID+"/"+s.Kind)
		}
		return out
	}
	return view{
		Counts: [3]Count{o.Infectious, o.ICU, o.Provisional},
		Stale:  units(o.Stale), PresumedClosed: units(o.PresumedClosed),
		Closed: o.Closed, Unknown: o.Unknown, OverCapacity: o.OverCapacity,
	}
}

func TestNormalizeID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Almaty-IH-7", "almaty-ih-7"},
		{" almaty ih 7 ", "almaty-ih-7"},
		{"almaty_ih_7", "almaty-ih-7"},
		{"ALMATY--IH__7", "almaty-ih-7"},
		{"almaty \t_- ih\n7", "almaty-ih-7"},
		{"almaty-ih-7", "almaty-ih-7"}, // already normal: unchanged
		{"Бишкек ИБ 1", "бишкек-иб-1"}, // Cyrillic letters are lower-cased too
		{"osh\u00a0ih", "osh-ih"},      // a no-break space is white space
		{"a.b/7", "a.b/7"},             // other punctuation is part of the id
		{"_a_", "-a-"},                 // only white space is trimmed
		{"", ""},
		{" \t ", ""},
	}
	for _, tt := range tests {
		if got := NormalizeID(tt.in); got != tt.want {
			t.Errorf("NormalizeID(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := NormalizeID(tt.want); got != tt.want {
			t.Errorf("NormalizeID(%q) = %q: not idempotent", tt.want, got)
		}
	}
}

func TestAddNormalisesFacilityID(t *testing.T) {
	d := day0 + 5
	h := build(t, []Snapshot{
		daily("Almaty-IH-7", inf, d-1, 100, 60),
		daily(" almaty ih 7 ", inf, d, 100, 70), // the same facility, a day later
		daily("almaty_ih_7", icu, d-4, 10, 5),   // the same facility, stale ICU
	}, nil)
	if h.Len() != 3 {
		t.Fatalf("kept %d snapshots, want 3", h.Len())
	}
	for _, s := range h.Snapshots() {
		if s.FacilityID != "almaty-ih-7" {
			t.Errorf("kept snapshot with facility %q, want almaty-ih-7", s.FacilityID)
		}
	}
	got := viewOf(h.AsOf(d, DefaultConfig()))
	want := view{Counts: [3]Count{{1, 100, 70}, {}, {}}, Stale: []string{"almaty-ih-7/icu"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AsOf = %+v, want %+v", got, want)
	}
	if _, err := h.Add(daily(" \t", inf, d, 1, 1)); err == nil {
		t.Error("snapshot with a blank facility id accepted")
	}
	// Corrected normalises its argument like Add.
	c := daily("Almaty-IH-7", inf, d, 100, 50)
	c.EventID, c.Seq = "correction", c.Seq+1
	if _, err := h.Add(c); err != nil {
		t.Fatal(err)
	}
	if !h.Corrected("ALMATY IH 7", inf, d) {
		t.Error("Corrected with an unnormalised id missed the correction")
	}
}

// The review finding: a facility that closed long ago must stop being stale
// (and blocking easing) from its closing day.
func TestClosedFacilityLeavesOccupancy(t *testing.T) {
	closing := day0 + 10
	var snaps []Snapshot
	for d := day0; d <= day0+5; d++ { // Osh reports until day 5, then stops
		snaps = append(snaps, daily("Osh-IH-3", inf, d, 100, 80), daily("Osh-IH-3", icu, d, 10, 9))
	}
	for d := day0; d <= closing+300; d++ {
		snaps = append(snaps, daily("g", inf, d, 50, 10))
	}
	registered := []FacilityStatus{status("osh ih 3", FacilityOpen, day0, 1), status("g", FacilityOpen, day0, 2)}
	closed := append(registered, status("OSH_IH_3", FacilityClosed, closing, 3))
	oshStale := []string{"osh-ih-3/infectious", "osh-ih-3/icu"}
	onlyG := [3]Count{{1, 50, 10}, {}, {}}
	tests := []struct {
		name     string
		statuses []FacilityStatus
		cfg      Config
		day      schemas.Date
		want     view
	}{
		{"reporting: counted", closed, DefaultConfig(), day0 + 5,
			view{Counts: [3]Count{{2, 150, 90}, {1, 10, 9}, {}}}},
		{"silent before closing: stale as before", closed, DefaultConfig(), closing - 2,
			view{Counts: onlyG, Stale: oshStale}},
		{"the day before closing: still stale", closed, DefaultConfig(), closing - 1,
			view{Counts: onlyG, Stale: oshStale}},
		{"closing day: closed, not stale", closed, DefaultConfig(), closing,
			view{Counts: onlyG, Closed: []string{"osh-ih-3"}}},
		{"closed 290 days ago: closed, neither stale nor presumed closed", closed, DefaultConfig(), closing + 290,
			view{Counts: onlyG, Closed: []string{"osh-ih-3"}}},
		{"closed, even where presumption is off", closed, Config{MaxAge: DefaultMaxAge}, closing + 290,
			view{Counts: onlyG, Closed: []string{"osh-ih-3"}}},
		// Negative controls: without the closing event.
		{"never closed, 300 days silent: presumed closed", registered, DefaultConfig(), closing + 290,
			view{Counts: onlyG, PresumedClosed: oshStale}},
		{"never closed, presumption off: stale forever (the old behaviour)", registered, Config{MaxAge: DefaultMaxAge}, closing + 290,
			view{Counts: onlyG, Stale: oshStale}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := build(t, snaps, tt.statuses)
			if got := viewOf(h.AsOf(tt.day, tt.cfg)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("day %s: %+v, want %+v", tt.day, got, tt.want)
			}
		})
	}
}

func TestPresumedClosed(t *testing.T) {
	d := day0 + 400
	cfg := DefaultConfig()
	fresh := daily("fresh", inf, d, 50, 10)
	tests := []struct {
		name     string
		age      time.Duration // of facility s's snapshot at the end of d
		statuses []FacilityStatus
		cfg      Config
		want     string // "counted", "stale" or "presumed"
	}{
		{name: "fresh", age: 20 * time.Hour, cfg: cfg, want: "counted"},
		{name: "silent 3 days", age: 3 * 24 * time.Hour, cfg: cfg, want: "stale"},
		{name: "silent exactly 14 days", age: 14 * 24 * time.Hour, cfg: cfg, want: "stale"},
		{name: "silent 14 days and a second", age: 14*24*time.Hour + time.Second, cfg: cfg, want: "presumed"},
		{name: "silent 15 days", age: 15 * 24 * time.Hour, cfg: cfg, want: "presumed"},
		{name: "silent 290 days", age: 290 * 24 * time.Hour, cfg: cfg, want: "presumed"},
		{name: "configurable: 15 days within 30", age: 15 * 24 * time.Hour, cfg: Config{MaxAge: DefaultMaxAge, PresumedClosedAfter: 30 * 24 * time.Hour}, want: "stale"},
		{name: "invalid config (no presumed_closed_after): fail safe, stale", age: 15 * 24 * time.Hour, cfg: Config{MaxAge: DefaultMaxAge}, want: "stale"},
		{name: "invalid config (presumed_closed_after below max_age): stale", age: 15 * 24 * time.Hour, cfg: Config{MaxAge: DefaultMaxAge, PresumedClosedAfter: time.Hour}, want: "stale"},
		// An operator's "open" outranks the presumption for PresumedClosedAfter
		// from the start of its Effective day.
		{name: "silent 15 days, opened 5 days ago: stale", age: 15 * 24 * time.Hour,
			statuses: []FacilityStatus{status("s", FacilityOpen, d-5, 1)}, cfg: cfg, want: "stale"},
		{name: "silent 15 days, opened 14 days before the end of the day: stale", age: 15 * 24 * time.Hour,
			statuses: []FacilityStatus{status("s", FacilityOpen, d-13, 1)}, cfg: cfg, want: "stale"},
		{name: "silent 15 days, opened 15 days before the end of the day: presumed", age: 15 * 24 * time.Hour,
			statuses: []FacilityStatus{status("s", FacilityOpen, d-14, 1)}, cfg: cfg, want: "presumed"},
		{name: "silent 15 days, opened long ago: presumed", age: 15 * 24 * time.Hour,
			statuses: []FacilityStatus{status("s", FacilityOpen, day0, 1)}, cfg: cfg, want: "presumed"},
		{name: "silent 15 days, open event only after the day: presumed", age: 15 * 24 * time.Hour,
			statuses: []FacilityStatus{status("s", FacilityOpen, d+1, 1)}, cfg: cfg, want: "presumed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			statuses := append([]FacilityStatus{status("fresh", FacilityOpen, day0, 9)}, tt.statuses...)
			h := build(t, []Snapshot{fresh, agedAt("s", inf, d, tt.age, 100, 90)}, statuses)
			o := h.AsOf(d, tt.cfg)
			want := view{Counts: [3]Count{{1, 50, 10}, {}, {}}}
			switch tt.want {
			case "counted":
				want.Counts[0] = Count{2, 150, 100}
			case "stale":
				want.Stale = []string{"s/infectious"}
			case "presumed":
				want.PresumedClosed = []string{"s/infectious"}
			}
			// The registry is in use (for "fresh"): s is unknown unless it has
			// a status event effective by d, or is presumed closed.
			if (len(tt.statuses) == 0 || tt.statuses[0].Effective > d) && tt.want != "presumed" {
				want.Unknown = []string{"s"}
			}
			if got := viewOf(o); !reflect.DeepEqual(got, want) {
				t.Fatalf("%+v, want %+v", got, want)
			}
			for _, p := range o.PresumedClosed {
				if p.Age != tt.age || !p.Last.Equal(agedAt("s", inf, d, tt.age, 0, 0).Time) {
					t.Errorf("presumed closed %+v: want age %s", p, tt.age)
				}
			}
			if n, want := o.PresumedClosedFacilities(), len(want.PresumedClosed); n != want {
				t.Errorf("PresumedClosedFacilities() = %d, want %d", n, want)
			}
		})
	}
}

func TestPresumedClosedFacilitiesCountsDistinctFacilities(t *testing.T) {
	d := day0 + 100
	h := build(t, []Snapshot{
		daily("a", inf, d-20, 100, 50), daily("a", icu, d-20, 10, 5), daily("b", prov, d-30, 10, 5),
		daily("c", inf, d-3, 100, 50), // stale, not presumed
	}, nil)
	o := h.AsOf(d, DefaultConfig())
	if len(o.PresumedClosed) != 3 || o.PresumedClosedFacilities() != 2 || o.StaleFacilities() != 1 {
		t.Fatalf("presumed %+v (%d facilities), stale %+v: want 3 units of 2 facilities presumed, 1 stale",
			o.PresumedClosed, o.PresumedClosedFacilities(), o.Stale)
	}
}

func TestReopenedFacility(t *testing.T) {
	// a reports days 0..9, closes on day 10, re-opens on day 20 and reports
	// on days 20 and 21. b re-opens on day 30 but first reports on day 33.
	var snaps []Snapshot
	for d := day0; d <= day0+9; d++ {
		snaps = append(snaps, daily("a", inf, d, 100, 40), daily("b", inf, d, 10, 1))
	}
	snaps = append(snaps, daily("a", inf, day0+20, 100, 70), daily("a", inf, day0+21, 100, 75), daily("b", inf, day0+33, 10, 2))
	statuses := []FacilityStatus{
		status("a", FacilityOpen, day0, 1), status("a", FacilityClosed, day0+10, 2), status("a", FacilityOpen, day0+20, 3),
		status("b", FacilityOpen, day0, 4), status("b", FacilityClosed, day0+10, 5), status("b", FacilityOpen, day0+30, 6),
	}
	h := build(t, snaps, statuses)
	for d := day0 + 8; d <= day0+34; d++ {
		var want view
		var aCounts, bCounts Count
		switch n := d - day0; {
		case n <= 9:
			aCounts, bCounts = Count{1, 100, 40}, Count{1, 10, 1}
		case n <= 19:
			want.Closed = []string{"a", "b"}
		case n == 20:
			aCounts, want.Closed = Count{1, 100, 70}, []string{"b"}
		case n <= 22: // day 21's report is 39 h old at the end of day 22
			aCounts, want.Closed = Count{1, 100, 75}, []string{"b"}
		case n <= 29:
			want.Stale, want.Closed = []string{"a/infectious"}, []string{"b"}
		case n <= 32:
			// b is open again without a fresh report: stale, although its
			// last report is more than 14 days old, because it re-opened
			// less than 14 days ago.
			want.Stale = []string{"a/infectious", "b/infectious"}
		default:
			want.Stale, bCounts = []string{"a/infectious"}, Count{1, 10, 2}
		}
		want.Counts[0] = Count{aCounts.Facilities + bCounts.Facilities, aCounts.Total + bCounts.Total, aCounts.Occupied + bCounts.Occupied}
		if got := viewOf(h.AsOf(d, DefaultConfig())); !reflect.DeepEqual(got, want) {
			t.Errorf("day %d: %+v, want %+v", d-day0, got, want)
		}
	}
}

func TestUnknownFacilities(t *testing.T) {
	d := day0 + 50
	freshAB := []Snapshot{daily("A", inf, d, 100, 50), daily("B", inf, d, 40, 20)}
	both := [3]Count{{2, 140, 70}, {}, {}}
	tests := []struct {
		name     string
		snaps    []Snapshot
		statuses []FacilityStatus
		want     view
	}{
		{"registry with a: b is unknown and counted", freshAB,
			[]FacilityStatus{status("a", FacilityOpen, day0, 1)},
			view{Counts: both, Unknown: []string{"b"}}},
		{"no registry: nothing is unknown", freshAB, nil,
			view{Counts: both}},
		{"both registered, spelled differently", freshAB,
			[]FacilityStatus{status("a", FacilityOpen, day0, 1), status(" b ", FacilityOpen, day0, 2)},
			view{Counts: both}},
		{"b registered only from a later day: unknown today", freshAB,
			[]FacilityStatus{status("a", FacilityOpen, day0, 1), status("b", FacilityOpen, d+1, 2)},
			view{Counts: both, Unknown: []string{"b"}}},
		{"registry not yet in effect: nothing is unknown", freshAB,
			[]FacilityStatus{status("a", FacilityOpen, d+1, 1)},
			view{Counts: both}},
		{"a registry of closures alone is in use", freshAB,
			[]FacilityStatus{status("c", FacilityClosed, day0, 1)},
			view{Counts: both, Unknown: []string{"a", "b"}}},
		{"an unknown stale facility is listed in both", []Snapshot{daily("A", inf, d, 100, 50), daily("B", inf, d-3, 40, 20)},
			[]FacilityStatus{status("a", FacilityOpen, day0, 1)},
			view{Counts: [3]Count{{1, 100, 50}, {}, {}}, Stale: []string{"b/infectious"}, Unknown: []string{"b"}}},
		{"an unknown facility presumed closed is no longer unknown", []Snapshot{daily("A", inf, d, 100, 50), daily("B", inf, d-20, 40, 20)},
			[]FacilityStatus{status("a", FacilityOpen, day0, 1)},
			view{Counts: [3]Count{{1, 100, 50}, {}, {}}, PresumedClosed: []string{"b/infectious"}}},
		{"unknown facilities are sorted and distinct", []Snapshot{
			daily("A", inf, d, 100, 50), daily("d", inf, d, 1, 1), daily("d", icu, d, 1, 1), daily("c", prov, d, 1, 1)},
			[]FacilityStatus{status("a", FacilityOpen, day0, 1)},
			view{Counts: [3]Count{{2, 101, 51}, {1, 1, 1}, {1, 1, 1}}, Unknown: []string{"c", "d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := build(t, tt.snaps, tt.statuses)
			if got := viewOf(h.AsOf(d, DefaultConfig())); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOverCapacity(t *testing.T) {
	d := day0 + 50
	open := func(fac string, c map[string]int) FacilityStatus {
		return withCapacity(status(fac, FacilityOpen, day0, 1), c)
	}
	tests := []struct {
		name     string
		snaps    []Snapshot
		statuses []FacilityStatus
		want     []string
	}{
		{"total above capacity", []Snapshot{daily("a", inf, d, 120, 10)},
			[]FacilityStatus{open("a", map[string]int{inf: 100})}, []string{"a"}},
		{"total at capacity", []Snapshot{daily("a", inf, d, 100, 10)},
			[]FacilityStatus{open("a", map[string]int{inf: 100})}, nil},
		{"no capacity for the kind", []Snapshot{daily("a", inf, d, 500, 10), daily("a", icu, d, 10, 1)},
			[]FacilityStatus{open("a", map[string]int{icu: 10})}, nil},
		{"no capacity at all", []Snapshot{daily("a", inf, d, 500, 10)},
			[]FacilityStatus{open("a", nil)}, nil},
		{"a capacity of 0 is a capacity", []Snapshot{daily("a", prov, d, 5, 0)},
			[]FacilityStatus{open("a", map[string]int{prov: 0})}, []string{"a"}},
		{"only counted reports: a stale one is not checked", []Snapshot{daily("a", inf, d-3, 120, 10)},
			[]FacilityStatus{open("a", map[string]int{inf: 100})}, nil},
		{"the capacity of the event in effect, not an earlier one", []Snapshot{daily("a", inf, d, 120, 10)},
			[]FacilityStatus{open("a", map[string]int{inf: 100}), withCapacity(status("a", FacilityOpen, d-1, 2), map[string]int{inf: 150})}, nil},
		{"sorted and distinct over kinds and facilities", []Snapshot{
			daily("b", inf, d, 120, 10), daily("b", icu, d, 20, 10), daily("a", icu, d, 11, 1), daily("c", inf, d, 1, 1)},
			[]FacilityStatus{open("b", map[string]int{inf: 100, icu: 10}), open("a", map[string]int{icu: 10}), open("c", map[string]int{inf: 1})},
			[]string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := build(t, tt.snaps, tt.statuses).AsOf(d, DefaultConfig())
			if !reflect.DeepEqual(o.OverCapacity, tt.want) {
				t.Errorf("OverCapacity = %v, want %v", o.OverCapacity, tt.want)
			}
		})
	}
}

func TestSetFacilityReportsChange(t *testing.T) {
	var h History
	a := withCapacity(status("Osh IH 3", FacilityOpen, day0+1, 5), map[string]int{inf: 100})
	steps := []struct {
		name string
		f    FacilityStatus
		want bool
	}{
		{"first", a, true},
		{"the same event again", a, false},
		{"the same event, id spelled differently", func() FacilityStatus { f := a; f.FacilityID = "OSH_IH_3"; return f }(), false},
		{"same day, lower seq", status("osh-ih-3", FacilityClosed, day0+1, 4), false},
		{"same day, higher seq", status("osh-ih-3", FacilityClosed, day0+1, 6), true},
		{"same day and seq, greater event_id", FacilityStatus{FacilityID: "osh-ih-3", Status: FacilityOpen, Effective: day0 + 1, EventID: "zzz", Seq: 6}, true},
		{"same day and seq, smaller event_id", FacilityStatus{FacilityID: "osh-ih-3", Status: FacilityClosed, Effective: day0 + 1, EventID: "aaa", Seq: 6}, false},
		{"another day", status("osh-ih-3", FacilityClosed, day0+9, 1), true},
		{"another facility", status("b", FacilityOpen, day0, 1), true},
	}
	for _, st := range steps {
		got, err := h.SetFacility(st.f)
		if err != nil || got != st.want {
			t.Errorf("%s: changed = %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	want := []FacilityStatus{
		status("b", FacilityOpen, day0, 1),
		{FacilityID: "osh-ih-3", Status: FacilityOpen, Effective: day0 + 1, EventID: "zzz", Seq: 6},
		status("osh-ih-3", FacilityClosed, day0+9, 1),
	}
	if got := h.Facilities(); !reflect.DeepEqual(got, want) {
		t.Errorf("Facilities() = %+v, want %+v", got, want)
	}
}

func TestSetFacilityCopiesCapacity(t *testing.T) {
	var h History
	c := map[string]int{inf: 100}
	if _, err := h.SetFacility(withCapacity(status("a", FacilityOpen, day0, 1), c)); err != nil {
		t.Fatal(err)
	}
	c[inf] = 1                          // the caller reuses its map
	h.Facilities()[0].Capacity[inf] = 2 // or changes what it got back
	if got := h.Facilities()[0].Capacity[inf]; got != 100 {
		t.Errorf("kept capacity = %d, want 100", got)
	}
}

func TestSetFacilityRejects(t *testing.T) {
	ok := status("a", FacilityOpen, day0, 1)
	tests := []struct {
		name    string
		mod     func(*FacilityStatus)
		is      error  // nil: any error
		message string // a word the message must contain
	}{
		{"no facility", func(f *FacilityStatus) { f.FacilityID = "" }, nil, "facility_id"},
		{"blank facility", func(f *FacilityStatus) { f.FacilityID = " \t" }, nil, "facility_id"},
		{"unknown status", func(f *FacilityStatus) { f.Status = "demolished" }, ErrUnknownStatus, "demolished"},
		{"status is not case-folded", func(f *FacilityStatus) { f.Status = "Closed" }, ErrUnknownStatus, "Closed"},
		{"no effective day", func(f *FacilityStatus) { f.Effective = 0 }, nil, "effective"},
		{"capacity of an unknown kind", func(f *FacilityStatus) { f.Capacity = map[string]int{"maternity": 3} }, ErrUnknownKind, "maternity"},
		{"negative capacity", func(f *FacilityStatus) { f.Capacity = map[string]int{icu: -1} }, nil, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			f := ok
			tt.mod(&f)
			changed, err := h.SetFacility(f)
			if err == nil || changed {
				t.Fatalf("SetFacility(%+v) = %v, %v; want an error", f, changed, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
			if h.Facilities() != nil {
				t.Errorf("rejected event kept: %+v", h.Facilities())
			}
		})
	}
	// Negative control: the unmodified event is accepted.
	var h History
	if _, err := h.SetFacility(ok); err != nil {
		t.Errorf("valid event rejected: %v", err)
	}
}

// randomStart is the earliest snapshot time of randomInputs.
var randomStart = time.Date(2021, 7, 1, 0, 0, 0, 0, almaty)

// randomInputs returns snapshots and status events for the order tests:
// facility ids in several spellings, status events that collide on a day,
// capacities, silences long enough for every outcome.
func randomInputs(rng *rand.Rand) ([]Snapshot, []FacilityStatus) {
	spellings := [][]string{{"A", "a", " a"}, {"Osh IH", "osh_ih", "OSH-IH"}, {"c"}, {"D", "d"}}
	start := randomStart
	var snaps []Snapshot
	for i := 0; i < 300; i++ {
		f := spellings[rng.Intn(len(spellings))]
		snaps = append(snaps, Snapshot{
			EventID: fmt.Sprintf("s%03d", i), FacilityID: f[rng.Intn(len(f))], Kind: Kinds[rng.Intn(3)],
			Time: start.Add(time.Duration(rng.Intn(40*24)) * time.Hour), Seq: uint64(rng.Intn(50)),
			Total: 100, Occupied: rng.Intn(101),
		})
	}
	var statuses []FacilityStatus
	for i := 0; i < 30; i++ {
		f := spellings[rng.Intn(len(spellings))]
		st := FacilityStatus{
			FacilityID: f[rng.Intn(len(f))], Status: []string{FacilityOpen, FacilityClosed}[rng.Intn(2)],
			Effective: schemas.DateOf(start) + schemas.Date(rng.Intn(50)), EventID: fmt.Sprintf("f%02d", i), Seq: uint64(rng.Intn(5)),
		}
		if rng.Intn(2) == 0 {
			st.Capacity = map[string]int{Kinds[rng.Intn(3)]: 80 + rng.Intn(40)}
		}
		statuses = append(statuses, st)
	}
	return snaps, statuses
}

// History with a registry must stay a function of the set of inputs: any
// interleaving of snapshots and status events, any duplicates, the same
// answer on every day.
func TestRegistryIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	snaps, statuses := randomInputs(rng)
	ref := build(t, snaps, statuses)
	first := schemas.DateOf(randomStart)
	last := first + 70 // 40 days of snapshots, then silence
	var want []Occupancy
	lists := map[string]bool{}
	for d := first; d <= last; d++ {
		o := ref.AsOf(d, DefaultConfig())
		want = append(want, o)
		for name, n := range map[string]int{"closed": len(o.Closed), "unknown": len(o.Unknown), "presumed closed": len(o.PresumedClosed), "stale": len(o.Stale), "over capacity": len(o.OverCapacity)} {
			lists[name] = lists[name] || n > 0
		}
	}
	// Without every outcome somewhere, the test would prove less than it says.
	for _, name := range []string{"closed", "unknown", "presumed closed", "stale", "over capacity"} {
		if !lists[name] {
			t.Fatalf("the random inputs never produce a %s facility: change the seed", name)
		}
	}
	type op func(*History)
	var ops []op
	for _, s := range snaps {
		ops = append(ops, func(h *History) { _, _ = h.Add(s) })
	}
	for _, f := range statuses {
		ops = append(ops, func(h *History) { _, _ = h.SetFacility(f) })
	}
	for round := 0; round < 10; round++ {
		var h History
		for _, i := range rng.Perm(len(ops)) {
			ops[i](&h)
			if rng.Intn(4) == 0 {
				ops[i](&h) // duplicate
			}
		}
		if !reflect.DeepEqual(h.Facilities(), ref.Facilities()) || !reflect.DeepEqual(h.Snapshots(), ref.Snapshots()) {
			t.Fatalf("round %d: kept inputs differ by insertion order", round)
		}
		for i, d := 0, first; d <= last; i, d = i+1, d+1 {
			if got := h.AsOf(d, DefaultConfig()); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("round %d day %s: %+v, want %+v", round, d, got, want[i])
			}
		}
	}
	for _, f := range ref.Facilities() {
		if changed, err := ref.SetFacility(f); changed || err != nil {
			t.Errorf("re-setting kept event %+v: changed = %v, %v; want false", f, changed, err)
		}
	}
}

// The processor checkpoints Snapshots and Facilities; reading them back must
// give an equal History.
func TestFacilitiesRebuildHistory(t *testing.T) {
	snaps, statuses := randomInputs(rand.New(rand.NewSource(3)))
	h := build(t, snaps, statuses)
	back := build(t, h.Snapshots(), h.Facilities())
	if !reflect.DeepEqual(back.Facilities(), h.Facilities()) || !reflect.DeepEqual(back.Snapshots(), h.Snapshots()) {
		t.Fatal("rebuilt history keeps different inputs")
	}
	for d := schemas.DateOf(randomStart); d < schemas.DateOf(randomStart)+70; d++ {
		if got, want := back.AsOf(d, DefaultConfig()), h.AsOf(d, DefaultConfig()); !reflect.DeepEqual(got, want) {
			t.Fatalf("day %s: rebuilt %+v, want %+v", d, got, want)
		}
	}
}

func TestConfigValidatePresumedClosedAfter(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name string
		cfg  Config
		want []string // words the error must contain; nil: valid
	}{
		{"default", DefaultConfig(), nil},
		{"just above max_age", Config{MaxAge: 48 * time.Hour, PresumedClosedAfter: 49 * time.Hour}, nil},
		{"unset", Config{MaxAge: 48 * time.Hour}, []string{"presumed_closed_after", "max_age"}},
		{"equal to max_age", Config{MaxAge: 48 * time.Hour, PresumedClosedAfter: 48 * time.Hour}, []string{"presumed_closed_after", "max_age"}},
		{"below max_age", Config{MaxAge: 3 * day, PresumedClosedAfter: 2 * day}, []string{"presumed_closed_after", "max_age"}},
		{"max_age unset", Config{PresumedClosedAfter: 14 * day}, []string{"max_age"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != (tt.want != nil) {
				t.Fatalf("Validate() = %v, want error %v", err, tt.want != nil)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// BenchmarkAsOf100Facilities measures one day's occupancy of a region with
// 100 facilities reporting 3 bed kinds daily for 180 days.
func BenchmarkAsOf100Facilities(b *testing.B) {
	const facilities, days = 100, 180
	var snaps []Snapshot
	var statuses []FacilityStatus
	for f := 0; f < facilities; f++ {
		id := fmt.Sprintf("Facility-%03d", f)
		for d := day0; d < day0+days; d++ {
			for _, k := range Kinds {
				snaps = append(snaps, daily(id, k, d, 100, 50))
			}
		}
		statuses = append(statuses, withCapacity(status(id, FacilityOpen, day0, uint64(f)), map[string]int{schemas.BedInfectious: 100}))
		if f%10 == 0 {
			statuses = append(statuses, status(id, FacilityClosed, day0+days-1, uint64(facilities+f)))
		}
	}
	for _, bc := range []struct {
		name     string
		statuses []FacilityStatus
	}{{"without registry", nil}, {"with registry", statuses}} {
		b.Run(bc.name, func(b *testing.B) {
			h := build(b, snaps, bc.statuses)
			b.ReportAllocs()
			for b.Loop() {
				_ = h.AsOf(day0+days-1, DefaultConfig())
			}
		})
	}
}
