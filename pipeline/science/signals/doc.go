// Package signals detects aberrations — early warnings of outbreaks — in a
// series of counts (cases per week, say), with the methods and the exact
// arithmetic of the R package surveillance 1.20.3 (Salmon, Schumacher &
// Höhle 2016, "Monitoring count time series in R: aberration detection in
// public health surveillance", J Stat Softw 70(10)):
//
//   - EARS C1, C2 and C3 (Hutwagner et al. 2003, "The bioterrorism
//     preparedness and response Early Aberration Reporting System (EARS)",
//     J Urban Health 80:i89), surveillance::earsC: the count against the
//     mean and sd of the few periods just before it. For short or
//     non-seasonal series; no history of past years needed.
//   - Farrington (Farrington et al. 1996, "A statistical algorithm for the
//     early detection of outbreaks of infectious disease", J R Stat Soc A
//     159:547) and its improvement by Noufaily et al. (2013, "An improved
//     algorithm for outbreak detection in multiple surveillance systems",
//     Stat Med 32:1206), surveillance::farringtonFlexible: a quasi-Poisson
//     GLM fitted to the same season of past years, down-weighting past
//     outbreaks, and a bound from its prediction.
//
// Each function takes the counts of periods t = 1, 2, …, equally spaced,
// and returns a Result per period evaluated: the count, the upper bound
// (NaN where R has NA) and the alarm (with R's NA kept apart, AlarmNA).
// EARS(counts, cfg) with DefaultEARS(C1|C2|C3); Farrington(counts, cfg)
// with DefaultFarrington(freq) or DefaultNoufaily(freq), freq being the
// periods per year.
//
// The package is pure — values in, values out, no I/O, no clock, no
// goroutines — which is what lets signals_test.go compare it, row by row,
// with surveillance's own output (testdata/surveillance, with the R script
// that made it and a README). The GLM is R's glm.fit ported step by step
// (IRLS from mustart = y + 0.1, R's LINPACK QR dqrdc2, convergence at
// |Δdeviance|/(|deviance| + 0.1) < 1e-8), as are summary.glm's dispersion
// and t-test, predict.glm's standard error, the hat values, and the
// quantile searches of R's qnbinom and qpois. Agreement with R over the 22
// reference runs (8,639 rows): NA and alarm (NA included) identical on
// every row; bounds within 5.1e-15 (EARS) and 5.6e-15 (Farrington)
// relative — the 15 digits R printed — and Noufaily's integer bounds
// exact.
package signals
