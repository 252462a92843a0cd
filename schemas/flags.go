package schemas

// Data-quality flags. The processor attaches them to indicator records
// (Indicator.Flags, with one "<flag>: <why>" line each in FlagReasons); a
// rule set says what each flag it reads does to a decision (by default:
// never ease), and decisions and alert payloads carry the flags that shaped
// them (Decision.Flags). These are the only definitions: the processor, the
// decider, the rule sets (pipeline/science/thresholds) and the dashboards use
// these constants.
const (
	// FlagBacklogDump: a day in the record's 7-day window reported far more
	// cases than the days before it, and old ones (process.backlog_factor): a
	// backlog arriving, which inflates R and incidence, not a surge.
	FlagBacklogDump = "backlog_dump"
	// FlagStaleBeds: at least one facility's latest bed snapshot is older
	// than process.bed_max_age, so ПЗК covers the fresh facilities only and
	// may be out of date.
	//
	// This one condition has two wire values, for history: indicator records
	// have always carried it as "beds_stale" (IndicatorFlagStaleBeds, the
	// processor's word), while rule files, decisions and alert payloads carry
	// "stale_beds" (the rule sets' word). Both are stored in users' streams
	// and ClickHouse tables and read by their queries, so neither can be
	// renamed; RuleFlag is the one translation between them.
	FlagStaleBeds = "stale_beds"
	// IndicatorFlagStaleBeds is FlagStaleBeds as indicator records spell it.
	IndicatorFlagStaleBeds = "beds_stale"
	// FlagMissingInput: a region that reported before has no case or test
	// report in the record's 7-day window, or no fresh infectious-bed
	// snapshot: an absence of data, not an absence of disease. Decisions
	// that could not be made for want of a complete day carry it too.
	FlagMissingInput = "missing_input"
	// FlagNegativeCorrection: a bed snapshot of the day was corrected to
	// fewer occupied beds, so recent figures are artificially low. (Case,
	// test and contact counts never go down: the event contract has no
	// retraction; a count is a set of events.)
	FlagNegativeCorrection = "negative_correction"
	// FlagStaleFeed: a feed (cases, tests) has not reported through the day:
	// missing, not zero.
	FlagStaleFeed = "stale_feed"
	// FlagUnknownFacility: bed reports from facilities missing from the
	// region's registry (counted: leaving them out could understate ПЗК).
	FlagUnknownFacility = "unknown_facility"
	// FlagOverCapacity: a facility reported more beds than its registered
	// capacity: a mistyped report.
	FlagOverCapacity = "over_capacity"
	// FlagNoPopulation: the region is not in the region reference, so the
	// per-100k and coverage figures are not available.
	FlagNoPopulation = "no_population"

	// FlagFewCases: R from too few cases (RStatusFewCases). Informational:
	// decisions treat the uncertain metrics as unknown instead.
	FlagFewCases = "few_cases"
	// FlagFewTests: positivity from fewer than process.positivity_min_tests
	// tests. Informational, like FlagFewCases.
	FlagFewTests = "few_tests"
	// FlagPresumedClosed: facilities silent for longer than
	// process.bed_presumed_closed_after, left out of ПЗК and no longer
	// counted as stale. Informational: an operator confirms with a facility
	// event.
	FlagPresumedClosed = "presumed_closed"
)

// Flags only decisions carry (Decision.Flags): they say how the decider
// read the day, and are never given to a rule set.
const (
	// FlagProvisional: the decision used a day the processor marked
	// provisional (only with decide.use_provisional): the operator chose to
	// trust such days.
	FlagProvisional = "provisional"
	// FlagNowcast: the decision was made on a day still provisional, with R
	// read from the day's nowcast (rule set option r.nowcast).
	FlagNowcast = "nowcast"
)

// IsInformationalFlag reports whether a rule set never reads flag: what the
// informational flags warn of is already in the inputs (uncertain metrics are
// withheld; a presumed closed facility is out of ПЗК).
func IsInformationalFlag(flag string) bool {
	switch flag {
	case FlagFewCases, FlagFewTests, FlagPresumedClosed:
		return true
	}
	return false
}

// RuleFlag returns the name rule sets and decisions use for a flag found in
// an indicator record: the same word, except for the one historical second
// spelling (IndicatorFlagStaleBeds, see FlagStaleBeds). This is the only
// mapping between the two vocabularies.
func RuleFlag(indicatorFlag string) string {
	switch indicatorFlag {
	case IndicatorFlagStaleBeds:
		return FlagStaleBeds
	}
	return indicatorFlag
}
