package beds

import (
	"math"
	"sort"

	"github.com/epiwatch/epiwatch/schemas"
)

// Cursor yields the occupancy of consecutive days, each equal to History.AsOf
// of that day, for the cost of one pass over the history. AsOf looks each
// unit's latest snapshot up back from the newest, so a series of days from
// the past costs days² × units; a Cursor keeps, per unit and per facility's
// registry entry, an index that only moves forward: n days cost
// O(n × units) plus one pass over the snapshots after the day before its
// first day.
//
// It also reports each day's corrections (Corrections), which it finds
// among the snapshots its indexes pass, instead of History.Corrections'
// scan of every unit's snapshots from the newest back to the day.
//
// A Cursor reads its History as it is: it must not be used after the History
// changes (Add, SetFacility). It is not safe for concurrent use, but several
// may read one History at once.
type Cursor struct {
	h           *History
	cfg         Config
	day         schemas.Date   // the day Next computes
	units       []unitCursor   // one per h.keys, in that order
	status      []statusCursor // one per facility of h.keys, in that order
	corrections []Correction   // dated the day Next computed last
}

// Cursor returns a cursor whose first Next is the occupancy as of the end of
// day from.
func (h *History) Cursor(from schemas.Date, cfg Config) *Cursor {
	c := &Cursor{h: h, cfg: cfg, day: from, units: make([]unitCursor, len(h.keys))}
	tails := 0
	for i, k := range h.keys {
		if i == 0 || h.keys[i-1].facility != k.facility {
			c.status = append(c.status, h.registry.cursor(k.facility, from))
		}
		// Each unit starts as of the day before from, so that its first
		// step, to from, passes the snapshots Corrections(from) looks at.
		list := h.units[k]
		c.units[i] = unitCursor{list: list, next: latestIndex(list, from-1) + 1}
		tails += len(list) - c.units[i].next
	}
	// The dates of the snapshots after each unit's latest as of from-1, in
	// one allocation sized first: grown by append, it cost several times its
	// size on a long series.
	mins := make([]schemas.Date, tails)
	for i := range c.units {
		u := &c.units[i]
		n := len(u.list) - u.next
		u.mins, mins = mins[:n:n], mins[n:]
		u.fill()
	}
	return c
}

// Day returns the day the next call of Next computes.
func (c *Cursor) Day() schemas.Date { return c.day }

// Next returns the occupancy as of the end of c.Day() and moves the cursor
// to the day after.
func (c *Cursor) Next() Occupancy {
	day := c.day
	c.day++
	c.corrections = nil
	for i := range c.units {
		u := &c.units[i]
		passed := u.advance(day)
		for k := range passed {
			if s := &passed[k]; s.CorrectedFrom > s.Occupied && s.Day() == day {
				c.corrections = append(c.corrections, Correction{FacilityID: s.FacilityID, Kind: s.Kind, Time: s.Time, From: s.CorrectedFrom, To: s.Occupied})
			}
		}
	}
	return c.h.occupancy(day, c.cfg,
		func(unit int) *Snapshot { return c.units[unit].latest() },
		func(f int, _ string) *FacilityStatus { return c.status[f].at(day) })
}

// Corrections returns what History.Corrections returns for the day the
// last Next computed (nil before the first Next): the snapshots dated that
// day whose corrections revised occupied beds down, in facility then kind
// order. A sweep finds them in the snapshots its indexes pass, so the
// corrections of every day of a series cost one pass, where
// History.Corrections of each day scans every unit from its newest
// snapshot back to the day (days × snapshots).
//
// Why they are the same: History.Corrections(D) finds, in each unit, the
// snapshot dated D among the snapshots after the last one dated before D
// scanning back from the newest, i.e. in the longest suffix of the unit's
// list whose minimum date is D or later. That suffix starts at the
// unitCursor's index as of D-1 (the first suffix whose minimum date is
// after D-1), and a snapshot dated D sits before the index as of D (its
// suffix's minimum is at most D): it is among the snapshots the step from
// D-1 to D passes. A unit keeps one snapshot per day, so there is at most
// one per unit, and the units are visited in the order of History.keys.
func (c *Cursor) Corrections() []Correction { return c.corrections }

// Sweep calls fn with the occupancy as of the end of every day from from
// through to, in order: AsOf of each, in one pass over the history.
func (h *History) Sweep(from, to schemas.Date, cfg Config, fn func(Occupancy)) {
	if from > to {
		return
	}
	c := h.Cursor(from, cfg)
	for c.Day() <= to {
		fn(c.Next())
	}
}

// unitCursor follows the latest snapshot of one (facility, kind) through
// days that only move forward.
//
// The latest snapshot as of day D is list[i] with the greatest i dated on or
// before D. Dates follow the list's time order except across zone offsets (a
// later snapshot taken further west can be dated a day earlier), so the
// first snapshot dated after D does not end the search: a later one may be
// dated D again. The minimum date of each suffix of the list, though, never
// decreases with the suffix's start, and the latest as of D sits just before
// the first suffix whose minimum date is after D, an index that only moves
// forward with D.
type unitCursor struct {
	list []Snapshot
	// next is the first index of list whose suffix has a minimum date after
	// the day last asked for: the latest snapshot is list[next-1].
	next int
	// mins[k] is the minimum date of list[len(list)-1-k:], for the suffixes
	// that start after the latest snapshot as of the day before the
	// cursor's first day (reversed, because they are computed back from the
	// newest).
	mins []schemas.Date
}

// fill sets u.mins for the snapshots after u.next, back from the newest.
func (u *unitCursor) fill() {
	m := schemas.Date(math.MaxInt32)
	for k := range u.mins {
		m = min(m, u.list[len(u.list)-1-k].Day())
		u.mins[k] = m
	}
}

// advance moves u to day and returns the snapshots it passed; day must not
// be before any day asked for earlier or the day before the cursor's first
// day.
func (u *unitCursor) advance(day schemas.Date) (passed []Snapshot) {
	from := u.next
	for u.next < len(u.list) && u.mins[len(u.list)-1-u.next] <= day {
		u.next++
	}
	return u.list[from:u.next]
}

// latest returns the latest snapshot dated on or before the day u was last
// advanced to, or nil.
func (u *unitCursor) latest() *Snapshot {
	if u.next == 0 {
		return nil
	}
	return &u.list[u.next-1]
}

// statusCursor follows a facility's status event in effect through days
// that only move forward.
type statusCursor struct {
	events []FacilityStatus // sorted by Effective, one per day
	next   int              // events[:next] are effective by the day last asked for
}

// cursor returns a statusCursor for facility positioned at day.
func (r *registry) cursor(facility string, day schemas.Date) statusCursor {
	list := r.events[facility]
	return statusCursor{events: list, next: sort.Search(len(list), func(i int) bool { return list[i].Effective > day })}
}

// at returns the status event in effect on day, or nil; day must not be
// before any day asked for earlier or the cursor's first day.
func (s *statusCursor) at(day schemas.Date) *FacilityStatus {
	for s.next < len(s.events) && s.events[s.next].Effective <= day {
		s.next++
	}
	if s.next == 0 {
		return nil
	}
	return &s.events[s.next-1]
}
