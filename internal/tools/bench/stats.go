package bench

import (
	"fmt"
	"math"
	"time"
)

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms is d in milliseconds, rounded to a tenth.
func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// heapPerEvent is the heap's growth from the first sample a minute to the
// last per event accepted in between: the offered rate less the share
// refused. 0 without two samples or an accepted event.
func heapPerEvent(perMinute []uint64, rate float64, accepted, refused int) float64 {
	n := len(perMinute)
	if n < 2 || accepted <= 0 {
		return 0
	}
	events := rate * 60 * float64(n-1) * float64(accepted) / float64(accepted+refused)
	return (float64(perMinute[n-1]) - float64(perMinute[0])) / events
}

// writesPerEvent is each stream's growth in sequence numbers from before to
// after per event, to three decimals; streams that did not grow are left
// out.
func writesPerEvent(before, after map[string]uint64, events int) map[string]float64 {
	out := map[string]float64{}
	for name, seq := range after {
		if d := seq - before[name]; d > 0 {
			out[name] = math.Round(float64(d)/float64(events)*1000) / 1000
		}
	}
	return out
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
