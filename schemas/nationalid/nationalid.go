// Package nationalid validates and generates the national personal
// identifiers epiwatch meets: Kazakhstan's 12-digit IIN (ЖСН/ИИН) and
// Kyrgyzstan's 14-digit PIN (ПИН). Ingest validates them before they are
// pseudonymised; the simulator generates realistic ones.
package nationalid

import (
	"errors"
	"fmt"
	"time"
)

// Sex as encoded in the identifiers.
const (
	Male   = "M"
	Female = "F"
)

// Info is what an identifier itself discloses: birth date and sex. Ingest
// keeps only the derived age band and sex; the identifier is never stored.
type Info struct {
	Birth time.Time
	Sex   string
}

// Errors never contain the identifier itself: they end up in producer
// answers, dead letters and logs.
var (
	ErrIINLength     = errors.New("IIN must be exactly 12 digits")
	ErrIINDate       = errors.New("IIN birth date digits are not a valid date")
	ErrIINCentury    = errors.New("IIN century/sex digit (7th) must be 1–6")
	ErrIINCheckDigit = errors.New("IIN check digit is wrong")
	ErrPINLength     = errors.New("Kyrgyz PIN must be exactly 14 digits")
	ErrPINSex        = errors.New("Kyrgyz PIN must start with 1 (female) or 2 (male)")
	ErrPINDate       = errors.New("Kyrgyz PIN birth date digits (2–9, DDMMYYYY) are not a valid date")
)

func digits(s string, n int) ([]int, bool) {
	if len(s) != n {
		return nil, false
	}
	d := make([]int, n)
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		d[i] = int(c - '0')
	}
	return d, true
}

// iinCheckDigit is the official algorithm: weights 1..11 over the first 11
// digits mod 11; if that gives 10, weights 3..11,1,2; if 10 again the number
// is never issued (ok = false).
func iinCheckDigit(d []int) (int, bool) {
	sum := 0
	for i := 0; i < 11; i++ {
		sum += d[i] * (i + 1)
	}
	if c := sum % 11; c != 10 {
		return c, true
	}
	sum = 0
	for i := 0; i < 11; i++ {
		sum += d[i] * ((i+2)%11 + 1)
	}
	if c := sum % 11; c != 10 {
		return c, true
	}
	return 0, false
}

func validDate(y, m, d int) (time.Time, bool) {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return t, t.Year() == y && int(t.Month()) == m && t.Day() == d
}

// ParseIIN validates a Kazakh IIN: 12 digits, YYMMDD birth date, a 7th digit
// giving century and sex (1/2: 1800s, 3/4: 1900s, 5/6: 2000s; odd male, even
// female), and the check digit.
func ParseIIN(s string) (Info, error) {
	d, ok := digits(s, 12)
	if !ok {
		return Info{}, ErrIINLength
	}
	c := d[6]
	if c < 1 || c > 6 {
		return Info{}, ErrIINCentury
	}
	year := 1800 + 100*((c-1)/2) + d[0]*10 + d[1]
	birth, ok := validDate(year, d[2]*10+d[3], d[4]*10+d[5])
	if !ok {
		return Info{}, ErrIINDate
	}
	want, ok := iinCheckDigit(d)
	if !ok || want != d[11] {
		return Info{}, ErrIINCheckDigit
	}
	sex := Male
	if c%2 == 0 {
		sex = Female
	}
	return Info{Birth: birth, Sex: sex}, nil
}

// ParsePIN validates a Kyrgyz PIN: 14 digits, the first 1 (female) or 2
// (male), then the birth date as DDMMYYYY, then a 5-digit serial. The
// published format has no check digit.
func ParsePIN(s string) (Info, error) {
	d, ok := digits(s, 14)
	if !ok {
		return Info{}, ErrPINLength
	}
	var sex string
	switch d[0] {
	case 1:
		sex = Female
	case 2:
		sex = Male
	default:
		return Info{}, ErrPINSex
	}
	year := d[5]*1000 + d[6]*100 + d[7]*10 + d[8]
	birth, ok := validDate(year, d[3]*10+d[4], d[1]*10+d[2])
	if !ok || year < 1880 {
		return Info{}, ErrPINDate
	}
	return Info{Birth: birth, Sex: sex}, nil
}

// Parse validates id as the identifier of country ("KZ" or "KG").
func Parse(country, id string) (Info, error) {
	switch country {
	case "KZ":
		return ParseIIN(id)
	case "KG":
		return ParsePIN(id)
	}
	return Info{}, fmt.Errorf("no national identifier format known for country %q", country)
}

// GenerateIIN returns a valid IIN for the birth date and sex. serial (any
// non-negative number, reduced mod 10000) picks digits 8–11; serials whose
// check digit would be 10 are skipped to the next one, as the registry does.
func GenerateIIN(birth time.Time, sex string, serial int) string {
	y := birth.Year()
	c := 1 + 2*((y-1800)/100)
	if sex == Female {
		c++
	}
	d := make([]int, 12)
	yy, mm, dd := y%100, int(birth.Month()), birth.Day()
	d[0], d[1], d[2], d[3], d[4], d[5], d[6] = yy/10, yy%10, mm/10, mm%10, dd/10, dd%10, c
	if serial < 0 {
		serial = -serial
	}
	for i := 0; ; i++ {
		s := (serial + i) % 10000
		d[7], d[8], d[9], d[10] = s/1000, s/100%10, s/10%10, s%10
		if cd, ok := iinCheckDigit(d); ok {
			d[11] = cd
			break
		}
	}
	b := make([]byte, 12)
	for i, v := range d {
		b[i] = byte('0' + v)
	}
	return string(b)
}

// GeneratePIN returns a valid Kyrgyz PIN for the birth date and sex.
func GeneratePIN(birth time.Time, sex string, serial int) string {
	first := 2
	if sex == Female {
		first = 1
	}
	if serial < 0 {
		serial = -serial
	}
	return fmt.Sprintf("%d%02d%02d%04d%05d", first, birth.Day(), int(birth.Month()), birth.Year(), serial%100000)
}
