package clickhouse

import "testing"

func TestGuarded(t *testing.T) {
	for _, tc := range []struct {
		stmt         string
		major, minor int
		want         bool
	}{
		{"-- requires: 22.2\nALTER TABLE x", 18, 16, true},
		{"-- requires: 22.2\nALTER TABLE x", 22, 2, false},
		{"-- requires: 22.2\nALTER TABLE x", 26, 5, false},
		{"-- requires: 22.2\nALTER TABLE x", 22, 1, true},
		{"CREATE TABLE x", 18, 16, false},
	} {
		if got := Guarded(tc.stmt, tc.major, tc.minor); got != tc.want {
			t.Errorf("Guarded(%q, %d.%d) = %v", tc.stmt, tc.major, tc.minor, got)
		}
	}
}
