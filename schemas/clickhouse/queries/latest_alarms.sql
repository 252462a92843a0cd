-- Early warnings: every signal alarm of each region's newest signal day,
-- the most unusual first (excess = observed / upper bound), with the trend
-- of R that day. Signals never change a restriction level.
SELECT s.region AS region, s.date AS date, s.stream AS stream, s.method AS method,
       s.observed AS observed, round(s.upper_bound, 1) AS upper_bound, round(s.excess, 2) AS excess,
       i.trend AS trend, round(i.r_prob_above_1, 2) AS p_r_above_1
FROM
(
    SELECT region, date, stream, method, observed, upper_bound, excess
    FROM {db}.signals
    WHERE alarm = 1 AND (region, date) IN (SELECT region, max(date) FROM {db}.signals GROUP BY region)
) AS s
ANY LEFT JOIN
(
    SELECT region, date, trend, r_prob_above_1
    FROM {db}.indicators_latest
) AS i USING (region, date)
ORDER BY excess DESC;
