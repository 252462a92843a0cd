package simulate

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// Stats counts events by type.
type Stats struct {
	Events int
	ByType map[schemas.EventType]int
}

// Add counts events.
func (s *Stats) Add(events []schemas.Event) {
	if s.ByType == nil {
		s.ByType = make(map[schemas.EventType]int)
	}
	s.Events += len(events)
	for i := range events {
		s.ByType[events[i].Type]++
	}
}

// String reads "12345 events (case 1000, contact 4000, …)", types in the
// order of schemas.EventTypes: every feed type, and the others (report
// completeness, corrections, the facility registry) when there are some.
func (s Stats) String() string {
	parts := make([]string, 0, len(schemas.EventTypes))
	for _, t := range schemas.EventTypes {
		if n := s.ByType[t]; n > 0 || t.IsFeed() {
			parts = append(parts, fmt.Sprintf("%s %d", t, n))
		}
	}
	return fmt.Sprintf("%d events (%s)", s.Events, strings.Join(parts, ", "))
}

// Output formats of FileWriter.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// FileWriter writes events to one file per event type in a directory:
// <type>.ndjson (each line exactly what POST /v1/events accepts) or
// <type>.csv (the importer's CSV: a header of JSON field names, nested
// person fields dotted like person.national_id, empty cells for absent
// fields). A type's file is created with its first event, so a type
// without events has no file (the importer refuses an empty CSV, and an
// empty file says nothing). `epiwatch import DIR/*.ndjson` loads either;
// the names sort so that retraction follows case, and within a file
// events keep the order they were sent in, so corrections come after the
// events they correct.
type FileWriter struct {
	dir, format string
	files       map[schemas.EventType]*typeFile
	stats       Stats
}

type typeFile struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	cw   *csv.Writer
	cols []column
}

// NewFileWriter creates dir if needed and removes the files of every event
// type in the format from it, so that no file of a previous run is left
// beside this run's (a type this run has no events of would otherwise keep
// the old file).
func NewFileWriter(dir, format string) (*FileWriter, error) {
	if format != FormatNDJSON && format != FormatCSV {
		return nil, fmt.Errorf("output format %q: want ndjson or csv", format)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	w := &FileWriter{dir: dir, format: format, files: make(map[schemas.EventType]*typeFile)}
	for _, t := range schemas.EventTypes {
		if err := os.Remove(w.path(t)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove the file of a previous run: %w", err)
		}
	}
	return w, nil
}

func (w *FileWriter) path(t schemas.EventType) string {
	return filepath.Join(w.dir, string(t)+"."+w.format)
}

// file returns the file of event type t, creating it (with the CSV header)
// on first use.
func (w *FileWriter) file(t schemas.EventType) (*typeFile, error) {
	if tf := w.files[t]; tf != nil {
		return tf, nil
	}
	cols, ok := csvColumns[t]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", t)
	}
	tf := &typeFile{path: w.path(t)}
	f, err := os.Create(tf.path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", tf.path, err)
	}
	tf.f, tf.bw = f, bufio.NewWriterSize(f, 256<<10)
	w.files[t] = tf
	if w.format == FormatCSV {
		tf.cols = cols
		tf.cw = csv.NewWriter(tf.bw)
		head := make([]string, len(tf.cols))
		for i, c := range tf.cols {
			head[i] = c.name
		}
		if err := tf.cw.Write(head); err != nil {
			return nil, fmt.Errorf("write %s: %w", tf.path, err)
		}
	}
	return tf, nil
}

// Paths returns the files written, in the order of schemas.EventTypes.
func (w *FileWriter) Paths() []string {
	var out []string
	for _, t := range schemas.EventTypes {
		if tf := w.files[t]; tf != nil {
			out = append(out, tf.path)
		}
	}
	return out
}

// Stats returns the counts of events written.
func (w *FileWriter) Stats() Stats { return w.stats }

// Write appends events to their type's file.
func (w *FileWriter) Write(events []schemas.Event) error {
	for i := range events {
		e := &events[i]
		tf, err := w.file(e.Type)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.EventID, err)
		}
		if w.format == FormatNDJSON {
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode event %s: %w", e.EventID, err)
			}
			b = append(b, '\n')
			if _, err := tf.bw.Write(b); err != nil {
				return fmt.Errorf("write %s: %w", tf.path, err)
			}
			continue
		}
		if err := csvWritable(e); err != nil {
			return err
		}
		rec := make([]string, len(tf.cols))
		for j, c := range tf.cols {
			rec[j] = c.get(e)
		}
		if err := tf.cw.Write(rec); err != nil {
			return fmt.Errorf("write %s: %w", tf.path, err)
		}
	}
	w.stats.Add(events)
	return nil
}

// Close flushes and closes every file.
func (w *FileWriter) Close() error {
	var errs []error
	for _, t := range schemas.EventTypes {
		tf := w.files[t]
		if tf == nil || tf.f == nil {
			continue
		}
		if tf.cw != nil {
			tf.cw.Flush()
			errs = append(errs, tf.cw.Error())
		}
		errs = append(errs, tf.bw.Flush(), tf.f.Close())
		tf.f = nil
	}
	return errors.Join(errs...)
}

// column is one CSV column: its header (the JSON field name, dotted for
// nested person fields) and how to get its cell.
type column struct {
	name string
	get  func(e *schemas.Event) string
}

func dateCell(d schemas.Date) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func intCell(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func personColumns(prefix string, of func(e *schemas.Event) *schemas.Person) []column {
	field := func(name string, get func(p *schemas.Person) string) column {
		return column{prefix + "." + name, func(e *schemas.Event) string {
			if p := of(e); p != nil {
				return get(p)
			}
			return ""
		}}
	}
	return []column{
		field("national_id", func(p *schemas.Person) string { return p.NationalID }),
		field("birth_date", func(p *schemas.Person) string { return p.BirthDate }),
		field("sex", func(p *schemas.Person) string { return p.Sex }),
		field("district", func(p *schemas.Person) string { return p.District }),
		field("name", func(p *schemas.Person) string { return p.Name }),
		field("phone", func(p *schemas.Person) string { return p.Phone }),
		field("address", func(p *schemas.Person) string { return p.Address }),
	}
}

var commonColumns = []column{
	{"event_id", func(e *schemas.Event) string { return e.EventID }},
	{"type", func(e *schemas.Event) string { return string(e.Type) }},
	{"region", func(e *schemas.Event) string { return e.Region }},
	{"source", func(e *schemas.Event) string { return e.Source }},
}

func withCommon(cols ...[]column) []column {
	out := append([]column(nil), commonColumns...)
	for _, c := range cols {
		out = append(out, c...)
	}
	return out
}

var (
	personOf        = func(e *schemas.Event) *schemas.Person { return e.Person }
	indexPersonOf   = func(e *schemas.Event) *schemas.Person { return e.IndexPerson }
	contactPersonOf = func(e *schemas.Event) *schemas.Person { return e.ContactPerson }
)

// csvColumns are the CSV columns of each event type: every field the
// simulator fills for it.
var csvColumns = map[schemas.EventType][]column{
	schemas.TypeCase: withCommon([]column{
		{"report_date", func(e *schemas.Event) string { return dateCell(e.ReportDate) }},
		{"onset_date", func(e *schemas.Event) string { return dateCell(e.OnsetDate) }},
		{"imported", func(e *schemas.Event) string {
			if e.Imported {
				return "true"
			}
			return ""
		}},
		{"classification", func(e *schemas.Event) string { return e.Classification }},
		{"supersedes", func(e *schemas.Event) string { return e.Supersedes }},
	}, personColumns("person", personOf)),
	schemas.TypeContact: withCommon([]column{
		{"contact_date", func(e *schemas.Event) string { return dateCell(e.ContactDate) }},
		{"setting", func(e *schemas.Event) string { return e.Setting }},
	}, personColumns("index_person", indexPersonOf), personColumns("contact_person", contactPersonOf)),
	schemas.TypeLabTest: withCommon([]column{
		{"sample_date", func(e *schemas.Event) string { return dateCell(e.SampleDate) }},
		{"result_date", func(e *schemas.Event) string { return dateCell(e.ResultDate) }},
		{"test_kind", func(e *schemas.Event) string { return e.TestKind }},
		{"result", func(e *schemas.Event) string { return e.Result }},
		{"lab", func(e *schemas.Event) string { return e.Lab }},
		{"supersedes", func(e *schemas.Event) string { return e.Supersedes }},
	}, personColumns("person", personOf)),
	schemas.TypeBedSnapshot: withCommon([]column{
		{"facility_id", func(e *schemas.Event) string { return e.FacilityID }},
		{"facility_name", func(e *schemas.Event) string { return e.FacilityName }},
		{"snapshot_time", func(e *schemas.Event) string {
			if e.SnapshotTime == nil {
				return ""
			}
			return e.SnapshotTime.Format(time.RFC3339Nano)
		}},
		{"bed_kind", func(e *schemas.Event) string { return e.BedKind }},
		{"total", func(e *schemas.Event) string { return intCell(e.Total) }},
		{"occupied", func(e *schemas.Event) string { return intCell(e.Occupied) }},
	}),
	schemas.TypeVaccination: withCommon([]column{
		{"dose_number", func(e *schemas.Event) string {
			if e.DoseNumber == 0 {
				return ""
			}
			return strconv.Itoa(e.DoseNumber)
		}},
		{"vaccine", func(e *schemas.Event) string { return e.Vaccine }},
		{"vaccination_date", func(e *schemas.Event) string { return dateCell(e.VaccinationDate) }},
	}, personColumns("person", personOf)),
	schemas.TypeReportComplete: withCommon([]column{
		{"feed", func(e *schemas.Event) string { return string(e.Feed) }},
		{"report_date", func(e *schemas.Event) string { return dateCell(e.ReportDate) }},
	}),
	schemas.TypeRetraction: withCommon([]column{
		{"retracts", func(e *schemas.Event) string { return e.Retracts }},
		{"retraction_reason", func(e *schemas.Event) string { return e.RetractionReason }},
		{"report_date", func(e *schemas.Event) string { return dateCell(e.ReportDate) }},
	}),
	schemas.TypeFacility: withCommon([]column{
		{"facility_id", func(e *schemas.Event) string { return e.FacilityID }},
		{"facility_name", func(e *schemas.Event) string { return e.FacilityName }},
		{"facility_status", func(e *schemas.Event) string { return e.FacilityStatus }},
		{"effective_date", func(e *schemas.Event) string { return dateCell(e.EffectiveDate) }},
		{"capacity_infectious", func(e *schemas.Event) string { return intCell(e.CapacityInfectious) }},
		{"capacity_icu", func(e *schemas.Event) string { return intCell(e.CapacityICU) }},
		{"capacity_provisional", func(e *schemas.Event) string { return intCell(e.CapacityProvisional) }},
	}),
}

// csvWritable refuses events with fields the CSV columns do not carry, so
// that nothing is lost silently.
func csvWritable(e *schemas.Event) error {
	if e.SchemaVersion != 0 {
		return fmt.Errorf("event %s: schema_version has no CSV column", e.EventID)
	}
	for _, p := range e.Persons() {
		if p.Pseudonym != "" || p.KeyID != "" || p.AgeBand != "" {
			return fmt.Errorf("event %s: pseudonymised persons have no CSV columns (the files hold what producers send)", e.EventID)
		}
	}
	return nil
}
