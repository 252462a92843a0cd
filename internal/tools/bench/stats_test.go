package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"one value", []time.Duration{7}, 0.5, 7},
		{"median of ten: nearest rank 5", ten, 0.50, 5},
		{"p99 of ten: the last", ten, 0.99, 10},
		{"p10 of ten: the first", ten, 0.10, 1},
		{"p11 of ten: rounds up to rank 2", ten, 0.11, 2},
		{"q 0: the first, not out of range", ten, 0, 1},
		{"q 1: the last", ten, 1, 10},
		{"p50 of four: rank 2", []time.Duration{10, 20, 30, 40}, 0.5, 20},
	} {
		if got := percentile(c.sorted, c.q); got != c.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", c.name, c.sorted, c.q, got, c.want)
		}
	}
}

func TestMs(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{time.Millisecond, 1},
		{1234567 * time.Microsecond, 1234.6},
		{40 * time.Microsecond, 0},
		{50 * time.Microsecond, 0.1},
		{2 * time.Second, 2000},
	} {
		if got := ms(c.d); got != c.want {
			t.Errorf("ms(%v) = %v, want %v", c.d, got, c.want)
		}
	}
}

func TestHeapPerEvent(t *testing.T) {
	for _, c := range []struct {
		name              string
		perMinute         []uint64
		rate              float64
		accepted, refused int
		want              float64
	}{
		{"no samples", nil, 1000, 100, 0, 0},
		{"one sample", []uint64{1 << 20}, 1000, 60000, 0, 0},
		{"nothing accepted", []uint64{100, 200}, 1000, 0, 10, 0},
		// 2 minutes between the first and last sample at 1,000/s: 120,000 events.
		{"growth", []uint64{100 << 20, 110 << 20, 100<<20 + 12_000_000}, 1000, 180000, 0, 100},
		// A quarter refused: 90,000 of the 120,000 offered were accepted.
		{"refusals", []uint64{0, 4_500_000, 9_000_000}, 1000, 135000, 45000, 100},
		{"shrinking", []uint64{2_000_000, 800_000}, 100, 6000, 0, -200},
	} {
		if got := heapPerEvent(c.perMinute, c.rate, c.accepted, c.refused); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWritesPerEvent(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after map[string]uint64
		events        int
		want          map[string]float64
	}{
		{"none", map[string]uint64{}, map[string]uint64{}, 10, map[string]float64{}},
		{"one write per event", map[string]uint64{"EVENTS": 100}, map[string]uint64{"EVENTS": 500}, 400, map[string]float64{"EVENTS": 1}},
		{"unchanged streams left out", map[string]uint64{"EVENTS": 5, "DECISIONS": 9}, map[string]uint64{"EVENTS": 8, "DECISIONS": 9}, 3, map[string]float64{"EVENTS": 1}},
		{"a stream created during the run", map[string]uint64{}, map[string]uint64{"INDICATORS": 20}, 400, map[string]float64{"INDICATORS": 0.05}},
		{"three decimals", map[string]uint64{"EVENTS": 0}, map[string]uint64{"EVENTS": 2}, 3, map[string]float64{"EVENTS": 0.667}},
	} {
		got := writesPerEvent(c.before, c.after, c.events)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
}

func TestMib(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0.0 MiB"},
		{1 << 20, "1.0 MiB"},
		{3 << 19, "1.5 MiB"},
		{100 << 20, "100.0 MiB"},
	} {
		if got := mib(c.n); got != c.want {
			t.Errorf("mib(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
