package beds

import (
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

var almaty = time.FixedZone("+05", 5*3600)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func snap(id, fac, kind, when string, seq uint64, total, occ int) Snapshot {
	return Snapshot{EventID: id, FacilityID: fac, Kind: kind, Time: at(when), Seq: seq, Total: total, Occupied: occ}
}

const (
	inf  = schemas.BedInfectious
	icu  = schemas.BedICU
	prov = schemas.BedProvisional
)

func TestCompute(t *testing.T) {
	day := schemas.MustDate("2021-07-10")
	cfg := DefaultConfig()
	tests := []struct {
		name      string
		snaps     []Snapshot
		day       schemas.Date
		want      [3]Count // infectious, icu, provisional
		wantPct   *float64
		wantStale []string // facility/kind, the facility id normalised
	}{
		{name: "no snapshots", day: day},
		{
			name: "sum over facilities",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-10T09:00:00+05:00", 1, 100, 60),
				snap("b1", "B", inf, "2021-07-10T10:00:00+05:00", 2, 50, 45),
			},
			day:     day,
			want:    [3]Count{{2, 150, 105}, {}, {}},
			wantPct: ptr(70),
		},
		{
			name: "a later snapshot of the same facility replaces the earlier one",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-09T09:00:00+05:00", 1, 100, 60),
				snap("a2", "A", inf, "2021-07-10T09:00:00+05:00", 2, 100, 80),
			},
			day:     day,
			want:    [3]Count{{1, 100, 80}, {}, {}},
			wantPct: ptr(80),
		},
		{
			name: "an older snapshot arriving late does not replace a newer one",
			snaps: []Snapshot{
				snap("a2", "A", inf, "2021-07-10T09:00:00+05:00", 1, 100, 80),
				snap("a1", "A", inf, "2021-07-10T08:00:00+05:00", 2, 100, 60),
			},
			day:     day,
			want:    [3]Count{{1, 100, 80}, {}, {}},
			wantPct: ptr(80),
		},
		{
			name: "a correction for the same snapshot time wins by arrival (seq)",
			snaps: []Snapshot{
				snap("zz-original", "A", inf, "2021-07-10T09:00:00+05:00", 1, 100, 90),
				snap("aa-correction", "A", inf, "2021-07-10T09:00:00+05:00", 7, 100, 40),
			},
			day:     day,
			want:    [3]Count{{1, 100, 40}, {}, {}},
			wantPct: ptr(40),
		},
		{
			name: "same time and seq: the greater event_id wins",
			snaps: []Snapshot{
				snap("e2", "A", inf, "2021-07-10T09:00:00+05:00", 0, 100, 20),
				snap("e1", "A", inf, "2021-07-10T09:00:00+05:00", 0, 100, 10),
			},
			day:     day,
			want:    [3]Count{{1, 100, 20}, {}, {}},
			wantPct: ptr(20),
		},
		{
			name: "snapshots after the day do not count",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-10T09:00:00+05:00", 1, 100, 50),
				snap("a2", "A", inf, "2021-07-11T09:00:00+05:00", 2, 100, 99),
			},
			day:     day,
			want:    [3]Count{{1, 100, 50}, {}, {}},
			wantPct: ptr(50),
		},
		{
			name: "the day is the snapshot's own local day",
			snaps: []Snapshot{
				// 01:00 on the 11th in Almaty is still the 10th in UTC: not counted as of the 10th.
				snap("a1", "A", inf, "2021-07-11T01:00:00+05:00", 1, 100, 50),
			},
			day: day,
		},
		{
			name: "47 h old at the end of the day is fresh, 49 h old is stale and listed",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-09T01:00:00+05:00", 1, 100, 50), // 47 h before 2021-07-11T00:00+05
				snap("b1", "B", inf, "2021-07-08T23:00:00+05:00", 2, 100, 90), // 49 h
				snap("b2", "B", icu, "2021-07-10T12:00:00+05:00", 3, 10, 9),   // B's ICU report is fresh
			},
			day:       day,
			want:      [3]Count{{1, 100, 50}, {1, 10, 9}, {}},
			wantPct:   ptr(50),
			wantStale: []string{"b/infectious"},
		},
		{
			name: "every facility stale: occupancy not available, not 0 %",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-01T09:00:00+05:00", 1, 100, 50),
				snap("b1", "B", prov, "2021-07-01T09:00:00+05:00", 2, 40, 10),
			},
			day:       day,
			wantStale: []string{"a/infectious", "b/provisional"},
		},
		{
			name: "ICU and provisional beside infectious beds",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-10T09:00:00+05:00", 1, 200, 100),
				snap("a2", "A", icu, "2021-07-10T09:00:00+05:00", 2, 20, 15),
				snap("a3", "A", prov, "2021-07-10T09:00:00+05:00", 3, 80, 8),
				snap("b3", "B", prov, "2021-07-10T09:00:00+05:00", 4, 20, 2),
			},
			day:     day,
			want:    [3]Count{{1, 200, 100}, {1, 20, 15}, {2, 100, 10}},
			wantPct: ptr(50),
		},
		{
			name: "zero total beds: no percentage",
			snaps: []Snapshot{
				snap("a1", "A", inf, "2021-07-10T09:00:00+05:00", 1, 0, 0),
			},
			day:  day,
			want: [3]Count{{1, 0, 0}, {}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Compute(tt.snaps, tt.day, cfg)
			got := [3]Count{o.Infectious, o.ICU, o.Provisional}
			if got != tt.want {
				t.Errorf("counts = %+v, want %+v", got, tt.want)
			}
			pct, ok := o.Infectious.Pct()
			switch {
			case tt.wantPct == nil && ok:
				t.Errorf("pct = %v, want not available", pct)
			case tt.wantPct != nil && (!ok || pct != *tt.wantPct):
				t.Errorf("pct = %v (ok %v), want %v", pct, ok, *tt.wantPct)
			}
			var stale []string
			for _, s := range o.Stale {
				stale = append(stale, s.FacilityID+"/"+s.Kind)
				if s.Age <= cfg.MaxAge {
					t.Errorf("stale %s/%s has age %s <= max age", s.FacilityID, s.Kind, s.Age)
				}
			}
			if !reflect.DeepEqual(stale, tt.wantStale) {
				t.Errorf("stale = %v, want %v", stale, tt.wantStale)
			}
			if n := o.StaleFacilities(); n != len(uniqueFacilities(tt.wantStale)) {
				t.Errorf("StaleFacilities() = %d, want %d", n, len(uniqueFacilities(tt.wantStale)))
			}
		})
	}
}

func uniqueFacilities(units []string) map[string]bool {
	m := map[string]bool{}
	for _, u := range units {
		for i := range u {
			if u[i] == '/' {
				m[u[:i]] = true
				break
			}
		}
	}
	return m
}

func ptr(f float64) *float64 { return &f }

func TestStaleFacilitiesCountsDistinctFacilities(t *testing.T) {
	snaps := []Snapshot{
		snap("a1", "A", inf, "2021-07-01T09:00:00+05:00", 1, 100, 50),
		snap("a2", "A", icu, "2021-07-01T09:00:00+05:00", 2, 10, 5),
		snap("b1", "B", inf, "2021-07-01T09:00:00+05:00", 3, 100, 50),
	}
	o := Compute(snaps, schemas.MustDate("2021-07-10"), DefaultConfig())
	if len(o.Stale) != 3 || o.StaleFacilities() != 2 {
		t.Fatalf("stale = %+v (%d facilities), want 3 units of 2 facilities", o.Stale, o.StaleFacilities())
	}
}

func TestMaxAgeIsConfigurable(t *testing.T) {
	snaps := []Snapshot{snap("a1", "A", inf, "2021-07-09T09:00:00+05:00", 1, 100, 50)} // 39 h at the end of the 10th
	day := schemas.MustDate("2021-07-10")
	for _, tt := range []struct {
		maxAge time.Duration
		stale  bool
	}{{48 * time.Hour, false}, {40 * time.Hour, false}, {39 * time.Hour, false}, {38 * time.Hour, true}, {24 * time.Hour, true}} {
		o := Compute(snaps, day, Config{MaxAge: tt.maxAge})
		if got := len(o.Stale) == 1; got != tt.stale {
			t.Errorf("max age %s: stale = %v, want %v", tt.maxAge, got, tt.stale)
		}
	}
}

// History must be a function of the set of snapshots: any order, any
// duplicates, the same answer on every day.
func TestHistoryIsOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	base := time.Date(2021, 7, 1, 0, 0, 0, 0, almaty)
	var snaps []Snapshot
	for i := 0; i < 300; i++ {
		snaps = append(snaps, Snapshot{
			EventID:    string(rune('a'+rng.Intn(26))) + string(rune('a'+rng.Intn(26))),
			FacilityID: []string{"A", "B", "C", "D"}[rng.Intn(4)],
			Kind:       Kinds[rng.Intn(3)],
			Time:       base.Add(time.Duration(rng.Intn(20*24)) * time.Hour),
			Seq:        uint64(rng.Intn(50)),
			Total:      100,
			Occupied:   rng.Intn(101),
		})
	}
	var want []Occupancy
	var ref History
	for _, s := range snaps {
		if _, err := ref.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	for d := schemas.DateOf(base); d < schemas.DateOf(base)+25; d++ {
		want = append(want, ref.AsOf(d, DefaultConfig()))
	}
	for round := 0; round < 20; round++ {
		perm := rng.Perm(len(snaps))
		var h History
		for _, i := range perm {
			_, _ = h.Add(snaps[i])
			if rng.Intn(4) == 0 {
				_, _ = h.Add(snaps[i]) // duplicate
			}
		}
		if !reflect.DeepEqual(h.Snapshots(), ref.Snapshots()) {
			t.Fatalf("round %d: kept snapshots differ by insertion order", round)
		}
		for i, d := 0, schemas.DateOf(base); d < schemas.DateOf(base)+25; i, d = i+1, d+1 {
			if got := h.AsOf(d, DefaultConfig()); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("round %d day %s: %+v, want %+v", round, d, got, want[i])
			}
		}
	}
}

func TestHistoryAddReportsChange(t *testing.T) {
	var h History
	a := snap("a1", "A", inf, "2021-07-10T09:00:00+05:00", 5, 100, 50)
	steps := []struct {
		name string
		s    Snapshot
		want bool
	}{
		{"first", a, true},
		{"duplicate", a, false},
		{"older on the same day", snap("a0", "A", inf, "2021-07-10T08:00:00+05:00", 6, 100, 10), false},
		{"correction for the same time", snap("a1c", "A", inf, "2021-07-10T09:00:00+05:00", 9, 100, 55), true},
		{"older day arriving late", snap("z", "A", inf, "2021-07-08T08:00:00+05:00", 10, 100, 10), true},
	}
	for _, st := range steps {
		got, err := h.Add(st.s)
		if err != nil || got != st.want {
			t.Errorf("%s: changed = %v, %v; want %v", st.name, got, err, st.want)
		}
	}
	if h.Len() != 2 {
		t.Errorf("kept %d snapshots, want 2 (one winner per local day)", h.Len())
	}
	if _, err := h.Add(snap("x", "A", "maternity", "2021-07-10T09:00:00+05:00", 1, 1, 1)); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := h.Add(snap("x", "", inf, "2021-07-10T09:00:00+05:00", 1, 1, 1)); err == nil {
		t.Error("snapshot without facility accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("zero max age accepted")
	}
}
