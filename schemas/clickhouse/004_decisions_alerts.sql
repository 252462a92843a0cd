-- Restriction decisions and alert deliveries. Both are keyed by their
-- idempotency key (decision_id; alert_id + status) so a redelivered record
-- replaces itself instead of adding a row.
CREATE TABLE IF NOT EXISTS {db}.decisions_store
(
    decision_id String,
    region String,
    region_name String,
    date Date,
    decided_at DateTime('UTC'),
    rule_set String,
    rule_set_version String,
    clause String,
    action String,
    reason String,
    r_method String,
    r_mean Nullable(Float64),
    r_q025 Nullable(Float64),
    r_q975 Nullable(Float64),
    bed_occupancy_pct Nullable(Float64),
    data_as_of Date,
    flags Array(String),
    level_from UInt8,
    level_to UInt8,
    level_from_name String,
    level_to_name String,
    seq UInt64
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(date)
ORDER BY (region, date, decision_id);

CREATE VIEW IF NOT EXISTS {db}.decisions AS
SELECT decision_id, region, region_name, date, decided_at, rule_set, rule_set_version,
       clause, action, reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct,
       data_as_of, flags, level_from, level_to, level_from_name, level_to_name
FROM {db}.decisions_store FINAL;

CREATE TABLE IF NOT EXISTS {db}.alerts_store
(
    alert_id String,
    decision_id String,
    region String,
    channel String,
    kind String,
    status String,
    attempts UInt16,
    error String,
    at DateTime('UTC'),
    escalated UInt8,
    seq UInt64
)
ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(at)
ORDER BY (region, alert_id, status, at);

CREATE VIEW IF NOT EXISTS {db}.alerts AS
SELECT alert_id, decision_id, region, channel, kind, status, attempts, error, at, escalated
FROM {db}.alerts_store FINAL;
