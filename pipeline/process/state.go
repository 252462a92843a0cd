package process

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/beds"
	"github.com/epiwatch/epiwatch/schemas"
)

// idKey is a 128-bit digest (SHA-256, truncated) of an identifier: an
// event_id or a person's pseudonym. Sixteen bytes instead of the string keep
// the state and the checkpoint small; a collision is practically
// impossible (about 2^-64 for 10^10 identifiers) and cannot be provoked on
// purpose without breaking SHA-256.
type idKey [16]byte

func keyOf(s string) idKey {
	sum := sha256.Sum256([]byte(s))
	var k idKey
	copy(k[:], sum[:16])
	return k
}

// eventKey is the idKey of an event: of its source and event_id, since
// event_ids are scoped to their producer (two sources' "c1" are two events,
// not one delivered twice). The separator cannot occur in either.
func eventKey(source, eventID string) idKey {
	return keyOf(source + "\x00" + eventID)
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
	casesLocal, casesImported int32 // confirmed cases by report date (one per person-episode)
	onsetLocal, onsetImported int32 // confirmed cases by onset date
	// casesRepeat: confirmed case events of the day not counted because the
	// same person was counted within Config.EpisodeDays before.
	casesRepeat              int32
	tests, testsPositive     int32 // conclusive PCR and antigen tests by sample date
	contacts, contactsBecame int32 // contacts by contact date; those whose contact person became a case
	vaxFirst                 [3]int32
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

// caseRef is one confirmed case event of a person: what it contributes,
// and whether it is the one counted for its episode.
type caseRef struct {
	event    idKey
	report   schemas.Date
	onset    schemas.Date // 0: unknown
	imported bool
	counted  bool
}

// refLess orders a person's cases: by report date, then event, so the
// episode each belongs to does not depend on arrival order.
func refLess(a, b caseRef) bool {
	if a.report != b.report {
		return a.report < b.report
	}
	return string(a.event[:]) < string(b.event[:])
}

type vaxKey struct {
	person idKey
	dose   uint8 // 0: dose 1, 1: dose 2, 2: dose 3 or later
}

// regionState is everything the processor keeps about one region. It is a
// function of the set of distinct events applied, not of how often or in
// which batches they arrived: the engine applies each events-stream sequence
// once (engine.done), the stream holds each (source, event_id) once (ingest
// stores an event only if its ref is not there yet), and recent catches the
// same event stored twice anyway within Config.DedupWindow.
type regionState struct {
	code  string
	base  schemas.Date // the day of days[0]
	days  []dayRow
	first [nTypes]schemas.Date // earliest day with an event of each type (0: none yet)

	// reported is, per event type, the latest day an event of it reported:
	// the report date of cases, the result date of tests, the day of other
	// events. complete is, per feed, the latest day a report_complete
	// event closed. Together they are how far the feed has reported
	// (feedThrough): a later day is missing, not zero.
	reported [nTypes]schemas.Date
	complete [nTypes]schemas.Date

	// recent holds the event_ids applied whose stream timestamp (Unix ns)
	// lies within the dedup window of the newest one applied (newest);
	// recentQ lists them in the order applied, for pruning. Bounded by time,
	// not by the number of events ever applied (see remember).
	recent  map[idKey]int64
	recentQ []recentID
	recentH int // recentQ[:recentH] are pruned
	newest  int64
	// retracted holds the event_ids of this region withdrawn by a retraction
	// or a superseding event: their effects were undone (or, for one not yet
	// applied, never happen).
	retracted map[idKey]struct{}

	beds beds.History
	// Confirmed cases by person (pseudonym): the person-episodes, and the
	// contacts who became cases, matched within the region.
	cases      byPerson[caseRef]    // person → their confirmed cases, refLess order
	contactsOf byPerson[contactRef] // contact person → their contacts
	// Vaccination coverage counts persons: the earliest event of each
	// (person, dose group) counts on its day.
	vax map[vaxKey]schemas.Date
	// Reporting delays in days (the last bucket holds maxDelay and more):
	// confirmed cases from onset to report date, conclusive tests from sample
	// to result date.
	caseDelay, testDelay delays
	// tri is the reporting triangle of the counted cases with an onset
	// date: per onset day, how many were reported d days after it (the
	// last column: maxDelay and more), local and imported apart. The
	// nowcast reads it (nowcastCases). It follows from cases and is
	// rebuilt from them when a checkpoint is loaded, not checkpointed.
	tri map[schemas.Date]*triRow

	// dirtyShards marks the person shards (shardOf) changed since the last
	// checkpoint; hasPersons says the core blob the state was restored from
	// held the persons itself (a layout before shards): the next
	// checkpoint must write every shard.
	dirtyShards uint32
	hasPersons  bool

	// dirtyFrom is the earliest day whose indicators changed since they were
	// last published (0: none); changed says the region must be checkpointed.
	dirtyFrom schemas.Date
	changed   bool
	// horizon is the provisional horizon in days (engine.setHorizons);
	// provFrom the first provisional day at the last publication (0: not
	// known yet). Both follow from the state; neither is checkpointed.
	horizon  int
	provFrom schemas.Date
	// ncFrom is the first nowcast day at the last publication (0: none;
	// engine.nowcastFrom): once the nowcast days move on, the days they
	// left are republished without a nowcast. Not checkpointed either.
	ncFrom schemas.Date
}

func newRegionState(code string) *regionState {
	return &regionState{
		code:       code,
		recent:     make(map[idKey]int64),
		retracted:  make(map[idKey]struct{}),
		cases:      newByPerson[caseRef](),
		contactsOf: newByPerson[contactRef](),
		vax:        make(map[vaxKey]schemas.Date),
		tri:        make(map[schemas.Date]*triRow),
	}
}

// personShards is how many blobs a region's persons are checkpointed in:
// a checkpoint rewrites only the shards whose persons changed, so its cost
// follows the change, not the number of persons (most of the state).
const personShards = 16

// shardOf is the shard of person k.
func shardOf(k idKey) int { return int(k[0]) % personShards }

// personChanged marks person k's shard for the next checkpoint.
func (r *regionState) personChanged(k idKey) { r.dirtyShards |= 1 << shardOf(k) }

// triRow is one onset day of the reporting triangle: [0] local cases,
// [1] imported, by delay in days.
type triRow [2][maxDelay + 1]int32

// addTri counts n (1 or -1) cases of onset day onset reported lag days
// later in the triangle; a row that returns to zero is dropped.
func (r *regionState) addTri(onset schemas.Date, lag int, imported bool, n int32) {
	t := r.tri[onset]
	if t == nil {
		t = new(triRow)
		r.tri[onset] = t
	}
	k := 0
	if imported {
		k = 1
	}
	t[k][min(lag, maxDelay)] += n
	if *t == (triRow{}) {
		delete(r.tri, onset)
	}
}

// rebuildTri derives the triangle from the counted cases (after a
// checkpoint was loaded).
func (r *regionState) rebuildTri() {
	clear(r.tri)
	for _, refs := range r.cases.all() {
		for _, c := range refs {
			if c.counted && !c.onset.IsZero() && c.report >= c.onset {
				r.addTri(c.onset, int(c.report-c.onset), c.imported, 1)
			}
		}
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

// IsPermanent reports whether err means an event can never be applied (it is
// dead-lettered), rather than a failure worth retrying.
func IsPermanent(err error) bool {
	var p errPermanent
	return errors.As(err, &p)
}

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
		return nil, permanentf("event: unknown type %q", e.Type)
	case e.Region == "":
		return nil, permanentf("%s event: no region", e.Type)
	}
	if e.Type == schemas.TypeBedSnapshot {
		switch {
		case e.SnapshotTime == nil || e.Total == nil || e.Occupied == nil || e.FacilityID == "":
			return nil, permanentf("bed snapshot: facility_id, snapshot_time, total and occupied are required")
		case *e.Total < 0 || *e.Occupied < 0 || *e.Occupied > *e.Total:
			return nil, permanentf("bed snapshot: %d occupied of %d beds", *e.Occupied, *e.Total)
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
		return nil, permanentf("%s event: no date", e.Type)
	case d < schemas.EarliestDate || d > latest:
		return nil, permanentf("%s event: date %s outside %s..%s (one day after it was stored)", e.Type, d, schemas.EarliestDate, latest)
	}
	if e.Type == schemas.TypeCase && !e.OnsetDate.IsZero() && (e.OnsetDate < schemas.EarliestDate || e.OnsetDate > e.ReportDate) {
		return nil, permanentf("case: onset date %s outside %s..report date %s", e.OnsetDate, schemas.EarliestDate, e.ReportDate)
	}
	if e.Type == schemas.TypeVaccination && (e.DoseNumber < 1 || e.DoseNumber > 10) {
		return nil, permanentf("vaccination: dose number %d out of 1..10", e.DoseNumber)
	}
	return e, nil
}

func pseudonym(p *schemas.Person) string {
	if p == nil {
		return ""
	}
	return p.Pseudonym
}

// applyCfg is what applying an event needs of the configuration.
type applyCfg struct {
	followUp    int           // Config.ContactFollowUpDays
	episodeDays int           // Config.EpisodeDays
	dedup       time.Duration // Config.DedupWindow
}

// apply adds one event to the region; false when the same event_id was
// applied within the dedup window before it (a copy stored twice: nothing
// changes). An event retracted before it arrived (redelivered out of order)
// changes nothing. Corrections (retractions, superseding events) are
// resolved by the engine first (engine.correct). Redeliveries of the same
// stream message never get here (engine.done).
func (r *regionState) apply(e *schemas.Event, seq uint64, ts int64, c applyCfg) bool {
	id := eventKey(e.Source, e.EventID)
	if r.isRecent(id, ts, c.dedup) {
		return false
	}
	r.remember(id, ts, c.dedup)
	if _, gone := r.retracted[id]; gone {
		return true
	}
	r.changeEvent(e, seq, ts, c)
	return true
}

// recentID is an entry of regionState.recentQ.
type recentID struct {
	id idKey
	ts int64
}

// isRecent reports whether id was applied at most window before ts. The
// test is on the two timestamps, not on whether the entry was pruned yet,
// so the answer does not depend on batching or restarts.
func (r *regionState) isRecent(id idKey, ts int64, window time.Duration) bool {
	old, ok := r.recent[id]
	return ok && ts-old <= int64(window)
}

// remember records id as applied at ts and forgets the event_ids applied
// more than twice the window before the newest timestamp. Why a window and
// not every event_id ever applied: the set grew by about 25 bytes per event
// for ever (0.75 GB of processor memory and checkpoint for 30 million
// events), and it only ever matters for an event_id stored twice in the
// stream, which ingest prevents (ExpectFirst on the event_id's subject). What
// is left are copies published around ingest and re-sends after an event
// left the stream (retention): the first are caught within the window, the
// second are older than any window that fits in memory (README, "Retention
// of the events stream"). Pruning waits twice the window so a message
// delivered late (its timestamp older than the newest) is still compared.
func (r *regionState) remember(id idKey, ts int64, window time.Duration) {
	if window <= 0 {
		return
	}
	if old, ok := r.recent[id]; !ok || ts > old {
		r.recent[id] = ts
	}
	r.recentQ = append(r.recentQ, recentID{id, ts})
	r.newest = max(r.newest, ts)
	cut := r.newest - 2*int64(window)
	for r.recentH < len(r.recentQ) && r.recentQ[r.recentH].ts < cut {
		q := r.recentQ[r.recentH]
		if r.recent[q.id] == q.ts {
			delete(r.recent, q.id)
		}
		r.recentH++
	}
	// Drop the pruned head once it is most of the slice, so the queue's
	// memory follows the window too.
	if r.recentH > 1024 && r.recentH*2 > len(r.recentQ) {
		r.recentQ = append(r.recentQ[:0:0], r.recentQ[r.recentH:]...)
		r.recentH = 0
	}
}

// feedDay is the day an event shows its feed has reported through: the
// result date of a lab test (a result on day D means the laboratory has
// worked through D), the event's own day otherwise.
func feedDay(e *schemas.Event) schemas.Date {
	if e.Type == schemas.TypeLabTest && !e.ResultDate.IsZero() {
		return e.ResultDate
	}
	return e.Date()
}

// feedThrough is how far the feed of event type t has reported (0: the
// region never used it).
func (r *regionState) feedThrough(t int) schemas.Date {
	return max(r.reported[t], r.complete[t])
}

// advanceFeed records that feed t has reported through day, by an event
// (last) or a report_complete (complete). When that moves the feed forward,
// every day whose staleness or stale reason it changes is touched, so its
// records are republished under a higher version: the days from the old
// position on, up to the region's newest day (the reason names the
// position).
func (r *regionState) advanceFeed(t int, day schemas.Date, byComplete bool, seq uint64, ts int64) {
	old := r.feedThrough(t)
	if byComplete {
		r.complete[t] = max(r.complete[t], day)
	} else {
		r.reported[t] = max(r.reported[t], day)
	}
	now := r.feedThrough(t)
	if now <= old {
		return
	}
	from := old + 1
	if old == 0 {
		from = now // before the feed existed no day was stale for it
	}
	// Never beyond the region's newest row: a feed's position is not data
	// of a day (a result date runs ahead of the sample dates tests count
	// on). Touching the newest row raises the version of every record after
	// it, whose staleness may have changed too.
	hi := r.last()
	for d := min(from, hi); d <= hi; d++ {
		r.touch(d, seq, ts)
	}
}

// changeEvent applies an event that is known to be new and not retracted.
func (r *regionState) changeEvent(e *schemas.Event, seq uint64, ts int64, c applyCfg) {
	d := e.Date()
	ti := typeIndex(e.Type)
	if ti >= 0 {
		if r.first[ti] == 0 || d < r.first[ti] {
			r.first[ti] = d
		}
	}
	row := r.touch(d, seq, ts)
	switch e.Type {
	case schemas.TypeCase:
		if e.Confirmed() {
			ref := caseRef{event: eventKey(e.Source, e.EventID), report: d, onset: e.OnsetDate, imported: e.Imported}
			if p := pseudonym(e.Person); p != "" {
				r.addCase(keyOf(p), ref, seq, ts, c)
			} else {
				r.countCase(ref, true, seq, ts) // no person to link: its own episode
			}
		}
	case schemas.TypeContact:
		row.contacts++
		if p := pseudonym(e.ContactPerson); p != "" {
			pk := keyOf(p)
			ref := contactRef{date: d}
			var cbuf [1]caseRef
			for _, cr := range r.cases.get(pk, &cbuf) {
				if d <= cr.report && cr.report <= d.AddDays(c.followUp) {
					ref.became = true
					row.contactsBecame++
					break
				}
			}
			var buf [1]contactRef
			r.contactsOf.set(pk, append(r.contactsOf.get(pk, &buf), ref))
			r.personChanged(pk)
		}
	case schemas.TypeLabTest:
		r.countTest(e, 1, row)
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
			k.person = keyOf("event:" + e.Source + "\x00" + e.EventID)
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
		r.personChanged(k.person)
	case schemas.TypeReportComplete:
		if fi := typeIndex(e.Feed); fi >= 0 {
			r.advanceFeed(fi, d, true, seq, ts)
		}
		return
	case schemas.TypeFacility:
		_, _ = r.beds.SetFacility(facilityStatus(e, seq)) // validated at ingest
		return
	case schemas.TypeRetraction:
		return // its effect is on the event it retracts (engine.correct)
	}
	if ti >= 0 {
		r.advanceFeed(ti, feedDay(e), false, seq, ts)
	}
}

// facilityStatus is a facility event as the bed registry keeps it.
func facilityStatus(e *schemas.Event, seq uint64) beds.FacilityStatus {
	f := beds.FacilityStatus{FacilityID: e.FacilityID, Status: e.FacilityStatus, Effective: e.EffectiveDate,
		EventID: e.EventID, Seq: seq, Name: e.FacilityName}
	for kind, v := range map[string]*int{schemas.BedInfectious: e.CapacityInfectious, schemas.BedICU: e.CapacityICU, schemas.BedProvisional: e.CapacityProvisional} {
		if v != nil {
			if f.Capacity == nil {
				f.Capacity = map[string]int{}
			}
			f.Capacity[kind] = *v
		}
	}
	return f
}

// countTest adds (n = 1) or removes (n = -1) a lab test's contribution.
// Antibody tests show past infection and inconclusive results show nothing:
// positivity counts conclusive diagnostic tests only.
func (r *regionState) countTest(e *schemas.Event, n int32, row *dayRow) {
	if (e.TestKind != schemas.TestPCR && e.TestKind != schemas.TestAntigen) ||
		(e.Result != schemas.ResultPositive && e.Result != schemas.ResultNegative) {
		return
	}
	row.tests += n
	if e.Result == schemas.ResultPositive {
		row.testsPositive += n
	}
	if !e.ResultDate.IsZero() && e.ResultDate >= e.SampleDate {
		r.testDelay[min(int(e.ResultDate-e.SampleDate), maxDelay)] += n
	}
}

// countCase adds (on) or removes the counts of one confirmed case: by report
// date (a case not counted is a repeat of its person's episode), by onset
// date, and its reporting delay.
func (r *regionState) countCase(c caseRef, on bool, seq uint64, ts int64) {
	n := int32(1)
	if !on {
		n = -1
	}
	row := r.touch(c.report, seq, ts)
	if c.imported {
		row.casesImported += n
	} else {
		row.casesLocal += n
	}
	if c.onset.IsZero() {
		return
	}
	if lag := int(c.report - c.onset); lag >= 0 {
		r.addTri(c.onset, lag, c.imported, n)
		lag = min(lag, maxDelay)
		r.caseDelay[lag] += n
		row.delaySum += n * int32(lag)
		row.delayN += n
	}
	orow := r.touch(c.onset, seq, ts)
	if c.imported {
		orow.onsetImported += n
	} else {
		orow.onsetLocal += n
	}
}

// addCase adds a confirmed case of person p (as a repeat until recount
// decides), then recounts the person's episodes and relinks their contacts.
func (r *regionState) addCase(p idKey, c caseRef, seq uint64, ts int64, cfg applyCfg) {
	r.personChanged(p)
	var buf [1]caseRef
	refs := r.cases.get(p, &buf)
	i := sort.Search(len(refs), func(i int) bool { return !refLess(refs[i], c) })
	r.cases.set(p, slices.Insert(refs, i, c))
	r.touch(c.report, seq, ts).casesRepeat++
	r.recount(p, seq, ts, cfg)
}

// removeCase withdraws the case event ev of person p, if the person has it.
func (r *regionState) removeCase(p idKey, ev idKey, seq uint64, ts int64, cfg applyCfg) bool {
	var buf [1]caseRef
	refs := r.cases.get(p, &buf)
	i := slices.IndexFunc(refs, func(c caseRef) bool { return c.event == ev })
	if i < 0 {
		return false
	}
	r.personChanged(p)
	c := refs[i]
	if c.counted {
		r.countCase(c, false, seq, ts)
	} else {
		r.touch(c.report, seq, ts).casesRepeat--
	}
	r.cases.set(p, slices.Delete(refs, i, i+1))
	r.recount(p, seq, ts, cfg)
	return true
}

// recount decides which of person p's cases are counted: the first, then
// the first reported more than EpisodeDays after the start of the episode
// before it (0: every case). Cases whose status flips move between the
// counts and the repeats; then the person's contacts are relinked.
func (r *regionState) recount(p idKey, seq uint64, ts int64, cfg applyCfg) {
	var buf [1]caseRef
	refs := r.cases.get(p, &buf)
	var start schemas.Date
	for i := range refs {
		c := &refs[i]
		count := cfg.episodeDays == 0 || start == 0 || c.report > start.AddDays(cfg.episodeDays)
		if count {
			start = c.report
		}
		if count != c.counted {
			r.countCase(*c, count, seq, ts)
			if count {
				r.touch(c.report, seq, ts).casesRepeat--
			} else {
				r.touch(c.report, seq, ts).casesRepeat++
			}
			c.counted = count
		}
	}
	r.cases.set(p, refs) // refs may be buf
	r.relink(p, seq, ts, cfg.followUp)
}

// relink sets which of person p's contacts became a case: p was reported as
// a confirmed case within followUp days after the contact.
func (r *regionState) relink(p idKey, seq uint64, ts int64, followUp int) {
	var buf [1]caseRef
	refs := r.cases.get(p, &buf)
	var cbuf [1]contactRef
	cs := r.contactsOf.get(p, &cbuf)
	if len(cs) == 0 {
		return
	}
	defer r.contactsOf.set(p, cs) // cs may be cbuf
	for i := range cs {
		c := &cs[i]
		became := false
		for _, cr := range refs {
			if c.date <= cr.report && cr.report <= c.date.AddDays(followUp) {
				became = true
				break
			}
		}
		if became != c.became {
			c.became = became
			if became {
				r.touch(c.date, seq, ts).contactsBecame++
			} else {
				r.touch(c.date, seq, ts).contactsBecame--
			}
		}
	}
}

// unapply undoes an applied event t (a case or lab test) that a correction
// withdraws, as of the correction at (seq, ts).
func (r *regionState) unapply(t *schemas.Event, seq uint64, ts int64, cfg applyCfg) {
	switch t.Type {
	case schemas.TypeCase:
		if !t.Confirmed() {
			r.touch(t.Date(), seq, ts)
			return
		}
		ev := eventKey(t.Source, t.EventID)
		if p := pseudonym(t.Person); p != "" && r.removeCase(keyOf(p), ev, seq, ts, cfg) {
			return
		}
		r.countCase(caseRef{event: ev, report: t.ReportDate, onset: t.OnsetDate, imported: t.Imported}, false, seq, ts)
	case schemas.TypeLabTest:
		r.countTest(t, -1, r.touch(t.Date(), seq, ts))
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
