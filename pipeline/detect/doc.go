// Package detect is the early-warning stage: it reads the indicators stream,
// keeps each region's daily counts (confirmed cases by report date, positive
// tests by sample date, occupied infectious beds) and runs the aberration
// detectors of pipeline/science/signals on them — EARS C2 and C3 every day,
// Farrington and Noufaily on ISO-week totals once the region has three years
// of history — publishing one versioned schemas.Signal per region, day, series
// and method to the signals stream (landed in ClickHouse epiwatch.signals).
//
// A signal is a warning read beside R and bed occupancy; it never changes a
// restriction level, and the alerter only mentions it in a region's daily
// digest. Missing is not zero: a day whose feed is stale has no verdict, nor
// has a day whose baseline holds one; a count below detect.min_alarm_count is
// not evidence and raises no alarm, whatever the bound.
package detect
