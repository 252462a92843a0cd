package schemas

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// EarliestDate is the first date an event may carry. SARS-CoV-2 surveillance
// starts in 2020; 2019 is allowed for late-reported or test data, anything
// earlier is a typo (the foundation issue: "dates before 2019" are invalid).
var EarliestDate = MustDate("2019-01-01")

// MaxEventIDLen bounds event_id: it is part of the ClickHouse sorting key
// and echoed in every answer (infrastructure names an event by its ref,
// EventRefs, whatever the event_id's length).
const MaxEventIDLen = 128

var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]*$`)

// FieldError is one reason an event is invalid, naming the JSON field.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// ValidationError lists every reason an event is invalid. Its message is what
// the producer sees in the per-event answer and what the dead-letter entry
// records.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return strings.Join(parts, "; ")
}

// Validator checks the meaning of an event beyond its JSON shape: known
// region, plausible dates, consistent counts. The JSON Schema checks shape
// (types, enumerations, unknown fields); both run at ingest.
type Validator struct {
	Regions *Regions
	// Now is the clock for "date in the future"; a tolerance of one day
	// absorbs time zones (UTC+5/+6 producers report "today" before UTC does).
	Now func() time.Time
}

// Validate returns nil or a *ValidationError listing every problem.
func (v *Validator) Validate(e *Event) error {
	var p problems
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	latest := DateOf(now().UTC()).AddDays(1)

	if e.SchemaVersion != 0 && (e.SchemaVersion < MinSchemaVersion || e.SchemaVersion > SchemaVersion) {
		p.add("schema_version", "unsupported version %d (this server reads %d to %d)", e.SchemaVersion, MinSchemaVersion, SchemaVersion)
	}
	switch {
	case e.EventID == "":
		p.add("event_id", "required")
	case len(e.EventID) > MaxEventIDLen:
		p.add("event_id", "longer than %d characters", MaxEventIDLen)
	case !eventIDPattern.MatchString(e.EventID):
		p.add("event_id", "may contain only letters, digits and . _ : -")
	}
	if !e.Type.Valid() {
		p.add("type", "unknown event type %q (want %s)", e.Type, typeList())
	}
	if e.Region == "" {
		p.add("region", "required")
	} else if v.Regions != nil && !v.Regions.Known(e.Region) {
		p.add("region", "unknown region %q (want an ISO 3166-2 code from the region reference, e.g. KZ-75)", e.Region)
	}
	if strings.TrimSpace(e.Source) == "" {
		p.add("source", "required")
	}
	date := func(field string, d Date, required bool) {
		switch {
		case d.IsZero():
			if required {
				p.add(field, "required")
			}
		case d < EarliestDate:
			p.add(field, "%s is before %s", d, EarliestDate)
		case d > latest:
			p.add(field, "%s is in the future", d)
		}
	}
	ref := func(field, id string) {
		switch {
		case len(id) > MaxEventIDLen:
			p.add(field, "longer than %d characters", MaxEventIDLen)
		case !eventIDPattern.MatchString(id):
			p.add(field, "may contain only letters, digits and . _ : -")
		case id == e.EventID:
			p.add(field, "names the event itself")
		}
	}
	person := func(field string, ps *Person) {
		if ps == nil {
			p.add(field, "required")
			return
		}
		if ps.NationalID == "" && ps.Pseudonym == "" {
			p.add(field+".national_id", "required")
		}
	}

	if e.Supersedes != "" {
		if e.Type.Correctable() {
			ref("supersedes", e.Supersedes)
		} else {
			p.add("supersedes", "only a case or a lab_test can supersede an earlier event (a bed snapshot is corrected by a later snapshot)")
		}
	}
	switch e.Type {
	case TypeCase:
		person("person", e.Person)
		date("report_date", e.ReportDate, true)
		date("onset_date", e.OnsetDate, false)
		if !e.OnsetDate.IsZero() && !e.ReportDate.IsZero() && e.OnsetDate > e.ReportDate {
			p.add("onset_date", "%s is after the report date %s", e.OnsetDate, e.ReportDate)
		}
		switch e.Classification {
		case "", ClassConfirmed, ClassProbable:
		default:
			p.add("classification", "unknown %q (want confirmed or probable)", e.Classification)
		}
	case TypeContact:
		person("index_person", e.IndexPerson)
		person("contact_person", e.ContactPerson)
		date("contact_date", e.ContactDate, true)
		if e.Setting == "" {
			p.add("setting", "required")
		}
	case TypeLabTest:
		person("person", e.Person)
		date("sample_date", e.SampleDate, true)
		date("result_date", e.ResultDate, true)
		if !e.ResultDate.IsZero() && !e.SampleDate.IsZero() && e.ResultDate < e.SampleDate {
			p.add("result_date", "%s is before the sample date %s", e.ResultDate, e.SampleDate)
		}
		switch e.TestKind {
		case TestPCR, TestAntigen, TestAntibody:
		default:
			p.add("test_kind", "unknown %q (want pcr, antigen or antibody)", e.TestKind)
		}
		switch e.Result {
		case ResultPositive, ResultNegative, ResultInconclusive:
		default:
			p.add("result", "unknown %q (want positive, negative or inconclusive)", e.Result)
		}
	case TypeBedSnapshot:
		if e.FacilityID == "" {
			p.add("facility_id", "required")
		}
		if e.SnapshotTime == nil {
			p.add("snapshot_time", "required")
		} else {
			date("snapshot_time", DateOf(*e.SnapshotTime), true)
			if e.SnapshotTime.After(now().Add(time.Hour)) {
				p.add("snapshot_time", "%s is in the future", e.SnapshotTime.Format(time.RFC3339))
			}
		}
		switch e.BedKind {
		case BedInfectious, BedProvisional, BedICU:
		default:
			p.add("bed_kind", "unknown %q (want infectious, provisional or icu)", e.BedKind)
		}
		switch {
		case e.Total == nil:
			p.add("total", "required")
		case *e.Total < 0:
			p.add("total", "negative (%d)", *e.Total)
		}
		switch {
		case e.Occupied == nil:
			p.add("occupied", "required")
		case *e.Occupied < 0:
			p.add("occupied", "negative (%d)", *e.Occupied)
		case e.Total != nil && *e.Total >= 0 && *e.Occupied > *e.Total:
			p.add("occupied", "%d occupied exceeds %d total beds", *e.Occupied, *e.Total)
		}
	case TypeVaccination:
		person("person", e.Person)
		date("vaccination_date", e.VaccinationDate, true)
		if e.DoseNumber < 1 || e.DoseNumber > 10 {
			p.add("dose_number", "%d out of range 1..10", e.DoseNumber)
		}
		if e.Vaccine == "" {
			p.add("vaccine", "required")
		}
	case TypeReportComplete:
		date("report_date", e.ReportDate, true)
		if !e.Feed.IsFeed() {
			p.add("feed", "unknown feed %q (want case, contact, lab_test, bed_snapshot or vaccination)", e.Feed)
		}
	case TypeRetraction:
		date("report_date", e.ReportDate, true)
		if e.Retracts == "" {
			p.add("retracts", "required")
		} else {
			ref("retracts", e.Retracts)
		}
		if !slices.Contains(RetractionReasons, e.RetractionReason) {
			p.add("retraction_reason", "unknown %q (want %s)", e.RetractionReason, strings.Join(RetractionReasons, ", "))
		}
	case TypeFacility:
		if e.FacilityID == "" {
			p.add("facility_id", "required")
		}
		date("effective_date", e.EffectiveDate, true)
		switch e.FacilityStatus {
		case FacilityOpen, FacilityClosed:
		default:
			p.add("facility_status", "unknown %q (want open or closed)", e.FacilityStatus)
		}
		for _, c := range []struct {
			field string
			v     *int
		}{{"capacity_infectious", e.CapacityInfectious}, {"capacity_icu", e.CapacityICU}, {"capacity_provisional", e.CapacityProvisional}} {
			if c.v != nil && *c.v < 0 {
				p.add(c.field, "negative (%d)", *c.v)
			}
		}
	}
	return p.err()
}

// typeList is the event types as a reason words them.
func typeList() string {
	names := make([]string, len(EventTypes))
	for i, t := range EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}
