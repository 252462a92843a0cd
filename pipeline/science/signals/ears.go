package signals

import (
	"fmt"
	"math"
)

// EARSMethod is one of the three EARS detectors.
type EARSMethod int

// The EARS detectors of Hutwagner et al. (2003), as surveillance::earsC
// names them.
const (
	// C1 compares each count with the mean and sd of the Baseline counts
	// just before it.
	C1 EARSMethod = iota + 1
	// C2 is C1 with a guard band: the baseline ends two periods earlier.
	C2
	// C3 adds to C2 the excess of the two previous periods' C2 statistics
	// over 1, so that a rise sustained over three periods alarms sooner.
	C3
)

func (m EARSMethod) String() string {
	switch m {
	case C1:
		return "C1"
	case C2:
		return "C2"
	case C3:
		return "C3"
	}
	return fmt.Sprintf("EARSMethod(%d)", int(m))
}

// EARSConfig sets the parameters of earsC.
type EARSConfig struct {
	Method EARSMethod
	// Baseline is the number of past periods whose mean and sd the count
	// is compared with; earsC's default is 7 and its minimum 3.
	Baseline int
	// Alpha is the one-sided level: the bound is mean + qnorm(1-Alpha)·sd.
	// earsC's defaults are 0.001 for C1 and C2 and 0.025 for C3.
	Alpha float64
	// MinSigma is a floor on the baseline sd (earsC's minSigma, default
	// 0): with 0, a baseline without variance gives C1 and C2 a bound equal
	// to its mean, and C3 none.
	MinSigma float64
	// From is the first period t (1-based) to evaluate; 0 means the
	// method's first computable period, earsC's default range
	// (FirstT). Every period from From to the end is evaluated.
	From int
}

// DefaultEARS is earsC's configuration for method m when only the method
// is given: baseline 7, minSigma 0, and alpha 0.001 for C1 and C2 but 0.025
// for C3 (earsC sets that alpha when control$alpha is missing).
func DefaultEARS(m EARSMethod) EARSConfig {
	c := EARSConfig{Method: m, Baseline: 7, Alpha: 0.001}
	if m == C3 {
		c.Alpha = 0.025
	}
	return c
}

// maxLag is how far back the method reaches from t: earsC's maxLag.
func (c EARSConfig) maxLag() int {
	switch c.Method {
	case C2:
		return c.Baseline + 2
	case C3:
		return c.Baseline + 4
	}
	return c.Baseline
}

// FirstT is the first period the method can evaluate, earsC's default
// range start: Baseline+1 for C1, Baseline+3 for C2, Baseline+5 for C3
// (C3 needs C2 at the two periods before).
func (c EARSConfig) FirstT() int { return c.maxLag() + 1 }

// Validate checks the parameters against a series of n periods.
func (c EARSConfig) Validate(n int) error {
	switch {
	case c.Method < C1 || c.Method > C3:
		return fmt.Errorf("EARS method %d: use C1, C2 or C3", int(c.Method))
	case c.Baseline < 3:
		return fmt.Errorf("EARS baseline %d: earsC needs a baseline of at least 3 periods (its default is 7)", c.Baseline)
	case !(c.Alpha > 0 && c.Alpha < 1):
		return fmt.Errorf("EARS alpha %v: must be between 0 and 1 (earsC's defaults: 0.001 for C1 and C2, 0.025 for C3)", c.Alpha)
	case !(c.MinSigma >= 0) || math.IsInf(c.MinSigma, 0):
		return fmt.Errorf("EARS minSigma %v: must be 0 or a positive number", c.MinSigma)
	case c.From != 0 && c.From < c.FirstT():
		return fmt.Errorf("EARS %v with baseline %d: the first period it can evaluate is t = %d, not %d (it needs %d earlier periods)",
			c.Method, c.Baseline, c.FirstT(), c.From, c.maxLag())
	case n < max(c.From, c.FirstT()):
		return fmt.Errorf("series too short for EARS %v with baseline %d: it has %d periods, the first one evaluated is t = %d; give a longer series or a shorter baseline",
			c.Method, c.Baseline, n, max(c.From, c.FirstT()))
	}
	return nil
}

// EARS runs surveillance::earsC (surveillance 1.20.3) on counts, period t
// = 1..len(counts), and returns one Result for each t from cfg.From (or
// FirstT) to the end.
//
// C1 and C2: the bound is mean + qnorm(1-α)·max(sd, MinSigma) of the
// baseline (t-Baseline … t-1 for C1, t-Baseline-2 … t-3 for C2). C3: with
// C2(s) = (y_s − mean_s)/max(sd_s, MinSigma) the C2 statistic, the bound is
// y_t + max(sd_t, MinSigma)·(qnorm(1-α) − Σ_{s=t-2,t-1} max(0, C2(s)−1)),
// floored at 0 — earsC's formula, which is NA (NaN here, AlarmNA) when a
// baseline without variance makes C2 0/0, or its sd 0 meets an infinite
// C2. An alarm is y_t > bound, NA where the bound is.
//
// The method is EARS (Hutwagner et al. 2003, "The bioterrorism preparedness
// and response Early Aberration Reporting System (EARS)", J Urban Health
// 80:i89) as surveillance::earsC computes it: the count against the mean and
// sd of the few periods just before it, so no history of past years is needed.
func EARS(counts []float64, cfg EARSConfig) ([]Result, error) {
	if err := checkCounts(counts); err != nil {
		return nil, err
	}
	if err := cfg.Validate(len(counts)); err != nil {
		return nil, err
	}
	from := max(cfg.From, cfg.FirstT())
	n := len(counts)
	z := qnorm(1 - cfg.Alpha)
	// baseline returns the mean and max(sd, MinSigma) of the baseline of
	// 1-based period t: lags Baseline…1 (C1) or Baseline+2…3 (C2, C3),
	// oldest first as earsC's outer(range, lags, "-") orders them.
	baseline := func(t int) (mean, sd float64) {
		hi := 1
		if cfg.Method != C1 {
			hi = 3
		}
		lo := hi + cfg.Baseline - 1
		mean, sd = meanSD(counts[t-1-lo : t-hi])
		return mean, max(sd, cfg.MinSigma) // pmax(sd, minSigma)
	}
	out := make([]Result, 0, n-from+1)
	if cfg.Method != C3 {
		for t := from; t <= n; t++ {
			m, s := baseline(t)
			out = append(out, newResult(t, counts[t-1], m+z*s))
		}
		return out, nil
	}
	// C3: C2 statistics from from-2 on (earsC's rangeC2).
	c2 := make([]float64, n+1) // by 1-based period
	for s := from - 2; s <= n; s++ {
		m, sd := baseline(s)
		c2[s] = (counts[s-1] - m) / sd
	}
	for t := from; t <= n; t++ {
		_, sd := baseline(t)
		lag2 := max(0, c2[t-2]-1) // pmax(0, NaN) is NaN, as Go's max
		lag1 := max(0, c2[t-1]-1)
		ub := max(0, counts[t-1]+sd*(z-(lag2+lag1)))
		out = append(out, newResult(t, counts[t-1], ub))
	}
	return out, nil
}

// newResult is the EARS outcome: an alarm when the count exceeds the
// bound, NA without a bound (R's y > NA).
func newResult(t int, y, ub float64) Result {
	r := Result{T: t, Observed: y, UpperBound: ub}
	if math.IsNaN(ub) {
		r.AlarmNA = true
	} else {
		r.Alarm = y > ub
	}
	return r
}

// meanSD is R's mean(x) and sd(x): the mean with R's second pass
// correction, the sd by two passes over the deviations from it.
func meanSD(x []float64) (mean, sd float64) {
	n := float64(len(x))
	var s sum
	for _, v := range x {
		s.add(v)
	}
	mean = s.value() / n
	var c sum
	for _, v := range x {
		c.add(v - mean)
	}
	mean += c.value() / n
	var ss sum
	for _, v := range x {
		ss.add((v - mean) * (v - mean))
	}
	return mean, math.Sqrt(ss.value() / (n - 1))
}
