package schemas

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// Personal data outside the person fields (issue 20, "every string is
// checked"). Producers put a patient's IIN into an event_id ("case-
// 900101300017"), a phone number into a lab or facility name, an e-mail into
// the source; such an event would carry the raw value past pseudonymisation
// into the stream, the subjects and ClickHouse. At ingest every string of
// every event is therefore scanned, and an event with personal data in a
// field not meant for it is rejected with a reason that names the field and
// never the value.
//
// The fields meant for personal data are the input-only person fields —
// national_id (validated and pseudonymised), birth_date, name, phone and
// address (all dropped by ingest) — and nothing else. Every other string,
// including person.district, is scanned for:
//
//   - a national ID: a maximal run of exactly 12 ASCII digits that is a valid
//     Kazakh IIN (birth date, century/sex digit and check digit, as
//     nationalid.ParseIIN) or of exactly 14 digits that is a valid Kyrgyz PIN
//     (nationalid.ParsePIN), wherever it stands ("IIN 900101300017",
//     "case-900101300017"). Runs of other lengths and invalid numbers are not
//     IDs (a 13-digit run is not searched for a 12-digit one).
//   - a phone number: consecutive digit groups joined by one or two of
//     space, '-', '(' and ')', optionally after a '+', in a phone's grouping —
//     a single group; groups of at most 4 digits with a last group of at most
//     7; or a trunk/country prefix 7, 8 or 996 and one group — whose digits
//     are +<10–15 digits> (international), 7 or 8 and 10 more (Kazakhstan and
//     Russia: 87011234567, +7 701 123 45 67, 8 (701) 123-45-67), 996 and 9
//     more (Kyrgyzstan), 7 and 9 more (a Kazakh number without its trunk
//     prefix, 701 123 45 67) or 0, a digit 2–9 and 8 more (a Kyrgyz domestic
//     number, 0555 123 456). Any consecutive part of a run counts, so a number
//     after other digits is found too.
//   - an e-mail address: local@domain.tld (letters, digits and ._%+- before
//     the '@', a dotted domain with a top level of two or more letters).
//
// Dates (2024-03-15, 2024-03-15T08:00:00+05:00), ISO codes (KZ-75), event
// ids such as "sim-7-case-KZ-75-123" or "sim-7-bed-KZ-75-H05-20240315-icu"
// and facility ids such as "almaty-ih-7" do not match: their digit groups
// are too short, or an 8-digit date breaks the phone grouping.

// PersonalDataKind is what FindPersonalData found.
type PersonalDataKind int

// The kinds of personal data the scanner finds.
const (
	NoPersonalData PersonalDataKind = iota
	NationalIDData
	PhoneData
	EmailData
)

func (k PersonalDataKind) String() string {
	switch k {
	case NationalIDData:
		return "a national ID"
	case PhoneData:
		return "a phone number"
	case EmailData:
		return "an e-mail address"
	}
	return "no personal data"
}

// PersonalDataSpan is one match: s[Start:End] is personal data of Kind.
type PersonalDataSpan struct {
	Start, End int
	Kind       PersonalDataKind
}

var emailPattern = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)*\.\p{L}{2,}`)

// minPersonalDigits is the fewest digits a national ID or phone number has.
const minPersonalDigits = 10

// FindPersonalData returns every national ID, phone number and e-mail
// address in s (see the rules above), in order of Start; overlapping
// matches are all returned. It is pure and never echoes anything.
func FindPersonalData(s string) []PersonalDataSpan {
	var out []PersonalDataSpan
	if strings.IndexByte(s, '@') >= 0 {
		for _, m := range emailPattern.FindAllStringIndex(s, -1) {
			out = append(out, PersonalDataSpan{m[0], m[1], EmailData})
		}
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			digits++
		}
	}
	if digits >= minPersonalDigits {
		out = appendDigitData(out, s)
	}
	if len(out) > 1 {
		sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	}
	return out
}

// ScanPersonalData returns the first kind of personal data in s, or
// NoPersonalData.
func ScanPersonalData(s string) PersonalDataKind {
	if m := FindPersonalData(s); len(m) > 0 {
		return m[0].Kind
	}
	return NoPersonalData
}

// RedactPersonalData replaces every match of FindPersonalData in s by
// "[redacted]" (for dead letters). The replacement holds no digit.
func RedactPersonalData(s string) string {
	m := FindPersonalData(s)
	if len(m) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(m); {
		start, end := m[i].Start, m[i].End
		for i++; i < len(m) && m[i].Start <= end; i++ {
			end = max(end, m[i].End)
		}
		b.WriteString(s[last:start])
		b.WriteString("[redacted]")
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isPhoneSep(c byte) bool { return c == ' ' || c == '-' || c == '(' || c == ')' }

type digitGroup struct{ start, end int }

// appendDigitData finds national IDs and phone numbers in s.
func appendDigitData(out []PersonalDataSpan, s string) []PersonalDataSpan {
	var groups []digitGroup
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// A run: digit groups joined by one or two separators.
		groups = groups[:0]
		plus := i > 0 && s[i-1] == '+'
		for {
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			groups = append(groups, digitGroup{i, j})
			k := j
			for k < len(s) && k-j < 2 && isPhoneSep(s[k]) {
				k++
			}
			if k == j || k == len(s) || !isDigit(s[k]) {
				i = j
				break
			}
			i = k
		}
		out = appendRunData(out, s, groups, plus)
	}
	return out
}

func appendRunData(out []PersonalDataSpan, s string, groups []digitGroup, plus bool) []PersonalDataSpan {
	for _, g := range groups {
		id := s[g.start:g.end]
		switch len(id) {
		case 12:
			if _, err := nationalid.ParseIIN(id); err == nil {
				out = append(out, PersonalDataSpan{g.start, g.end, NationalIDData})
			}
		case 14:
			if _, err := nationalid.ParsePIN(id); err == nil {
				out = append(out, PersonalDataSpan{g.start, g.end, NationalIDData})
			}
		}
	}
	var d []byte
	for i := range groups {
		d = d[:0]
		for j := i; j < len(groups); j++ {
			d = append(d, s[groups[j].start:groups[j].end]...)
			if len(d) > 15 {
				break
			}
			if !phoneGrouping(groups[i:j+1], s) {
				continue
			}
			p := plus && i == 0
			if phoneDigits(d, p) {
				start := groups[i].start
				if p {
					start--
				}
				out = append(out, PersonalDataSpan{start, groups[j].end, PhoneData})
			}
		}
	}
	return out
}

// phoneGrouping reports whether groups are grouped as a phone number is
// written: one group; groups of at most 4 digits with a last one of at most
// 7; or a prefix 7, 8 or 996 and one group.
func phoneGrouping(groups []digitGroup, s string) bool {
	n := len(groups)
	if n == 1 {
		return true
	}
	if n == 2 {
		switch s[groups[0].start:groups[0].end] {
		case "7", "8", "996":
			return true
		}
	}
	for _, g := range groups[:n-1] {
		if g.end-g.start > 4 {
			return false
		}
	}
	return groups[n-1].end-groups[n-1].start <= 7
}

// phoneDigits reports whether d, the digits of a phone-grouped run (after a
// '+' if plus), make a phone number.
func phoneDigits(d []byte, plus bool) bool {
	n := len(d)
	switch {
	case plus:
		return n >= 10 && n <= 15
	case n == 11:
		return d[0] == '7' || d[0] == '8'
	case n == 12:
		return string(d[:3]) == "996"
	case n == 10:
		return d[0] == '7' || d[0] == '0' && d[1] >= '2' && d[1] <= '9'
	}
	return false
}

// personalDataProblem is the reason for personal data in field: it names
// the field and the kind, never the value.
func personalDataProblem(field string, k PersonalDataKind) FieldError {
	return FieldError{Field: field, Reason: fmt.Sprintf("looks like %s; personal data is only accepted in person fields", k)}
}

// KeyPlaceholder stands for a JSON key that holds personal data in the path
// of a problem: the key itself is never repeated.
const KeyPlaceholder = "<key>"

// personalFields are the person fields meant for personal data: input only,
// pseudonymised (national_id) or dropped by ingest.
var personalFields = map[string]bool{"national_id": true, "birth_date": true, "name": true, "phone": true, "address": true}

// PersonalDataProblems scans every string field of e (see the rules at the
// top of this file) and returns one problem per field holding personal data
// it is not meant for, in field order; nil if none.
func PersonalDataProblems(e *Event) []FieldError {
	var p []FieldError
	check := func(field, v string) {
		if v == "" {
			return
		}
		if k := ScanPersonalData(v); k != NoPersonalData {
			p = append(p, personalDataProblem(field, k))
		}
	}
	check("event_id", e.EventID)
	check("type", string(e.Type))
	check("region", e.Region)
	check("source", e.Source)
	for _, ps := range []struct {
		field string
		p     *Person
	}{{"person", e.Person}, {"index_person", e.IndexPerson}, {"contact_person", e.ContactPerson}} {
		if ps.p == nil {
			continue
		}
		check(ps.field+".pseudonym", ps.p.Pseudonym)
		check(ps.field+".key_id", ps.p.KeyID)
		check(ps.field+".age_band", ps.p.AgeBand)
		check(ps.field+".sex", ps.p.Sex)
		check(ps.field+".district", ps.p.District)
	}
	check("supersedes", e.Supersedes)
	check("classification", e.Classification)
	check("setting", e.Setting)
	check("test_kind", e.TestKind)
	check("result", e.Result)
	check("lab", e.Lab)
	check("facility_id", e.FacilityID)
	check("facility_name", e.FacilityName)
	check("bed_kind", e.BedKind)
	check("vaccine", e.Vaccine)
	check("feed", string(e.Feed))
	check("retracts", e.Retracts)
	check("retraction_reason", e.RetractionReason)
	check("facility_status", e.FacilityStatus)
	if len(p) > 1 {
		sort.SliceStable(p, func(i, j int) bool { return p[i].Field < p[j].Field })
	}
	return p
}

// personalDataInTree is PersonalDataProblems for a decoded JSON document
// the schema rejected: every string value at any depth, under its dotted
// path, except the person fields meant for personal data (a key of a nested
// object). Keys are scanned too: a key holding personal data is reported, and
// named in every path below it, as KeyPlaceholder, so neither the answer, the
// dead letter's reason nor a metrics label ever quotes it (the schema's own
// "additional properties '…' not allowed" would).
func personalDataInTree(v any) []FieldError {
	var p []FieldError
	var walk func(path string, depth int, v any)
	walk = func(path string, depth int, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, val := range t {
				if depth >= 1 && personalFields[k] {
					continue
				}
				name := k
				kind := ScanPersonalData(k)
				if kind != NoPersonalData {
					name = KeyPlaceholder
				}
				sub := name
				if path != "" {
					sub = path + "." + name
				}
				if kind != NoPersonalData {
					p = append(p, FieldError{Field: sub, Reason: fmt.Sprintf("a key looks like %s; personal data is only accepted as the value of a person field", kind)})
				}
				walk(sub, depth+1, val)
			}
		case []any:
			for i, val := range t {
				walk(fmt.Sprintf("%s[%d]", path, i), depth+1, val)
			}
		case string:
			if k := ScanPersonalData(t); k != NoPersonalData {
				p = append(p, personalDataProblem(path, k))
			}
		}
	}
	walk("", 0, v)
	sort.SliceStable(p, func(i, j int) bool { return p[i].Field < p[j].Field })
	return p
}
