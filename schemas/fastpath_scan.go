// The fast path's scanner: one pass over plain JSON (objects of strings without
// escapes, integers, booleans) into members, giving up on anything else.

package schemas

import (
	"unicode/utf8"
)

// fastValue is one scanned JSON value.
type fastValue struct {
	kind byte // 's', 'i', 'b', 'o'
	str  string
	num  int64
	obj  []fastMember
}

// fastMember's key is a view of the scanned bytes, not a copy: keys are only
// compared, and copying them was most of the scanner's allocations.
type fastMember struct {
	key []byte
	val fastValue
}

// fastScanner reads the plain JSON the fast path takes: objects of strings
// without escapes, integers and booleans. Anything else (arrays, null,
// fractions, exponents, escapes, invalid UTF-8) gives up.
type fastScanner struct {
	b []byte
	i int
	// buf[0] holds the members of the event last read, buf[k] those of its
	// k-th nested object (a contact has two persons); each is reused by the
	// next event, so what object returns is valid until the next reset.
	buf    [][]fastMember
	nested int
}

// maxNested and maxMembers bound what the scanner reads of one event (none
// has more than two persons or a few dozen properties), so that the buffers
// it keeps stay small whatever it was given; beyond them it gives up.
const (
	maxNested  = 4
	maxMembers = 64
)

// reset readies the scanner for b, keeping its buffers.
func (s *fastScanner) reset(b []byte) {
	s.b, s.i, s.nested = b, 0, 0
}

// release drops every reference to the input (the members' keys are views
// of it), so that a kept scanner does not keep a request body alive.
func (s *fastScanner) release() {
	s.b = nil
	for k := range s.buf {
		clear(s.buf[k][:cap(s.buf[k])])
	}
}

func (s *fastScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {"key": value, ...}; depth 0 is the event, 1 a person.
func (s *fastScanner) object(depth int) ([]fastMember, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, false
	}
	slot := 0
	if depth > 0 {
		if s.nested == maxNested {
			return nil, false
		}
		s.nested++
		slot = s.nested
	}
	if slot == len(s.buf) { // slots are taken in order, one at a time
		s.buf = append(s.buf, make([]fastMember, 0, 12))
	}
	s.i++
	members := s.buf[slot][:0]
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.buf[slot] = members
		return members, true
	}
	for {
		s.ws()
		key, ok := s.strBytes()
		if !ok {
			return nil, false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, false
		}
		s.i++
		s.ws()
		if s.i >= len(s.b) {
			return nil, false
		}
		var v fastValue
		switch c := s.b[s.i]; {
		case c == '"':
			v.kind = 's'
			v.str, ok = s.str()
		case c == '-' || c >= '0' && c <= '9':
			v.kind = 'i'
			v.num, ok = s.integer()
		case c == 't' || c == 'f':
			v.kind = 'b'
			ok = s.literal("true") || s.literal("false")
			if ok && c == 't' {
				v.num = 1
			}
		case c == '{' && depth == 0:
			v.kind = 'o'
			v.obj, ok = s.object(depth + 1)
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
		if len(members) == maxMembers {
			return nil, false
		}
		members = append(members, fastMember{key: key, val: v})
		s.ws()
		if s.i >= len(s.b) {
			return nil, false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.buf[slot] = members
			return members, true
		default:
			return nil, false
		}
	}
}

// str reads a string without escapes or control characters, valid UTF-8.
func (s *fastScanner) str() (string, bool) {
	v, ok := s.strBytes()
	return string(v), ok
}

// strBytes is str without the copy: its bytes are the scanned input's.
func (s *fastScanner) strBytes() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// integer reads -?(0|[1-9][0-9]*) of at most 15 digits, with no fraction or
// exponent following.
func (s *fastScanner) integer() (int64, bool) {
	j := s.i
	neg := false
	if s.b[j] == '-' {
		neg = true
		j++
	}
	start := j
	var n int64
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 15 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}

func (s *fastScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}
