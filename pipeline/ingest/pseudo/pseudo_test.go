package pseudo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

var _ ingest.Pseudonymizer = (*pseudo.Pseudonymizer)(nil)

const (
	hexKey1 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	hexKey2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

// fixedNow is after every event date of the tests.
func fixedNow() time.Time { return time.Date(2022, 1, 1, 12, 0, 0, 0, time.UTC) }

func newPseudo(t testing.TB, active pseudo.KeyConfig, retired ...pseudo.KeyConfig) *pseudo.Pseudonymizer {
	t.Helper()
	p, err := pseudo.New(active, retired, schemas.DefaultRegions(), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func k1(t testing.TB) *pseudo.Pseudonymizer {
	return newPseudo(t, pseudo.KeyConfig{ID: "k1", Key: hexKey1})
}

func day(s string) time.Time {
	t, err := time.Parse(schemas.DateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	iinMale   = nationalid.GenerateIIN(day("1990-03-15"), nationalid.Male, 1234)
	iinFemale = nationalid.GenerateIIN(day("1985-11-02"), nationalid.Female, 77)
	pinMale   = nationalid.GeneratePIN(day("1978-05-09"), nationalid.Male, 123)
)

func caseEvent(region, id string) *schemas.Event {
	return &schemas.Event{EventID: "c-" + region, Type: schemas.TypeCase, Region: region, Source: "t",
		Person: &schemas.Person{NationalID: id}, ReportDate: schemas.MustDate("2021-06-01")}
}

func contactEvent(region, index, contact string) *schemas.Event {
	return &schemas.Event{EventID: "ct-" + region, Type: schemas.TypeContact, Region: region, Source: "t",
		IndexPerson: &schemas.Person{NationalID: index}, ContactPerson: &schemas.Person{NationalID: contact},
		ContactDate: schemas.MustDate("2021-05-30"), Setting: "household"}
}

func labEvent(region, id string) *schemas.Event {
	return &schemas.Event{EventID: "lt-" + region, Type: schemas.TypeLabTest, Region: region, Source: "t",
		Person: &schemas.Person{NationalID: id}, SampleDate: schemas.MustDate("2021-06-01"),
		ResultDate: schemas.MustDate("2021-06-02"), TestKind: schemas.TestPCR, Result: schemas.ResultPositive}
}

func apply(t *testing.T, p *pseudo.Pseudonymizer, e *schemas.Event) *schemas.Event {
	t.Helper()
	if err := p.Apply(e); err != nil {
		t.Fatalf("Apply(%s): %v", e.EventID, err)
	}
	return e
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// One person keeps one pseudonym across event types, roles and regions —
// including a Kyrgyz PIN reported in a Kazakh region.
func TestSamePersonSamePseudonym(t *testing.T) {
	p := k1(t)
	for _, tc := range []struct {
		name string
		id   string
		got  func() []*schemas.Person
	}{
		{"IIN", iinMale, func() []*schemas.Person {
			return []*schemas.Person{
				apply(t, p, caseEvent("KZ-75", iinMale)).Person,
				apply(t, p, contactEvent("KZ-71", iinMale, iinFemale)).IndexPerson,
				apply(t, p, contactEvent("KZ-79", iinFemale, iinMale)).ContactPerson,
				apply(t, p, labEvent("KZ-10", iinMale)).Person,
			}
		}},
		{"PIN across the border", pinMale, func() []*schemas.Person {
			return []*schemas.Person{
				apply(t, p, caseEvent("KG-GB", pinMale)).Person,
				apply(t, p, labEvent("KZ-75", pinMale)).Person,
				apply(t, p, contactEvent("KG-C", iinMale, pinMale)).ContactPerson,
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := tc.got()
			for _, q := range ps {
				if q.Pseudonym != ps[0].Pseudonym || q.KeyID != "k1" || !hex64.MatchString(q.Pseudonym) {
					t.Fatalf("pseudonyms differ or malformed: %+v vs %+v", q, ps[0])
				}
			}
			country := "KZ"
			if len(tc.id) == 14 {
				country = "KG"
			}
			want, err := p.Pseudonym("k1", country, tc.id)
			if err != nil || want != ps[0].Pseudonym {
				t.Fatalf("Pseudonym() = %q, %v; Apply gave %q", want, err, ps[0].Pseudonym)
			}
		})
	}
	a := apply(t, p, contactEvent("KZ-71", iinMale, iinFemale))
	if a.IndexPerson.Pseudonym == a.ContactPerson.Pseudonym {
		t.Fatal("two persons share a pseudonym")
	}
}

func TestDifferentKeysDifferentPseudonyms(t *testing.T) {
	a := apply(t, k1(t), caseEvent("KZ-75", iinMale)).Person
	b := apply(t, newPseudo(t, pseudo.KeyConfig{ID: "k2", Key: hexKey2}), caseEvent("KZ-75", iinMale)).Person
	if a.Pseudonym == b.Pseudonym || a.KeyID == b.KeyID {
		t.Fatalf("same pseudonym under two keys: %+v %+v", a, b)
	}
}

// After a rotation the retired key still resolves the old pseudonyms, and
// events pseudonymised upstream with it are accepted.
func TestRetiredKeyResolves(t *testing.T) {
	old := apply(t, k1(t), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	rotated := newPseudo(t, pseudo.KeyConfig{ID: "k2", Key: hexKey2}, pseudo.KeyConfig{ID: "k1", Key: hexKey1})

	got, err := rotated.Pseudonym("k1", "KZ", iinMale)
	if err != nil || got != old {
		t.Fatalf("retired key: Pseudonym = %q, %v; want %q", got, err, old)
	}
	fresh := apply(t, rotated, caseEvent("KZ-75", iinMale)).Person
	if fresh.KeyID != "k2" || fresh.Pseudonym == old {
		t.Fatalf("new events must use the active key: %+v", fresh)
	}
	if got, _ := rotated.Pseudonym("k2", "KZ", iinMale); got != fresh.Pseudonym {
		t.Fatalf("active key: Pseudonym = %q, Apply = %q", got, fresh.Pseudonym)
	}

	upstream := &schemas.Event{EventID: "u", Type: schemas.TypeCase, Region: "KZ-75", Source: "t",
		Person: &schemas.Person{Pseudonym: old, KeyID: "k1", BirthDate: "1990-03-15"}, ReportDate: schemas.MustDate("2021-06-01")}
	apply(t, rotated, upstream)
	if upstream.Person.Pseudonym != old || upstream.Person.KeyID != "k1" || upstream.Person.AgeBand != "30-39" || upstream.Person.BirthDate != "" {
		t.Fatalf("pre-pseudonymised person: %+v", upstream.Person)
	}
	if _, err := rotated.Pseudonym("k9", "KZ", iinMale); err == nil || !strings.Contains(err.Error(), "k9") {
		t.Fatalf("unknown key id: %v", err)
	}
}

// mutateLast returns id with its last digit changed (an IIN with a wrong
// check digit).
func mutateLast(id string) string {
	b := []byte(id)
	b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
	return string(b)
}

func TestApplyRejects(t *testing.T) {
	p := k1(t)
	valid := apply(t, k1(t), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	for _, tc := range []struct {
		name   string
		event  *schemas.Event
		field  string
		reason string
		raw    string // must not appear in the error
	}{
		{"IIN check digit", caseEvent("KZ-75", mutateLast(iinMale)), "person.national_id", "IIN check digit is wrong", mutateLast(iinMale)},
		{"IIN check digit of a contact", contactEvent("KZ-71", iinMale, mutateLast(iinFemale)), "contact_person.national_id", "check digit", mutateLast(iinFemale)},
		{"IIN date", caseEvent("KZ-75", "901315312341"), "person.national_id", "birth date", "901315312341"},
		{"IIN century", caseEvent("KZ-75", "900315712341"), "person.national_id", "century", "900315712341"},
		{"13 digits", caseEvent("KZ-75", "9003153123410"), "person.national_id", "12 digits", "9003153123410"},
		{"letters", caseEvent("KG-GB", "2090519780012X"), "person.national_id", "14 digits", "2090519780012X"},
		{"PIN sex digit", caseEvent("KG-GB", "30905197800123"), "person.national_id", "must start with 1", "30905197800123"},
		{"PIN date", caseEvent("KG-GB", "23205197800123"), "person.national_id", "not a valid date", "23205197800123"},
		{"born after the event", caseEvent("KZ-75", nationalid.GenerateIIN(day("2021-07-01"), nationalid.Male, 1)),
			"person.national_id", "after the event", nationalid.GenerateIIN(day("2021-07-01"), nationalid.Male, 1)},
		{"no identifier", caseEvent("KZ-75", ""), "person.national_id", "required", ""},
		{"unknown key of an upstream pseudonym", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: valid, KeyID: "k0"}), "person.key_id", "names no key", ""},
		{"raw ID in the pseudonym field", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: iinMale, KeyID: "k1"}), "person.pseudonym", "64 lowercase hex", iinMale},
		{"raw ID hidden in a hex pseudonym", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: iinMale + strings.Repeat("a", 64-len(iinMale)), KeyID: "k1"}), "person.pseudonym", "looks like a national ID", iinMale},
		{"raw ID in the key_id field", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: valid, KeyID: iinMale}), "person.key_id", "names no key", iinMale},
		{"malformed birth date", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: valid, KeyID: "k1", BirthDate: "15.03.1990"}), "person.birth_date", "YYYY-MM-DD", "15.03.1990"},
		{"bad age band", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: valid, KeyID: "k1", AgeBand: "30-34"}), "person.age_band", "want one of", ""},
		{"bad sex", withPerson(caseEvent("KZ-75", ""), schemas.Person{Pseudonym: valid, KeyID: "k1", Sex: "M"}), "person.sex", "male, female or unknown", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.event.Persons()[len(tc.event.Persons())-1].Name = "Secret Name"
			err := p.Apply(tc.event)
			var ve *schemas.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *schemas.ValidationError, got %T %v", err, err)
			}
			if len(ve.Problems) != 1 || ve.Problems[0].Field != tc.field || !strings.Contains(ve.Problems[0].Reason, tc.reason) {
				t.Fatalf("got %q, want %s: …%s…", err, tc.field, tc.reason)
			}
			if tc.raw != "" && strings.Contains(err.Error(), tc.raw) {
				t.Fatalf("error %q contains the raw value", err)
			}
			for _, ps := range tc.event.Persons() {
				if ps.NationalID != "" || ps.Name != "" || ps.BirthDate != "" {
					t.Fatalf("raw fields survive a failed Apply: %+v", ps)
				}
			}
		})
	}
}

func withPerson(e *schemas.Event, ps schemas.Person) *schemas.Event {
	e.Person = &ps
	return e
}

func TestApplyDerivesSexAndAgeBand(t *testing.T) {
	p := k1(t)
	pre := apply(t, k1(t), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	on := "2021-06-01"
	iinBorn := func(birth, sex string) string { return nationalid.GenerateIIN(day(birth), sex, 9) }
	for _, tc := range []struct {
		name    string
		person  schemas.Person
		sex     string
		ageBand string
	}{
		{"sex from the IIN", schemas.Person{NationalID: iinMale}, "male", "30-39"},
		{"sex from the PIN", schemas.Person{NationalID: nationalid.GeneratePIN(day("2001-12-31"), nationalid.Female, 1)}, "female", "10-19"},
		{"unknown sex is filled in", schemas.Person{NationalID: iinFemale, Sex: "unknown"}, "female", "30-39"},
		{"the ID wins over a conflicting sex", schemas.Person{NationalID: iinMale, Sex: "female"}, "male", "30-39"},
		{"the ID wins over a conflicting birth date", schemas.Person{NationalID: iinMale, BirthDate: "2015-01-01"}, "male", "30-39"},
		{"the day before the 10th birthday", schemas.Person{NationalID: iinBorn("2011-06-02", "M")}, "male", "0-9"},
		{"the 10th birthday", schemas.Person{NationalID: iinBorn("2011-06-01", "M")}, "male", "10-19"},
		{"born on the event's day", schemas.Person{NationalID: iinBorn("2021-06-01", "F")}, "female", "0-9"},
		{"79", schemas.Person{NationalID: iinBorn("1941-06-02", "F")}, "female", "70-79"},
		{"80", schemas.Person{NationalID: iinBorn("1941-06-01", "F")}, "female", "80+"},
		{"born in the 1800s", schemas.Person{NationalID: iinBorn("1899-12-31", "M")}, "male", "80+"},
		{"upstream pseudonym with birth date", schemas.Person{Pseudonym: pre, KeyID: "k1", BirthDate: "1960-06-02", Sex: "female"}, "female", "60-69"},
		{"upstream pseudonym with age band only", schemas.Person{Pseudonym: pre, KeyID: "k1", AgeBand: "40-49"}, "", "40-49"},
		{"birth date wins over a given age band", schemas.Person{Pseudonym: pre, KeyID: "k1", BirthDate: "2000-01-01", AgeBand: "80+"}, "", "20-29"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := caseEvent("KZ-75", "")
			e.ReportDate = schemas.MustDate(on)
			if len(tc.person.NationalID) == 14 {
				e.Region = "KG-GB"
			}
			e.Person = &tc.person
			apply(t, p, e)
			if e.Person.Sex != tc.sex || e.Person.AgeBand != tc.ageBand {
				t.Fatalf("sex %q age band %q, want %q %q", e.Person.Sex, e.Person.AgeBand, tc.sex, tc.ageBand)
			}
		})
	}
}

// Events that pass the contract and the validator come out of Apply with
// only the published person fields (goldens in testdata/apply).
func TestApplyGolden(t *testing.T) {
	contract, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	v := &schemas.Validator{Regions: schemas.DefaultRegions(), Now: fixedNow}
	p := k1(t)
	files, _ := filepath.Glob("testdata/apply/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata/apply/*.json")
	}
	published := map[string]bool{"pseudonym": true, "key_id": true, "age_band": true, "sex": true, "district": true}
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			e, err := contract.Decode(raw)
			if err == nil {
				err = v.Validate(e)
			}
			if err == nil {
				err = p.Apply(e)
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal(out, &m)
			for _, role := range []string{"person", "index_person", "contact_person"} {
				ps, _ := m[role].(map[string]any)
				for k := range ps {
					if !published[k] {
						t.Errorf("%s.%s survives Apply", role, k)
					}
				}
			}
			for _, id := range idRuns.FindAll(raw, -1) { // the pseudonyms may hold digit runs of their own
				if bytes.Contains(out, id) {
					t.Errorf("output carries the input's %s", id)
				}
			}
			golden.Check(t, strings.TrimSuffix(f, ".json")+".golden.json", append(out, '\n'))
		})
	}
}

var idRuns = regexp.MustCompile(`[0-9]{12,}`)

// No error of Apply or Pseudonym carries an identifier or a 6-digit piece of
// it, whatever is wrong with it: every single-digit mutation of valid IDs,
// truncations and extensions, in both countries' regions.
func TestErrorsNeverContainTheID(t *testing.T) {
	p := k1(t)
	var ids []string
	for i, b := range []string{"1990-03-15", "1957-12-31", "2004-02-29", "1899-01-01"} {
		ids = append(ids, nationalid.GenerateIIN(day(b), nationalid.Male, 100*i), nationalid.GenerateIIN(day(b), nationalid.Female, 37*i),
			nationalid.GeneratePIN(day(b), nationalid.Male, 11*i))
	}
	var cases []string
	for _, id := range ids {
		cases = append(cases, id[:len(id)-1], id+"7", id[1:]+"0")
		for i := range id {
			for d := byte('0'); d <= '9'; d++ {
				if id[i] != d {
					cases = append(cases, id[:i]+string(d)+id[i+1:])
				}
			}
		}
	}
	rejected := 0
	for _, id := range cases {
		for _, region := range []string{"KZ-75", "KG-GB"} {
			for _, e := range []*schemas.Event{caseEvent(region, id), contactEvent(region, iinMale, id)} {
				if err := p.Apply(e); err != nil {
					rejected++
					assertNoPiece(t, err.Error(), id)
				}
			}
			if _, err := p.Pseudonym("k1", region[:2], id); err != nil {
				assertNoPiece(t, err.Error(), id)
			}
		}
	}
	if rejected < len(cases) {
		t.Fatalf("only %d rejections for %d mutated IDs: the test exercises too little", rejected, len(cases))
	}
}

func assertNoPiece(t *testing.T, msg, id string) {
	t.Helper()
	for i := 0; i+6 <= len(id); i++ {
		if strings.Contains(msg, id[i:i+6]) {
			t.Fatalf("error %q contains %q, a piece of the ID", msg, id[i:i+6])
		}
	}
}

func TestPseudonymIsHMACOfCountryAndID(t *testing.T) {
	// Pinned so that a change to the derivation (which would orphan every
	// stored pseudonym) cannot pass unnoticed:
	// printf 'KZ:900315312341' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0011…eeff
	got, err := k1(t).Pseudonym("k1", "KZ", "900315312341")
	if err != nil {
		t.Fatal(err)
	}
	const want = "f3b59be23d94fa8cee27bf3407a0f972f25b0a86e80b8da5b7a786d0513701a7"
	if got != want {
		t.Fatalf("Pseudonym = %s, want %s", got, want)
	}
}

func BenchmarkApply(b *testing.B) {
	p := k1(b)
	tmpl := schemas.Person{NationalID: iinMale, BirthDate: "1990-03-15", Sex: "male", District: "Medeu", Name: "Test Person", Phone: "+77011234567"}
	events := make([]schemas.Event, b.N)
	persons := make([]schemas.Person, b.N)
	for i := range events {
		persons[i] = tmpl
		events[i] = *caseEvent("KZ-75", "")
		events[i].Person = &persons[i]
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range events {
		if err := p.Apply(&events[i]); err != nil {
			b.Fatal(err)
		}
	}
}
