package process

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/beds"
	"github.com/epiwatch/epiwatch/schemas"
)

// idKey is a 128-bit digest (SHA-256, truncated) of an identifier: an
// event_id or a person's pseudonym. Sixteen bytes instead of the string keep
// the seen-set and the checkpoint small; a collision is practically
// impossible (about 2^-64 for 10^10 identifiers) and cannot be provoked on
// purpose without breaking SHA-256.
type idKey [16]byte

func keyOf(s string) idKey {
	sum := sha256.Sum256([]byte(s))
	var k idKey
	copy(k[:], sum[:16])
	return k
}

// Event-type ordinals, for the per-type "first day with data".
const (
	tCase = iota
	tContact
	tLabTest
	tBedSnapshot
	tVaccination
	nTypes
)

func typeIndex(t schemas.EventType) int {
	switch t {
	case schemas.TypeCase:
		return tCase
	case schemas.TypeContact:
		return tContact
	case schemas.TypeLabTest:
		return tLabTest
	case schemas.TypeBedSnapshot:
		return tBedSnapshot
	case schemas.TypeVaccination:
		return tVaccination
	}
	return -1
}

// dayRow holds what a region's events contributed to one day. Every count is
// derived from the set of distinct events (keyed by event_id), so applying an
// event twice cannot change it.
type dayRow struct {
	casesLocal, casesImported int32 // confirmed cases by report date
	onsetLocal, onsetImported int32 // confirmed cases by onset date
	tests, testsPositive      int32 // conclusive PCR and antigen tests by sample date
	contacts, contactsBecame  int32 // contacts by contact date; those whose contact person became a case
	vaxFirst                  [3]int32
	// delaySum and delayN: of the confirmed cases reported on this day with
	// an onset date, the sum of their onset-to-report delays (days, capped at
	// maxDelay) and their number; a backlog dump reports old cases.
	delaySum, delayN int32
	// bedCorrections: bed snapshots of the day whose correction revised
	// occupied beds down (beds.Snapshot.CorrectedFrom).
	bedCorrections int32
	// seq is the highest events-stream sequence among the distinct events
	// that changed this day, ts its JetStream timestamp (Unix ns). The
	// version of an indicator is the highest seq over the days it depends on.
	seq uint64
	ts  int64
}

type contactRef struct {
	date   schemas.Date
	became bool
}

type vaxKey struct {
	person idKey
	dose   uint8 // 0: dose 1, 1: dose 2, 2: dose 3 or later
}

// regionState is everything the processor keeps about one region. It is a
// function of the set of distinct events applied (the idempotency key is the
// event_id, held in seen), not of how often or in which batches they arrived.
type regionState struct {
	code  string
	base  schemas.Date // the day of days[0]
	days  []dayRow
	first [nTypes]schemas.Date // earliest day with an event of each type (0: none yet)

	seen map[idKey]struct{} // event_ids applied: the idempotency key

	beds beds.History
	// Contacts who became cases, matched within the region by pseudonym.
	caseDates  map[idKey][]schemas.Date // person → report dates of their confirmed cases
	contactsOf map[idKey][]contactRef   // contact person → their contacts
	// Vaccination coverage counts persons: the earliest event of each
	// (person, dose group) counts on its day.
	vax map[vaxKey]schemas.Date
	// Reporting delays in days (the last bucket holds maxDelay and more):
	// confirmed cases from onset to report date, conclusive tests from sample
	// to result date.
	caseDelay, testDelay delays

	// dirtyFrom is the earliest day whose indicators changed since they were
	// last published (0: none); changed says the region must be checkpointed.
	dirtyFrom schemas.Date
	changed   bool
	// horizon is the provisional horizon in days (engine.setHorizons);
	// provFrom the first provisional day at the last publication (0: not
	// known yet). Both follow from the state; neither is checkpointed.
	horizon  int
	provFrom schemas.Date
}

func newRegionState(code string) *regionState {
	return &regionState{
		code:       code,
		seen:       make(map[idKey]struct{}),
		caseDates:  make(map[idKey][]schemas.Date),
		contactsOf: make(map[idKey][]contactRef),
		vax:        make(map[vaxKey]schemas.Date),
	}
}

// last returns the region's last day with data (0 when it has none).
func (r *regionState) last() schemas.Date {
	if len(r.days) == 0 {
		return 0
	}
	return r.base + schemas.Date(len(r.days)-1)
}

// row returns the row of day d, growing the series as needed.
func (r *regionState) row(d schemas.Date) *dayRow {
	switch {
	case len(r.days) == 0:
		r.base = d
		r.days = append(r.days, dayRow{})
	case d < r.base:
		grow := int(r.base - d)
		nd := make([]dayRow, grow+len(r.days), grow+cap(r.days))
		copy(nd[grow:], r.days)
		r.days, r.base = nd, d
	case int(d-r.base) >= len(r.days):
		for int(d-r.base) >= len(r.days) {
			r.days = append(r.days, dayRow{})
		}
	}
	return &r.days[d-r.base]
}

// at returns day d's row, or a zero row outside the series.
func (r *regionState) at(d schemas.Date) *dayRow {
	if d < r.base || int(d-r.base) >= len(r.days) {
		return &zeroRow
	}
	return &r.days[d-r.base]
}

var zeroRow dayRow

// touch records that the event (seq, ts) changed day d.
func (r *regionState) touch(d schemas.Date, seq uint64, ts int64) *dayRow {
	row := r.row(d)
	if seq > row.seq {
		row.seq, row.ts = seq, ts
	}
	if r.dirtyFrom == 0 || d < r.dirtyFrom {
		r.dirtyFrom = d
	}
	r.changed = true
	return row
}

// errPermanent marks an event the processor can never apply; the consumer
// dead-letters it.
type errPermanent struct{ msg string }

func (e errPermanent) Error() string { return e.msg }

func permanentf(format string, args ...any) error { return errPermanent{fmt.Sprintf(format, args...)} }

// decodeEvent decodes and checks what the processor relies on. Ingest
// validated the event already; these checks guard the state against a message
// that did not come through ingest. Dates may not be after the day after the
// event reached JetStream (ts): the same one-day tolerance as ingest, but
// against the message's own timestamp, so replays are judged like the
// original run. dec is the caller's: decoding is most of what applying an
// event allocates.
func decodeEvent(dec *schemas.EventDecoder, data []byte, ts time.Time) (*schemas.Event, error) {
	e, err := dec.Unmarshal(data)
	if err != nil {
		return nil, permanentf("decode event: %v", err)
	}
	switch {
	case e.EventID == "":
		return nil, permanentf("event without event_id")
	case !e.Type.Valid():
		return nil, permanentf("event %s: unknown type %q", e.EventID, e.Type)
	case e.Region == "":
		return nil, permanentf("event %s: no region", e.EventID)
	}
	if e.Type == schemas.TypeBedSnapshot {
		switch {
		case e.SnapshotTime == nil || e.Total == nil || e.Occupied == nil || e.FacilityID == "":
			return nil, permanentf("bed snapshot %s: facility_id, snapshot_time, total and occupied are required", e.EventID)
		case *e.Total < 0 || *e.Occupied < 0 || *e.Occupied > *e.Total:
			return nil, permanentf("bed snapshot %s: %d occupied of %d beds", e.EventID, *e.Occupied, *e.Total)
		}
		// Keep only the zone offset: the day and the staleness of a snapshot
		// then compute the same from JSON and from a checkpoint.
		_, off := e.SnapshotTime.Zone()
		t := e.SnapshotTime.In(time.FixedZone("", off))
		e.SnapshotTime = &t
	}
	latest := schemas.DateOf(ts.UTC()).AddDays(1)
	d := e.Date()
	switch {
	case d.IsZero():
		return nil, permanentf("event %s: no date", e.EventID)
	case d < schemas.EarliestDate || d > latest:
		return nil, permanentf("event %s: date %s outside %s..%s (one day after it was stored)", e.EventID, d, schemas.EarliestDate, latest)
	}
	if e.Type == schemas.TypeCase && !e.OnsetDate.IsZero() && (e.OnsetDate < schemas.EarliestDate || e.OnsetDate > e.ReportDate) {
		return nil, permanentf("case %s: onset date %s outside %s..report date %s", e.EventID, e.OnsetDate, schemas.EarliestDate, e.ReportDate)
	}
	if e.Type == schemas.TypeVaccination && (e.DoseNumber < 1 || e.DoseNumber > 10) {
		return nil, permanentf("vaccination %s: dose number %d out of 1..10", e.EventID, e.DoseNumber)
	}
	return e, nil
}

func pseudonym(p *schemas.Person) string {
	if p == nil {
		return ""
	}
	return p.Pseudonym
}

// apply adds one event to the region; false when its event_id was seen
// before (a duplicate or redelivery: nothing changes). followUp is
// Config.ContactFollowUpDays.
func (r *regionState) apply(e *schemas.Event, seq uint64, ts int64, followUp int) bool {
	id := keyOf(e.EventID)
	if _, dup := r.seen[id]; dup {
		return false
	}
	r.seen[id] = struct{}{}
	r.changeEvent(e, seq, ts, followUp)
	return true
}

// changeEvent applies an event that is known to be new.
func (r *regionState) changeEvent(e *schemas.Event, seq uint64, ts int64, followUp int) {
	d := e.Date()
	ti := typeIndex(e.Type)
	if r.first[ti] == 0 || d < r.first[ti] {
		r.first[ti] = d
	}
	row := r.touch(d, seq, ts)
	switch e.Type {
	case schemas.TypeCase:
		if !e.Confirmed() {
			return
		}
		if e.Imported {
			row.casesImported++
		} else {
			row.casesLocal++
		}
		if !e.OnsetDate.IsZero() {
			if lag := int(d - e.OnsetDate); lag >= 0 {
				lag = min(lag, maxDelay)
				r.caseDelay[lag]++
				row.delaySum += int32(lag)
				row.delayN++
			}
			orow := r.touch(e.OnsetDate, seq, ts)
			if e.Imported {
				orow.onsetImported++
			} else {
				orow.onsetLocal++
			}
		}
		if p := pseudonym(e.Person); p != "" {
			pk := keyOf(p)
			r.caseDates[pk] = append(r.caseDates[pk], d)
			refs := r.contactsOf[pk]
			for i := range refs {
				c := &refs[i]
				if !c.became && c.date <= d && d <= c.date.AddDays(followUp) {
					c.became = true
					r.touch(c.date, seq, ts).contactsBecame++
				}
			}
		}
	case schemas.TypeContact:
		row.contacts++
		if p := pseudonym(e.ContactPerson); p != "" {
			pk := keyOf(p)
			ref := contactRef{date: d}
			for _, cd := range r.caseDates[pk] {
				if d <= cd && cd <= d.AddDays(followUp) {
					ref.became = true
					row.contactsBecame++
					break
				}
			}
			r.contactsOf[pk] = append(r.contactsOf[pk], ref)
		}
	case schemas.TypeLabTest:
		// Antibody tests show past infection and inconclusive results show
		// nothing: positivity counts conclusive diagnostic tests only.
		if (e.TestKind == schemas.TestPCR || e.TestKind == schemas.TestAntigen) &&
			(e.Result == schemas.ResultPositive || e.Result == schemas.ResultNegative) {
			row.tests++
			if e.Result == schemas.ResultPositive {
				row.testsPositive++
			}
			if !e.ResultDate.IsZero() && e.ResultDate >= d {
				r.testDelay[min(int(e.ResultDate-d), maxDelay)]++
			}
		}
	case schemas.TypeBedSnapshot:
		// A superseded or unknown-kind snapshot changes nothing but its day's
		// version; the kind was validated at ingest.
		was := r.beds.Corrected(e.FacilityID, e.BedKind, d)
		_, _ = r.beds.Add(beds.Snapshot{
			EventID: e.EventID, FacilityID: e.FacilityID, Kind: e.BedKind, Time: *e.SnapshotTime,
			Seq: seq, Total: *e.Total, Occupied: *e.Occupied,
		})
		if is := r.beds.Corrected(e.FacilityID, e.BedKind, d); is != was {
			if is {
				row.bedCorrections++
			} else {
				row.bedCorrections--
			}
		}
	case schemas.TypeVaccination:
		k := vaxKey{dose: uint8(min(e.DoseNumber, 3) - 1)}
		if p := pseudonym(e.Person); p != "" {
			k.person = keyOf(p)
		} else {
			k.person = keyOf("event:" + e.EventID)
		}
		old, known := r.vax[k]
		switch {
		case !known:
			row.vaxFirst[k.dose]++
		case d < old:
			r.at(old).vaxFirst[k.dose]--
			row.vaxFirst[k.dose]++
		default:
			return
		}
		r.vax[k] = d
	}
}

// maxDelay is the longest reporting delay told apart, in days.
const maxDelay = 30

// delays is a histogram of reporting delays in whole days.
type delays [maxDelay + 1]int32

func (h *delays) n() int {
	n := 0
	for _, c := range h {
		n += int(c)
	}
	return n
}

func (h *delays) add(o *delays) {
	for i, c := range o {
		h[i] += c
	}
}

// quantile is the smallest delay k with at least share q of the
// observations at or below k (0 for an empty histogram).
func (h *delays) quantile(q float64) int {
	n := h.n()
	if n == 0 {
		return 0
	}
	need := q * float64(n)
	cum := 0
	for k, c := range h {
		cum += int(c)
		if float64(cum) >= need {
			return k
		}
	}
	return maxDelay
}

// errUnknownState is returned when decoding a checkpoint that is not ours.
var errUnknownState = errors.New("not an epiwatch processor state")
