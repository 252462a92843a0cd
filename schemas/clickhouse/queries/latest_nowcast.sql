-- The newest nowcast of every region: its recent onset days as estimated
-- from the reports known up to its latest as_of, with what was reported so
-- far, the median of the eventual count and its 95 % interval, the share
-- already reported, and R by onset date on the nowcast (NULL: not
-- estimable). Earlier estimates stay in nowcast (WHERE as_of = …). Aliases
-- differ from column names on purpose: ClickHouse 18.16 resolves an alias
-- that shadows a column inside the expression that defines it.
SELECT
    n.region AS region,
    r.name_en AS name,
    n.onset AS date,
    n.known AS as_of,
    n.rep AS reported,
    round(n.m, 1) AS median,
    round(n.lo, 1) AS q025,
    round(n.hi, 1) AS q975,
    round(n.c, 2) AS completeness,
    round(n.rm, 2) AS r_mean,
    round(n.rlo, 2) AS r_q025,
    round(n.rhi, 2) AS r_q975
FROM
(
    SELECT region, date AS onset, as_of AS known, reported AS rep, median AS m, q025 AS lo, q975 AS hi,
           completeness AS c, r_mean AS rm, r_q025 AS rlo, r_q975 AS rhi
    FROM {db}.nowcast
    WHERE (region, as_of) IN (SELECT region, max(as_of) FROM {db}.nowcast GROUP BY region)
) AS n
ANY LEFT JOIN
(
    SELECT code AS region, name_en FROM {db}.regions
) AS r USING (region)
ORDER BY region, date;
