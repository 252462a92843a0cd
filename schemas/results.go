package schemas

import (
	"fmt"
	"hash/crc32"
	"time"
)

// Indicator is the set of indicators of one region on one day, as computed
// from every event applied so far. It is versioned: a late event produces a
// new version of the same (region, date), and the latest version wins in
// ClickHouse (indicators_latest). Nil pointers mean "not available" (no data,
// or R not estimable), never zero.
type Indicator struct {
	Region  string `json:"region"`
	Date    Date   `json:"date"`
	Version uint64 `json:"version"` // events-stream sequence the state covered

	// Cases by report date (and by onset date where known), confirmed only.
	Cases         int `json:"cases"`
	CasesLocal    int `json:"cases_local"`
	CasesImported int `json:"cases_imported"`
	CasesByOnset  int `json:"cases_by_onset"`
	Cases7d       int `json:"cases_7d"`
	// CasesRepeat are confirmed case events of the day not counted in Cases
	// because the same person was counted within the episode window
	// (process.episode_days) before.
	CasesRepeat int `json:"cases_repeat"`

	// R (Cori et al. 2013, EpiEstim 2.2.4) over the 7-day window ending on Date.
	RMethod string   `json:"r_method"`
	RMean   *float64 `json:"r_mean"`
	RSD     *float64 `json:"r_sd"`
	RQ025   *float64 `json:"r_q025"`
	RMedian *float64 `json:"r_median"`
	RQ975   *float64 `json:"r_q975"`
	// RRatio is the officials' ratio R: cases in the last 4 days over the 4 before.
	RRatio *float64 `json:"r_ratio"`
	// RStatus says whether R can be relied on (RStatus*), RCases how many
	// local cases its window held: the evidence behind it.
	RStatus string `json:"r_status"`
	RCases  int    `json:"r_cases"`
	// RProbAbove1 is the posterior probability that R exceeds 1; GrowthRate
	// the daily exponential growth rate that goes with R's mean and the
	// serial interval (Wallinga & Lipsitch 2007), DoublingDays or
	// HalvingDays the time it doubles or halves cases; Trend a plain-words
	// label of P(R < 1) with EpiNow2's cut-offs (TrendIncreasing …), "" when
	// R's status is not ok.
	RProbAbove1  *float64 `json:"r_prob_above_1"`
	GrowthRate   *float64 `json:"growth_rate"`
	DoublingDays *float64 `json:"doubling_days"`
	HalvingDays  *float64 `json:"halving_days"`
	Trend        string   `json:"trend"`

	// The nowcast of a recent onset day (process.nowcast; R by onset date
	// only): NowcastAsOf is the day up to which reports were known (the
	// region's case feed's last day), zero (null) on days too old to be
	// nowcast or when nowcasting is off. CasesNowcast* are the median and
	// 95 % interval of the day's eventual count by onset (CasesByOnset is
	// what is reported so far), NowcastCompleteness the share of it already
	// reported. RNowcast* are R on the nowcast: Cori's posterior mixed over
	// sampled completions of the series (Höhle & an der Heiden 2014), nil
	// where R is not estimable; R* above stay EpiEstim's on the reported
	// counts. RNowcastFinal* are the 95 % (Q025–Q975) and 80 % (Q10–Q90)
	// intervals of where EpiEstim's R mean is expected to land once the
	// reports are complete (the spread of Cori's mean over the completions,
	// without Cori's own posterior width): what a decision on the nowcast
	// may differ from the final data's by. A
	// day whose reports are complete has a nowcast equal to them.
	NowcastAsOf         Date     `json:"nowcast_as_of"`
	CasesNowcastMedian  *float64 `json:"cases_nowcast_median"`
	CasesNowcastQ025    *float64 `json:"cases_nowcast_q025"`
	CasesNowcastQ975    *float64 `json:"cases_nowcast_q975"`
	NowcastCompleteness *float64 `json:"nowcast_completeness"`
	RNowcastMean        *float64 `json:"r_nowcast_mean"`
	RNowcastQ025        *float64 `json:"r_nowcast_q025"`
	RNowcastMedian      *float64 `json:"r_nowcast_median"`
	RNowcastQ975        *float64 `json:"r_nowcast_q975"`
	RNowcastFinalQ025   *float64 `json:"r_nowcast_final_q025"`
	RNowcastFinalQ10    *float64 `json:"r_nowcast_final_q10"`
	RNowcastFinalQ90    *float64 `json:"r_nowcast_final_q90"`
	RNowcastFinalQ975   *float64 `json:"r_nowcast_final_q975"`

	Cases7dPer100k *float64 `json:"cases_7d_per_100k"`

	// Tests and TestsPositive are the day's conclusive diagnostic tests and
	// positive ones, by sample date (what the 7-day figures add up).
	Tests            int      `json:"tests"`
	TestsPositive    int      `json:"tests_positive"`
	Tests7d          int      `json:"tests_7d"`
	TestsPositive7d  int      `json:"tests_positive_7d"`
	Positivity7dPct  *float64 `json:"positivity_7d_pct"`
	Tests7dPer100k   *float64 `json:"tests_7d_per_100k"`
	BedsTotal        int      `json:"beds_total"`
	BedsOccupied     int      `json:"beds_occupied"`
	BedOccupancyPct  *float64 `json:"bed_occupancy_pct"` // ПЗК
	ICUTotal         int      `json:"icu_total"`
	ICUOccupied      int      `json:"icu_occupied"`
	ICUOccupancyPct  *float64 `json:"icu_occupancy_pct"`
	ProvTotal        int      `json:"provisional_total"`
	ProvOccupied     int      `json:"provisional_occupied"`
	ProvOccupancyPct *float64 `json:"provisional_occupancy_pct"`
	StaleFacilities  int      `json:"stale_facilities"`
	// Facilities left out of ПЗК for other reasons than staleness: closed
	// (by a facility event) from their closing day, presumed closed (silent
	// longer than process.bed_presumed_closed_after; an operator confirms),
	// and reporting without being in the region's registry (counted, and
	// flagged).
	ClosedFacilities         int `json:"closed_facilities"`
	PresumedClosedFacilities int `json:"presumed_closed_facilities"`
	UnknownFacilities        int `json:"unknown_facilities"`

	Contacts7d              int      `json:"contacts_7d"`
	ContactsPerCase         *float64 `json:"contacts_per_case"`
	ContactsBecameCasesPct  *float64 `json:"contacts_became_cases_pct"`
	VaccinatedDose1         int      `json:"vaccinated_dose1"`
	VaccinatedDose2         int      `json:"vaccinated_dose2"`
	VaccinatedDose3Plus     int      `json:"vaccinated_dose3_plus"`
	VaccinationDose1Pct     *float64 `json:"vaccination_dose1_pct"`
	VaccinationDose2Pct     *float64 `json:"vaccination_dose2_pct"`
	VaccinationDose3PlusPct *float64 `json:"vaccination_dose3_plus_pct"`

	// Provisional marks a recent day whose counts are still expected to grow
	// as late reports arrive: younger than the configured quantile of the
	// region's reporting delay.
	Provisional bool `json:"provisional"`
	// StaleFeeds are the feeds (event types) that have not reported
	// through this day: their counts for it are missing, not zero.
	StaleFeeds []string `json:"stale_feeds,omitempty"`
	// Uncertain names the metrics computed from too few observations to be
	// relied on (R from few cases, positivity from few tests): shown, but
	// decisions treat them as unknown.
	Uncertain []string `json:"uncertain,omitempty"`
	// Flags are data-quality flags (Flag*), FlagReasons one "<flag>: <why>"
	// line per flag, in the same order.
	Flags       []string `json:"flags,omitempty"`
	FlagReasons []string `json:"flag_reasons,omitempty"`

	// ComputedAt is the stream time of the newest event the record covers
	// (not the wall clock), so a replay reproduces it; the processor-lag
	// metric measures from it.
	ComputedAt time.Time `json:"computed_at"`
}

// R statuses (Indicator.RStatus).
const (
	// RStatusOK: R is estimated from enough cases to be relied on.
	RStatusOK = "ok"
	// RStatusFewCases: R is estimated, but from fewer cases than
	// process.r_min_cases in its window, or with a posterior coefficient of
	// variation above process.r_max_cv: the prior dominates, so R is shown
	// but decisions treat it as unknown.
	RStatusFewCases = "few_cases"
	// RStatusStaleFeed: the case feed has not reported through the day, so
	// R is not computed from the missing days as zeros (it is null).
	RStatusStaleFeed = "stale_feed"
	// RStatusNotEstimable: too early in the region's series (EpiEstim's NA).
	RStatusNotEstimable = "not_estimable"
)

// Key is the identity of an indicator record across versions.
func (in *Indicator) Key() string { return in.Region + "/" + in.Date.String() }

// MsgID is the de-duplication id of the record encoded as data: region,
// date, version and a CRC-32 of the bytes. A replay republishes identical
// bytes under the same id, which JetStream drops. The checksum tells apart
// two contents of one version: an event applied out of stream order (the
// redelivery of a message whose first delivery never reached the processor)
// changes a day without raising its version, the highest sequence the day
// depends on. Consumers keep the later of equal versions, as ClickHouse's
// ReplacingMergeTree does.
func (in *Indicator) MsgID(data []byte) string {
	return fmt.Sprintf("ind:%s:%s:%d:%08x", in.Region, in.Date, in.Version, crc32.ChecksumIEEE(data))
}

// MsgIDAt is MsgID for a publication made from the state that applied the
// events stream up to sequence applied, with the data through day through
// (the message's HeaderDataThrough). A record can return to an earlier
// content at the same version — a day provisional again, a nowcast day
// whose numbers come back after a change and its undoing, a day that left
// the nowcast days published as it was before it had one — and must then
// be published anew, not dropped as the earlier message's duplicate; a
// retry of the same publication is still dropped.
func (in *Indicator) MsgIDAt(data []byte, through Date, applied uint64) string {
	return fmt.Sprintf("%s:%s@%d", in.MsgID(data), through, applied)
}

// Decision actions.
const (
	ActionStrengthen = "strengthen"
	ActionKeep       = "keep"
	ActionEase       = "ease"
)

// Decision is one evaluation of a region's rule set, with everything needed to
// audit it later: the inputs, the rule set and clause, and the level change.
type Decision struct {
	DecisionID string    `json:"decision_id"` // region:date:ruleset:version — the idempotency key
	Region     string    `json:"region"`
	RegionName string    `json:"region_name"`
	Date       Date      `json:"date"` // the data day decided on
	DecidedAt  time.Time `json:"decided_at"`

	RuleSet        string `json:"rule_set"`
	RuleSetVersion string `json:"rule_set_version"`
	Clause         string `json:"clause"`
	Action         string `json:"action"`
	Reason         string `json:"reason"`

	RMethod         string   `json:"r_method"`
	RMean           *float64 `json:"r_mean"`
	RQ025           *float64 `json:"r_q025"`
	RQ975           *float64 `json:"r_q975"`
	BedOccupancyPct *float64 `json:"bed_occupancy_pct"`
	DataAsOf        Date     `json:"data_as_of"` // newest day with data
	Flags           []string `json:"flags,omitempty"`

	LevelFrom     int    `json:"level_from"`
	LevelTo       int    `json:"level_to"`
	LevelFromName string `json:"level_from_name"`
	LevelToName   string `json:"level_to_name"`

	// RStatus and RCases are the R status of the day decided on and the
	// cases its window held (Indicator.RStatus, RCases); RProbAbove1 and
	// Trend its probability of R above 1 and the trend label.
	RStatus     string   `json:"r_status,omitempty"`
	RCases      int      `json:"r_cases,omitempty"`
	RProbAbove1 *float64 `json:"r_prob_above_1,omitempty"`
	Trend       string   `json:"trend,omitempty"`

	// Origin says who set LevelTo: OriginRule (the rule set moved the level
	// one step, or kept it) or OriginManual (a headquarters set it, or it is
	// held by a manual level). RuleLevelTo is where the rule set alone would
	// have moved the region: the automatic recommendation shown beside a
	// manual level.
	Origin      string `json:"origin,omitempty"`
	RuleLevelTo int    `json:"rule_level_to,omitempty"`
	// SetBy and ManualUntil describe the manual level in force: who set it
	// (a token's name, or the operator named on the command line) and the
	// day it expires (zero: until released).
	SetBy       string `json:"set_by,omitempty"`
	ManualUntil Date   `json:"manual_until,omitempty"`
}

// Decision origins (Decision.Origin).
const (
	OriginRule   = "rule"
	OriginManual = "manual"
)

// Alert delivery statuses.
const (
	AlertSent   = "sent"
	AlertFailed = "failed"
)

// AlertRecord is one delivery attempt outcome of an alert to one channel.
type AlertRecord struct {
	AlertID    string    `json:"alert_id"` // decision_id + ":" + channel — the idempotency key sent to receivers
	DecisionID string    `json:"decision_id"`
	Region     string    `json:"region"`
	Channel    string    `json:"channel"` // "alertmanager" or "webhook:<name>"
	Kind       string    `json:"kind"`    // "level_change", "strengthen" or "digest" (the daily digest of signal alarms)
	Status     string    `json:"status"`
	Attempts   int       `json:"attempts"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
	Escalated  bool      `json:"escalated,omitempty"`
}

// Signal streams (Signal.Stream): the daily series a detector watches.
const (
	// SignalCases: confirmed cases by report date (Indicator.Cases).
	SignalCases = "cases"
	// SignalTestsPositive: positive tests by result date
	// (Indicator.TestsPositive).
	SignalTestsPositive = "tests_positive"
	// SignalBedsOccupied: infectious beds occupied (Indicator.BedsOccupied).
	SignalBedsOccupied = "beds_occupied"
)

// Signal methods (Signal.Method), named as `epiwatch signals --method`.
const (
	MethodEARSC2     = "ears-c2"
	MethodEARSC3     = "ears-c3"
	MethodFarrington = "farrington"
	MethodNoufaily   = "noufaily"
)

// Signal periods (Signal.Period).
const (
	PeriodDay  = "day"
	PeriodWeek = "week"
)

// Signal is one aberration detector's verdict on one region's series at one
// period: was the count unusually high for the region (EARS: against the
// days just before; Farrington, Noufaily: against the same weeks of past
// years)? An early warning, read beside R and ПЗК; it never changes a
// restriction level. Like indicators it is versioned: a late event that
// changes the count or its baseline produces a new version of the same
// (region, date, stream, method), and the latest wins in ClickHouse
// (signals_latest).
type Signal struct {
	Region string `json:"region"`
	// Date is the day evaluated; for weekly methods the ISO week's Sunday
	// (the day the week is complete).
	Date   Date   `json:"date"`
	Period string `json:"period"` // PeriodDay or PeriodWeek
	Stream string `json:"stream"` // Signal*
	Method string `json:"method"` // Method*
	// Version is the highest version of the indicator records the signal
	// was computed from (the day's and its baseline's).
	Version uint64 `json:"version"`

	// Observed is the count evaluated; nil when it is missing (a stale
	// feed, no bed reports): missing is not zero, and has no verdict.
	Observed *float64 `json:"observed"`
	// UpperBound is the detector's threshold; nil where it is undefined
	// (R's NA), with the reason in Note.
	UpperBound *float64 `json:"upper_bound"`
	// Alarm: Observed is above UpperBound (for Farrington and Noufaily also
	// enough recent cases). Never true without both.
	Alarm bool `json:"alarm"`
	// Excess ranks alarms: Observed / UpperBound (UpperBound 0: Observed +
	// 1), nil without a bound.
	Excess *float64 `json:"excess"`
	// Provisional: the day's count is still expected to grow with late
	// reports (Indicator.Provisional).
	Provisional bool `json:"provisional"`
	// Note says why there is no verdict: missing days, too short a
	// history, a baseline without variance.
	Note string `json:"note,omitempty"`

	// ComputedAt is the newest ComputedAt of the indicator records used
	// (stream time, so a replay reproduces it).
	ComputedAt time.Time `json:"computed_at"`
}

// Key is the identity of a signal across versions.
func (s *Signal) Key() string {
	return s.Region + "/" + s.Date.String() + "/" + s.Stream + "/" + s.Method
}

// MsgID is the de-duplication id of the record encoded as data, as
// Indicator.MsgID: the same content under the same version is one message.
func (s *Signal) MsgID(data []byte) string {
	return fmt.Sprintf("sig:%s:%s:%s:%s:%d:%08x", s.Region, s.Date, s.Stream, s.Method, s.Version, crc32.ChecksumIEEE(data))
}
