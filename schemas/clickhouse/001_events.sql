-- Events, one row per accepted event (pseudonymised: no national ID, name,
-- phone or address ever reaches this table).
--
-- Idempotence: the sink may insert a row twice (a redelivered batch, or a
-- retried insert whose first outcome was unknown). Rows with the same sorting
-- key (type, region, event_date, event_id) are collapsed by ReplacingMergeTree
-- on merge, keeping the highest stream sequence, and every view analysts read
-- uses FINAL so they never see the duplicate even before a merge.
-- Runs on ClickHouse 18.16 and on current releases (tested on both).
CREATE TABLE IF NOT EXISTS {db}.events_store
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
    payload String
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(event_date)
ORDER BY (type, region, event_date, event_id);

CREATE VIEW IF NOT EXISTS {db}.events AS
SELECT event_id, type, region, event_date, source, ingested_at, seq,
       person_pseudonym, key_id, age_band, sex, district, payload
FROM {db}.events_store FINAL;

CREATE VIEW IF NOT EXISTS {db}.cases AS
SELECT event_id, region, report_date, onset_date, imported, classification,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'case';

CREATE VIEW IF NOT EXISTS {db}.contacts AS
SELECT event_id, region, event_date AS contact_date, setting,
       index_pseudonym, contact_pseudonym, key_id, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'contact';

CREATE VIEW IF NOT EXISTS {db}.lab_tests AS
SELECT event_id, region, sample_date, result_date, test_kind, result, lab,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'lab_test';

CREATE VIEW IF NOT EXISTS {db}.bed_snapshots AS
SELECT event_id, region, facility_id, facility_name, snapshot_time, bed_kind,
       beds_total, beds_occupied, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'bed_snapshot';

CREATE VIEW IF NOT EXISTS {db}.vaccinations AS
SELECT event_id, region, vaccination_date, dose_number, vaccine,
       person_pseudonym, key_id, age_band, sex, district, source, ingested_at
FROM {db}.events_store FINAL
WHERE type = 'vaccination';
