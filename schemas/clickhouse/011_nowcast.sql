-- Nowcasts: the recent days' case counts by symptom-onset date, corrected
-- for the reports still to come. A case reported today may have fallen ill a
-- week ago, so the last days of "cases by onset" always look like a decline;
-- the processor estimates each recent onset day's eventual count from the
-- region's reporting delays (Höhle & an der Heiden 2014) and republishes the
-- estimate every day as new reports arrive.
--
-- nowcast (view over nowcast_store) keeps every estimate ("vintage"): one
-- row per region, onset day (date) and as_of, so you can see how the
-- estimate of a day moved as its reports came in.
--   as_of         the day up to which reports were known when the estimate
--                 was made (the region's case feed's last day). The newest
--                 picture of a region is its rows with the highest as_of.
--   reported      the cases with onset on date reported by as_of (what
--                 cases_by_onset said then): a floor, it can only grow.
--   median        the estimate of the day's eventual count by onset;
--   q025, q975    its 95 % interval: the eventual count lies within it with
--                 95 % probability. Days whose reports are complete have
--                 median = q025 = q975 = reported.
--   completeness  the share of the eventual count already reported (0–1).
--   r_mean, r_q025, r_median, r_q975
--                 R by onset date on the nowcast (Cori's estimator over the
--                 completed series), NULL where R is not estimable. R
--                 computed by EpiEstim on the reported counts stays in
--                 indicators_latest (r_mean …) and is what decisions use.
--   version       the events-stream sequence the estimate covers: of two
--                 rows with the same region, date and as_of the highest wins.
-- indicators_latest carries the same figures for its day's newest version
-- (nowcast_as_of and cases_nowcast_* …; NULL on days too old to be nowcast).
ALTER TABLE {db}.indicators_store ADD COLUMN nowcast_as_of Nullable(Date) AFTER trend;
ALTER TABLE {db}.indicators_store ADD COLUMN cases_nowcast_median Nullable(Float64) AFTER nowcast_as_of;
ALTER TABLE {db}.indicators_store ADD COLUMN cases_nowcast_q025 Nullable(Float64) AFTER cases_nowcast_median;
ALTER TABLE {db}.indicators_store ADD COLUMN cases_nowcast_q975 Nullable(Float64) AFTER cases_nowcast_q025;
ALTER TABLE {db}.indicators_store ADD COLUMN nowcast_completeness Nullable(Float64) AFTER cases_nowcast_q975;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_mean Nullable(Float64) AFTER nowcast_completeness;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_q025 Nullable(Float64) AFTER r_nowcast_mean;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_median Nullable(Float64) AFTER r_nowcast_q025;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_q975 Nullable(Float64) AFTER r_nowcast_median;

-- ClickHouse 18.16 expands a view's * when the view is created.
DROP TABLE IF EXISTS {db}.indicators_latest;

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;

CREATE TABLE IF NOT EXISTS {db}.nowcast_store
(
    region String,
    date Date,
    as_of Date,
    version UInt64,
    reported UInt32,
    median Float64,
    q025 Float64,
    q975 Float64,
    completeness Float64,
    r_mean Nullable(Float64),
    r_q025 Nullable(Float64),
    r_median Nullable(Float64),
    r_q975 Nullable(Float64),
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (region, date, as_of);

-- The vintages are filled by a materialized view on indicators_store rather
-- than by the sink: every writer of indicators (the sink, a replay into its
-- own database, a hand-made backfill) then fills them alike, from the same
-- block, with no second insert to keep in step. The key is (region, date,
-- as_of), the version the indicator record's: a sink retry that re-inserts
-- an identical block adds identical rows to nowcast_store, which the nowcast
-- view's FINAL shows once (on 18.16, and on current ClickHouse too: 005's
-- insert de-duplication drops the retried block from indicators_store but
-- still runs the view, as chDB 26.5 shows). The processor fills the
-- median, its interval and completeness together with nowcast_as_of; NaN
-- would mark one it left out, never a made-up 0.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.nowcast_mv TO {db}.nowcast_store AS
SELECT region, date, assumeNotNull(nowcast_as_of) AS as_of, version, cases_by_onset AS reported,
       ifNull(cases_nowcast_median, nan) AS median, ifNull(cases_nowcast_q025, nan) AS q025,
       ifNull(cases_nowcast_q975, nan) AS q975, ifNull(nowcast_completeness, nan) AS completeness,
       r_nowcast_mean AS r_mean, r_nowcast_q025 AS r_q025, r_nowcast_median AS r_median,
       r_nowcast_q975 AS r_q975, computed_at
FROM {db}.indicators_store
WHERE nowcast_as_of IS NOT NULL;

CREATE VIEW IF NOT EXISTS {db}.nowcast AS
SELECT region, date, as_of, version, reported, median, q025, q975, completeness,
       r_mean, r_q025, r_median, r_q975, computed_at
FROM {db}.nowcast_store FINAL;
