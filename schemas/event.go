package schemas

import (
	"time"
)

// SchemaVersion is the version of the event contract this code writes and
// reads. Producers may omit schema_version; it then means this version.
// Version 2 added report_complete, retraction and facility events and the
// supersedes field of cases and lab tests; every version-1 event is still a
// valid version-2 event, so both are accepted (MinSchemaVersion).
const SchemaVersion = 2

// MinSchemaVersion is the oldest contract version still accepted.
const MinSchemaVersion = 1

// EventType names one kind of event. It is a token of the subject
// (epi.events.<ref>.<type>.<region>) and the name of the JSON Schema file.
type EventType string

// The event types the pipeline accepts.
const (
	TypeCase        EventType = "case"
	TypeContact     EventType = "contact"
	TypeLabTest     EventType = "lab_test"
	TypeBedSnapshot EventType = "bed_snapshot"
	TypeVaccination EventType = "vaccination"
	// TypeReportComplete says a producer has sent everything of one feed
	// (an event type) for one region and day — possibly nothing. Without
	// it, a day a feed sent nothing is missing, not zero.
	TypeReportComplete EventType = "report_complete"
	// TypeRetraction withdraws an earlier case or lab test (discarded,
	// a duplicate, entered in error): its counts go down.
	TypeRetraction EventType = "retraction"
	// TypeFacility registers a facility, or changes its status (open,
	// closed) from a day on, with its bed capacity.
	TypeFacility EventType = "facility"
)

// EventTypes lists every event type in a stable order.
var EventTypes = []EventType{TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination,
	TypeReportComplete, TypeRetraction, TypeFacility}

// FeedTypes are the event types that carry surveillance data: the feeds a
// report_complete event can close for a day.
var FeedTypes = []EventType{TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool {
	switch t {
	case TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination, TypeReportComplete, TypeRetraction, TypeFacility:
		return true
	}
	return false
}

// IsFeed reports whether t is one of FeedTypes.
func (t EventType) IsFeed() bool {
	switch t {
	case TypeCase, TypeContact, TypeLabTest, TypeBedSnapshot, TypeVaccination:
		return true
	}
	return false
}

// Correctable reports whether an event of type t may be superseded or
// retracted: the counts R, incidence and positivity are made of. (A bed
// snapshot is corrected by a later snapshot of the same facility.)
func (t EventType) Correctable() bool { return t == TypeCase || t == TypeLabTest }

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

	// case, lab_test: the event_id of an earlier event of the same source
	// that this one replaces (a reclassification, a corrected date, a case
	// filed under the wrong region): the earlier one stops counting.
	Supersedes string `json:"supersedes,omitempty"`

	// case; report_complete and retraction: the day reported on, or on
	// which the retraction was issued
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

	// report_complete: the feed (an event type) complete for ReportDate
	Feed EventType `json:"feed,omitempty"`

	// retraction: the event withdrawn, and why
	Retracts         string `json:"retracts,omitempty"`
	RetractionReason string `json:"retraction_reason,omitempty"`

	// facility (with FacilityID, FacilityName): status from EffectiveDate
	// on, and bed capacity by kind
	FacilityStatus      string `json:"facility_status,omitempty"`
	EffectiveDate       Date   `json:"effective_date,omitempty"`
	CapacityInfectious  *int   `json:"capacity_infectious,omitempty"`
	CapacityICU         *int   `json:"capacity_icu,omitempty"`
	CapacityProvisional *int   `json:"capacity_provisional,omitempty"`
}

// Corrects returns the event_id this event supersedes or retracts ("" for
// none).
func (e *Event) Corrects() string {
	if e.Type == TypeRetraction {
		return e.Retracts
	}
	return e.Supersedes
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

	FacilityOpen   = "open"
	FacilityClosed = "closed"

	RetractDiscarded      = "discarded"        // not a case after all (e.g. a false positive)
	RetractDuplicate      = "duplicate"        // the same report sent twice under two ids
	RetractWrongRegion    = "wrong_region"     // filed under another region (re-send it there with supersedes)
	RetractEnteredInError = "entered_in_error" // any other mistake
)

// RetractionReasons lists the reasons a retraction may give.
var RetractionReasons = []string{RetractDiscarded, RetractDuplicate, RetractWrongRegion, RetractEnteredInError}

// ID returns the event's event_id, unique within its source: the
// de-duplication key is (Source, ID()) — in JetStream as its ref
// (EventRefs.Ref: subject and Nats-Msg-Id), in ClickHouse as part of the
// replacing key —, so a retried publish or a redelivered message is
// harmless and two producers' equal ids are two events.
func (e *Event) ID() string { return e.EventID }

// Date returns the day the event belongs to: the report date of a case, the
// contact date, the sample date of a test, the day of a bed snapshot (in the
// snapshot's own time zone), the vaccination date; the day a report_complete
// covers or a retraction was issued; the day a facility's status takes
// effect.
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
	case TypeReportComplete, TypeRetraction:
		return e.ReportDate
	case TypeFacility:
		return e.EffectiveDate
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
