// Package epi computes the reproduction number R from daily case counts: the
// instantaneous R of Cori, Ferguson, Fraser & Cauchemez (2013), "A new
// framework and software to estimate time-varying reproduction numbers during
// epidemics", Am J Epidemiol 178:1505, exactly as the R package EpiEstim 2.2.4
// computes it (its estimate_R, discr_si and overall_infectivity), and the
// officials' ratio R.
//
// The package is pure: values in, values out, no I/O, no clock, no goroutines,
// which is what lets epi_test.go check it against EpiEstim's own output
// (testdata/epiestim, with the R script that made it; the tolerance is in the
// README, "R").
//
// Days are 1-based in Window (EpiEstim's t_start, t_end) and 0-based as slice
// indices (the end arguments of Window, Range and Ratio).
package epi
