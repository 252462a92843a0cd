-- Daily confirmed cases per region by report date, local and imported.
SELECT region, report_date AS day, count() AS cases,
       sum(imported = 0) AS local_cases, sum(imported = 1) AS imported_cases
FROM {db}.cases
WHERE classification IN ('', 'confirmed')
GROUP BY region, day
ORDER BY region, day;
