// Package signals detects aberrations — early warnings of outbreaks — in a
// series of counts (cases per week, say), with the methods and the exact
// arithmetic of the R package surveillance 1.20.3 (Salmon, Schumacher & Höhle
// 2016, "Monitoring count time series in R: aberration detection in public
// health surveillance", J Stat Softw 70(10)): EARS C1, C2 and C3 for short or
// non-seasonal series (EARS), Farrington and Noufaily for series with years of
// history (Farrington). Each takes the counts of equally spaced periods t = 1,
// 2, … and returns a Result per period evaluated: the count, the upper bound
// (NaN where R has NA) and the alarm (R's NA kept apart, AlarmNA).
//
// The package is pure — values in, values out, no I/O, no clock, no goroutines
// — which is what lets signals_test.go compare it, row by row, with
// surveillance's own output (testdata/surveillance, with the R script that
// made it; how closely it agrees is in the README, "Early warnings").
package signals
