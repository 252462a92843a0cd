package beds

import (
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/epiwatch/epiwatch/schemas"
)

// NormalizeID returns the canonical form of a facility id: white space
// trimmed, lower-cased, and every run of white space, '_' and '-' collapsed
// into one '-'. Facility ids are typed by hand in many registers, so
// "Almaty-IH-7", " almaty ih 7 " and "almaty_ih_7" must be one facility, not
// three of which two look silent.
func NormalizeID(id string) string {
	if isNormalID(id) {
		return id // the common case: no allocation on every snapshot
	}
	id = strings.ToLower(strings.TrimSpace(id))
	var b strings.Builder
	b.Grow(len(id))
	sep := false
	for _, r := range id {
		if r == '_' || r == '-' || unicode.IsSpace(r) {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		b.WriteRune(r)
	}
	if sep { // a trailing '_' or '-' (trailing white space was trimmed)
		b.WriteByte('-')
	}
	return b.String()
}

// isNormalID reports whether id is ASCII already in NormalizeID's form.
func isNormalID(id string) bool {
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 0x80, c >= 'A' && c <= 'Z', c == '_', c == ' ', c >= '\t' && c <= '\r':
			return false
		case c == '-' && i > 0 && id[i-1] == '-':
			return false
		}
	}
	return true
}

// Facility statuses of a FacilityStatus event.
const (
	FacilityOpen   = "open"
	FacilityClosed = "closed"
)

// ErrUnknownStatus is returned by History.SetFacility for a status other than
// FacilityOpen and FacilityClosed.
var ErrUnknownStatus = errors.New("beds: unknown facility status")

// FacilityStatus is one event of the facility registry: from Effective on,
// the facility is open or closed, until a status event with a later
// Effective day.
type FacilityStatus struct {
	FacilityID string
	Status     string       // FacilityOpen or FacilityClosed
	Effective  schemas.Date // the day the status takes effect
	EventID    string
	// Seq is the event's sequence in the events stream (0 when unknown); of
	// two events for the same facility and Effective day, the later one (the
	// correction) wins.
	Seq  uint64
	Name string
	// Capacity maps a bed kind to the facility's beds of that kind
	// (optional). Informational: it only feeds Occupancy.OverCapacity.
	Capacity map[string]int
}

// supersedes reports whether f replaces o for the same facility and
// Effective day: a later stream sequence, then a greater event_id. The last
// resort compares the contents, so that even two different events sharing
// event_id and seq (malformed input) give an answer independent of arrival
// order.
func (f FacilityStatus) supersedes(o FacilityStatus) bool {
	if f.Seq != o.Seq {
		return f.Seq > o.Seq
	}
	if f.EventID != o.EventID {
		return f.EventID > o.EventID
	}
	return f.content() > o.content()
}

// content is a canonical encoding of what f says, for supersedes.
func (f FacilityStatus) content() string {
	var b strings.Builder
	b.WriteString(f.Status)
	b.WriteByte(0)
	b.WriteString(f.Name)
	for _, k := range Kinds {
		if n, ok := f.Capacity[k]; ok {
			b.WriteByte(0)
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(strconv.Itoa(n))
		}
	}
	return b.String()
}

// registry keeps, per facility, the winning status event of each Effective
// day: a function of the set of events added, like History's snapshots.
type registry struct {
	events map[string][]FacilityStatus // by normalised facility id; sorted by Effective, one per day
	// first is the earliest Effective day of any kept event (0: none). Kept
	// events are only ever replaced by one of the same day, so it only moves
	// back.
	first schemas.Date
}

// inUse reports whether the region uses a registry as of day: some status
// event is effective by then.
func (r *registry) inUse(day schemas.Date) bool { return r.first != 0 && r.first <= day }

// asOf returns the facility's status event in effect on day, or nil.
func (r *registry) asOf(facility string, day schemas.Date) *FacilityStatus {
	c := r.cursor(facility, day)
	return c.at(day)
}

// SetFacility records a status event of the facility registry, its
// FacilityID normalised (NormalizeID), and reports whether it changed the
// registry (false for a duplicate or an event superseded on its Effective
// day). Like Add it is idempotent and order-independent: the key is
// (facility, Effective), the winner the higher Seq, then the greater
// EventID. Capacity is copied, so the caller may reuse its map.
func (h *History) SetFacility(f FacilityStatus) (changed bool, err error) {
	f.FacilityID = NormalizeID(f.FacilityID)
	if f.FacilityID == "" {
		return false, fmt.Errorf("beds: facility status event %q without facility_id", f.EventID)
	}
	switch f.Status {
	case FacilityOpen, FacilityClosed:
	default:
		return false, fmt.Errorf("%w %q for facility %s (want %q or %q)", ErrUnknownStatus, f.Status, f.FacilityID, FacilityOpen, FacilityClosed)
	}
	if f.Effective.IsZero() {
		return false, fmt.Errorf("beds: status %s of facility %s without an effective day", f.Status, f.FacilityID)
	}
	var capacity map[string]int
	for kind, n := range f.Capacity {
		if kindRank(kind) == len(Kinds) {
			return false, fmt.Errorf("%w %q in the capacity of facility %s", ErrUnknownKind, kind, f.FacilityID)
		}
		if n < 0 {
			return false, fmt.Errorf("beds: capacity of facility %s for %s beds is negative (%d)", f.FacilityID, kind, n)
		}
		if capacity == nil {
			capacity = make(map[string]int, len(f.Capacity))
		}
		capacity[kind] = n
	}
	f.Capacity = capacity

	r := &h.registry
	if r.events == nil {
		r.events = make(map[string][]FacilityStatus)
	}
	list := r.events[f.FacilityID]
	i := sort.Search(len(list), func(i int) bool { return list[i].Effective >= f.Effective })
	if i < len(list) && list[i].Effective == f.Effective {
		if !f.supersedes(list[i]) {
			return false, nil
		}
		list[i] = f
		return true, nil
	}
	list = append(list, FacilityStatus{})
	copy(list[i+1:], list[i:])
	list[i] = f
	r.events[f.FacilityID] = list
	if r.first == 0 || f.Effective < r.first {
		r.first = f.Effective
	}
	return true, nil
}

// Facilities returns every kept status event sorted by facility, then
// Effective, then Seq: with Snapshots, enough to rebuild an equal History
// (checkpoints). The Capacity maps are copies.
func (h *History) Facilities() []FacilityStatus {
	ids := make([]string, 0, len(h.registry.events))
	n := 0
	for id, list := range h.registry.events {
		ids = append(ids, id)
		n += len(list)
	}
	if n == 0 {
		return nil
	}
	sort.Strings(ids)
	out := make([]FacilityStatus, 0, n)
	for _, id := range ids {
		for _, f := range h.registry.events[id] {
			f.Capacity = maps.Clone(f.Capacity)
			out = append(out, f)
		}
	}
	return out
}
