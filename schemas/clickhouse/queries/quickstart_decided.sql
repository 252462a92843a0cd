-- The newest data day decided per region. The quick start waits until every
-- simulated region has been decided through its last decidable day
-- (pipeline/decide.Config.DecidedThrough).
SELECT region, max(date) AS last_day
FROM {db}.decisions
GROUP BY region
ORDER BY region;
