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
// O(n × units) plus one pass over the snapshots after its first day.
//
// A Cursor reads its History as it is: it must not be used after the History
// changes (Add, SetFacility). It is not safe for concurrent use, but several
// may read one History at once.
type Cursor struct {
	h      *History
	cfg    Config
	day    schemas.Date   // the day Next computes
	units  []unitCursor   // one per h.keys, in that order
	status []statusCursor // one per facility of h.keys, in that order
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
		list := h.units[k]
		c.units[i] = unitCursor{list: list, next: latestIndex(list, from) + 1}
		tails += len(list) - c.units[i].next
	}
	// The dates of the snapshots after each unit's latest as of from, in
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
	return c.h.occupancy(day, c.cfg,
		func(unit int) *Snapshot { return c.units[unit].at(day) },
		func(f int, _ string) *FacilityStatus { return c.status[f].at(day) })
}

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
	// that start after the cursor's first day's latest snapshot (reversed,
	// because they are computed back from the newest).
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

// at returns the latest snapshot dated on or before day, or nil; day must
// not be before any day asked for earlier or the cursor's first day.
func (u *unitCursor) at(day schemas.Date) *Snapshot {
	for u.next < len(u.list) && u.mins[len(u.list)-1-u.next] <= day {
		u.next++
	}
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
