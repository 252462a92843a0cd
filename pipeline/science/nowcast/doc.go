// Package nowcast estimates how many cases the most recent onset days will
// eventually count, from the cases reported so far, and R on those completed
// counts. The last days of a series by onset date are always incomplete — a
// case falling ill yesterday is reported days later — so the raw series dips
// at its end and R computed on it falls; a nowcast corrects the dip and says
// how uncertain the correction is.
//
// The method is the Bayesian nowcast of Höhle & an der Heiden (2014), with two
// choices changed for stated reasons: the reporting delay is DelayModel's
// reverse-time hazard, the remainder of each day is drawn around the recent
// trend (trend); Nowcaster.Nowcast puts them together and Result.R estimates R
// on the completed series. The package takes values and returns values: no
// I/O, no clock, no goroutines, and every draw comes from the *rand.Rand
// passed in, so a seed reproduces a nowcast exactly.
package nowcast
