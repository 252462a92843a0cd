package process

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/beds"
	"github.com/epiwatch/epiwatch/schemas"
)

// The checkpoint blob of one region: a small binary format (varints), then
// DEFLATE. Binary because pseudonym and event_id digests are much of the
// state and 16 raw bytes each is the least they can cost; DEFLATE at its
// fastest level because the day rows and pseudonym lists compress well and
// the checkpoint is on the hot path. stateMagic changes whenever the layout
// does. Blobs of an older layout lack what the state needs now and cannot
// be completed from themselves: EWPS1, EWPS2 (before person-episodes,
// corrections, feeds and the facility registry), EWPS3 (every event_id
// applied instead of the recent ones) and EWPS4 (events keyed by event_id
// alone, before ids were scoped to their source: its keys name no event of
// this version, so a copy would count twice and a correction find nothing).
// decodeRegion reports errOldLayout and the processor rebuilds its state
// from the events stream (Processor.restore).
//
// A checkpoint stores each region as a core blob (this layout with no
// persons: encodeCore) and its persons in personShards shard blobs
// (shardMagic: encodeShards), so a checkpoint rewrites only the shards that
// changed. A core that still holds persons (encodeRegion: tests, and the
// checkpoints before shards) is read as well; the next checkpoint moves
// them into shards.
const stateMagic = "EWPS5"

// oldMagics are the layouts errOldLayout covers.
var oldMagics = []string{"EWPS1", "EWPS2", "EWPS3", "EWPS4"}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) key(k idKey)      { e.b = append(e.b, k[:]...) }
func (e *encoder) flag(b bool) {
	if b {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// rowFields are a day row's counts in the order of the layout.
func rowFields(d *dayRow) []*int32 {
	return []*int32{&d.casesLocal, &d.casesImported, &d.onsetLocal, &d.onsetImported, &d.casesRepeat, &d.tests, &d.testsPositive,
		&d.contacts, &d.contactsBecame, &d.vaxFirst[0], &d.vaxFirst[1], &d.vaxFirst[2], &d.delaySum, &d.delayN, &d.bedCorrections}
}

// encodeRegion serialises a region's state (not its dirty marks: a
// checkpoint is taken only after everything was published).
func encodeRegion(r *regionState) ([]byte, error) { return encodeState(r, true) }

// encodeCore serialises a region's state without its persons, which go to
// the shards (encodeShards).
func encodeCore(r *regionState) ([]byte, error) { return encodeState(r, false) }

func encodeState(r *regionState, withPersons bool) ([]byte, error) {
	e := &encoder{b: make([]byte, 0, 64+len(r.days)*24+len(r.recent)*24)}
	e.b = append(e.b, stateMagic...)
	e.str(r.code)
	e.varint(int64(r.base))
	e.uvarint(uint64(len(r.days)))
	for i := range r.days {
		d := &r.days[i]
		for _, v := range rowFields(d) {
			e.varint(int64(*v))
		}
		e.uvarint(d.seq)
		e.varint(d.ts)
	}
	for _, days := range []*[nTypes]schemas.Date{&r.first, &r.reported, &r.complete} {
		for _, f := range days {
			e.varint(int64(f))
		}
	}
	for _, h := range []*delays{&r.caseDelay, &r.testDelay} {
		for _, c := range h {
			e.varint(int64(c))
		}
	}
	e.uvarint(uint64(len(r.retracted)))
	for k := range r.retracted {
		e.key(k)
	}
	// The recent event_ids in the order applied, each once (its entry in
	// the map), so the decoded queue prunes in the same order.
	e.varint(r.newest)
	live := r.recentQ[r.recentH:]
	n := 0
	for _, q := range live {
		if r.recent[q.id] == q.ts {
			n++
		}
	}
	e.uvarint(uint64(n))
	for _, q := range live {
		if r.recent[q.id] == q.ts {
			e.key(q.id)
			e.varint(q.ts)
		}
	}
	var ps personSections
	if withPersons {
		splitPersons(r, func(idKey) *personSections { return &ps })
	}
	ps.writeTo(e)
	snaps := r.beds.Snapshots()
	e.uvarint(uint64(len(snaps)))
	for _, s := range snaps {
		e.str(s.EventID)
		e.str(s.FacilityID)
		e.str(s.Kind)
		_, off := s.Time.Zone()
		e.varint(s.Time.UnixNano())
		e.varint(int64(off))
		e.uvarint(s.Seq)
		e.varint(int64(s.Total))
		e.varint(int64(s.Occupied))
		e.varint(int64(s.CorrectedFrom))
	}
	facs := r.beds.Facilities()
	e.uvarint(uint64(len(facs)))
	for _, f := range facs {
		e.str(f.FacilityID)
		e.str(f.Status)
		e.varint(int64(f.Effective))
		e.str(f.EventID)
		e.uvarint(f.Seq)
		e.str(f.Name)
		kinds := make([]string, 0, len(f.Capacity))
		for k := range f.Capacity {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		e.uvarint(uint64(len(kinds)))
		for _, k := range kinds {
			e.str(k)
			e.varint(int64(f.Capacity[k]))
		}
	}

	return compress(e.b, r.code)
}

// compress DEFLATEs an encoded blob at the fastest level.
func compress(b []byte, code string) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b)/2 + 64)
	zw, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("compress state of %s: %w", code, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress state of %s: %w", code, err)
	}
	return out.Bytes(), nil
}

// shardMagic starts a shard blob: a region's persons whose key falls in
// one shard (shardOf).
const shardMagic = "EWPP1"

// encodeShards serialises the persons of region r in the shards of mask
// (bit s: shard s), in one pass over them: blobs[s] for each.
func encodeShards(r *regionState, mask uint32) (blobs [personShards][]byte, err error) {
	var secs [personShards]*personSections
	for s := range personShards {
		if mask&(1<<s) != 0 {
			secs[s] = new(personSections)
		}
	}
	splitPersons(r, func(k idKey) *personSections { return secs[shardOf(k)] })
	for s, ps := range secs {
		if ps == nil {
			continue
		}
		e := &encoder{b: make([]byte, 0, 64+len(ps.vax.b)+len(ps.cases.b)+len(ps.contacts.b))}
		e.b = append(e.b, shardMagic...)
		e.str(r.code)
		e.uvarint(uint64(s))
		ps.writeTo(e)
		if blobs[s], err = compress(e.b, r.code); err != nil {
			return blobs, err
		}
	}
	return blobs, nil
}

// personSections are the encoded vaccinated persons, case persons and
// contact persons of one blob, each with its count (the layout puts the
// count first, so they are gathered before being written).
type personSections struct {
	vax, cases, contacts encoder
	nv, nc, nk           int
}

// writeTo appends the three sections, counts first, to e.
func (ps *personSections) writeTo(e *encoder) {
	for _, sec := range []struct {
		n int
		b []byte
	}{{ps.nv, ps.vax.b}, {ps.nc, ps.cases.b}, {ps.nk, ps.contacts.b}} {
		e.uvarint(uint64(sec.n))
		e.b = append(e.b, sec.b...)
	}
}

// splitPersons encodes every person of r into the sections into gives for
// them (nil: left out), in one pass.
func splitPersons(r *regionState, into func(idKey) *personSections) {
	for k, d := range r.vax {
		if ps := into(k.person); ps != nil {
			ps.nv++
			ps.vax.key(k.person)
			ps.vax.b = append(ps.vax.b, k.dose)
			ps.vax.varint(int64(d))
		}
	}
	for k, refs := range r.cases.all() {
		if ps := into(k); ps != nil {
			ps.nc++
			e := &ps.cases
			e.key(k)
			e.uvarint(uint64(len(refs)))
			for _, c := range refs {
				e.key(c.event)
				e.varint(int64(c.report))
				e.varint(int64(c.onset))
				e.flag(c.imported)
				e.flag(c.counted)
			}
		}
	}
	for k, cs := range r.contactsOf.all() {
		if ps := into(k); ps != nil {
			ps.nk++
			e := &ps.contacts
			e.key(k)
			e.uvarint(uint64(len(cs)))
			for _, c := range cs {
				e.varint(int64(c.date))
				e.flag(c.became)
			}
		}
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or corrupt at %s", what)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and checks it against the bytes left (each element
// takes at least minSize bytes), so a corrupt length cannot allocate wildly.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(what string) string {
	return string(d.bytes(d.count(what, 1), what))
}

func (d *decoder) key(what string) idKey {
	var k idKey
	copy(k[:], d.bytes(16, what))
	return k
}

func (d *decoder) byte1(what string) byte {
	b := d.bytes(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

// errOldLayout means a checkpoint blob has a layout older than stateMagic.
var errOldLayout = errors.New("processor state of an older layout")

// decodeRegion reads what encodeRegion wrote.
func decodeRegion(blob []byte) (*regionState, error) {
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(blob)))
	if err != nil {
		return nil, fmt.Errorf("decompress region state: %w", err)
	}
	for _, m := range oldMagics {
		if bytes.HasPrefix(raw, []byte(m)) {
			return nil, errOldLayout
		}
	}
	if !bytes.HasPrefix(raw, []byte(stateMagic)) {
		return nil, errUnknownState
	}
	d := &decoder{b: raw[len(stateMagic):]} // the magics have one length
	r := newRegionState(d.str("code"))
	r.base = schemas.Date(d.varint("base"))
	nDays := d.count("days", 17)
	r.days = make([]dayRow, nDays)
	for i := range r.days {
		row := &r.days[i]
		for _, p := range rowFields(row) {
			*p = int32(d.varint("day row"))
		}
		row.seq = d.uvarint("day seq")
		row.ts = d.varint("day time")
	}
	for _, days := range []*[nTypes]schemas.Date{&r.first, &r.reported, &r.complete} {
		for i := range days {
			days[i] = schemas.Date(d.varint("feed days"))
		}
	}
	for _, h := range []*delays{&r.caseDelay, &r.testDelay} {
		for i := range h {
			h[i] = int32(d.varint("reporting delays"))
		}
	}
	n := d.count("retracted", 16)
	for i := 0; i < n && d.err == nil; i++ {
		r.retracted[d.key("retracted")] = struct{}{}
	}
	r.newest = d.varint("newest")
	n = d.count("recent", 17)
	r.recentQ = make([]recentID, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		q := recentID{id: d.key("recent")}
		q.ts = d.varint("recent time")
		r.recent[q.id] = q.ts
		r.recentQ = append(r.recentQ, q)
	}
	r.hasPersons = decodePersons(d, r)
	n = d.count("bed snapshots", 8)
	for i := 0; i < n && d.err == nil; i++ {
		s := beds.Snapshot{EventID: d.str("snapshot id"), FacilityID: d.str("facility"), Kind: d.str("bed kind")}
		nanos, off := d.varint("snapshot time"), d.varint("snapshot zone")
		s.Time = time.Unix(0, nanos).In(time.FixedZone("", int(off)))
		s.Seq = d.uvarint("snapshot seq")
		s.Total, s.Occupied = int(d.varint("total")), int(d.varint("occupied"))
		s.CorrectedFrom = int(d.varint("corrected from"))
		if d.err == nil {
			if _, err := r.beds.Add(s); err != nil {
				return nil, fmt.Errorf("region state %s: %w", r.code, err)
			}
		}
	}
	n = d.count("facilities", 6)
	for i := 0; i < n && d.err == nil; i++ {
		f := beds.FacilityStatus{FacilityID: d.str("facility"), Status: d.str("facility status")}
		f.Effective = schemas.Date(d.varint("effective date"))
		f.EventID = d.str("facility event")
		f.Seq = d.uvarint("facility seq")
		f.Name = d.str("facility name")
		if m := d.count("capacities", 2); m > 0 {
			f.Capacity = make(map[string]int, m)
			for j := 0; j < m; j++ {
				k := d.str("capacity kind")
				f.Capacity[k] = int(d.varint("capacity"))
			}
		}
		if d.err == nil {
			if _, err := r.beds.SetFacility(f); err != nil {
				return nil, fmt.Errorf("region state %s: %w", r.code, err)
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("region state %s: %w", r.code, d.err)
	}
	r.rebuildTri()
	return r, nil
}

// decodePersons reads what personSections.writeTo wrote into r (adding to what r
// holds) and reports whether there was anyone.
func decodePersons(d *decoder, r *regionState) bool {
	nv := d.count("vaccinations", 18)
	for i := 0; i < nv && d.err == nil; i++ {
		k := vaxKey{person: d.key("vaccination")}
		k.dose = d.byte1("dose")
		r.vax[k] = schemas.Date(d.varint("vaccination date"))
	}
	nc := d.count("case persons", 17)
	for i := 0; i < nc && d.err == nil; i++ {
		k := d.key("case person")
		refs := make([]caseRef, d.count("cases", 20))
		for j := range refs {
			c := &refs[j]
			c.event = d.key("case event")
			c.report = schemas.Date(d.varint("report date"))
			c.onset = schemas.Date(d.varint("onset date"))
			c.imported = d.byte1("imported") == 1
			c.counted = d.byte1("counted") == 1
		}
		r.cases.set(k, refs)
	}
	nk := d.count("contact persons", 17)
	for i := 0; i < nk && d.err == nil; i++ {
		k := d.key("contact person")
		cs := make([]contactRef, d.count("contacts", 2))
		for j := range cs {
			cs[j].date = schemas.Date(d.varint("contact date"))
			cs[j].became = d.byte1("contact became") == 1
		}
		r.contactsOf.set(k, cs)
	}
	return nv+nc+nk > 0
}

// decodeShard reads a shard blob (encodeShards) into r, the region's state
// decoded from its core blob.
func decodeShard(blob []byte, r *regionState, shard int) error {
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(blob)))
	if err != nil {
		return fmt.Errorf("decompress persons of %s (shard %d): %w", r.code, shard, err)
	}
	if !bytes.HasPrefix(raw, []byte(shardMagic)) {
		return fmt.Errorf("persons of %s (shard %d): %w", r.code, shard, errUnknownState)
	}
	d := &decoder{b: raw[len(shardMagic):]}
	code, s := d.str("code"), d.uvarint("shard")
	if d.err == nil && (code != r.code || s != uint64(shard)) {
		return fmt.Errorf("persons blob of %s shard %d holds %s shard %d", r.code, shard, code, s)
	}
	decodePersons(d, r)
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return fmt.Errorf("persons of %s (shard %d): %w", r.code, shard, d.err)
	}
	return nil
}
