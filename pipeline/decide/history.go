package decide

import (
	"reflect"
	"sort"

	"github.com/epiwatch/epiwatch/schemas"
)

// history keeps, per region, the latest version of each day's indicator
// record over a bounded window of days. It is pure (no I/O, no clock).
//
// Idempotency key: (region, date). A record replaces the stored one only if
// its Version is higher, so a redelivered or replayed record changes nothing
// and late versions win regardless of arrival order.
//
// The decider rebuilds its window (decide.window_days per region) at start by
// replaying the indicators stream; the durable consumer schemas.ConsumerDecide
// delivers the rest.
type history struct {
	window  int
	regions map[string]*regionHistory
}

type regionHistory struct {
	days   map[schemas.Date]schemas.Indicator
	newest schemas.Date
	// through is the newest data day of any region the processor had when it
	// published the region's records (schemas.HeaderDataThrough), highest
	// seen.
	through schemas.Date
}

func newHistory(windowDays int) *history {
	return &history{window: windowDays, regions: make(map[string]*regionHistory)}
}

// put stores in if it is newer than what is stored for its (region, date),
// and reports whether it did. Days older than the window (counted back from
// the region's newest day) are dropped.
func (h *history) put(in schemas.Indicator) bool {
	rh, ok := h.regions[in.Region]
	if !ok {
		rh = &regionHistory{days: make(map[schemas.Date]schemas.Indicator)}
		h.regions[in.Region] = rh
	}
	if rh.newest != 0 && in.Date <= rh.newest.AddDays(-h.window) {
		return false
	}
	// Of equal versions the later wins (see schemas.Indicator.MsgID), as in
	// ClickHouse's ReplacingMergeTree; an identical redelivery changes nothing.
	if old, ok := rh.days[in.Date]; ok && (old.Version > in.Version || old.Version == in.Version && reflect.DeepEqual(old, in)) {
		return false
	}
	rh.days[in.Date] = in
	if in.Date > rh.newest {
		rh.newest = in.Date
		cut := rh.newest.AddDays(-h.window)
		for d := range rh.days {
			if d <= cut {
				delete(rh.days, d)
			}
		}
	}
	return true
}

// get returns the stored record of a region's day.
func (h *history) get(region string, day schemas.Date) (schemas.Indicator, bool) {
	rh, ok := h.regions[region]
	if !ok {
		return schemas.Indicator{}, false
	}
	in, ok := rh.days[day]
	return in, ok
}

// newest is the region's newest day with a record (0 if none).
func (h *history) newest(region string) schemas.Date {
	if rh, ok := h.regions[region]; ok {
		return rh.newest
	}
	return 0
}

// sawThrough records that a record of region was published when the
// processor's data ran through day (schemas.HeaderDataThrough).
func (h *history) sawThrough(region string, day schemas.Date) {
	rh, ok := h.regions[region]
	if !ok {
		rh = &regionHistory{days: make(map[schemas.Date]schemas.Indicator)}
		h.regions[region] = rh
	}
	rh.through = max(rh.through, day)
}

// through is the newest data day of any region the region's records were
// published with, at least the region's own newest day (a record without
// the header, from an older processor or a test, says nothing more).
func (h *history) through(region string) schemas.Date {
	if rh, ok := h.regions[region]; ok {
		return max(rh.through, rh.newest)
	}
	return 0
}

// oldest is the region's oldest stored day (0 if none).
func (h *history) oldest(region string) schemas.Date {
	rh, ok := h.regions[region]
	if !ok {
		return 0
	}
	var o schemas.Date
	for d := range rh.days {
		if o == 0 || d < o {
			o = d
		}
	}
	return o
}

// latestComplete returns the newest day ≤ upTo whose record is decidable:
// not provisional, or one the configuration decides although provisional
// (decide.use_provisional, a nowcast R with r.nowcast).
func (h *history) latestComplete(region string, upTo schemas.Date, decidable func(*schemas.Indicator) bool) (schemas.Date, bool) {
	rh, ok := h.regions[region]
	if !ok {
		return 0, false
	}
	var best schemas.Date
	for d, in := range rh.days {
		if d <= upTo && d > best && decidable(&in) {
			best = d
		}
	}
	return best, best != 0
}

// codes returns the regions with records, sorted.
func (h *history) codes() []string {
	out := make([]string, 0, len(h.regions))
	for c := range h.regions {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
