package thresholds

import (
	"fmt"

	"github.com/epiwatch/epiwatch/schemas"
)

// Action is what a rule set recommends for a region's restrictions. Its
// values are the words stored in decisions, defined in schemas.
type Action string

// The three actions of Kazakhstan's 2020 plan (Government Resolution No. 489
// of 30 July 2020, section 7, item 1): strengthen, keep at the same level,
// ease.
const (
	Strengthen Action = schemas.ActionStrengthen
	Keep       Action = schemas.ActionKeep
	Ease       Action = schemas.ActionEase
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

// KnownFlags lists the data-quality flags a rule file may configure, in the
// order they are documented. The flags themselves are defined in schemas
// (the processor, the decider and the rule files share them); each rule set
// states what each flag does (see FlagEffect), and by default a flagged input
// may hold or strengthen a level but never ease it. (The processor's
// informational flags — schemas.IsInformationalFlag — never reach a rule set:
// what they warn of is already in its inputs.)
func KnownFlags() []string {
	return []string{schemas.FlagBacklogDump, schemas.FlagStaleBeds, schemas.FlagMissingInput, schemas.FlagNegativeCorrection,
		schemas.FlagStaleFeed, schemas.FlagUnknownFacility, schemas.FlagOverCapacity}
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
