package process

import "iter"

// byPerson maps a person (a pseudonym's idKey) to a short list: their case
// events, or the contacts naming them. Almost every person has exactly one,
// and persons are most of what the state holds, so that one is kept in the
// map itself: no slice header and no allocation of its own. Measured with a
// million persons: 132 bytes each for map[idKey][]caseRef, about 70 here;
// 108 against about 45 for contacts (BenchmarkStateGrowth).
//
// Lists handed out by get may be the caller's buffer: change them freely,
// then store them back with set.
type byPerson[T any] struct {
	one  map[idKey]T   // persons with exactly one entry
	more map[idKey][]T // persons with two or more
}

func newByPerson[T any]() byPerson[T] {
	return byPerson[T]{one: make(map[idKey]T), more: make(map[idKey][]T)}
}

// get returns p's list (nil: none). A single entry is returned in buf.
func (m *byPerson[T]) get(p idKey, buf *[1]T) []T {
	if v, ok := m.one[p]; ok {
		buf[0] = v
		return buf[:]
	}
	return m.more[p]
}

// set makes list p's list (empty: forgets p). A list of two or more is kept
// as given; do not pass a caller's buffer of get for it.
func (m *byPerson[T]) set(p idKey, list []T) {
	switch len(list) {
	case 0:
		delete(m.one, p)
		delete(m.more, p)
	case 1:
		m.one[p] = list[0]
		delete(m.more, p)
	default:
		m.more[p] = list
		delete(m.one, p)
	}
}

// len returns the number of persons.
func (m *byPerson[T]) len() int { return len(m.one) + len(m.more) }

// all yields every person and their list; a single entry comes in a buffer
// reused for the next person (copy what you keep).
func (m *byPerson[T]) all() iter.Seq2[idKey, []T] {
	return func(yield func(idKey, []T) bool) {
		var buf [1]T
		for p, v := range m.one {
			buf[0] = v
			if !yield(p, buf[:]) {
				return
			}
		}
		for p, list := range m.more {
			if !yield(p, list) {
				return
			}
		}
	}
}
