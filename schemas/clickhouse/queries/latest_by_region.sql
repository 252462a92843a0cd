-- The latest indicators of every region with its name: the picture the
-- plan's rule compares (R and infectious-bed occupancy). Every figure is from
-- the region's newest day, NULL where that day has none: argMax(r_mean, date)
-- would skip NULLs and show an older day's R as if it were today's. Aliases
-- differ from column names on purpose: ClickHouse 18.16 resolves an alias
-- that shadows a column inside the expression that defines it.
SELECT
    i.region AS region,
    r.name_en AS name,
    i.last_date AS date,
    round(i.rm, 2) AS r_mean,
    round(i.rlo, 2) AS r_q025,
    round(i.rhi, 2) AS r_q975,
    round(i.beds, 1) AS bed_occupancy_pct,
    round(i.inc, 1) AS cases_7d_per_100k,
    round(i.pos, 1) AS positivity_7d_pct
FROM
(
    SELECT region, date AS last_date, r_mean AS rm, r_q025 AS rlo, r_q975 AS rhi,
           bed_occupancy_pct AS beds, cases_7d_per_100k AS inc, positivity_7d_pct AS pos
    FROM {db}.indicators_latest
    WHERE (region, date) IN (SELECT region, max(date) FROM {db}.indicators_latest GROUP BY region)
) AS i
ANY LEFT JOIN
(
    SELECT code AS region, name_en FROM {db}.regions
) AS r USING (region)
ORDER BY region;
