-- Where R's mean is expected to land once a nowcast day's reports are
-- complete: the 95 % (r_nowcast_final_q025, r_nowcast_final_q975) and 80 %
-- (r_nowcast_final_q10, r_nowcast_final_q90) intervals, over the nowcast's
-- completed series, of EpiEstim's posterior mean — the spread the
-- unreported cases leave, without Cori's own posterior width
-- (r_nowcast_q025/q975 have both). A decision on the nowcast (rule-set
-- option r.nowcast) is taken only when the rule set recommends the same
-- across the 80 % interval, or the 95 % for an ease; its reason quotes the
-- interval. NULL where the record has no nowcast R, and on rows written
-- before this migration.
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_final_q025 Nullable(Float64) AFTER r_nowcast_q975;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_final_q10 Nullable(Float64) AFTER r_nowcast_final_q025;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_final_q90 Nullable(Float64) AFTER r_nowcast_final_q10;
ALTER TABLE {db}.indicators_store ADD COLUMN r_nowcast_final_q975 Nullable(Float64) AFTER r_nowcast_final_q90;

-- ClickHouse 18.16 expands a view's * when the view is created.
DROP TABLE IF EXISTS {db}.indicators_latest;

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;
