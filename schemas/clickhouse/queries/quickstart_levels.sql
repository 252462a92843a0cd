-- Each region's latest decision: the one with the highest seq, the order in
-- which the decider moved the region's level (decided_at has one-second
-- resolution; a catch-up decides many days in one second). The row is read
-- whole (argMax of a tuple), so R and ПЗК are those of the same decision,
-- NULL where it had none. The quick start's summary prints it.
SELECT region, d.1 AS day, d.2 AS lvl, d.3 AS act, d.4 AS rm, d.5 AS occ
FROM
(
    SELECT region, argMax((date, level_to_name, action, r_mean, bed_occupancy_pct), seq) AS d
    FROM {db}.decisions
    GROUP BY region
)
ORDER BY region;
