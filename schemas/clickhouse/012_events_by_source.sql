-- Event ids are scoped to their producer: two sources may both send "c1",
-- and they are two events. events_store collapsed rows of equal
-- (type, region, event_date, event_id) — two sources' "c1" of the same day
-- became one row. events_v2_store keys rows by source as well; the sink
-- writes it, the views read it, and the rows of events_store are copied
-- over before it is dropped. The same event inserted twice (a redelivered
-- batch) still collapses: same key, same seq.
-- ClickHouse 18.16 cannot change a sorting key or alter a view: a new table,
-- the views dropped and created again over it.
CREATE TABLE IF NOT EXISTS {db}.events_v2_store
(
    event_id String,
    type String,
    region String,
    event_date Date,
    source String,
    ingested_at DateTime('UTC'),
    seq UInt64,
    person_pseudonym String,
    key_id String,
    age_band String,
    sex String,
    district String,
    report_date Nullable(Date),
    onset_date Nullable(Date),
    imported UInt8,
    classification String,
    index_pseudonym String,
    contact_pseudonym String,
    setting String,
    sample_date Nullable(Date),
    result_date Nullable(Date),
    test_kind String,
    result String,
    lab String,
    facility_id String,
    facility_name String,
    snapshot_time Nullable(DateTime('UTC')),
    bed_kind String,
    beds_total Nullable(UInt32),
    beds_occupied Nullable(UInt32),
    dose_number UInt8,
    vaccine String,
    vaccination_date Nullable(Date),
    corrects String DEFAULT '',
    retraction_reason String DEFAULT '',
    feed String DEFAULT '',
    facility_status String DEFAULT '',
    capacity_infectious Nullable(UInt32),
    capacity_icu Nullable(UInt32),
    capacity_provisional Nullable(UInt32),
    payload String
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(event_date)
ORDER BY (type, region, event_date, source, event_id);

-- requires: 22.2
ALTER TABLE {db}.events_v2_store MODIFY SETTING non_replicated_deduplication_window = 1000;

INSERT INTO {db}.events_v2_store (event_id, type, region, event_date, source, ingested_at, seq,
    person_pseudonym, key_id, age_band, sex, district, report_date, onset_date, imported, classification,
    index_pseudonym, contact_pseudonym, setting, sample_date, result_date, test_kind, result, lab,
    facility_id, facility_name, snapshot_time, bed_kind, beds_total, beds_occupied, dose_number, vaccine,
    vaccination_date, corrects, retraction_reason, feed, facility_status, capacity_infectious, capacity_icu,
    capacity_provisional, payload)
SELECT event_id, type, region, event_date, source, ingested_at, seq,
    person_pseudonym, key_id, age_band, sex, district, report_date, onset_date, imported, classification,
    index_pseudonym, contact_pseudonym, setting, sample_date, result_date, test_kind, result, lab,
    facility_id, facility_name, snapshot_time, bed_kind, beds_total, beds_occupied, dose_number, vaccine,
    vaccination_date, corrects, retraction_reason, feed, facility_status, capacity_infectious, capacity_icu,
    capacity_provisional, payload
FROM {db}.events_store;

DROP TABLE IF EXISTS {db}.events;

CREATE VIEW IF NOT EXISTS {db}.events AS
SELECT event_id, type, region, event_date, source, ingested_at, seq,
       person_pseudonym, key_id, age_band, sex, district, payload
FROM {db}.events_v2_store FINAL;

-- A correction names an event of its own source (ingest accepts no other):
-- status matches (source, event_id), so retracting one source's "c1" leaves
-- another's counting.
DROP TABLE IF EXISTS {db}.cases;

CREATE VIEW IF NOT EXISTS {db}.cases AS
SELECT event_id, region, report_date, onset_date, imported, classification,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at, corrects AS supersedes,
       multiIf((source, event_id) IN (SELECT source, corrects FROM {db}.events_v2_store FINAL WHERE type = 'retraction'), 'retracted',
               (source, event_id) IN (SELECT source, corrects FROM {db}.events_v2_store FINAL WHERE type = 'case' AND corrects != ''), 'superseded',
               'current') AS status
FROM {db}.events_v2_store FINAL
WHERE type = 'case';

DROP TABLE IF EXISTS {db}.contacts;

CREATE VIEW IF NOT EXISTS {db}.contacts AS
SELECT event_id, region, event_date AS contact_date, setting,
       index_pseudonym, contact_pseudonym, key_id, source, ingested_at
FROM {db}.events_v2_store FINAL
WHERE type = 'contact';

DROP TABLE IF EXISTS {db}.lab_tests;

CREATE VIEW IF NOT EXISTS {db}.lab_tests AS
SELECT event_id, region, sample_date, result_date, test_kind, result, lab,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at, corrects AS supersedes,
       multiIf((source, event_id) IN (SELECT source, corrects FROM {db}.events_v2_store FINAL WHERE type = 'retraction'), 'retracted',
               (source, event_id) IN (SELECT source, corrects FROM {db}.events_v2_store FINAL WHERE type = 'lab_test' AND corrects != ''), 'superseded',
               'current') AS status
FROM {db}.events_v2_store FINAL
WHERE type = 'lab_test';

DROP TABLE IF EXISTS {db}.bed_snapshots;

CREATE VIEW IF NOT EXISTS {db}.bed_snapshots AS
SELECT event_id, region, facility_id, facility_name, snapshot_time, bed_kind,
       beds_total, beds_occupied, source, ingested_at, seq
FROM {db}.events_v2_store FINAL
WHERE type = 'bed_snapshot';

DROP TABLE IF EXISTS {db}.vaccinations;

CREATE VIEW IF NOT EXISTS {db}.vaccinations AS
SELECT event_id, region, vaccination_date, dose_number, vaccine,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at
FROM {db}.events_v2_store FINAL
WHERE type = 'vaccination';

DROP TABLE IF EXISTS {db}.corrections;

CREATE VIEW IF NOT EXISTS {db}.corrections AS
SELECT event_id, type, region, event_date, source, corrects, retraction_reason, ingested_at, seq
FROM {db}.events_v2_store FINAL
WHERE corrects != '';

DROP TABLE IF EXISTS {db}.report_completions;

CREATE VIEW IF NOT EXISTS {db}.report_completions AS
SELECT event_id, region, feed, event_date AS report_date, source, ingested_at
FROM {db}.events_v2_store FINAL
WHERE type = 'report_complete';

DROP TABLE IF EXISTS {db}.facilities;

CREATE VIEW IF NOT EXISTS {db}.facilities AS
SELECT event_id, region, facility_id, facility_name, facility_status, event_date AS effective_date,
       capacity_infectious, capacity_icu, capacity_provisional, source, ingested_at, seq
FROM {db}.events_v2_store FINAL
WHERE type = 'facility';

-- Last, so that a migration stopped before it can run again from the top.
DROP TABLE IF EXISTS {db}.events_store;
