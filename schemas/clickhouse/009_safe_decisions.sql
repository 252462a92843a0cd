-- Indicators and decisions a regional HQ can act on: what R rests on
-- (r_status, r_cases) and says in plain words (P(R > 1), growth rate,
-- doubling or halving time, trend), which feeds are missing rather than zero, which
-- metrics are too uncertain to decide on, person-episode repeats, facilities
-- closed, presumed closed or unknown; and who set a level (origin: the rule
-- set or a headquarters' manual level), with the rule's own recommendation
-- beside it.
ALTER TABLE {db}.indicators_store ADD COLUMN cases_repeat UInt32 DEFAULT 0 AFTER cases_7d;
ALTER TABLE {db}.indicators_store ADD COLUMN r_status String DEFAULT '' AFTER r_ratio;
ALTER TABLE {db}.indicators_store ADD COLUMN r_cases UInt32 DEFAULT 0 AFTER r_status;
ALTER TABLE {db}.indicators_store ADD COLUMN r_prob_above_1 Nullable(Float64) AFTER r_cases;
ALTER TABLE {db}.indicators_store ADD COLUMN growth_rate Nullable(Float64) AFTER r_prob_above_1;
ALTER TABLE {db}.indicators_store ADD COLUMN doubling_days Nullable(Float64) AFTER growth_rate;
ALTER TABLE {db}.indicators_store ADD COLUMN halving_days Nullable(Float64) AFTER doubling_days;
ALTER TABLE {db}.indicators_store ADD COLUMN trend String DEFAULT '' AFTER halving_days;
ALTER TABLE {db}.indicators_store ADD COLUMN closed_facilities UInt32 DEFAULT 0 AFTER stale_facilities;
ALTER TABLE {db}.indicators_store ADD COLUMN presumed_closed_facilities UInt32 DEFAULT 0 AFTER closed_facilities;
ALTER TABLE {db}.indicators_store ADD COLUMN unknown_facilities UInt32 DEFAULT 0 AFTER presumed_closed_facilities;
ALTER TABLE {db}.indicators_store ADD COLUMN stale_feeds Array(String) AFTER provisional;
ALTER TABLE {db}.indicators_store ADD COLUMN uncertain Array(String) AFTER stale_feeds;

-- ClickHouse 18.16 expands a view's * when the view is created.
DROP TABLE IF EXISTS {db}.indicators_latest;

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;

ALTER TABLE {db}.decisions_store ADD COLUMN r_status String DEFAULT '' AFTER seq;
ALTER TABLE {db}.decisions_store ADD COLUMN r_cases UInt32 DEFAULT 0 AFTER r_status;
ALTER TABLE {db}.decisions_store ADD COLUMN r_prob_above_1 Nullable(Float64) AFTER r_cases;
ALTER TABLE {db}.decisions_store ADD COLUMN trend String DEFAULT '' AFTER r_prob_above_1;
ALTER TABLE {db}.decisions_store ADD COLUMN origin String DEFAULT 'rule' AFTER trend;
ALTER TABLE {db}.decisions_store ADD COLUMN rule_level_to UInt8 DEFAULT 0 AFTER origin;
ALTER TABLE {db}.decisions_store ADD COLUMN set_by String DEFAULT '' AFTER rule_level_to;
ALTER TABLE {db}.decisions_store ADD COLUMN manual_until Nullable(Date) AFTER set_by;

DROP TABLE IF EXISTS {db}.decisions;

CREATE VIEW IF NOT EXISTS {db}.decisions AS
SELECT decision_id, region, region_name, date, decided_at, rule_set, rule_set_version,
       clause, action, reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct,
       data_as_of, flags, level_from, level_to, level_from_name, level_to_name, seq,
       r_status, r_cases, r_prob_above_1, trend, origin, rule_level_to, set_by, manual_until
FROM {db}.decisions_store FINAL;
