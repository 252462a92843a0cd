package bench

import (
	"slices"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestLatencies feeds the tracker as the taps and the sender would and
// checks which events count as covered, and after how long.
func TestLatencies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name        string
		feed        func(tr *latencyTracker)
		want        []time.Duration
		wantPending int
	}{
		{"nothing accepted", func(*latencyTracker) {}, nil, 0},
		{"accepted, not stored yet", func(tr *latencyTracker) {
			tr.accept([]schemas.Event{{EventID: "a"}}, at(0))
		}, nil, 1},
		{"stored, no indicator of its region", func(tr *latencyTracker) {
			tr.accept([]schemas.Event{{EventID: "a"}}, at(0))
			tr.stored("a", "KZ-75", 3)
			tr.indicator("KZ-71", 9, at(50))
		}, nil, 1},
		{"covered by the first record whose version reaches it", func(tr *latencyTracker) {
			tr.accept([]schemas.Event{{EventID: "a"}, {EventID: "b"}}, at(0))
			tr.stored("a", "KZ-75", 3)
			tr.stored("b", "KZ-75", 5)
			tr.indicator("KZ-75", 2, at(10))
			tr.indicator("KZ-75", 4, at(20))
			tr.indicator("KZ-75", 6, at(30))
		}, []time.Duration{20 * time.Millisecond, 30 * time.Millisecond}, 0},
		{"a lower version after a higher one still covers (running maximum)", func(tr *latencyTracker) {
			tr.accept([]schemas.Event{{EventID: "a"}}, at(0))
			tr.stored("a", "KZ-75", 5)
			tr.indicator("KZ-75", 7, at(40))
			tr.indicator("KZ-75", 3, at(60))
		}, []time.Duration{40 * time.Millisecond}, 0},
		{"a record before the API's answer counts as 0", func(tr *latencyTracker) {
			tr.indicator("KZ-75", 8, at(5))
			tr.accept([]schemas.Event{{EventID: "a"}}, at(100))
			tr.stored("a", "KZ-75", 8)
		}, []time.Duration{0}, 0},
		{"version below the sequence: pending", func(tr *latencyTracker) {
			tr.accept([]schemas.Event{{EventID: "a"}}, at(0))
			tr.stored("a", "KZ-75", 10)
			tr.indicator("KZ-75", 9, at(5))
		}, nil, 1},
	} {
		tr := newLatencyTracker()
		c.feed(tr)
		got, pending := tr.latencies()
		if !slices.Equal(got, c.want) || pending != c.wantPending {
			t.Errorf("%s: latencies %v, pending %d; want %v, %d", c.name, got, pending, c.want, c.wantPending)
		}
	}
}
