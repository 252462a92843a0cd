-- A few rows in every store table, written as INSERT … SELECT (one row
-- each, explicit conversions) so the same file runs on ClickHouse 18.16 —
-- whose native protocol waits for a data block after INSERT … VALUES — and on
-- current ClickHouse. Event c1 appears twice with different seq (a
-- redelivered batch): the views must show it once.

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, person_pseudonym, key_id, age_band, sex, report_date, onset_date, imported, classification, payload)
SELECT 'c1' AS event_id, 'case' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'lab-1' AS source, toDateTime('2020-07-01 10:00:00', 'UTC') AS ingested_at, 1 AS seq, 'p1' AS person_pseudonym, 'k1' AS key_id, '25-34' AS age_band, 'F' AS sex, toDate('2020-07-01') AS report_date, toDate('2020-06-28') AS onset_date, 0 AS imported, 'confirmed' AS classification, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, person_pseudonym, key_id, age_band, sex, report_date, onset_date, imported, classification, payload)
SELECT 'c1' AS event_id, 'case' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'lab-1' AS source, toDateTime('2020-07-01 10:00:00', 'UTC') AS ingested_at, 7 AS seq, 'p1' AS person_pseudonym, 'k1' AS key_id, '25-34' AS age_band, 'F' AS sex, toDate('2020-07-01') AS report_date, toDate('2020-06-28') AS onset_date, 0 AS imported, 'confirmed' AS classification, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, person_pseudonym, key_id, age_band, sex, report_date, onset_date, imported, classification, payload)
SELECT 'c2' AS event_id, 'case' AS type, 'KZ-75' AS region, toDate('2020-07-02') AS event_date, 'lab-1' AS source, toDateTime('2020-07-02 10:00:00', 'UTC') AS ingested_at, 2 AS seq, 'p2' AS person_pseudonym, 'k1' AS key_id, '35-44' AS age_band, 'M' AS sex, toDate('2020-07-02') AS report_date, NULL AS onset_date, 1 AS imported, 'confirmed' AS classification, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, index_pseudonym, contact_pseudonym, setting, payload)
SELECT 'x1' AS event_id, 'contact' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'tracer' AS source, toDateTime('2020-07-01 11:00:00', 'UTC') AS ingested_at, 3 AS seq, 'p1' AS index_pseudonym, 'p3' AS contact_pseudonym, 'household' AS setting, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, person_pseudonym, key_id, sample_date, result_date, test_kind, result, lab, payload)
SELECT 't1' AS event_id, 'lab_test' AS type, 'KZ-75' AS region, toDate('2020-06-30') AS event_date, 'lab-1' AS source, toDateTime('2020-07-01 09:00:00', 'UTC') AS ingested_at, 4 AS seq, 'p1' AS person_pseudonym, 'k1' AS key_id, toDate('2020-06-30') AS sample_date, toDate('2020-07-01') AS result_date, 'pcr' AS test_kind, 'positive' AS result, 'lab-1' AS lab, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, facility_id, facility_name, snapshot_time, bed_kind, beds_total, beds_occupied, payload)
SELECT 'b1' AS event_id, 'bed_snapshot' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'hospital-1' AS source, toDateTime('2020-07-01 08:00:00', 'UTC') AS ingested_at, 5 AS seq, 'h1' AS facility_id, 'City hospital 1' AS facility_name, toDateTime('2020-07-01 08:00:00', 'UTC') AS snapshot_time, 'infectious' AS bed_kind, 100 AS beds_total, 64 AS beds_occupied, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, person_pseudonym, key_id, dose_number, vaccine, vaccination_date, payload)
SELECT 'v1' AS event_id, 'vaccination' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'clinic-1' AS source, toDateTime('2020-07-01 12:00:00', 'UTC') AS ingested_at, 6 AS seq, 'p2' AS person_pseudonym, 'k1' AS key_id, 1 AS dose_number, 'QazVac' AS vaccine, toDate('2020-07-01') AS vaccination_date, '{}' AS payload;

INSERT INTO {db}.regions_store (code, country, name_en, name_ru, kind, population, lat, lon, version)
SELECT 'KZ-75' AS code, 'KZ' AS country, 'Almaty' AS name_en, 'Алматы' AS name_ru, 'city' AS kind, 1916822 AS population, 43.2389 AS lat, 76.8897 AS lon, 1 AS version;

INSERT INTO {db}.regions_store (code, country, name_en, name_ru, kind, population, lat, lon, version)
SELECT 'KZ-71' AS code, 'KZ' AS country, 'Astana' AS name_en, 'Астана' AS name_ru, 'city' AS kind, 1136008 AS population, 51.1605 AS lat, 71.4704 AS lon, 1 AS version;

INSERT INTO {db}.indicators_store (region, date, version, cases, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, cases_7d_per_100k, positivity_7d_pct, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-07-01') AS date, 10 AS version, 1 AS cases, 'cori' AS r_method, 1.2 AS r_mean, 0.9 AS r_q025, 1.5 AS r_q975, 60 AS bed_occupancy_pct, 3.5 AS cases_7d_per_100k, 8.1 AS positivity_7d_pct, emptyArrayString() AS flags, toDateTime('2020-07-01 12:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.indicators_store (region, date, version, cases, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, cases_7d_per_100k, positivity_7d_pct, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-07-01') AS date, 11 AS version, 2 AS cases, 'cori' AS r_method, 1.25 AS r_mean, 0.95 AS r_q025, 1.55 AS r_q975, 64 AS bed_occupancy_pct, 3.6 AS cases_7d_per_100k, 8.3 AS positivity_7d_pct, ['provisional'] AS flags, toDateTime('2020-07-01 13:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.indicators_store (region, date, version, cases, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, cases_7d_per_100k, positivity_7d_pct, flags, computed_at)
SELECT 'KZ-71' AS region, toDate('2020-07-01') AS date, 12 AS version, 0 AS cases, 'cori' AS r_method, NULL AS r_mean, NULL AS r_q025, NULL AS r_q975, NULL AS bed_occupancy_pct, 0 AS cases_7d_per_100k, NULL AS positivity_7d_pct, emptyArrayString() AS flags, toDateTime('2020-07-01 13:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.decisions_store (decision_id, region, region_name, date, decided_at, rule_set, rule_set_version, clause, action, reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct, data_as_of, flags, level_from, level_to, level_from_name, level_to_name, seq)
SELECT 'KZ-75:2020-07-01:kz-2020-plan:1' AS decision_id, 'KZ-75' AS region, 'Almaty' AS region_name, toDate('2020-07-01') AS date, toDateTime('2020-07-01 20:00:00', 'UTC') AS decided_at, 'kz-2020-plan' AS rule_set, '1' AS rule_set_version, 'r_gt_1.3_beds_50_70' AS clause, 'strengthen' AS action, '' AS reason, 'cori' AS r_method, 1.35 AS r_mean, 1.1 AS r_q025, 1.6 AS r_q975, 64 AS bed_occupancy_pct, toDate('2020-07-01') AS data_as_of, emptyArrayString() AS flags, 1 AS level_from, 2 AS level_to, 'yellow' AS level_from_name, 'orange' AS level_to_name, 1 AS seq;

INSERT INTO {db}.alerts_store (alert_id, decision_id, region, channel, kind, status, attempts, error, at, escalated, seq)
SELECT 'KZ-75:2020-07-01:kz-2020-plan:1:alertmanager' AS alert_id, 'KZ-75:2020-07-01:kz-2020-plan:1' AS decision_id, 'KZ-75' AS region, 'alertmanager' AS channel, 'level_change' AS kind, 'sent' AS status, 1 AS attempts, '' AS error, toDateTime('2020-07-01 20:00:01', 'UTC') AS at, 0 AS escalated, 1 AS seq;

-- Contract version 2: c2 is retracted, a report_complete and a facility.
INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, report_date, corrects, retraction_reason, payload)
SELECT 'r1' AS event_id, 'retraction' AS type, 'KZ-75' AS region, toDate('2020-07-03') AS event_date, 'lab-1' AS source, toDateTime('2020-07-03 10:00:00', 'UTC') AS ingested_at, 10 AS seq, toDate('2020-07-03') AS report_date, 'c2' AS corrects, 'discarded' AS retraction_reason, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, report_date, feed, payload)
SELECT 'rc1' AS event_id, 'report_complete' AS type, 'KZ-75' AS region, toDate('2020-07-01') AS event_date, 'lab-1' AS source, toDateTime('2020-07-02 10:00:00', 'UTC') AS ingested_at, 11 AS seq, toDate('2020-07-01') AS report_date, 'case' AS feed, '{}' AS payload;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq, facility_id, facility_name, facility_status, capacity_infectious, payload)
SELECT 'f1' AS event_id, 'facility' AS type, 'KZ-75' AS region, toDate('2020-06-01') AS event_date, 'registry' AS source, toDateTime('2020-06-01 10:00:00', 'UTC') AS ingested_at, 12 AS seq, 'almaty-ih-7' AS facility_id, 'City infectious hospital 7' AS facility_name, 'open' AS facility_status, toNullable(toUInt32(400)) AS capacity_infectious, '{}' AS payload;

INSERT INTO {db}.signals_store (region, date, period, stream, method, version, observed, upper_bound, alarm, excess, provisional, note, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-07-01') AS date, 'day' AS period, 'cases' AS stream, 'ears-c2' AS method, toUInt64(3) AS version, toNullable(toFloat64(40)) AS observed, toNullable(toFloat64(20.5)) AS upper_bound, toUInt8(1) AS alarm, toNullable(toFloat64(1.95)) AS excess, toUInt8(0) AS provisional, '' AS note, toDateTime('2020-07-02 00:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.signals_store (region, date, period, stream, method, version, observed, upper_bound, alarm, excess, provisional, note, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-07-01') AS date, 'day' AS period, 'cases' AS stream, 'ears-c2' AS method, toUInt64(2) AS version, toNullable(toFloat64(30)) AS observed, toNullable(toFloat64(20.5)) AS upper_bound, toUInt8(1) AS alarm, toNullable(toFloat64(1.46)) AS excess, toUInt8(0) AS provisional, '' AS note, toDateTime('2020-07-01 12:00:00', 'UTC') AS computed_at;

-- Nowcasts (011): onset day 2020-06-29 as of two days (two vintages), the
-- newer one inserted twice (a sink retry), and 2020-06-30 as of the newer
-- day; the nowcast view holds three rows, two of them in the latest vintage.
INSERT INTO {db}.indicators_store (region, date, version, cases, cases_by_onset, r_method, nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness, r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-06-29') AS date, toUInt64(20) AS version, 1 AS cases, toUInt32(3) AS cases_by_onset, 'cori' AS r_method, toNullable(toDate('2020-07-01')) AS nowcast_as_of, toNullable(toFloat64(5)) AS cases_nowcast_median, toNullable(toFloat64(3)) AS cases_nowcast_q025, toNullable(toFloat64(9)) AS cases_nowcast_q975, toNullable(toFloat64(0.6)) AS nowcast_completeness, toNullable(toFloat64(1.1)) AS r_nowcast_mean, toNullable(toFloat64(0.8)) AS r_nowcast_q025, toNullable(toFloat64(1.1)) AS r_nowcast_median, toNullable(toFloat64(1.4)) AS r_nowcast_q975, emptyArrayString() AS flags, toDateTime('2020-07-01 12:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.indicators_store (region, date, version, cases, cases_by_onset, r_method, nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness, r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-06-29') AS date, toUInt64(21) AS version, 1 AS cases, toUInt32(4) AS cases_by_onset, 'cori' AS r_method, toNullable(toDate('2020-07-02')) AS nowcast_as_of, toNullable(toFloat64(5)) AS cases_nowcast_median, toNullable(toFloat64(4)) AS cases_nowcast_q025, toNullable(toFloat64(7)) AS cases_nowcast_q975, toNullable(toFloat64(0.8)) AS nowcast_completeness, toNullable(toFloat64(1.05)) AS r_nowcast_mean, toNullable(toFloat64(0.8)) AS r_nowcast_q025, toNullable(toFloat64(1.05)) AS r_nowcast_median, toNullable(toFloat64(1.3)) AS r_nowcast_q975, emptyArrayString() AS flags, toDateTime('2020-07-02 12:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.indicators_store (region, date, version, cases, cases_by_onset, r_method, nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness, r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-06-29') AS date, toUInt64(21) AS version, 1 AS cases, toUInt32(4) AS cases_by_onset, 'cori' AS r_method, toNullable(toDate('2020-07-02')) AS nowcast_as_of, toNullable(toFloat64(5)) AS cases_nowcast_median, toNullable(toFloat64(4)) AS cases_nowcast_q025, toNullable(toFloat64(7)) AS cases_nowcast_q975, toNullable(toFloat64(0.8)) AS nowcast_completeness, toNullable(toFloat64(1.05)) AS r_nowcast_mean, toNullable(toFloat64(0.8)) AS r_nowcast_q025, toNullable(toFloat64(1.05)) AS r_nowcast_median, toNullable(toFloat64(1.3)) AS r_nowcast_q975, emptyArrayString() AS flags, toDateTime('2020-07-02 12:00:00', 'UTC') AS computed_at;

INSERT INTO {db}.indicators_store (region, date, version, cases, cases_by_onset, r_method, nowcast_as_of, cases_nowcast_median, cases_nowcast_q025, cases_nowcast_q975, nowcast_completeness, r_nowcast_mean, r_nowcast_q025, r_nowcast_median, r_nowcast_q975, flags, computed_at)
SELECT 'KZ-75' AS region, toDate('2020-06-30') AS date, toUInt64(21) AS version, 1 AS cases, toUInt32(1) AS cases_by_onset, 'cori' AS r_method, toNullable(toDate('2020-07-02')) AS nowcast_as_of, toNullable(toFloat64(3)) AS cases_nowcast_median, toNullable(toFloat64(1)) AS cases_nowcast_q025, toNullable(toFloat64(6)) AS cases_nowcast_q975, toNullable(toFloat64(0.33)) AS nowcast_completeness, CAST(NULL AS Nullable(Float64)) AS r_nowcast_mean, CAST(NULL AS Nullable(Float64)) AS r_nowcast_q025, CAST(NULL AS Nullable(Float64)) AS r_nowcast_median, CAST(NULL AS Nullable(Float64)) AS r_nowcast_q975, emptyArrayString() AS flags, toDateTime('2020-07-02 12:00:00', 'UTC') AS computed_at;
