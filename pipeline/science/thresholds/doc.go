// Package thresholds turns a region's indicators into a restriction decision
// (strengthen, keep or ease) and moves the region's restriction level.
//
// Rules are data, not code: a rule set is a YAML file (see README.md and the
// shipped files in rulesets/) with an id, a version, a citation of its source,
// and one of four shapes (Shape).
//
// The package is pure: it takes values and returns values, parses only the
// bytes it is given or the files embedded in it, never reads a clock (time is
// passed in) and starts no goroutines. That keeps every decision reproducible
// from the inputs recorded with it.
package thresholds
