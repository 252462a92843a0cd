-- "The latest" row of a region or a facility is the one with the highest
-- stream sequence (seq), never the one with the latest wall-clock time:
-- decided_at, ingested_at and snapshot_time have one-second resolution, and
-- a region's catch-up makes many decisions within one second (argMax over
-- them picks any). A region's decisions are published one at a time, in the
-- order its level moved, so argMax(level_to, seq) is its current level; a
-- corrected bed snapshot (same facility and time) is the later event.
-- ClickHouse 18.16 cannot alter a view: drop and recreate with seq.
DROP TABLE IF EXISTS {db}.decisions;

CREATE VIEW IF NOT EXISTS {db}.decisions AS
SELECT decision_id, region, region_name, date, decided_at, rule_set, rule_set_version,
       clause, action, reason, r_method, r_mean, r_q025, r_q975, bed_occupancy_pct,
       data_as_of, flags, level_from, level_to, level_from_name, level_to_name, seq
FROM {db}.decisions_store FINAL;

DROP TABLE IF EXISTS {db}.bed_snapshots;

CREATE VIEW IF NOT EXISTS {db}.bed_snapshots AS
SELECT event_id, region, facility_id, facility_name, snapshot_time, bed_kind,
       beds_total, beds_occupied, source, ingested_at, seq
FROM {db}.events_store FINAL
WHERE type = 'bed_snapshot';
