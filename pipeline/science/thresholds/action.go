package thresholds

import "fmt"

// Action is what a rule set recommends for a region's restrictions. The
// string values are the ones stored in decisions (schemas.ActionStrengthen,
// schemas.ActionKeep, schemas.ActionEase).
type Action string

// The three actions of Kazakhstan's 2020 plan (Government Resolution No. 489
// of 30 July 2020, section 7, item 1): strengthen, keep at the same level,
// ease.
const (
	Strengthen Action = "strengthen"
	Keep       Action = "keep"
	Ease       Action = "ease"
)

// ParseAction returns the Action named s, or an error naming the three valid
// actions.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Strengthen, Keep, Ease:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want strengthen, keep or ease)", s)
}

// Letter is the one-letter form used in tables: S, K or E.
func (a Action) Letter() string {
	switch a {
	case Strengthen:
		return "S"
	case Keep:
		return "K"
	case Ease:
		return "E"
	}
	return "?"
}

// Severity orders actions from mildest to strictest (ease 0, keep 1,
// strengthen 2), so that monotonicity can be stated as "a worse input never
// gives a lower severity". An unknown action has severity -1.
func (a Action) Severity() int {
	switch a {
	case Ease:
		return 0
	case Keep:
		return 1
	case Strengthen:
		return 2
	}
	return -1
}

// Data-quality flags the processor may attach to an evaluation. Each rule set
// states what each flag does (see FlagEffect); by default a flagged input may
// hold or strengthen a level but never ease it.
const (
	// FlagBacklogDump: a batch of old reports arrived at once, so recent
	// counts (and R) are inflated or shifted.
	FlagBacklogDump = "backlog_dump"
	// FlagStaleBeds: some facilities have not reported bed snapshots recently,
	// so occupancy may be out of date.
	FlagStaleBeds = "stale_beds"
	// FlagMissingInput: an indicator the processor normally supplies could not
	// be computed for this day.
	FlagMissingInput = "missing_input"
	// FlagNegativeCorrection: a source corrected earlier counts downwards, so
	// recent counts are artificially low.
	FlagNegativeCorrection = "negative_correction"
	// FlagStaleFeed: a feed (cases, tests) has not reported through the day,
	// so what is computed from it is missing, not zero.
	FlagStaleFeed = "stale_feed"
	// FlagUnknownFacility: bed reports from facilities missing from the
	// region's registry.
	FlagUnknownFacility = "unknown_facility"
	// FlagOverCapacity: a facility reported more beds than its capacity.
	FlagOverCapacity = "over_capacity"
)

// KnownFlags lists the data-quality flags a rule file may configure, in the
// order they are documented. (The processor's informational flags —
// few_cases, few_tests, presumed_closed — never reach a rule set: what they
// warn of is already in its inputs.)
func KnownFlags() []string {
	return []string{FlagBacklogDump, FlagStaleBeds, FlagMissingInput, FlagNegativeCorrection, FlagStaleFeed, FlagUnknownFacility, FlagOverCapacity}
}

// FlagEffect is what a data-quality flag does to an evaluation.
type FlagEffect string

// Flag effects. NoEase is the default for every flag, including flags the
// rule set does not mention.
const (
	// FlagIgnore: the flag does not change the action.
	FlagIgnore FlagEffect = "ignore"
	// FlagNoEase: an ease becomes keep; strengthen and keep stand. Bad data
	// may justify caution, never relaxation.
	FlagNoEase FlagEffect = "no_ease"
	// FlagHold: any action becomes keep; the level is frozen until the data
	// are repaired.
	FlagHold FlagEffect = "hold"
)
