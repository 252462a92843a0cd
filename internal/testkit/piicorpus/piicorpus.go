// Package piicorpus is the corpus of personal data hidden in every string
// field of every event type (issue #20): the ingest test and the end-to-end
// test post it and then look for the hidden values everywhere.
package piicorpus

import (
	"encoding/json"
	"io/fs"
	"sort"
	"strings"

	"github.com/epiwatch/epiwatch/schemas"
)

// Base is a valid event of every type (dates in the past).
var Base = map[schemas.EventType]string{
	schemas.TypeCase:           `{"event_id":"sim7-c-000123","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017","district":"Medeu","sex":"male"},"report_date":"2021-07-01"}`,
	schemas.TypeContact:        `{"event_id":"k1","type":"contact","region":"KZ-75","source":"t","index_person":{"national_id":"900101300017","district":"Medeu"},"contact_person":{"national_id":"850315400015","district":"Abai"},"contact_date":"2021-07-01","setting":"household"}`,
	schemas.TypeLabTest:        `{"event_id":"l1","type":"lab_test","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"sample_date":"2021-07-01","result_date":"2021-07-02","test_kind":"pcr","result":"positive","lab":"KDL Olymp"}`,
	schemas.TypeBedSnapshot:    `{"event_id":"sim-42-bed-KZ-75-H05-20210701-icu","type":"bed_snapshot","region":"KZ-75","source":"t","facility_id":"almaty-ih-7","facility_name":"Городская инфекционная больница №2 (Алматы)","snapshot_time":"2021-07-01T08:00:00+05:00","bed_kind":"icu","total":10,"occupied":5}`,
	schemas.TypeVaccination:    `{"event_id":"v1","type":"vaccination","region":"KG-GB","source":"t","person":{"national_id":"21503199000123","district":"Ленинский район"},"dose_number":1,"vaccine":"Sputnik V","vaccination_date":"2021-07-01"}`,
	schemas.TypeReportComplete: `{"event_id":"rc1","type":"report_complete","region":"KZ-75","source":"t","feed":"case","report_date":"2021-07-01"}`,
	schemas.TypeRetraction:     `{"event_id":"r1","type":"retraction","region":"KZ-75","source":"t","retracts":"sim7-c-000123","retraction_reason":"duplicate","report_date":"2021-07-02"}`,
	schemas.TypeFacility:       `{"event_id":"f1","type":"facility","region":"KZ-75","source":"t","facility_id":"KZ-75-H01","facility_name":"ГКБ №7","facility_status":"open","effective_date":"2021-07-01","capacity_icu":5}`,
}

// Hidden are the values hidden in every field, and what of each must
// never appear in a stream.
var Hidden = []struct{ Value, Needle string }{
	{"IIN 999999999999 900101300017", "900101300017"},
	{"case-900101300017", "900101300017"},
	{"21503199000123", "21503199000123"},
	{"+7 701 123 45 67", "701 123 45 67"},
	{"87011234567", "87011234567"},
	{"tel 8 (701) 123-45-67", "123-45-67"},
	{"+996 555 123 456", "555 123 456"},
	{"0555-123-456", "0555-123-456"},
	{"ivanov@mail.kz", "ivanov@mail.kz"},
}

// Fields lists the string properties of an event type, person ones as
// person.x, without the person fields meant for personal data.
func Fields(typ schemas.EventType) []string {
	read := func(name string) map[string]any {
		b, err := fs.ReadFile(schemas.SchemaFS(), "events/"+name)
		if err != nil {
			panic("piicorpus: " + err.Error()) // the embedded schemas: a build defect
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			panic("piicorpus: " + name + ": " + err.Error())
		}
		return doc
	}
	person := read("common.schema.json")["$defs"].(map[string]any)["person"].(map[string]any)["properties"].(map[string]any)
	var out []string
	for name, p := range read(string(typ) + ".schema.json")["properties"].(map[string]any) {
		prop := p.(map[string]any)
		ref, _ := prop["$ref"].(string)
		switch {
		case strings.HasSuffix(ref, "/person"):
			for pn := range person {
				switch pn {
				case "national_id", "birth_date", "name", "phone", "address":
				default:
					out = append(out, name+"."+pn)
				}
			}
		case strings.HasSuffix(ref, "/schema_version"), prop["type"] == "integer", prop["type"] == "boolean":
		default:
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Corpus is the clean events (one of each type, accepted) and the corpus:
// each clean event with one field replaced by one hidden value; Field[i]
// names the field of Events[i].
type Corpus struct {
	Clean  []string
	Events []string
	Field  []string
}

// Build returns the corpus.
func Build() Corpus {
	var c Corpus
	for _, typ := range schemas.EventTypes {
		base := Base[typ]
		c.Clean = append(c.Clean, base)
		for _, field := range Fields(typ) {
			for _, h := range Hidden {
				var m map[string]any
				if err := json.Unmarshal([]byte(base), &m); err != nil {
					panic("piicorpus: " + err.Error())
				}
				if parent, sub, nested := strings.Cut(field, "."); nested {
					m[parent].(map[string]any)[sub] = h.Value
				} else {
					m[field] = h.Value
				}
				b, _ := json.Marshal(m)
				c.Events = append(c.Events, string(b))
				c.Field = append(c.Field, field)
			}
		}
	}
	return c
}

// Needles are what of the hidden values must never appear anywhere.
func Needles() []string {
	out := []string{"ivanov", "mail.kz"}
	for _, h := range Hidden {
		out = append(out, h.Needle)
	}
	return out
}
