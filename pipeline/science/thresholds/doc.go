// Package thresholds turns a region's indicators into a restriction decision
// (strengthen, keep or ease) and moves the region's restriction level.
//
// Rules are data, not code: a rule set is a YAML file (see README.md and the
// shipped files in rulesets/) with an id, a version, a citation of its source,
// and one of four shapes:
//
//   - clauses: named conditions tried in file order, the first match wins
//     (Kazakhstan's 2020 plan made monotone, kz-2020-monotone, is the
//     default rule set; the literal plan is kz-2020-plan);
//   - higher_of: a gate metric selects a table of per-metric cut-points and
//     the level is the highest of the metric levels (CDC Community Levels);
//   - gate_max: the level is the lowest one while a gate metric is at the
//     lowest level, otherwise the highest of the metric levels (Covid Act Now);
//   - criteria: tiers of named criteria, a tier is met when k of its n
//     criteria hold (WHO's positivity criterion, Rospotrebnadzor's stages).
//
// Level-based shapes produce a level on their own scale; the rule set maps it
// to a target restriction level, and the action is the direction from the
// region's current level (input "restriction_level") towards that target.
//
// The package is pure: it takes values and returns values, parses only the
// bytes it is given or the files embedded in it, never reads a clock (time is
// passed in) and starts no goroutines. That keeps every decision reproducible
// from the inputs recorded with it.
package thresholds
