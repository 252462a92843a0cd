// Package pseudo replaces national identifiers by keyed pseudonyms. It is the
// only place a raw national ID exists: ingest hands it each decoded event
// (Apply) and the raw bytes of each rejected one (Redact); what leaves carries
// a pseudonym, its key id, an age band and a sex, nothing else about a person.
//
// A pseudonym is HMAC-SHA256(key, country ":" national ID) as 64 lowercase hex
// characters, country being the ISO 3166-1 code of the issuing country ("KZ"
// for an IIN, "KG" for a PIN). A plain hash would not do: a 12-digit IIN has
// only ~2·10⁹ plausible values, few enough to try them all; the key is what
// prevents it, and the key id stored beside each pseudonym says which key
// made it.
package pseudo

import (
	"fmt"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
	"github.com/epiwatch/epiwatch/schemas/nationalid"
)

// Sex values of the contract (events/common.schema.json).
const (
	SexMale    = "male"
	SexFemale  = "female"
	SexUnknown = "unknown"
)

// ageBands are the contract's age_band values (events/common.schema.json),
// ten-year bands with an open top; a test checks they agree with the schema.
var ageBands = [...]string{"0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+"}

// ageBand returns the band of an age in completed years.
func ageBand(age int) string {
	return ageBands[min(age/10, len(ageBands)-1)]
}

// Pseudonymizer validates national IDs and pseudonymises the persons of
// events; it implements ingest.Pseudonymizer. Safe for concurrent use.
type Pseudonymizer struct {
	keys    *Keyring
	regions *schemas.Regions
	now     func() time.Time
}

// New loads the key ring (see KeyConfig for the key encodings). regions maps
// an event's region to the country whose ID format is expected (nil: the
// shipped reference); now dates age bands of events without a date (nil:
// time.Now).
func New(active KeyConfig, retired []KeyConfig, regions *schemas.Regions, now func() time.Time) (*Pseudonymizer, error) {
	kr, err := NewKeyring(active, retired)
	if err != nil {
		return nil, fmt.Errorf("pseudonym key ring: %w", err)
	}
	if regions == nil {
		regions = schemas.DefaultRegions()
	}
	if now == nil {
		now = time.Now
	}
	return &Pseudonymizer{keys: kr, regions: regions, now: now}, nil
}

// Keyring returns the key ring, for logging its ids and fingerprints.
func (p *Pseudonymizer) Keyring() *Keyring { return p.keys }

// Pseudonym returns the pseudonym of a person's national ID under a key of
// the ring, as Apply would have stored it with that key id: operators use it
// to find a known person's events, under the active key or a retired one.
// country is the issuing country ("KZ" or "KG"); the ID is validated first so
// a typo fails instead of silently matching nothing. Errors never contain the
// ID.
func (p *Pseudonymizer) Pseudonym(keyID, country, nationalID string) (string, error) {
	k, ok := p.keys.keys[keyID]
	if !ok {
		return "", fmt.Errorf("unknown key id %q (the key ring has %s)", keyID, strings.Join(p.keys.IDs(), ", "))
	}
	if _, err := nationalid.Parse(country, nationalID); err != nil {
		return "", fmt.Errorf("national ID: %s", scrub(err.Error(), nationalID))
	}
	return k.sum(country, nationalID), nil
}

// idFormats maps each supported issuing country to the length of its ID; the
// lengths differ, which is what lets issuer recognise a foreign ID.
var idFormats = [...]struct {
	country string
	length  int
}{{"KZ", 12}, {"KG", 14}}

// issuer returns the country whose format an ID is validated against and
// whose code enters the HMAC. It is the region's country, unless the ID has
// the length of the other supported country's format: a Kyrgyz citizen tested
// in Almaty carries a PIN, and must get the same pseudonym there as at home,
// or cross-border chains of transmission would fall apart.
func issuer(regionCountry, id string) string {
	for _, f := range idFormats {
		if f.country == regionCountry && len(id) == f.length {
			return regionCountry
		}
	}
	for _, f := range idFormats {
		if len(id) == f.length {
			return f.country
		}
	}
	return regionCountry // wrong length: let its own format say what it wants
}

// Issuer returns the country whose national ID has id's length (12 digits:
// a Kazakh IIN, 14: a Kyrgyz PIN), or false: how an operator's bare ID
// (`epiwatch erase --person`) is matched to its format.
func Issuer(id string) (string, bool) {
	c := issuer("", id)
	return c, c != ""
}

// Apply validates and pseudonymises every person of e in place:
//
//   - national_id is validated (check digit for an IIN) against the format of
//     the issuing country (see issuer) and replaced by the active key's
//     pseudonym and key id;
//   - sex is taken from the ID, which wins over a conflicting producer value:
//     the ID passed validation (an IIN even a check digit), a hand-typed
//     sex field did not, and rejecting the case for the discrepancy would lose
//     a surveillance count;
//   - age_band is the age in completed years on the event's date, from the
//     ID's birth date (again winning over birth_date), else from birth_date,
//     else a producer-given age_band is kept;
//   - a person without national_id must carry a pseudonym made upstream by
//     one of our keys: 64 hex characters and a key_id of the ring (events
//     decoded by the JSON contract never do, as it requires national_id;
//     events built in Go may). A person with neither is rejected, as the
//     contract requires national_id.
//
// national_id, birth_date, name, phone and address are cleared whether or not
// Apply succeeds, so no raw identifier survives in e. An error is a
// *schemas.ValidationError naming each field ("contact_person.national_id:
// IIN check digit is wrong"); it never contains an identifier, a birth date
// or a key.
func (p *Pseudonymizer) Apply(e *schemas.Event) error { return p.apply(e, p.keys.active) }

// ApplyWithKey is Apply with a key of the ring other than the active one: how
// ingest recognises an unchanged retry of an event accepted before a key
// rotation (its stored pseudonyms are under the retired key).
func (p *Pseudonymizer) ApplyWithKey(e *schemas.Event, keyID string) error {
	if !p.keys.Known(keyID) {
		return fmt.Errorf("unknown key id %q (the key ring has %s)", keyID, strings.Join(p.keys.IDs(), ", "))
	}
	return p.apply(e, keyID)
}

func (p *Pseudonymizer) apply(e *schemas.Event, keyID string) error {
	var probs []schemas.FieldError
	regionCountry := ""
	if r, ok := p.regions.Get(e.Region); ok {
		regionCountry = r.Country
	}
	on := e.Date()
	if on.IsZero() {
		on = schemas.DateOf(p.now())
	}
	for _, fp := range [...]struct {
		field string
		ps    *schemas.Person
	}{{"person", e.Person}, {"index_person", e.IndexPerson}, {"contact_person", e.ContactPerson}} {
		if fp.ps != nil {
			probs = p.person(probs, fp.field, fp.ps, regionCountry, on.Time(), keyID)
			clearInputs(fp.ps)
		}
	}
	if len(probs) > 0 {
		return &schemas.ValidationError{Problems: probs}
	}
	return nil
}

// person pseudonymises one person and appends its problems.
func (p *Pseudonymizer) person(probs []schemas.FieldError, field string, ps *schemas.Person, regionCountry string, on time.Time, keyID string) []schemas.FieldError {
	bad := func(sub, reason string) {
		probs = append(probs, schemas.FieldError{Field: field + "." + sub, Reason: scrub(reason, ps.NationalID)})
	}
	var (
		birth      time.Time
		birthField string
	)
	switch {
	case ps.NationalID != "":
		country := issuer(regionCountry, ps.NationalID)
		info, err := nationalid.Parse(country, ps.NationalID)
		if err != nil {
			bad("national_id", err.Error())
			return probs
		}
		ps.Pseudonym, ps.KeyID = p.keys.keys[keyID].sum(country, ps.NationalID), keyID
		switch info.Sex {
		case nationalid.Male:
			ps.Sex = SexMale
		case nationalid.Female:
			ps.Sex = SexFemale
		}
		birth, birthField = info.Birth, "national_id"
	case ps.Pseudonym != "":
		if !p.keys.Known(ps.KeyID) {
			// The value is not echoed: a confused producer may have put an ID there.
			bad("key_id", "names no key of this server's key ring; a pre-computed pseudonym must come with the id of the key that made it")
			return probs
		}
		if !isPseudonym(ps.Pseudonym) {
			bad("pseudonym", "want 64 lowercase hex characters (HMAC-SHA256)")
			return probs
		}
		if schemas.ScanPersonalData(ps.Pseudonym) != schemas.NoPersonalData {
			// 64 hex characters can hide an ID among them; an HMAC that
			// happens to look like one is refused too (rare), rather than
			// let the field carry one into storage.
			bad("pseudonym", "holds what looks like a national ID or phone number")
			return probs
		}
	default:
		bad("national_id", "required")
		return probs
	}
	if birth.IsZero() && ps.BirthDate != "" {
		t, err := time.Parse(schemas.DateLayout, ps.BirthDate)
		if err != nil {
			bad("birth_date", "want YYYY-MM-DD") // the value is personal data: not echoed
			return probs
		}
		birth, birthField = t, "birth_date"
	}
	switch {
	case !birth.IsZero():
		age := on.Year() - birth.Year()
		if on.Month() < birth.Month() || on.Month() == birth.Month() && on.Day() < birth.Day() {
			age--
		}
		if age < 0 {
			bad(birthField, "birth date is after the event's date")
			return probs
		}
		ps.AgeBand = ageBand(age)
	case ps.AgeBand != "" && !validAgeBand(ps.AgeBand):
		bad("age_band", "want one of "+strings.Join(ageBands[:], ", "))
	}
	switch ps.Sex {
	case "", SexMale, SexFemale, SexUnknown:
	default:
		bad("sex", "want male, female or unknown")
	}
	return probs
}

// clearInputs drops the input-only fields of a person.
func clearInputs(ps *schemas.Person) {
	ps.NationalID, ps.BirthDate, ps.Name, ps.Phone, ps.Address = "", "", "", "", ""
}

func validAgeBand(s string) bool {
	for _, b := range ageBands {
		if s == b {
			return true
		}
	}
	return false
}

func isPseudonym(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// scrub guarantees a reason never carries the identifier, whatever a
// validator's wording becomes.
func scrub(reason, id string) string {
	if id == "" {
		return reason
	}
	return strings.ReplaceAll(reason, id, "[redacted]")
}
