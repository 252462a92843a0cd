package schemas

import (
	"fmt"
	"time"
)

// Date is a calendar day without a time zone, stored as days since 1970-01-01.
// Surveillance data is reported per day ("report date", "sample date"), and a
// day index makes daily series plain slices. The zero value means "not set":
// no valid event date can be 1970-01-01 because dates before 2019 are rejected.
type Date int32

// DateLayout is the wire format of a Date (ISO 8601 calendar date).
const DateLayout = "2006-01-02"

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// MustDate parses s and panics on error; for tests and constants only.
func MustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DateOf returns the calendar day of t in t's own location: a bed snapshot
// taken at 01:00 in Almaty belongs to that Almaty day, not the UTC one.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Time returns midnight UTC of the day.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d == 0 }

// AddDays returns the date n days later (earlier for negative n).
func (d Date) AddDays(n int) Date { return d + Date(n) }

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format(DateLayout) }

// MarshalJSON writes the date as a JSON string, or null when unset.
func (d Date) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 12)
	b = append(b, '"')
	b = d.Time().AppendFormat(b, DateLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a JSON string "YYYY-MM-DD" (or null).
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = 0
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("date: want a string YYYY-MM-DD, got %s", b)
	}
	v, err := ParseDate(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
