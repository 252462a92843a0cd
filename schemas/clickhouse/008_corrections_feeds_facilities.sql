-- Event contract version 2: corrections (a case or lab test superseding or
-- retracting an earlier one), report_complete events (a feed of a region is
-- complete for a day: missing is not zero) and facility events (a bed
-- registry with open/closed status and capacity). The new event types land
-- in events_store like the others; these columns hold what analysts filter
-- on (the whole event is in payload).
ALTER TABLE {db}.events_store ADD COLUMN corrects String DEFAULT '' AFTER vaccination_date;
ALTER TABLE {db}.events_store ADD COLUMN retraction_reason String DEFAULT '' AFTER corrects;
ALTER TABLE {db}.events_store ADD COLUMN feed String DEFAULT '' AFTER retraction_reason;
ALTER TABLE {db}.events_store ADD COLUMN facility_status String DEFAULT '' AFTER feed;
ALTER TABLE {db}.events_store ADD COLUMN capacity_infectious Nullable(UInt32) AFTER facility_status;
ALTER TABLE {db}.events_store ADD COLUMN capacity_icu Nullable(UInt32) AFTER capacity_infectious;
ALTER TABLE {db}.events_store ADD COLUMN capacity_provisional Nullable(UInt32) AFTER capacity_icu;

-- Every correction: which event it corrects, how, and why. A retracted or
-- superseded case or test stays in events_store; this view and the status
-- columns below say it no longer counts.
CREATE VIEW IF NOT EXISTS {db}.corrections AS
SELECT event_id, type, region, event_date, source, corrects, retraction_reason, ingested_at, seq
FROM {db}.events_store FINAL
WHERE corrects != '';

-- Cases and lab tests with their status: 'current', 'superseded' (a newer
-- version names it in supersedes) or 'retracted'. ClickHouse 18.16 cannot
-- alter a view: drop and recreate.
DROP TABLE IF EXISTS {db}.cases;

CREATE VIEW IF NOT EXISTS {db}.cases AS
SELECT event_id, region, report_date, onset_date, imported, classification,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at, corrects AS supersedes,
       multiIf(event_id IN (SELECT corrects FROM {db}.events_store FINAL WHERE type = 'retraction'), 'retracted',
               event_id IN (SELECT corrects FROM {db}.events_store FINAL WHERE type = 'case' AND corrects != ''), 'superseded',
               'current') AS status
FROM {db}.events_store FINAL
WHERE type = 'case';

DROP TABLE IF EXISTS {db}.lab_tests;

CREATE VIEW IF NOT EXISTS {db}.lab_tests AS
SELECT event_id, region, sample_date, result_date, test_kind, result, lab,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at, corrects AS supersedes,
       multiIf(event_id IN (SELECT corrects FROM {db}.events_store FINAL WHERE type = 'retraction'), 'retracted',
               event_id IN (SELECT corrects FROM {db}.events_store FINAL WHERE type = 'lab_test' AND corrects != ''), 'superseded',
               'current') AS status
FROM {db}.events_store FINAL
WHERE type = 'lab_test';

-- Which feed of which region reported complete for which day.
CREATE VIEW IF NOT EXISTS {db}.report_completions AS
SELECT event_id, region, feed, event_date AS report_date, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'report_complete';

-- The facility registry: every status event, newest last.
CREATE VIEW IF NOT EXISTS {db}.facilities AS
SELECT event_id, region, facility_id, facility_name, facility_status, event_date AS effective_date,
       capacity_infectious, capacity_icu, capacity_provisional, source, ingested_at, seq
FROM {db}.events_store FINAL
WHERE type = 'facility';
