-- The latest indicators of every region with its name: the picture the
-- plan's rule compares (R and infectious-bed occupancy). Aliases differ from
-- column names on purpose: ClickHouse 18.16 resolves an alias that shadows a
-- column inside the aggregate that defines it.
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
    SELECT region, max(date) AS last_date,
           argMax(r_mean, date) AS rm, argMax(r_q025, date) AS rlo,
           argMax(r_q975, date) AS rhi, argMax(bed_occupancy_pct, date) AS beds,
           argMax(cases_7d_per_100k, date) AS inc,
           argMax(positivity_7d_pct, date) AS pos
    FROM {db}.indicators_latest
    GROUP BY region
) AS i
ANY LEFT JOIN
(
    SELECT code AS region, name_en FROM {db}.regions
) AS r USING (region)
ORDER BY region;
