-- Early warnings: aberration detectors (EARS C2/C3 daily; Farrington and
-- Noufaily on ISO weeks once three years of history exist) run by the detect
-- stage on each region's daily cases, positive tests and occupied beds. One
-- row per (region, date, stream, method), versioned like indicators: the
-- highest version (of the indicator records it was computed from) wins.
-- observed NULL: the count is missing (a stale feed), not zero; upper_bound
-- NULL: no verdict, with the reason in note. Signals never change a
-- restriction level.
ALTER TABLE {db}.indicators_store ADD COLUMN tests UInt32 DEFAULT 0 AFTER cases_7d_per_100k;
ALTER TABLE {db}.indicators_store ADD COLUMN tests_positive UInt32 DEFAULT 0 AFTER tests;

-- ClickHouse 18.16 expands a view's * when the view is created.
DROP TABLE IF EXISTS {db}.indicators_latest;

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;

CREATE TABLE IF NOT EXISTS {db}.signals_store
(
    region String,
    date Date,
    period String,
    stream String,
    method String,
    version UInt64,
    observed Nullable(Float64),
    upper_bound Nullable(Float64),
    alarm UInt8,
    excess Nullable(Float64),
    provisional UInt8,
    note String,
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (region, date, stream, method);

CREATE VIEW IF NOT EXISTS {db}.signals AS
SELECT region, date, period, stream, method, version, observed, upper_bound, alarm,
       excess, provisional, note, computed_at
FROM {db}.signals_store FINAL;
