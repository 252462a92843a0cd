package schemas_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

func TestFindPersonalData(t *testing.T) {
	for _, c := range []struct {
		in   string
		want schemas.PersonalDataKind
	}{
		// National IDs, alone and embedded.
		{"900101300017", schemas.NationalIDData},
		{"IIN 900101300017", schemas.NationalIDData},
		{"case-900101300017", schemas.NationalIDData},
		{"x900101300017y", schemas.NationalIDData},
		{"21503199000123", schemas.NationalIDData}, // Kyrgyz PIN
		{"pin:21503199000123.", schemas.NationalIDData},
		{"900101300018", schemas.NoPersonalData},   // wrong check digit
		{"9001013000171", schemas.NoPersonalData},  // 13 digits
		{"31503199000123", schemas.NoPersonalData}, // PIN must start with 1 or 2
		{"123456789012", schemas.NoPersonalData},   // no valid date
		{"202403150830", schemas.NoPersonalData},   // a timestamp, month 24
		{"20240315083000", schemas.NoPersonalData}, // a timestamp, month 40
		{"1710489600000", schemas.NoPersonalData},  // Unix milliseconds
		{"sim-1710489600", schemas.NoPersonalData}, // Unix seconds
		// Phones.
		{"+7 701 123 45 67", schemas.PhoneData},
		{"+77011234567", schemas.PhoneData},
		{"87011234567", schemas.PhoneData},
		{"case-87011234567", schemas.PhoneData},
		{"8 (701) 123-45-67", schemas.PhoneData},
		{"8-701-123-45-67", schemas.PhoneData},
		{"+7 (727) 250-00-00", schemas.PhoneData},
		{"+996 555 123 456", schemas.PhoneData},
		{"+996555123456", schemas.PhoneData},
		{"996 (555) 12-34-56", schemas.PhoneData},
		{"0555 123 456", schemas.PhoneData},
		{"0312 123456", schemas.PhoneData},
		{"701 123 45 67", schemas.PhoneData},
		{"call 8 701 1234567 please", schemas.PhoneData},
		{"KZ-75 +7 701 123 45 67", schemas.PhoneData},
		{"+44 20 7946 0958", schemas.PhoneData},
		// E-mail.
		{"ivanov@mail.kz", schemas.EmailData},
		{"lab, contact a.ivanova+covid@gov.kg now", schemas.EmailData},
		{"врач@больница.кз", schemas.EmailData},
		// Not personal data.
		{"", schemas.NoPersonalData},
		{"2024-03-15", schemas.NoPersonalData},
		{"15.03.2024", schemas.NoPersonalData},
		{"2024-03-15T08:12:00+05:00", schemas.NoPersonalData},
		{"KZ-75", schemas.NoPersonalData},
		{"sim7-c-000123", schemas.NoPersonalData},
		{"sim-42-case-KZ-75-1234567", schemas.NoPersonalData},
		{"sim-42-case-KZ-75-12345678", schemas.NoPersonalData},
		{"sim-42-bed-KZ-75-H05-20240315-icu", schemas.NoPersonalData},
		{"sim-42-facility-KG-GB-P01-20240315-closed", schemas.NoPersonalData},
		{"sim-42-complete-KZ-79-lab_test-20240315", schemas.NoPersonalData},
		{"almaty-ih-7", schemas.NoPersonalData},
		{"KZ-75-H01", schemas.NoPersonalData},
		{"Городская инфекционная больница №2 (Алматы)", schemas.NoPersonalData},
		{"ул. Абая 150/230, корпус 2", schemas.NoPersonalData},
		{"lab @ night", schemas.NoPersonalData},
		{"10 20 30 40 50", schemas.NoPersonalData},
	} {
		if got := schemas.ScanPersonalData(c.in); got != c.want {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
	}
}

func TestRedactPersonalData(t *testing.T) {
	in := "IIN 900101300017, tel +7 701 123 45 67 / ivanov@mail.kz; 2024-03-15"
	got := schemas.RedactPersonalData(in)
	if want := "IIN [redacted], tel [redacted] / [redacted]; 2024-03-15"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := schemas.RedactPersonalData("KZ-75-H01"); got != "KZ-75-H01" {
		t.Fatalf("clean text changed: %q", got)
	}
}

// The personal data hidden in the corpus, in each of its forms.
var hiddenPersonalData = []struct{ kind, value, raw string }{
	{"national ID", "IIN 900101300017", "900101300017"},
	{"national ID", "case-900101300017", "900101300017"},
	{"national ID", "21503199000123", "21503199000123"},
	{"phone", "+7 701 123 45 67", "701 123 45 67"},
	{"phone", "87011234567", "87011234567"},
	{"phone", "tel 8 (701) 123-45-67", "123-45-67"},
	{"phone", "+996 555 123 456", "555 123 456"},
	{"phone", "0555-123-456", "0555-123-456"},
	{"e-mail", "ivanov@mail.kz", "ivanov@mail.kz"},
}

// stringFields lists the string properties of an event type's schema,
// person properties as person.x, without the person fields meant for
// personal data.
func stringFields(t *testing.T, typ schemas.EventType) []string {
	t.Helper()
	read := func(name string) map[string]any {
		b, err := fs.ReadFile(schemas.SchemaFS(), "events/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	common := read("common.schema.json")["$defs"].(map[string]any)
	person := common["person"].(map[string]any)["properties"].(map[string]any)
	var out []string
	for name, p := range read(string(typ) + ".schema.json")["properties"].(map[string]any) {
		prop := p.(map[string]any)
		if ref, _ := prop["$ref"].(string); strings.HasSuffix(ref, "/person") {
			for pn := range person {
				switch pn {
				case "national_id", "birth_date", "name", "phone", "address":
				default:
					out = append(out, name+"."+pn)
				}
			}
			continue
		}
		if ref, _ := prop["$ref"].(string); strings.HasSuffix(ref, "/schema_version") {
			continue
		}
		switch prop["type"] {
		case "integer", "boolean":
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// validEvents are a valid event of every type.
func validEvents(t *testing.T) map[schemas.EventType]map[string]any {
	t.Helper()
	out := map[schemas.EventType]map[string]any{}
	files, _ := filepath.Glob("testdata/valid/*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out[schemas.EventType(m["type"].(string))] = m
	}
	extra := map[schemas.EventType]string{
		schemas.TypeVaccination:    `{"event_id":"v1","type":"vaccination","region":"KZ-75","source":"t","person":{"national_id":"900101300017","district":"Medeu"},"dose_number":1,"vaccine":"Sputnik V","vaccination_date":"2021-07-01"}`,
		schemas.TypeReportComplete: `{"event_id":"rc1","type":"report_complete","region":"KZ-75","source":"t","feed":"case","report_date":"2021-07-01"}`,
		schemas.TypeRetraction:     `{"event_id":"r1","type":"retraction","region":"KZ-75","source":"t","retracts":"c1","retraction_reason":"duplicate","report_date":"2021-07-01"}`,
	}
	for typ, s := range extra {
		if out[typ] != nil {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		out[typ] = m
	}
	for _, typ := range schemas.EventTypes {
		if out[typ] == nil {
			t.Fatalf("no valid %s event", typ)
		}
	}
	return out
}

func cloneJSON(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// PersonalDataCorpus returns, for every event type, every string field
// (event_id and person.district included) and every hidden value, the event
// JSON with the value in that field.
type piiCase struct {
	typ   schemas.EventType
	field string
	kind  string
	value string
	raw   string
	json  []byte
}

func personalDataCorpus(t *testing.T) []piiCase {
	t.Helper()
	var out []piiCase
	valid := validEvents(t)
	for _, typ := range schemas.EventTypes {
		for _, field := range stringFields(t, typ) {
			for _, h := range hiddenPersonalData {
				m := cloneJSON(valid[typ])
				if parent, sub, nested := strings.Cut(field, "."); nested {
					p, _ := m[parent].(map[string]any)
					if p == nil {
						p = map[string]any{"national_id": "900101300017"}
						m[parent] = p
					}
					p[sub] = h.value
				} else {
					m[field] = h.value
				}
				b, err := json.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, piiCase{typ, field, h.kind, h.value, h.raw, b})
			}
		}
	}
	return out
}

// Every string field of every event type, with an IIN, a PIN, a phone or an
// e-mail hidden in it, is rejected with a reason naming the field and the
// kind, never the value — on the fast and the JSON Schema path alike.
func TestPersonalDataRejectedInEveryField(t *testing.T) {
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	corpus := personalDataCorpus(t)
	if len(corpus) < 500 {
		t.Fatalf("corpus of %d events only", len(corpus))
	}
	fields := map[string]bool{}
	for _, pc := range corpus {
		fields[pc.field] = true
		e, err := c.Decode(pc.json)
		if err == nil {
			t.Errorf("%s.%s = %q accepted: %+v", pc.typ, pc.field, pc.value, e)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, pc.field+": looks like a "+pc.kind) && !strings.Contains(msg, pc.field+": looks like an "+pc.kind) {
			t.Errorf("%s.%s = %q: reason %q does not name the field and %s", pc.typ, pc.field, pc.value, msg, pc.kind)
		}
		for _, v := range []string{pc.value, pc.raw, "900101300017", "21503199000123", "1234567", "123 45 67", "123 456", "ivanov"} {
			if strings.Contains(msg, v) {
				t.Errorf("%s.%s: reason %q echoes %q", pc.typ, pc.field, msg, v)
			}
		}
	}
	for _, f := range []string{"event_id", "source", "region", "type", "lab", "facility_id", "facility_name", "vaccine", "retraction_reason", "retracts", "supersedes", "person.district", "index_person.district", "contact_person.sex", "report_date", "snapshot_time"} {
		if !fields[f] {
			t.Errorf("corpus never hides personal data in %s", f)
		}
	}
}

// The fields meant for personal data keep it; clean values of every kind
// pass.
func TestPersonalDataAllowedInPersonFields(t *testing.T) {
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{
		`{"event_id":"sim7-c-000123","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017","phone":"+7 701 123 45 67","name":"Иванов И. 900101300017","address":"ivanov@mail.kz","birth_date":"1990-01-01","district":"Алмалинский район"},"report_date":"2021-07-01"}`,
		`{"event_id":"sim-42-bed-KZ-75-H05-20240315-icu","type":"bed_snapshot","region":"KZ-75","source":"hospital-KZ-75-H05","facility_id":"almaty-ih-7","facility_name":"Городская инфекционная больница №2 (Алматы)","snapshot_time":"2021-07-01T08:12:00+05:00","bed_kind":"icu","total":10,"occupied":2}`,
		`{"event_id":"l-2021-07-01-1","type":"lab_test","region":"KG-GB","source":"lis","person":{"national_id":"21503199000123"},"sample_date":"2021-07-01","result_date":"2021-07-02","test_kind":"pcr","result":"positive","lab":"ЦПЗиГСЭН, Бишкек"}`,
		`{"event_id":"l2","type":"lab_test","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"sample_date":"2021-07-01","result_date":"2021-07-02","test_kind":"pcr","result":"positive","lab":""}`,
	} {
		if _, err := c.Decode([]byte(raw)); err != nil {
			t.Errorf("rejected (%v): %s", err, raw)
		}
	}
}

// The tight formats of facility_id, lab and district.
func TestCodeFormats(t *testing.T) {
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	base := validEvents(t)
	for _, tc := range []struct {
		typ   schemas.EventType
		field string
		value string
		ok    bool
	}{
		{schemas.TypeBedSnapshot, "facility_id", "KZ-75-H01", true},
		{schemas.TypeBedSnapshot, "facility_id", "almaty-ih-7", true},
		{schemas.TypeFacility, "facility_id", "ГКБ/7 корп.2", true},
		{schemas.TypeFacility, "facility_id", "-x", false},
		{schemas.TypeFacility, "facility_id", "a,b", false},
		{schemas.TypeFacility, "facility_id", "a\nb", false},
		{schemas.TypeFacility, "facility_id", strings.Repeat("a", 101), false},
		{schemas.TypeLabTest, "lab", "НЦЭ, Алматы", true},
		{schemas.TypeLabTest, "lab", "KDL Olymp", true},
		{schemas.TypeLabTest, "lab", "Лаборатория №3 (ЦПЗиГСЭН)", true},
		{schemas.TypeLabTest, "lab", "", true},
		{schemas.TypeLabTest, "lab", "lab; drop", false},
		{schemas.TypeLabTest, "lab", "a@b", false},
		{schemas.TypeLabTest, "lab", " lab", false},
		{schemas.TypeCase, "person.district", "Аль-Фарабийский район", true},
		{schemas.TypeCase, "person.district", "Medeu", true},
		{schemas.TypeCase, "person.district", "", true},
		{schemas.TypeCase, "person.district", "Medeu: ул. Абая", false},
		{schemas.TypeCase, "person.district", strings.Repeat("д", 101), false},
	} {
		m := cloneJSON(base[tc.typ])
		if parent, sub, nested := strings.Cut(tc.field, "."); nested {
			m[parent].(map[string]any)[sub] = tc.value
		} else {
			m[tc.field] = tc.value
		}
		b, _ := json.Marshal(m)
		_, err := c.Decode(b)
		if (err == nil) != tc.ok {
			t.Errorf("%s %s=%q: err %v, want ok=%v", tc.typ, tc.field, tc.value, err, tc.ok)
		}
	}
}

// TestPersonalDataInKeys: a JSON key holding personal data (an unknown
// property named by an IIN, a phone as a key of a nested object) rejects the
// event with a reason that names the place as <key> and never quotes the key
// or its value — the schema's own "additional properties '…' not allowed"
// would.
func TestPersonalDataInKeys(t *testing.T) {
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, json, field, secret string
	}{
		{"IIN as an unknown top-level key", `{"event_id":"k1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","900101300017":"x"}`, "<key>", "900101300017"},
		{"IIN key holding an e-mail", `{"event_id":"k2","type":"case","region":"KZ-75","source":"t","report_date":"2020-07-01","900101300017":"ivanov@mail.kz"}`, "<key>", "900101300017"},
		{"phone as a nested key", `{"event_id":"k3","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017","+7 701 123 45 67":"x"},"report_date":"2020-07-01"}`, "person.<key>", "123 45 67"},
		{"PIN key in an unknown type", `{"event_id":"k4","type":"nonsense","21503199000123":1}`, "<key>", "21503199000123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decode([]byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field+": a key looks like") {
				t.Errorf("reason %q does not name %s", msg, tc.field)
			}
			for _, v := range []string{tc.secret, "ivanov"} {
				if strings.Contains(msg, v) {
					t.Errorf("reason %q echoes %q", msg, v)
				}
			}
		})
	}
}
