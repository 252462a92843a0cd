package pseudo

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/epiwatch/epiwatch/schemas"
)

// Replacement texts. None contains a digit, so a replacement never joins the
// digits around it into a new identifier-length run.
const (
	redacted      = "[redacted]"
	redactedID    = "[redacted-id]"
	redactedPhone = "[redacted-phone]"
)

// personalKeys are JSON keys whose whole value is personal data, compared
// after normalisation (lower case, without '_', '-' and spaces): the
// contract's input-only person fields plus the names a producer on the wrong
// schema is likely to send, since that is exactly when an event is rejected
// and dead-lettered. Encoding/json matches field names case-insensitively,
// hence the normalisation. The value marks which keys hold a national ID.
var personalKeys = map[string]bool{
	"nationalid": true, "iin": true, "pin": true,
	"birthdate": false, "dateofbirth": false, "dob": false,
	"name": false, "fullname": false, "firstname": false, "lastname": false, "middlename": false,
	"surname": false, "patronymic": false, "fio": false,
	"phone": false, "phonenumber": false, "mobile": false, "tel": false, "telephone": false,
	"address": false, "homeaddress": false,
}

func normaliseKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, k)
}

var (
	// idRun is a run of 12 or more digits: a 12-digit IIN, a 14-digit PIN, or
	// one of them mistyped with extra digits (still personal data). Phone
	// numbers (11–12 digits) are left to phonePattern.
	idRun = regexp.MustCompile(`[0-9]{12,}`)
	// phonePattern: international +7 (Kazakhstan) and +996 (Kyrgyzstan)
	// numbers and the Kazakh domestic 8 7xx form, with the usual separators.
	phonePattern = regexp.MustCompile(`\+[ ]?(?:7|996)(?:[ \-().]{0,2}[0-9]){6,12}|\b8[ \-(]{0,2}7[0-9]{2}(?:[ \-().]{0,2}[0-9]){7}`)
	// keyedPattern is a personal key and its value in text that is not
	// valid JSON (typically truncated): a string, possibly unterminated, or a
	// bare token up to the next delimiter.
	keyedPattern = regexp.MustCompile(`(?i)"(national[_-]?id|iin|pin|birth[_-]?date|date[_-]?of[_-]?birth|dob|(?:full[_-]?|first[_-]?|last[_-]?|middle[_-]?)?name|surname|patronymic|fio|phone(?:[_-]?number)?|mobile|tel(?:ephone)?|(?:home[_-]?)?address)"(\s*):\s*(?:"(?:[^"\\]|\\.)*"?|[^,}\]\s]*)`)
)

// Redact returns raw without personal data, for the dead-letter copy of a
// rejected event. Valid JSON is walked: the values of personal keys (see
// personalKeys) are replaced at any depth, a national ID by its pseudonym
// when it validates (so the dead letter can still be matched to the person)
// and by "[redacted]" otherwise, and every other string, key and number is
// scrubbed as text. Anything else is scrubbed as text: "key":"value" pairs of
// personal keys, runs of 12 or more digits ("[redacted-id]") and phone
// numbers ("[redacted-phone]"). Redact never fails and never panics; it
// over-redacts rather than under-redacts.
func (p *Pseudonymizer) Redact(raw []byte) []byte {
	if out, ok := p.redactJSON(raw); ok {
		return out
	}
	return redactText(raw)
}

func (p *Pseudonymizer) redactJSON(raw []byte) ([]byte, bool) {
	if !json.Valid(raw) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep numbers as written
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	regionCountry := ""
	if m, ok := v.(map[string]any); ok {
		if r, ok := m["region"].(string); ok {
			if reg, ok := p.regions.Get(r); ok {
				regionCountry = reg.Country
			}
		}
	}
	v = p.redactValue(v, regionCountry)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

func (p *Pseudonymizer) redactValue(v any, regionCountry string) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			nk := normaliseKey(k)
			isID, personal := personalKeys[nk]
			k = redactString(k)
			if ps, ok := val.(string); ok && nk == "pseudonym" && isPseudonym(ps) && schemas.ScanPersonalData(ps) == schemas.NoPersonalData {
				// Already a pseudonym (64 hex characters, no valid ID
				// inside): kept whole, or a run of digits in it would be
				// taken for an ID and the dead letter could no longer be
				// replayed.
				out[k] = ps
				continue
			}
			switch {
			case isID:
				out[k] = p.redactID(val, regionCountry)
			case personal:
				out[k] = redacted
			default:
				out[k] = p.redactValue(val, regionCountry)
			}
		}
		return out
	case []any:
		for i := range t {
			t[i] = p.redactValue(t[i], regionCountry)
		}
		return t
	case string:
		return redactString(t)
	case json.Number:
		if idRun.MatchString(string(t)) {
			return redactedID
		}
	}
	return v
}

// redactID replaces a national ID by its pseudonym under the active key, as
// Apply would have, or by "[redacted]" when it does not validate.
func (p *Pseudonymizer) redactID(v any, regionCountry string) any {
	id, ok := v.(string)
	if !ok {
		return redacted
	}
	ps, err := p.Pseudonym(p.keys.active, issuer(regionCountry, id), id)
	if err != nil {
		return redacted
	}
	return ps
}

// redactString scrubs a decoded JSON string, which may itself hold JSON text.
// Characters the encoder writes as \u escapes (control characters, U+2028,
// U+2029) become spaces first: their escape's hex digits next to the
// string's own digits would write a run of 12 in the dead letter
// ("\u0000" and 8 zeros) that the data never held, and a scan of dead
// letters must not see one.
func redactString(s string) string {
	if !needsText(s) {
		return s
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return string(redactText([]byte(s)))
}

// needsText is a cheap pre-check: every pattern needs a '"', '+', '@' or a
// digit.
func needsText(s string) bool {
	return strings.ContainsAny(s, "\"+@0123456789")
}

// redactText scrubs bytes that are not (or not known to be) JSON. Last,
// whatever the ingest scanner (schemas.FindPersonalData) still finds —
// Kyrgyz domestic phone numbers, e-mail addresses — is replaced too, so a
// dead letter keeps nothing an event was rejected for.
func redactText(raw []byte) []byte {
	out := idRun.ReplaceAllLiteral(raw, []byte(redactedID))
	out = keyedPattern.ReplaceAll(out, []byte(`"$1"$2:"`+redacted+`"`))
	out = phonePattern.ReplaceAllLiteral(out, []byte(redactedPhone))
	return []byte(schemas.RedactPersonalData(string(out)))
}
