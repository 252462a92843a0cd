-- Every restriction-level change with the rule that caused it, in the order
-- the levels moved (seq: decided_at has one-second resolution).
SELECT region, date, decided_at, action, clause, level_from_name, level_to_name, r_mean, bed_occupancy_pct
FROM {db}.decisions
WHERE level_from != level_to
ORDER BY region, seq;
