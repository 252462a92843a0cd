package dashboards

import (
	"fmt"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// The SQL of the ClickHouse panels. Every statement must run on ClickHouse
// 18.16 (Debian's package) and on current releases; the tests run each one
// on a migrated database with simulated data. What that rules out or shapes:
//
//   - no window functions, no DateTime64/now64, no toStartOfWeek, no WITH
//     aliases across subqueries; one JOIN per SELECT (nest for more), with
//     explicit ANY/ALL strictness and USING;
//   - an alias never reuses the name of a column read in the same SELECT
//     (18.16 resolves argMax(x, d) AS x to itself: "cyclic aliases");
//   - argMax over a Nullable value skips NULLs, so "the latest row" is
//     selected with (region, date) IN (… max(date) …) instead, keeping a NULL
//     R (not estimable) as NULL rather than showing an older value;
//   - "the latest" of rows sharing a key is ordered by seq (the stream
//     sequence), never by a DateTime alone: those have one-second
//     resolution, and a region's catch-up decides many days in one second.
//
// Table names are unqualified: the ClickHouse data source's default database
// (provisioned as "epiwatch") names the database, as analysts' own queries do.
//
// Macros are the plugin's: $__dateFilter(col) for Date columns,
// $__timeFilter(col) for DateTime columns, $__toTime for the end of the
// range. Template variables: ${region} (region dashboard), ${country}
// (national dashboard).

// confirmedCase is the cases filter every count uses: confirmed cases, and
// cases whose classification the producer left empty (the contract's
// default).
var confirmedCase = fmt.Sprintf("classification IN ('', '%s')", schemas.ClassConfirmed)

// inCountry restricts a region column to the national dashboard's country.
const inCountry = "region IN (SELECT code FROM regions WHERE country = '${country}')"

// nationalRegionsSQL is one row per region of the country: its latest
// indicators on or before the end of the range and its current restriction
// level. Both the regions table and the map read it. The joined subqueries
// are aliased: the current engine refuses them without.
const nationalRegionsSQL = `SELECT
    region,
    name,
    lat,
    lon,
    lvl AS level,
    lvl_name AS level_name,
    last_date AS data_date,
    rm AS r_mean,
    rlo AS r_q025,
    rhi AS r_q975,
    beds AS bed_occupancy_pct,
    inc AS cases_7d_per_100k,
    pos AS positivity_7d_pct,
    stale AS stale_facilities,
    rst AS r_status,
    feeds AS missing_feeds
FROM
(
    SELECT region, name, lat, lon, last_date, rm, rlo, rhi, beds, inc, pos, stale, rst, feeds
    FROM
    (
        SELECT code AS region, name_en AS name, lat, lon
        FROM regions
        WHERE country = '${country}'
    ) AS places
    ANY LEFT JOIN
    (
        SELECT region, toNullable(date) AS last_date, r_mean AS rm, r_q025 AS rlo, r_q975 AS rhi,
               bed_occupancy_pct AS beds, cases_7d_per_100k AS inc,
               positivity_7d_pct AS pos, toNullable(stale_facilities) AS stale,
               r_status AS rst, arrayStringConcat(stale_feeds, ', ') AS feeds
        FROM indicators_latest
        WHERE (region, date) IN
        (
            SELECT region, max(date)
            FROM indicators_latest
            WHERE date <= toDate($__toTime)
            GROUP BY region
        )
    ) AS latest USING (region)
) AS regional
ANY LEFT JOIN
(
    SELECT region, argMax(level_to, seq) AS lvl, argMax(level_to_name, seq) AS lvl_name
    FROM decisions
    WHERE decided_at <= $__toTime
    GROUP BY region
) AS levels USING (region)
ORDER BY level DESC, region`

// nationalCasesSQL is the country's daily confirmed cases and its 7-day
// average, from the indicators.
const nationalCasesSQL = `SELECT
    date AS time,
    sum(cases) AS cases_reported,
    sum(cases_7d) / 7 AS cases_7d_average
FROM indicators_latest
WHERE $__dateFilter(date) AND ` + inCountry + `
GROUP BY time
ORDER BY time`

// nationalLevelsSQL counts the country's regions by the restriction level
// decided for each data day (a region's last decision of the day, by seq:
// a day can have a stale keep and, later, the decision on its data).
const nationalLevelsSQL = `SELECT
    day AS time,
    countIf(lvl = 1) AS level_1,
    countIf(lvl = 2) AS level_2,
    countIf(lvl = 3) AS level_3,
    countIf(lvl >= 4) AS level_4_plus
FROM
(
    SELECT region, date AS day, argMax(level_to, seq) AS lvl
    FROM decisions
    WHERE $__dateFilter(date) AND ` + inCountry + `
    GROUP BY region, day
)
GROUP BY time
ORDER BY time`

// nationalDecisionsSQL lists decisions that change a level or strengthen
// (at the strictest level a strengthen changes nothing but still matters);
// an ease at the mildest level is left out.
const nationalDecisionsSQL = `SELECT
    decided_at,
    region,
    region_name,
    date,
    origin,
    action,
    level_from_name,
    level_to_name,
    rule_level_to,
    clause,
    r_mean,
    r_q975,
    r_status,
    r_cases,
    bed_occupancy_pct,
    set_by,
    reason
FROM decisions
WHERE $__timeFilter(decided_at) AND (level_from != level_to OR action = '` + schemas.ActionStrengthen + `') AND ` + inCountry + `
ORDER BY decided_at DESC, seq DESC
LIMIT 200`

const nationalAlertsSQL = `SELECT
    at,
    region,
    channel,
    kind,
    status,
    attempts,
    escalated,
    error,
    decision_id
FROM alerts
WHERE $__timeFilter(at) AND ` + inCountry + `
ORDER BY at DESC
LIMIT 200`

// nationalAlarmsSQL is every alarm of the country's regions on the newest
// day that has signals on or before the end of the range (the detect
// stage's, latest version), the largest excess (observed over the bound)
// first. Weekly methods date a week by its Sunday, so on a Sunday their
// alarms join the daily ones. The joined subqueries are aliased: current
// releases refuse them without (joined_subquery_requires_alias).
const nationalAlarmsSQL = `SELECT
    region,
    name,
    date,
    period,
    stream,
    method,
    observed,
    upper_bound,
    excess,
    provisional
FROM
(
    SELECT region, date, period, stream, method, observed, upper_bound, excess, provisional
    FROM signals
    WHERE alarm = 1 AND ` + inCountry + ` AND date =
    (
        SELECT max(date) FROM signals WHERE date <= toDate($__toTime) AND ` + inCountry + `
    )
) AS alarms
ANY LEFT JOIN
(
    SELECT code AS region, name_en AS name
    FROM regions
    WHERE country = '${country}'
) AS names USING (region)
ORDER BY excess DESC, region, stream, method`

// inRegion restricts to the region dashboard's region.
const inRegion = "region = '${region}'"

// regionVariableSQL lists the region codes for the region variable.
const regionVariableSQL = "SELECT code FROM regions ORDER BY code"

// countryVariableSQL lists the countries for the country variable.
const countryVariableSQL = "SELECT DISTINCT country FROM regions ORDER BY country"

// regionLatestSQL is the region's latest indicators on or before the end of
// the range.
const regionLatestSQL = `SELECT
    date AS data_date,
    r_mean,
    r_q025,
    r_q975,
    r_prob_above_1,
    if(trend = '', 'unknown', trend) AS trend_label,
    if(isNull(doubling_days), -halving_days, doubling_days) AS doubling_time,
    bed_occupancy_pct,
    cases_7d_per_100k,
    positivity_7d_pct,
    stale_facilities
FROM indicators_latest
WHERE ` + inRegion + ` AND date =
(
    SELECT max(date) FROM indicators_latest WHERE ` + inRegion + ` AND date <= toDate($__toTime)
)`

// regionLevelSQL is the region's current restriction level (0 without any
// decision yet): that of its last decision, by seq.
const regionLevelSQL = `SELECT
    argMax(level_to, seq) AS current_level,
    argMax(level_to_name, seq) AS current_level_name
FROM decisions
WHERE ` + inRegion + ` AND decided_at <= $__toTime`

// regionRSQL is R with its 95 % credible interval and the ratio R.
var regionRSQL = regionSeriesSQL("r_q025", "r_mean", "r_q975", "r_ratio")

// regionOccupancySQL is ПЗК with ICU and provisional occupancy.
var regionOccupancySQL = regionSeriesSQL("bed_occupancy_pct", "icu_occupancy_pct", "provisional_occupancy_pct")

// regionCasesReportSQL counts confirmed cases by report date, local and
// imported, from the case events themselves.
var regionCasesReportSQL = `SELECT
    assumeNotNull(report_date) AS time,
    countIf(imported = 0) AS local_cases,
    countIf(imported = 1) AS imported_cases
FROM cases
WHERE ` + inRegion + ` AND ` + confirmedCase + ` AND report_date IS NOT NULL AND $__dateFilter(report_date)
GROUP BY time
ORDER BY time`

// regionCasesOnsetSQL counts confirmed cases by symptom-onset date (cases
// without one are left out).
var regionCasesOnsetSQL = `SELECT
    assumeNotNull(onset_date) AS time,
    count() AS cases_by_onset_date
FROM cases
WHERE ` + inRegion + ` AND ` + confirmedCase + ` AND onset_date IS NOT NULL AND $__dateFilter(onset_date)
GROUP BY time
ORDER BY time`

// dailyCasesSignal restricts signals to the region's daily verdicts on
// confirmed cases by report date (what the cases panel's bars count).
const dailyCasesSignal = inRegion + ` AND period = '` + schemas.PeriodDay + `' AND stream = '` + schemas.SignalCases + `'`

// regionCasesBoundSQL is the EARS C2 upper bound of the region's daily
// cases (NULL where the detector has no verdict: a gap).
var regionCasesBoundSQL = `SELECT
    date AS time,
    upper_bound AS ears_c2_upper_bound
FROM signals
WHERE ` + dailyCasesSignal + ` AND method = '` + schemas.MethodEARSC2 + `' AND $__dateFilter(date)
ORDER BY time`

// regionCasesAlarmsSQL is the observed count on the days a daily method
// (EARS C2 or C3) alarmed on the region's cases, one point per day.
var regionCasesAlarmsSQL = `SELECT
    date AS time,
    max(observed) AS alarm_cases
FROM signals
WHERE ` + dailyCasesSignal + ` AND method IN ('` + schemas.MethodEARSC2 + `', '` + schemas.MethodEARSC3 + `') AND alarm = 1 AND $__dateFilter(date)
GROUP BY time
ORDER BY time`

// regionNowcastSQL is the region's newest nowcast on or before the end of
// the range (the rows of its latest as_of): per recent onset day, the cases
// reported so far and the median and 95 % interval of the eventual count.
// Aliases differ from the columns (18.16's cyclic aliases).
const regionNowcastSQL = `SELECT
    date AS time,
    reported AS reported_by_onset,
    median AS nowcast_median,
    q025 AS nowcast_q025,
    q975 AS nowcast_q975
FROM nowcast
WHERE ` + inRegion + ` AND $__dateFilter(date) AND as_of =
(
    SELECT max(as_of) FROM nowcast WHERE ` + inRegion + ` AND as_of <= toDate($__toTime)
)
ORDER BY time`

// regionTestsSQL counts tests by sample date and their positives.
var regionTestsSQL = `SELECT
    assumeNotNull(sample_date) AS time,
    count() AS tests,
    countIf(result = '` + schemas.ResultPositive + `') AS positive_tests
FROM lab_tests
WHERE ` + inRegion + ` AND sample_date IS NOT NULL AND $__dateFilter(sample_date)
GROUP BY time
ORDER BY time`

// regionPositivitySQL is the processor's 7-day positivity.
var regionPositivitySQL = regionSeriesSQL("positivity_7d_pct")

// regionBedsSQL is each facility's latest snapshot per bed kind up to the end
// of the range, with its age; a snapshot older than maxAge (Plan.BedMaxAge)
// is stale (left out of ПЗК by the processor).
func regionBedsSQL(maxAge time.Duration) string {
	return `SELECT
    facility_id,
    facility,
    bed_kind,
    occupied,
    total,
    if(total > 0, round(100 * occupied / total, 1), NULL) AS occupancy_pct,
    last_snapshot,
    round((toUInt32($__toTime) - toUInt32(last_snapshot)) / 3600, 1) AS age_hours,
    age_hours > ` + fmt.Sprint(maxAge.Hours()) + ` AS stale
FROM
(
    SELECT
        facility_id,
        bed_kind,
        argMax(facility_name, (snapshot_time, seq)) AS facility,
        argMax(beds_occupied, (snapshot_time, seq)) AS occupied,
        argMax(beds_total, (snapshot_time, seq)) AS total,
        assumeNotNull(max(snapshot_time)) AS last_snapshot
    FROM bed_snapshots
    WHERE ` + inRegion + ` AND snapshot_time IS NOT NULL AND snapshot_time <= $__toTime
    GROUP BY facility_id, bed_kind
)
ORDER BY stale DESC, occupancy_pct DESC, facility_id, bed_kind`
}

// regionQualitySQL lists the region's provisional and flagged days with the
// processor's reasons.
var regionQualitySQL = `SELECT
    date,
    provisional,
    arrayStringConcat(stale_feeds, ', ') AS missing_feeds,
    arrayStringConcat(flags, ', ') AS flags,
    arrayStringConcat(flag_reasons, '; ') AS reasons,
    cases,
    cases_repeat,
    r_mean,
    r_status,
    r_cases,
    bed_occupancy_pct
FROM indicators_latest
WHERE ` + inRegion + ` AND $__dateFilter(date) AND (provisional = 1 OR notEmpty(flags))
ORDER BY date DESC
LIMIT 200`

// regionStaleSQL is the processor's count of stale facilities per day.
var regionStaleSQL = regionSeriesSQL("stale_facilities", "beds_occupied", "beds_total")

// regionContactsSQL is contacts traced per case and the share of contacts
// who became cases.
var regionContactsSQL = regionSeriesSQL("contacts_per_case", "contacts_became_cases_pct")

// regionVaccinationSQL is cumulative vaccination coverage by dose.
var regionVaccinationSQL = regionSeriesSQL("vaccination_dose1_pct", "vaccination_dose2_pct", "vaccination_dose3_plus_pct")

// regionLevelHistorySQL is the restriction level after each decision.
const regionLevelHistorySQL = `SELECT
    decided_at AS time,
    level_to AS level
FROM decisions
WHERE ` + inRegion + ` AND $__timeFilter(decided_at)
ORDER BY time, seq`

// regionDecisionsSQL is every decision of the region, newest first.
const regionDecisionsSQL = `SELECT
    decided_at,
    date,
    origin,
    action,
    level_from_name,
    level_to_name,
    rule_level_to,
    set_by,
    clause,
    rule_set,
    rule_set_version,
    r_method,
    r_mean,
    r_q025,
    r_q975,
    r_status,
    r_cases,
    bed_occupancy_pct,
    data_as_of,
    arrayStringConcat(flags, ', ') AS flag_list,
    reason,
    decision_id
FROM decisions
WHERE ` + inRegion + ` AND $__timeFilter(decided_at)
ORDER BY decided_at DESC, seq DESC
LIMIT 500`

// regionAlertsSQL is every alert delivery record of the region.
const regionAlertsSQL = `SELECT
    at,
    channel,
    kind,
    status,
    attempts,
    escalated,
    error,
    alert_id,
    decision_id
FROM alerts
WHERE ` + inRegion + ` AND $__timeFilter(at)
ORDER BY at DESC
LIMIT 500`

// regionSeriesSQL is a time series of the selected region's indicator
// columns (one point per day, latest indicator version).
func regionSeriesSQL(columns ...string) string {
	return "SELECT\n    date AS time,\n    " + strings.Join(columns, ",\n    ") +
		"\nFROM indicators_latest\nWHERE " + inRegion + " AND $__dateFilter(date)\nORDER BY time"
}
