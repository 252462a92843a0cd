// Field setters of the fast path: each scanned member stored in an Event or a
// Person exactly as json.Unmarshal would store it, or refused.

package schemas

import (
	"bytes"
	"time"
)

// set stores one member in e as json.Unmarshal would; false for a key it
// does not know or a value it would not take in that field.
func (e *Event) set(m fastMember) bool {
	v := m.val
	str := func(dst *string) bool {
		*dst = v.str
		return v.kind == 's'
	}
	date := func(dst *Date) bool {
		var err error
		*dst, err = ParseDate(v.str)
		return v.kind == 's' && err == nil
	}
	count := func(dst **int) bool {
		n := int(v.num)
		*dst = &n
		return v.kind == 'i'
	}
	switch string(m.key) {
	case "schema_version":
		e.SchemaVersion = int(v.num)
		return v.kind == 'i'
	case "event_id":
		return str(&e.EventID)
	case "type":
		e.Type = EventType(v.str)
		return v.kind == 's'
	case "region":
		return str(&e.Region)
	case "source":
		return str(&e.Source)
	case "person", "index_person", "contact_person":
		if v.kind != 'o' {
			return false
		}
		p := &Person{}
		for i, pm := range v.obj {
			for _, n := range v.obj[:i] {
				if bytes.Equal(n.key, pm.key) {
					return false
				}
			}
			if !p.set(pm) {
				return false
			}
		}
		switch string(m.key) {
		case "person":
			e.Person = p
		case "index_person":
			e.IndexPerson = p
		default:
			e.ContactPerson = p
		}
		return true
	case "report_date":
		return date(&e.ReportDate)
	case "onset_date":
		return date(&e.OnsetDate)
	case "imported":
		e.Imported = v.num == 1
		return v.kind == 'b'
	case "classification":
		return str(&e.Classification)
	case "contact_date":
		return date(&e.ContactDate)
	case "setting":
		return str(&e.Setting)
	case "sample_date":
		return date(&e.SampleDate)
	case "result_date":
		return date(&e.ResultDate)
	case "test_kind":
		return str(&e.TestKind)
	case "result":
		return str(&e.Result)
	case "lab":
		return str(&e.Lab)
	case "facility_id":
		return str(&e.FacilityID)
	case "facility_name":
		return str(&e.FacilityName)
	case "snapshot_time":
		if v.kind != 's' || !plainDateTime(v.str) {
			return false
		}
		t, err := time.Parse(time.RFC3339, v.str)
		e.SnapshotTime = &t
		return err == nil
	case "bed_kind":
		return str(&e.BedKind)
	case "total":
		return count(&e.Total)
	case "occupied":
		return count(&e.Occupied)
	case "dose_number":
		e.DoseNumber = int(v.num)
		return v.kind == 'i'
	case "vaccine":
		return str(&e.Vaccine)
	case "vaccination_date":
		return date(&e.VaccinationDate)
	case "supersedes":
		return str(&e.Supersedes)
	case "feed":
		e.Feed = EventType(v.str)
		return v.kind == 's'
	case "retracts":
		return str(&e.Retracts)
	case "retraction_reason":
		return str(&e.RetractionReason)
	case "facility_status":
		return str(&e.FacilityStatus)
	case "effective_date":
		return date(&e.EffectiveDate)
	case "capacity_infectious":
		return count(&e.CapacityInfectious)
	case "capacity_icu":
		return count(&e.CapacityICU)
	case "capacity_provisional":
		return count(&e.CapacityProvisional)
	}
	return false
}

func (p *Person) set(m fastMember) bool {
	var dst *string
	switch string(m.key) {
	case "national_id":
		dst = &p.NationalID
	case "birth_date":
		dst = &p.BirthDate
	case "name":
		dst = &p.Name
	case "phone":
		dst = &p.Phone
	case "address":
		dst = &p.Address
	case "pseudonym":
		dst = &p.Pseudonym
	case "key_id":
		dst = &p.KeyID
	case "age_band":
		dst = &p.AgeBand
	case "sex":
		dst = &p.Sex
	case "district":
		dst = &p.District
	default:
		return false
	}
	*dst = m.val.str
	return m.val.kind == 's'
}

// plainEvent sets every member; false for a repeated key (json.Unmarshal
// would overwrite or merge) or anything set refuses.
func plainEvent(members []fastMember) (*Event, bool) {
	e := &Event{}
	for i, m := range members {
		for _, n := range members[:i] {
			if bytes.Equal(n.key, m.key) {
				return nil, false
			}
		}
		if !e.set(m) {
			return nil, false
		}
	}
	return e, true
}
