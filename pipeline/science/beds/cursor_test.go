package beds

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// zones are the facility clocks of the random histories: far enough apart
// that a later snapshot can be dated a day or two earlier than the one
// before it, the case a forward-only index must not stop at.
var zones = []*time.Location{
	time.FixedZone("-12", -12*3600), time.FixedZone("-05", -5*3600), time.UTC,
	almaty, time.FixedZone("+0545", 5*3600+45*60), time.FixedZone("+14", 14*3600),
}

// shape describes a random history.
type shape struct {
	facilities  int
	days        int // snapshot times are spread over this many days
	snaps       int
	corrections int // snapshots re-sent for the same time with a higher Seq
	statuses    int
	zones       []*time.Location
}

// randomHistory returns a history of s: facilities reporting any kind at
// any hour in any of s.zones, corrections, and registry events (open and
// closed, some with capacities) from a few days before the first snapshot to
// a few after the last.
func randomHistory(t testing.TB, rng *rand.Rand, s shape) *History {
	t.Helper()
	snaps, statuses := randomHistoryInputs(rng, s)
	return build(t, snaps, statuses)
}

// randomHistoryInputs returns the snapshots and status events of
// randomHistory.
func randomHistoryInputs(rng *rand.Rand, s shape) ([]Snapshot, []FacilityStatus) {
	fac := func() string {
		id := fmt.Sprintf("Fac %d", rng.Intn(s.facilities))
		if rng.Intn(3) == 0 {
			id = NormalizeID(id) // another spelling of the same facility
		}
		return id
	}
	var snaps []Snapshot
	for i := 0; i < s.snaps; i++ {
		snaps = append(snaps, Snapshot{
			EventID: fmt.Sprintf("s%04d", i), FacilityID: fac(), Kind: Kinds[rng.Intn(len(Kinds))],
			Time: randomStart.Add(time.Duration(rng.Intn(s.days*24*60)) * time.Minute).In(s.zones[rng.Intn(len(s.zones))]),
			Seq:  uint64(1 + rng.Intn(1000)), Total: 50 + rng.Intn(100), Occupied: rng.Intn(50),
		})
	}
	for i := 0; i < s.corrections && len(snaps) > 0; i++ {
		c := snaps[rng.Intn(len(snaps))]
		c.EventID, c.Seq = fmt.Sprintf("c%04d", i), c.Seq+uint64(1+rng.Intn(5))
		c.Occupied = rng.Intn(50)
		if rng.Intn(4) == 0 {
			c.Time = c.Time.In(s.zones[rng.Intn(len(s.zones))]) // the same instant, maybe another local day
		}
		snaps = append(snaps, c)
	}
	var statuses []FacilityStatus
	first := schemas.DateOf(randomStart)
	for i := 0; i < s.statuses; i++ {
		f := FacilityStatus{
			FacilityID: fac(), Status: []string{FacilityOpen, FacilityClosed}[rng.Intn(2)],
			Effective: first - 5 + schemas.Date(rng.Intn(s.days+10)), EventID: fmt.Sprintf("f%03d", i), Seq: uint64(rng.Intn(5)),
		}
		if rng.Intn(2) == 0 {
			f.Capacity = map[string]int{Kinds[rng.Intn(len(Kinds))]: 60 + rng.Intn(80)}
		}
		statuses = append(statuses, f)
	}
	return snaps, statuses
}

// datesOutOfOrder reports whether some unit of h has a snapshot dated
// before the one that precedes it in time.
func datesOutOfOrder(h *History) bool {
	for _, list := range h.units {
		for i := 1; i < len(list); i++ {
			if list[i].Day() < list[i-1].Day() {
				return true
			}
		}
	}
	return false
}

// The property: every day of a sweep equals AsOf of that day, whatever the
// history, the configuration and the range swept.
func TestSweepEqualsAsOf(t *testing.T) {
	configs := []struct {
		name string
		cfg  Config
	}{
		{"default", DefaultConfig()},
		{"presumption off", Config{MaxAge: DefaultMaxAge}},
		{"tight", Config{MaxAge: 12 * time.Hour, PresumedClosedAfter: 72 * time.Hour}},
	}
	shapes := []struct {
		name string
		s    shape
	}{
		{"dense, all zones", shape{facilities: 6, days: 40, snaps: 600, corrections: 100, statuses: 40, zones: zones}},
		{"sparse, all zones", shape{facilities: 8, days: 60, snaps: 80, corrections: 20, statuses: 30, zones: zones}},
		{"zones a day apart", shape{facilities: 3, days: 20, snaps: 300, corrections: 60, statuses: 15, zones: []*time.Location{zones[0], zones[5]}}},
		{"one zone", shape{facilities: 5, days: 30, snaps: 200, corrections: 30, statuses: 20, zones: []*time.Location{almaty}}},
		{"no registry", shape{facilities: 5, days: 30, snaps: 200, corrections: 30, zones: zones}},
		{"registry only", shape{facilities: 5, days: 30, statuses: 20, zones: zones}},
		{"empty", shape{facilities: 1, days: 1, zones: zones}},
	}
	seen := map[string]bool{}
	rng := rand.New(rand.NewSource(19))
	for _, sh := range shapes {
		for _, cf := range configs {
			t.Run(sh.name+"/"+cf.name, func(t *testing.T) {
				for round := 0; round < 5; round++ {
					h := randomHistory(t, rng, sh.s)
					seen["dates out of order"] = seen["dates out of order"] || datesOutOfOrder(h)
					for _, r := range randomRanges(rng, sh.s.days, 20) {
						day := r[0]
						h.Sweep(r[0], r[1], cf.cfg, func(got Occupancy) {
							want := h.AsOf(day, cf.cfg)
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("round %d, sweep %s..%s, day %s:\n got %+v\nwant %+v", round, r[0], r[1], day, got, want)
							}
							for name, n := range map[string]int{"stale": len(got.Stale), "presumed closed": len(got.PresumedClosed), "closed": len(got.Closed), "unknown": len(got.Unknown), "over capacity": len(got.OverCapacity)} {
								seen[name] = seen[name] || n > 0
							}
							day++
						})
						if day != r[1]+1 {
							t.Fatalf("sweep %s..%s stopped before %s", r[0], r[1], day)
						}
					}
				}
			})
		}
	}
	// Without every outcome somewhere, the test would prove less than it says.
	for _, name := range []string{"dates out of order", "stale", "presumed closed", "closed", "unknown", "over capacity"} {
		if !seen[name] {
			t.Errorf("the random histories never produce %s: change the seed or the shapes", name)
		}
	}
}

// sweepShapes are the random histories of the cursor's property tests.
var sweepShapes = []struct {
	name string
	s    shape
}{
	{"dense, all zones", shape{facilities: 6, days: 40, snaps: 600, corrections: 100, statuses: 40, zones: zones}},
	{"sparse, all zones", shape{facilities: 8, days: 60, snaps: 80, corrections: 20, statuses: 30, zones: zones}},
	{"zones a day apart", shape{facilities: 3, days: 20, snaps: 300, corrections: 60, statuses: 15, zones: []*time.Location{zones[0], zones[5]}}},
	{"one zone", shape{facilities: 5, days: 30, snaps: 200, corrections: 30, statuses: 20, zones: []*time.Location{almaty}}},
	{"no registry", shape{facilities: 5, days: 30, snaps: 200, corrections: 30, zones: zones}},
	{"empty", shape{facilities: 1, days: 1, zones: zones}},
}

// The property: on every day of a sweep, Cursor.Corrections equals
// History.Corrections of that day, whatever the history and the range
// swept (the processor's per-day loop names a day's corrections from the
// cursor instead of scanning for them).
func TestCursorCorrectionsEqualCorrections(t *testing.T) {
	seen := map[string]bool{}
	rng := rand.New(rand.NewSource(23))
	for _, sh := range sweepShapes {
		t.Run(sh.name, func(t *testing.T) {
			for round := 0; round < 10; round++ {
				h := randomHistory(t, rng, sh.s)
				seen["dates out of order"] = seen["dates out of order"] || datesOutOfOrder(h)
				for _, r := range randomRanges(rng, sh.s.days, 5) {
					c := h.Cursor(r[0], DefaultConfig())
					if c.Corrections() != nil {
						t.Fatalf("corrections before the first Next: %+v", c.Corrections())
					}
					for day := r[0]; day <= r[1]; day++ {
						c.Next()
						got, want := c.Corrections(), h.Corrections(day)
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("round %d, sweep %s..%s, day %s:\n got %+v\nwant %+v", round, r[0], r[1], day, got, want)
						}
						seen["a day with a correction"] = seen["a day with a correction"] || len(got) > 0
						seen["a day with several"] = seen["a day with several"] || len(got) > 1
					}
				}
			}
		})
	}
	for _, name := range []string{"dates out of order", "a day with a correction", "a day with several"} {
		if !seen[name] {
			t.Errorf("the random histories never produce %s: change the seed or the shapes", name)
		}
	}
}

// Add's search for the snapshot of the same day stops where no snapshot of
// that day can be (History.maxOffset). The property: whatever the zones and
// the order of the snapshots, it keeps exactly what the search through the
// unit's whole history kept (a History whose maxOffset is too large to stop
// anywhere).
func TestAddStopsWhereNoSnapshotOfTheDayCanBe(t *testing.T) {
	rng := rand.New(rand.NewSource(29))
	for _, sh := range sweepShapes {
		t.Run(sh.name, func(t *testing.T) {
			for round := 0; round < 10; round++ {
				snaps, _ := randomHistoryInputs(rng, sh.s)
				bounded, whole := &History{}, &History{maxOffset: 1 << 50}
				for _, i := range rng.Perm(len(snaps)) {
					for range 1 + rng.Intn(2) { // some twice
						c1, err1 := bounded.Add(snaps[i])
						c2, err2 := whole.Add(snaps[i])
						if c1 != c2 || (err1 == nil) != (err2 == nil) {
							t.Fatalf("round %d, add %+v: changed %v, %v; the whole search: %v, %v", round, snaps[i], c1, err1, c2, err2)
						}
					}
				}
				if got, want := bounded.Snapshots(), whole.Snapshots(); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: kept\n%+v\nthe whole search kept\n%+v", round, got, want)
				}
			}
		})
	}
}

// The zone caveat by hand: a later snapshot dated a day earlier than the
// one before it is the latest as of both days.
func TestCursorAcrossZoneOffsets(t *testing.T) {
	h := build(t, []Snapshot{
		snap("a", "A", inf, "2021-07-09T12:00:00+05:00", 1, 100, 10),
		snap("b", "A", inf, "2021-07-11T01:00:00+14:00", 2, 100, 20), // 2021-07-10T11:00Z, dated the 11th
		snap("c", "A", inf, "2021-07-10T20:00:00-10:00", 3, 100, 30), // 2021-07-11T06:00Z, dated the 10th
	}, nil)
	cfg := DefaultConfig()
	from := schemas.MustDate("2021-07-08")
	want := []int{0, 10, 30, 30, 0} // occupied beds as of the 8th to the 12th (c is stale by then)
	c := h.Cursor(from, cfg)
	for i, w := range want {
		day := from + schemas.Date(i)
		if c.Day() != day {
			t.Fatalf("Day() = %s, want %s", c.Day(), day)
		}
		got := c.Next()
		if got.Infectious.Occupied != w {
			t.Errorf("%s: occupied %d, want %d", day, got.Infectious.Occupied, w)
		}
		if want := h.AsOf(day, cfg); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cursor %+v, AsOf %+v", day, got, want)
		}
	}
}

func TestSweepEmptyRange(t *testing.T) {
	h := build(t, []Snapshot{daily("a", inf, day0, 100, 10)}, nil)
	h.Sweep(day0+1, day0, DefaultConfig(), func(o Occupancy) { t.Errorf("called for %s", o.Day) })
}

// BenchmarkOccupancySeries measures a series of days' occupancy, as the
// processor computes when it recomputes a region, the old way (AsOf of
// each day) beside a sweep, for 100 facilities reporting 3 bed kinds daily
// over the whole series.
func BenchmarkOccupancySeries(b *testing.B) {
	const facilities = 100
	for _, days := range []int{180, 730} {
		var snaps []Snapshot
		var statuses []FacilityStatus
		for f := 0; f < facilities; f++ {
			id := fmt.Sprintf("Facility-%03d", f)
			for d := day0; d < day0+schemas.Date(days); d++ {
				for _, k := range Kinds {
					snaps = append(snaps, daily(id, k, d, 100, 50))
				}
			}
			statuses = append(statuses, withCapacity(status(id, FacilityOpen, day0, uint64(f)), map[string]int{schemas.BedInfectious: 100}))
			if f%10 == 0 {
				statuses = append(statuses, status(id, FacilityClosed, day0+schemas.Date(days)/2, uint64(facilities+f)))
			}
		}
		h := build(b, snaps, statuses)
		last := day0 + schemas.Date(days) - 1
		cfg := DefaultConfig()
		b.Run(fmt.Sprintf("days=%d/method=asof-per-day", days), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for d := day0; d <= last; d++ {
					_ = h.AsOf(d, cfg)
				}
			}
		})
		b.Run(fmt.Sprintf("days=%d/method=sweep", days), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.Sweep(day0, last, cfg, func(Occupancy) {})
			}
		})
	}
}

// dailyHistory is facilities reporting 3 bed kinds daily for days days from
// day0, with about 1 % of the reports corrected down the next day (so
// nearly every day of a region of 100 facilities has a correction).
func dailyHistory(b *testing.B, facilities, days int) *History {
	rng := rand.New(rand.NewSource(1))
	var h History
	for f := 0; f < facilities; f++ {
		id := fmt.Sprintf("facility-%03d", f)
		for d := day0; d < day0+schemas.Date(days); d++ {
			for _, k := range Kinds {
				s := daily(id, k, d, 100, 50)
				if _, err := h.Add(s); err != nil {
					b.Fatal(err)
				}
				if rng.Intn(100) == 0 {
					s.EventID, s.Seq, s.Occupied = s.EventID+"/fix", s.Seq+1, 40
					if _, err := h.Add(s); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
	return &h
}

// BenchmarkCorrectionsSeries measures the occupancy and the corrections of
// every day of a series, as the processor's per-day loop asks for them when
// it recomputes a region: the old way (a sweep, and History.Corrections of
// each day) beside the cursor's (Cursor.Corrections), for 100 facilities
// reporting 3 bed kinds daily with about 1 % corrected down.
func BenchmarkCorrectionsSeries(b *testing.B) {
	const facilities = 100
	for _, days := range []int{180, 730} {
		h := dailyHistory(b, facilities, days)
		last := day0 + schemas.Date(days) - 1
		cfg := DefaultConfig()
		b.Run(fmt.Sprintf("days=%d/method=corrections-per-day", days), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := h.Cursor(day0, cfg)
				for d := day0; d <= last; d++ {
					c.Next()
					_ = h.Corrections(d)
				}
			}
		})
		b.Run(fmt.Sprintf("days=%d/method=cursor", days), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := h.Cursor(day0, cfg)
				for d := day0; d <= last; d++ {
					c.Next()
					_ = c.Corrections()
				}
			}
		})
	}
}

// BenchmarkAddDaily measures adding a year of daily reports of 100
// facilities × 3 bed kinds in time order, with the search for the day's
// snapshot stopped where none can be (History.maxOffset) and through the
// unit's whole history, as Add searched before.
func BenchmarkAddDaily(b *testing.B) {
	const facilities, days = 100, 365
	var snaps []Snapshot
	for d := day0; d < day0+days; d++ {
		for f := 0; f < facilities; f++ {
			for _, k := range Kinds {
				snaps = append(snaps, daily(fmt.Sprintf("facility-%03d", f), k, d, 100, 50))
			}
		}
	}
	for _, bc := range []struct {
		name      string
		maxOffset int64
	}{{"search=bounded", 0}, {"search=whole-unit", 1 << 50}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := History{maxOffset: bc.maxOffset}
				for _, s := range snaps {
					_, _ = h.Add(s)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(snaps)), "ns/snapshot")
		})
	}
}

// randomRanges are the day ranges a property test sweeps over a random
// history of days days: the whole history and past past days beyond its
// end, then five starting anywhere in that span, some of one day.
func randomRanges(rng *rand.Rand, days, past int) [][2]schemas.Date {
	first := schemas.DateOf(randomStart)
	ranges := [][2]schemas.Date{{first - 3, first + schemas.Date(days+past)}}
	for range 5 {
		from := first - 3 + schemas.Date(rng.Intn(days+past+1))
		ranges = append(ranges, [2]schemas.Date{from, from + schemas.Date(rng.Intn(days))})
	}
	return ranges
}
