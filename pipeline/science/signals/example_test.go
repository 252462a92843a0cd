package signals_test

import (
	"fmt"

	"github.com/epiwatch/epiwatch/pipeline/science/signals"
)

// EARS C1 on a short weekly series: each week against the mean and sd of
// the 7 before it. R gives the same: earsC(sts(observed = matrix(counts),
// frequency = 52), control = list(method = "C1")).
func ExampleEARS() {
	counts := []float64{4, 6, 5, 3, 5, 4, 6, 5, 14, 6}
	rs, err := signals.EARS(counts, signals.DefaultEARS(signals.C1))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rs {
		fmt.Printf("t=%d observed=%v bound=%.2f alarm=%v\n", r.T, r.Observed, r.UpperBound, r.Alarm)
	}
	// Output:
	// t=8 observed=5 bound=8.15 alarm=false
	// t=9 observed=14 bound=8.16 alarm=true
	// t=10 observed=6 bound=17.28 alarm=false
}

// Noufaily on weekly counts needs freq 52 and b years of history: here 3,
// so the first week evaluated is 52·3 + 3 + 1 = 160. R gives the same
// bounds and alarms: farringtonFlexible(sts(observed = matrix(counts),
// frequency = 52), control = list(b = 3, noPeriods = 10,
// pastWeeksNotIncluded = 26, thresholdMethod = "nbPlugin")).
func ExampleFarrington() {
	counts := make([]float64, 170)
	for i := range counts {
		counts[i] = float64(5 + i%4) // 5, 6, 7, 8, 5, …
	}
	counts[165] = 30
	cfg := signals.DefaultNoufaily(52)
	cfg.B = 3
	rs, err := signals.Farrington(counts, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rs[len(rs)-5:] {
		fmt.Printf("t=%d observed=%v bound=%v alarm=%v\n", r.T, r.Observed, r.UpperBound, r.Alarm)
	}
	// Output:
	// t=166 observed=30 bound=11 alarm=true
	// t=167 observed=7 bound=11 alarm=false
	// t=168 observed=8 bound=11 alarm=false
	// t=169 observed=5 bound=11 alarm=false
	// t=170 observed=6 bound=11 alarm=false
}
