// Package beds computes hospital bed occupancy per region from facility
// snapshots: ПЗК (the plan's infectious-bed occupancy, in percent) with ICU
// and provisional-bed occupancy beside it, and the facilities left out of it
// and why: reports too old to count (stale), closed in the facility registry,
// or silent so long that they are presumed closed.
//
// The package is pure: snapshots and the day in, occupancy out. It reads no
// clock ("as of" is a parameter), does no I/O and starts no goroutines, so the
// processor's results can be recomputed and checked from the inputs alone. The
// rules of what counts are listed in one place, at History.AsOf.
package beds

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// DefaultMaxAge is how old a facility's latest snapshot may be before the
// facility is stale: two days, because the Kyrgyz operational HQ asks for a
// daily-updated register of free beds (source 000), so one missed daily
// report is tolerated and two are not.
const DefaultMaxAge = 48 * time.Hour

// DefaultPresumedClosedAfter is how long a facility may be silent before it
// is presumed closed instead of stale: 14 days. Two weeks without a single
// report from a facility that should report daily (source 000) is no longer
// a late report but a facility that has closed or changed its id; an
// operator confirms with a status event (History.SetFacility). Until then
// the facility is stale and blocks easing, so the value trades how long one
// dead facility can block easing against how long a facility with a
// reporting outage is still chased. A policy choice, not from the plan.
const DefaultPresumedClosedAfter = 14 * 24 * time.Hour

// Config holds the occupancy rules that are a matter of policy.
type Config struct {
	// MaxAge is the largest age, at the end of the day computed, of a
	// facility's latest snapshot that still counts. Older is stale.
	MaxAge time.Duration `json:"max_age" mapstructure:"max_age"`
	// PresumedClosedAfter is the age, at the end of the day computed, of a
	// facility's latest snapshot beyond which the facility is presumed
	// closed: neither counted nor stale. It must exceed MaxAge (Validate);
	// AsOf given a Config where it does not (such as a literal that leaves it
	// 0) presumes nothing closed, so a forgotten setting keeps silent
	// facilities stale, blocking easing, rather than silently dropping them.
	PresumedClosedAfter time.Duration `json:"presumed_closed_after" mapstructure:"presumed_closed_after"`
}

// DefaultConfig returns MaxAge = DefaultMaxAge and PresumedClosedAfter =
// DefaultPresumedClosedAfter.
func DefaultConfig() Config {
	return Config{MaxAge: DefaultMaxAge, PresumedClosedAfter: DefaultPresumedClosedAfter}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.MaxAge <= 0 {
		return fmt.Errorf("beds: max_age must be positive, got %s (a facility is stale when its latest snapshot is older than this; default %s)", c.MaxAge, DefaultMaxAge)
	}
	if c.PresumedClosedAfter <= c.MaxAge {
		return fmt.Errorf("beds: presumed_closed_after (%s) must exceed max_age (%s): a silent facility is stale between the two and presumed closed after presumed_closed_after; set presumed_closed_after (default %s)", c.PresumedClosedAfter, c.MaxAge, DefaultPresumedClosedAfter)
	}
	return nil
}

// presumes reports whether c presumes silent facilities closed at all; see
// PresumedClosedAfter.
func (c Config) presumes() bool { return c.PresumedClosedAfter > c.MaxAge }

// Kinds lists the bed kinds in a stable order.
var Kinds = []string{schemas.BedInfectious, schemas.BedICU, schemas.BedProvisional}

// Snapshot is one report of a facility's beds of one kind.
type Snapshot struct {
	EventID    string
	FacilityID string
	Kind       string // schemas.BedInfectious, BedICU or BedProvisional
	Time       time.Time
	// Seq is the snapshot's sequence in the events stream (0 when unknown);
	// it breaks ties between snapshots with the same Time in favour of the
	// one that arrived later, i.e. the correction.
	Seq      uint64
	Total    int
	Occupied int
	// CorrectedFrom is the most occupied beds reported by a snapshot of the
	// same facility, kind and time that this one replaced as a correction (0:
	// none). Above Occupied, the correction revised the count down.
	CorrectedFrom int
}

// Correction is a snapshot whose correction revised occupied beds down.
type Correction struct {
	FacilityID, Kind string
	Time             time.Time
	From, To         int // occupied beds before and after
}

// Day returns the calendar day of the snapshot in its own time zone.
func (s Snapshot) Day() schemas.Date { return schemas.DateOf(s.Time) }

// Supersedes reports whether s replaces o as the latest report of the same
// facility and kind: a later snapshot time, then a later stream sequence,
// then a greater event_id.
func (s Snapshot) Supersedes(o Snapshot) bool {
	if !s.Time.Equal(o.Time) {
		return s.Time.After(o.Time)
	}
	if s.Seq != o.Seq {
		return s.Seq > o.Seq
	}
	return s.EventID > o.EventID
}

// ageAt returns how old s is at the end of day d (the midnight after d in the
// snapshot's own zone). The arithmetic uses the zone offset only, so a time
// read back from JSON or a checkpoint gives the same answer as the original.
func (s Snapshot) ageAt(d schemas.Date) time.Duration {
	_, off := s.Time.Zone()
	end := time.Unix(int64(d+1)*86400-int64(off), 0)
	return end.Sub(s.Time)
}

// Count is the occupancy of one bed kind in one region.
type Count struct {
	Facilities int // fresh facilities reporting this kind
	Total      int
	Occupied   int
}

// Pct returns occupied/total in percent; ok is false when there are no beds
// (no fresh report), which is "not available", not 0 %.
func (c Count) Pct() (pct float64, ok bool) {
	if c.Total <= 0 {
		return 0, false
	}
	return 100 * float64(c.Occupied) / float64(c.Total), true
}

// Stale is a (facility, kind) left out of the totals because its latest
// snapshot is too old (Occupancy.Stale), or so old that the facility is
// presumed closed (Occupancy.PresumedClosed).
type Stale struct {
	FacilityID string
	Kind       string
	Last       time.Time     // time of its latest snapshot
	Age        time.Duration // at the end of the day computed
}

// Occupancy is the bed situation of one region as of the end of one day.
type Occupancy struct {
	Day         schemas.Date
	Infectious  Count // ПЗК's numerator and denominator
	ICU         Count
	Provisional Count
	// Stale lists every stale (facility, kind), sorted by facility, then by
	// kind in the order of Kinds.
	Stale []Stale
	// PresumedClosed lists every (facility, kind) silent for longer than
	// Config.PresumedClosedAfter, sorted like Stale. Not counted, not stale.
	PresumedClosed []Stale
	// Closed lists the facilities closed in the registry as of Day that have
	// a snapshot dated on or before Day (the ones left out because closed),
	// sorted and distinct.
	Closed []string
	// Unknown lists the facilities, sorted and distinct, that have a counted
	// or stale bed kind but no status event effective by Day while the
	// registry is in use. They are counted all the same.
	Unknown []string
	// OverCapacity lists the facilities, sorted and distinct, with a counted
	// bed kind whose Total exceeds the capacity registered for that kind.
	OverCapacity []string
}

// Kind returns the count of one bed kind (zero for an unknown kind).
func (o *Occupancy) Kind(kind string) Count {
	switch kind {
	case schemas.BedInfectious:
		return o.Infectious
	case schemas.BedICU:
		return o.ICU
	case schemas.BedProvisional:
		return o.Provisional
	}
	return Count{}
}

func (o *Occupancy) count(kind string) *Count {
	switch kind {
	case schemas.BedInfectious:
		return &o.Infectious
	case schemas.BedICU:
		return &o.ICU
	case schemas.BedProvisional:
		return &o.Provisional
	}
	return nil
}

// StaleFacilities returns how many distinct facilities have at least one
// stale bed kind.
func (o *Occupancy) StaleFacilities() int { return distinctFacilities(o.Stale) }

// PresumedClosedFacilities returns how many distinct facilities have at
// least one bed kind presumed closed.
func (o *Occupancy) PresumedClosedFacilities() int { return distinctFacilities(o.PresumedClosed) }

// distinctFacilities counts the facilities of units sorted by facility.
func distinctFacilities(units []Stale) int {
	n := 0
	for i, s := range units {
		if i == 0 || units[i-1].FacilityID != s.FacilityID {
			n++
		}
	}
	return n
}

// Compute returns the occupancy as of the end of day from snapshots given in
// any order; duplicates and superseded snapshots are harmless.
func Compute(snaps []Snapshot, day schemas.Date, cfg Config) Occupancy {
	var h History
	for _, s := range snaps {
		h.Add(s)
	}
	return h.AsOf(day, cfg)
}

// ErrUnknownKind is returned by History.Add for a bed kind outside Kinds.
var ErrUnknownKind = errors.New("beds: unknown bed kind")

type unitKey struct{ facility, kind string }

// History keeps, per (facility, kind), the winning snapshot of each local day:
// the only ones that can ever be "latest as of" some day. Adding is idempotent
// and order-independent (the key is (facility, kind, local day), the winner is
// the maximum under Supersedes), so History is a function of the set of
// snapshots added. It also holds the facility registry (SetFacility), kept
// the same way. The zero value is empty and ready to use.
type History struct {
	units map[unitKey][]Snapshot // sorted by Supersedes order, oldest first
	keys  []unitKey              // the keys of units, sorted by facility then kind
	// maxOffset is the largest zone offset, in seconds east or west of UTC,
	// of any snapshot added: a snapshot dated day D was taken no earlier
	// than midnight starting D less maxOffset, which bounds how far back Add
	// looks for the snapshot of a day. It only ever grows, and decides
	// nothing but where that search stops.
	maxOffset int64

	registry registry
}

// Add records s, its FacilityID normalised (NormalizeID), and reports
// whether any "as of" answer can have changed (false for a duplicate or a
// snapshot superseded on its own day).
func (h *History) Add(s Snapshot) (changed bool, err error) {
	s.FacilityID = NormalizeID(s.FacilityID)
	if s.FacilityID == "" {
		return false, errors.New("beds: snapshot without facility_id")
	}
	switch s.Kind {
	case schemas.BedInfectious, schemas.BedICU, schemas.BedProvisional:
	default:
		return false, fmt.Errorf("%w %q", ErrUnknownKind, s.Kind)
	}
	if h.units == nil {
		h.units = make(map[unitKey][]Snapshot)
	}
	k := unitKey{s.FacilityID, s.Kind}
	list, known := h.units[k]
	if !known {
		i := sort.Search(len(h.keys), func(i int) bool { return !keyLess(h.keys[i], k) })
		h.keys = append(h.keys, unitKey{})
		copy(h.keys[i+1:], h.keys[i:])
		h.keys[i] = k
	}
	day := s.Day()
	_, off := s.Time.Zone()
	h.maxOffset = max(h.maxOffset, int64(off), -int64(off))
	// The list is in time order and a snapshot dated day is no older than
	// earliest (see maxOffset), so the search back from the newest stops
	// there: a snapshot added in time order looks at one or two, not at
	// the unit's whole history.
	earliest := int64(day)*86400 - h.maxOffset
	for i := len(list) - 1; i >= 0; i-- {
		o := &list[i]
		if o.Time.Unix() < earliest {
			break
		}
		if o.Day() != day {
			continue
		}
		// Corrections of one report (same time) remember the most occupied
		// beds any version of it reported, whichever arrives first, so
		// CorrectedFrom is a function of the set of snapshots.
		same := s.Time.Equal(o.Time)
		if same && s.EventID == o.EventID && s.Seq == o.Seq && s.Total == o.Total && s.Occupied == o.Occupied {
			// The same snapshot again (a redelivery, or a checkpoint read
			// back): only what it knew of corrections can add anything.
			if s.CorrectedFrom > o.CorrectedFrom {
				o.CorrectedFrom = s.CorrectedFrom
				return true, nil
			}
			return false, nil
		}
		if !s.Supersedes(*o) {
			if same && max(s.Occupied, s.CorrectedFrom) > o.CorrectedFrom {
				o.CorrectedFrom = max(s.Occupied, s.CorrectedFrom)
				return true, nil
			}
			return false, nil
		}
		if same {
			s.CorrectedFrom = max(s.CorrectedFrom, o.Occupied, o.CorrectedFrom)
		}
		list = append(list[:i], list[i+1:]...)
		break
	}
	// Insert keeping the Supersedes order.
	i := sort.Search(len(list), func(i int) bool { return list[i].Supersedes(s) })
	list = append(list, Snapshot{})
	copy(list[i+1:], list[i:])
	list[i] = s
	h.units[k] = list
	return true, nil
}

// Corrected reports whether the winning snapshot of facility's kind on day
// is a correction that revised occupied beds down. The facility id is
// normalised first, like Add's.
func (h *History) Corrected(facility, kind string, day schemas.Date) bool {
	list := h.units[unitKey{NormalizeID(facility), kind}]
	for i := len(list) - 1; i >= 0; i-- {
		if d := list[i].Day(); d == day {
			return list[i].CorrectedFrom > list[i].Occupied
		} else if d < day {
			break
		}
	}
	return false
}

// Corrections returns the snapshots dated day (their own local day) whose
// corrections revised occupied beds down, in facility then kind order.
func (h *History) Corrections(day schemas.Date) []Correction {
	var out []Correction
	for _, k := range h.keys {
		list := h.units[k]
		for i := len(list) - 1; i >= 0; i-- {
			s := &list[i]
			if d := s.Day(); d < day {
				break
			} else if d == day && s.CorrectedFrom > s.Occupied {
				out = append(out, Correction{FacilityID: s.FacilityID, Kind: s.Kind, Time: s.Time, From: s.CorrectedFrom, To: s.Occupied})
			}
		}
	}
	return out
}

// Len returns how many snapshots are kept.
func (h *History) Len() int {
	n := 0
	for _, l := range h.units {
		n += len(l)
	}
	return n
}

// Snapshots returns every kept snapshot sorted by facility, kind, then time:
// enough to rebuild an equal History (checkpoints).
func (h *History) Snapshots() []Snapshot {
	var out []Snapshot
	for _, k := range h.keys {
		out = append(out, h.units[k]...)
	}
	return out
}

func keyLess(a, b unitKey) bool {
	if a.facility != b.facility {
		return a.facility < b.facility
	}
	return kindRank(a.kind) < kindRank(b.kind)
}

func kindRank(k string) int {
	for i, kk := range Kinds {
		if kk == k {
			return i
		}
	}
	return len(Kinds)
}

// AsOf returns the occupancy at the end of day.
//
// The rules, in one place:
//
//   - Facility ids are normalised (NormalizeID) before anything else: trimmed,
//     lower-cased, and every run of white space, '_' and '-' becomes one '-',
//     so "Almaty-IH-7", " almaty ih 7 " and "almaty_ih_7" are one facility.
//     Everything the package returns carries the normalised id.
//   - A snapshot belongs to the calendar day of its own time zone (the
//     facility's clock), like schemas.Event.Date.
//   - As of day D, each (facility, bed kind) counts with its latest snapshot
//     dated on or before D. "Latest" orders by snapshot time, then by arrival
//     order in the events stream (Seq: a correction re-sent for the same
//     snapshot time arrives later and wins), then by event_id, so the choice
//     is total and deterministic whatever order snapshots are added in.
//   - A (facility, kind) whose latest snapshot is older than Config.MaxAge at
//     the end of day D (midnight after D, in the snapshot's own zone) is
//     stale: it is left out of the totals and listed in Occupancy.Stale,
//     never silently carried forward.
//   - A (facility, kind) whose latest snapshot is older than
//     Config.PresumedClosedAfter at the end of day D is presumed closed: left
//     out of the totals, not stale, and listed in Occupancy.PresumedClosed.
//     Stale blocks easing downstream; a facility that stopped reporting must
//     not block it forever. A facility whose status event in effect is "open"
//     is presumed closed only once PresumedClosedAfter has also passed since
//     the start of that event's Effective day: an operator's word outranks a
//     presumption.
//   - The facility registry (History.SetFacility) holds status events. A
//     facility's status as of D is that of its event with the latest
//     Effective day <= D (per day, the higher Seq, then the greater event_id
//     wins). A facility closed as of D is neither counted nor stale nor
//     presumed closed, and is listed in Occupancy.Closed; re-opened, it
//     counts again from its re-opening day if its snapshots are fresh.
//   - Once the registry is in use as of D (some status event has Effective <=
//     D), a facility that reports but has no status event effective by D is
//     unknown: still counted (leaving it out could understate occupancy) and
//     listed in Occupancy.Unknown, unless all its kinds are presumed closed
//     (so one mistyped id is not listed forever). Without a registry nothing
//     is unknown.
//   - Registered capacity is informational: a counted Total above the
//     capacity the status event in effect gives for that kind lists the
//     facility in Occupancy.OverCapacity (likely a mistyped report).
func (h *History) AsOf(day schemas.Date, cfg Config) Occupancy {
	return h.occupancy(day, cfg,
		func(unit int) *Snapshot { return latestAsOf(h.units[h.keys[unit]], day) },
		func(_ int, facility string) *FacilityStatus { return h.registry.asOf(facility, day) })
}

// occupancy applies the rules listed at AsOf to day. It asks latestOf for
// the latest snapshot as of day of each unit (by its index in h.keys; nil:
// none) and statusOf for the status event in effect on day of each facility
// (by its index in facility order, and its id; nil: none): AsOf and Cursor
// find those differently but must share the rules.
func (h *History) occupancy(day schemas.Date, cfg Config, latestOf func(unit int) *Snapshot, statusOf func(f int, facility string) *FacilityStatus) Occupancy {
	o := Occupancy{Day: day}
	registryInUse := h.registry.inUse(day)
	presume := cfg.presumes()
	// Keys are sorted by facility, so each facility's kinds are one run and
	// the facility lists come out sorted and distinct.
	for f, i := 0, 0; i < len(h.keys); f++ {
		facility := h.keys[i].facility
		j := i + 1
		for j < len(h.keys) && h.keys[j].facility == facility {
			j++
		}
		status := statusOf(f, facility) // nil: no status event effective by day
		var reported, inPlay, over bool
		for u := i; u < j; u++ {
			k := h.keys[u]
			latest := latestOf(u)
			if latest == nil {
				continue
			}
			reported = true
			if status != nil && status.Status == FacilityClosed {
				continue
			}
			age := latest.ageAt(day)
			if presume && age > cfg.PresumedClosedAfter && !openedWithin(status, day, cfg.PresumedClosedAfter) {
				o.PresumedClosed = append(o.PresumedClosed, Stale{FacilityID: k.facility, Kind: k.kind, Last: latest.Time, Age: age})
				continue
			}
			inPlay = true
			if age > cfg.MaxAge {
				o.Stale = append(o.Stale, Stale{FacilityID: k.facility, Kind: k.kind, Last: latest.Time, Age: age})
				continue
			}
			c := o.count(k.kind)
			c.Facilities++
			c.Total += latest.Total
			c.Occupied += latest.Occupied
			if status != nil {
				if capacity, ok := status.Capacity[k.kind]; ok && latest.Total > capacity {
					over = true
				}
			}
		}
		switch {
		case status != nil && status.Status == FacilityClosed:
			if reported {
				o.Closed = append(o.Closed, facility)
			}
		case status == nil && registryInUse && inPlay:
			o.Unknown = append(o.Unknown, facility)
		}
		if over {
			o.OverCapacity = append(o.OverCapacity, facility)
		}
		i = j
	}
	return o
}

// latestAsOf returns the latest snapshot of list dated on or before day, or
// nil.
func latestAsOf(list []Snapshot, day schemas.Date) *Snapshot {
	if i := latestIndex(list, day); i >= 0 {
		return &list[i]
	}
	return nil
}

// latestIndex returns the index of the latest snapshot of list dated on or
// before day, or -1. The list is in time order and dates follow time except
// across zone offsets, so it scans back from the newest.
func latestIndex(list []Snapshot, day schemas.Date) int {
	i := len(list) - 1
	for i >= 0 && list[i].Day() > day {
		i--
	}
	return i
}

// openedWithin reports whether status is an "open" event whose Effective
// day began no more than d before the end of day: the operator said the
// facility is open recently enough that its silence is not yet long enough
// to presume it closed. Whole days, because Effective has no time zone.
func openedWithin(status *FacilityStatus, day schemas.Date, d time.Duration) bool {
	if status == nil || status.Status != FacilityOpen {
		return false
	}
	return time.Duration(day-status.Effective+1)*24*time.Hour <= d
}
