package schemas

import (
	"time"
)

// SchemaVersion is the version of the event contract this code writes and
// reads. Producers may omit schema_version; it then means this version.
const SchemaVersion = 1

// EventType names one kind of event. It is a token of the subject
// (epi.events.<event_id>.<type>.<region>) and the name of the JSON Schema file.
type EventType string

// The event types the pipeline accepts.
const (
	TypeCase        EventType = "case"
	TypeContact     EventType = "contact"
	TypeLabTest     EventType = "lab_test"
	TypeBedSnapshot EventType = "bed_snapshot"
	TypeVaccination EventType = "vaccination"
)

// EventTypes lists every event type in a stable order.
var EventTypes = []EventType{TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool {
	switch t {
	case TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination:
		return true
	}
	return false
}

// Person identifies a person in an event.
//
// On the way in (what producers send) NationalID carries the raw national
// identifier (Kazakhstan IIN, 12 digits; Kyrgyzstan PIN, 14 digits) and may
// come with name, phone, address and birth date. The ingest worker replaces
// all of that by Pseudonym + KeyID and reduces the birth date to AgeBand;
// nothing downstream of ingest ever sees the raw fields (see pipeline/ingest/pseudo).
type Person struct {
	// Input only: removed by ingest.
	NationalID string `json:"national_id,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"`
	Name       string `json:"name,omitempty"`
	Phone      string `json:"phone,omitempty"`
	Address    string `json:"address,omitempty"`

	// Published: what the stream, processors and ClickHouse carry.
	Pseudonym string `json:"pseudonym,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	AgeBand   string `json:"age_band,omitempty"`
	Sex       string `json:"sex,omitempty"`
	District  string `json:"district,omitempty"`
}

// Event is one surveillance event. It is flat (type-specific fields are
// optional) because producers also send CSV, one type per file, whose header
// names are these JSON names; Validate checks that each type has exactly the
// fields it needs.
type Event struct {
	SchemaVersion int       `json:"schema_version,omitempty"`
	EventID       string    `json:"event_id"`
	Type          EventType `json:"type"`
	Region        string    `json:"region"`
	Source        string    `json:"source"`

	// case, lab_test, vaccination
	Person *Person `json:"person,omitempty"`

	// case
	ReportDate     Date   `json:"report_date,omitempty"`
	OnsetDate      Date   `json:"onset_date,omitempty"`
	Imported       bool   `json:"imported,omitempty"`
	Classification string `json:"classification,omitempty"`

	// contact
	IndexPerson   *Person `json:"index_person,omitempty"`
	ContactPerson *Person `json:"contact_person,omitempty"`
	ContactDate   Date    `json:"contact_date,omitempty"`
	Setting       string  `json:"setting,omitempty"`

	// lab_test
	SampleDate Date   `json:"sample_date,omitempty"`
	ResultDate Date   `json:"result_date,omitempty"`
	TestKind   string `json:"test_kind,omitempty"`
	Result     string `json:"result,omitempty"`
	Lab        string `json:"lab,omitempty"`

	// bed_snapshot
	FacilityID   string     `json:"facility_id,omitempty"`
	FacilityName string     `json:"facility_name,omitempty"`
	SnapshotTime *time.Time `json:"snapshot_time,omitempty"`
	BedKind      string     `json:"bed_kind,omitempty"`
	Total        *int       `json:"total,omitempty"`
	Occupied     *int       `json:"occupied,omitempty"`

	// vaccination
	DoseNumber      int    `json:"dose_number,omitempty"`
	Vaccine         string `json:"vaccine,omitempty"`
	VaccinationDate Date   `json:"vaccination_date,omitempty"`
}

// Enumerations of the event fields (kept in step with events/*.schema.json;
// a test checks both agree).
const (
	ClassConfirmed = "confirmed"
	ClassProbable  = "probable"

	TestPCR      = "pcr"
	TestAntigen  = "antigen"
	TestAntibody = "antibody"

	ResultPositive     = "positive"
	ResultNegative     = "negative"
	ResultInconclusive = "inconclusive"

	BedInfectious  = "infectious"
	BedProvisional = "provisional"
	BedICU         = "icu"
)

// ID returns the event's de-duplication key: the producer-unique event_id. It
// is the JetStream Nats-Msg-Id and the ClickHouse replacing key, so a retried
// publish or a redelivered message is harmless.
func (e *Event) ID() string { return e.EventID }

// Date returns the day the event belongs to: the report date of a case, the
// contact date, the sample date of a test, the day of a bed snapshot (in the
// snapshot's own time zone), the vaccination date.
func (e *Event) Date() Date {
	switch e.Type {
	case TypeCase:
		return e.ReportDate
	case TypeContact:
		return e.ContactDate
	case TypeLabTest:
		return e.SampleDate
	case TypeBedSnapshot:
		if e.SnapshotTime != nil {
			return DateOf(*e.SnapshotTime)
		}
	case TypeVaccination:
		return e.VaccinationDate
	}
	return 0
}

// Persons returns the persons an event names, for pseudonymisation.
func (e *Event) Persons() []*Person {
	var ps []*Person
	for _, p := range []*Person{e.Person, e.IndexPerson, e.ContactPerson} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Confirmed reports whether a case counts as confirmed (the default when the
// producer does not classify it).
func (e *Event) Confirmed() bool {
	return e.Classification == "" || e.Classification == ClassConfirmed
}
