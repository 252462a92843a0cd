package signals

import (
	"fmt"
	"math"
)

// Result is a detector's outcome at one period.
type Result struct {
	// T is the period, 1-based: counts[T-1].
	T int
	// Observed is the count at T.
	Observed float64
	// UpperBound is the threshold the count is compared with; NaN where R
	// gives NA (see Computable).
	UpperBound float64
	// Alarm is R's alarm: the count is above the bound (for Farrington
	// and Noufaily also: enough recent cases, and a non-zero count).
	Alarm bool
	// AlarmNA is true where R's alarm is NA rather than FALSE: EARS C3
	// without a bound, Farrington and Noufaily where no GLM could be
	// fitted. Alarm is then false.
	AlarmNA bool
}

// Computable reports whether the period has an upper bound (R's bound is
// not NA).
func (r Result) Computable() bool { return !math.IsNaN(r.UpperBound) }

// checkCounts rejects what no method accepts: negative, infinite or NaN
// counts (R's quasipoisson family refuses negative values; a missing count
// has no place in an equally spaced series here — give 0 or cut the
// series).
func checkCounts(counts []float64) error {
	for i, c := range counts {
		if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return fmt.Errorf("count %v at t = %d: counts must be finite numbers ≥ 0", c, i+1)
		}
	}
	return nil
}
