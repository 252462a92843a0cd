package ingest_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
)

// piiBase is a valid event of every type (dates in the past).
var piiBase = map[schemas.EventType]string{
	schemas.TypeCase:           `{"event_id":"sim7-c-000123","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017","district":"Medeu","sex":"male"},"report_date":"2021-07-01"}`,
	schemas.TypeContact:        `{"event_id":"k1","type":"contact","region":"KZ-75","source":"t","index_person":{"national_id":"900101300017","district":"Medeu"},"contact_person":{"national_id":"850315400015","district":"Abai"},"contact_date":"2021-07-01","setting":"household"}`,
	schemas.TypeLabTest:        `{"event_id":"l1","type":"lab_test","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"sample_date":"2021-07-01","result_date":"2021-07-02","test_kind":"pcr","result":"positive","lab":"KDL Olymp"}`,
	schemas.TypeBedSnapshot:    `{"event_id":"sim-42-bed-KZ-75-H05-20210701-icu","type":"bed_snapshot","region":"KZ-75","source":"t","facility_id":"almaty-ih-7","facility_name":"Городская инфекционная больница №2 (Алматы)","snapshot_time":"2021-07-01T08:00:00+05:00","bed_kind":"icu","total":10,"occupied":5}`,
	schemas.TypeVaccination:    `{"event_id":"v1","type":"vaccination","region":"KG-GB","source":"t","person":{"national_id":"21503199000123","district":"Ленинский район"},"dose_number":1,"vaccine":"Sputnik V","vaccination_date":"2021-07-01"}`,
	schemas.TypeReportComplete: `{"event_id":"rc1","type":"report_complete","region":"KZ-75","source":"t","feed":"case","report_date":"2021-07-01"}`,
	schemas.TypeRetraction:     `{"event_id":"r1","type":"retraction","region":"KZ-75","source":"t","retracts":"sim7-c-000123","retraction_reason":"duplicate","report_date":"2021-07-02"}`,
	schemas.TypeFacility:       `{"event_id":"f1","type":"facility","region":"KZ-75","source":"t","facility_id":"KZ-75-H01","facility_name":"ГКБ №7","facility_status":"open","effective_date":"2021-07-01","capacity_icu":5}`,
}

// piiHidden are the values hidden in every field, and what of each must
// never appear in a stream.
var piiHidden = []struct{ value, needle string }{
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

// piiFields lists the string properties of an event type, person ones as
// person.x, without the person fields meant for personal data.
func piiFields(t *testing.T, typ schemas.EventType) []string {
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

// The corpus — an IIN, a PIN, phones and an e-mail hidden in every string
// field of every event type, event_id included — posted over HTTP and
// imported from a file through the real pseudonymiser and embedded NATS:
// every event is rejected naming its field, and no stream message (subject,
// header or payload, events and dead letters alike) nor answer carries a
// hidden value. The clean events around them are accepted.
func TestPersonalDataNeverStored(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	in := realIngester(t, s, ingest.Config{MaxBodyBytes: 8 << 20, MaxBatch: 10000}, pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)})

	var clean, corpus []string
	var fields []string
	for _, typ := range schemas.EventTypes {
		base := piiBase[typ]
		clean = append(clean, base)
		for _, field := range piiFields(t, typ) {
			for _, h := range piiHidden {
				var m map[string]any
				if err := json.Unmarshal([]byte(base), &m); err != nil {
					t.Fatal(err)
				}
				if parent, sub, nested := strings.Cut(field, "."); nested {
					m[parent].(map[string]any)[sub] = h.value
				} else {
					m[field] = h.value
				}
				b, _ := json.Marshal(m)
				corpus = append(corpus, string(b))
				fields = append(fields, field)
			}
		}
	}

	// HTTP: the clean events, then the corpus.
	body := strings.Join(append(append([]string{}, clean...), corpus...), "\n")
	rec, sum := post(t, in.Handler(nil, nil), []byte(body), nil)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if sum.Accepted != len(clean) || sum.Rejected != len(corpus) {
		t.Fatalf("accepted %d, rejected %d; want %d and %d: %+v", sum.Accepted, sum.Rejected, len(clean), len(corpus), sum.Results[:len(clean)])
	}
	for i, r := range sum.Results[len(clean):] {
		if !strings.Contains(r.Reason, fields[i]+": looks like ") || !strings.Contains(r.Reason, "personal data is only accepted in person fields") {
			t.Errorf("%s: reason %q does not name the field", corpus[i], r.Reason)
		}
	}
	answer := rec.Body.String()

	// File import: the corpus again, under event_ids of its own where
	// event_id is not the field hiding the value.
	dir := t.TempDir()
	file := filepath.Join(dir, "corpus.ndjson")
	var imp []string
	for _, line := range corpus {
		imp = append(imp, strings.Replace(line, `"event_id":"`, `"event_id":"imp-`, 1))
	}
	if err := os.WriteFile(file, []byte(strings.Join(imp, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := in.Import(ctx, []string{file}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != len(corpus) || res.Accepted != 0 {
		t.Fatalf("import: %+v", res.ImportProgress)
	}
	answer += strings.Join(res.Rejections, "\n")

	needles := []string{"ivanov", "mail.kz"}
	for _, h := range piiHidden {
		needles = append(needles, h.needle)
	}
	for _, n := range needles {
		if strings.Contains(answer, n) {
			t.Errorf("the answers carry %q", n)
		}
	}
	dead := 0
	for _, name := range []string{schemas.StreamEvents, schemas.StreamDeadLetter} {
		st, err := s.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if name == schemas.StreamDeadLetter {
			dead = int(info.State.Msgs)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			all := m.Subject + "\n" + string(m.Data)
			for k, vs := range m.Header {
				all += "\n" + k + ": " + strings.Join(vs, ",")
			}
			for _, n := range needles {
				if strings.Contains(all, n) {
					t.Errorf("%s message %d carries %q: %s", name, seq, n, all)
				}
			}
		}
	}
	if dead < len(corpus) {
		t.Fatalf("%d dead letters, want at least %d", dead, len(corpus))
	}
}
