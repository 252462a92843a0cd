-- The latest indicators of every region with its name and population:
-- the picture the plan's rule compares (R and infectious-bed occupancy).
SELECT
    i.region AS region,
    r.name_en AS name,
    i.date AS date,
    round(i.r_mean, 2) AS r_mean,
    round(i.r_q025, 2) AS r_q025,
    round(i.r_q975, 2) AS r_q975,
    round(i.bed_occupancy_pct, 1) AS bed_occupancy_pct,
    round(i.cases_7d_per_100k, 1) AS cases_7d_per_100k,
    round(i.positivity_7d_pct, 1) AS positivity_7d_pct
FROM
(
    SELECT region, argMax(date, date) AS date,
           argMax(r_mean, date) AS r_mean, argMax(r_q025, date) AS r_q025,
           argMax(r_q975, date) AS r_q975, argMax(bed_occupancy_pct, date) AS bed_occupancy_pct,
           argMax(cases_7d_per_100k, date) AS cases_7d_per_100k,
           argMax(positivity_7d_pct, date) AS positivity_7d_pct
    FROM {db}.indicators_latest
    GROUP BY region
) AS i
ANY LEFT JOIN
(
    SELECT code AS region, name_en FROM {db}.regions
) AS r USING (region)
ORDER BY region;
