-- What the decider's readiness rule reads of each region's latest indicator
-- records (pipeline/decide.DayRecord): whether a day is provisional and which
-- feeds have not reported through it. The quick start computes from it the
-- day through which the decider decides.
SELECT region, date, provisional, stale_feeds
FROM {db}.indicators_latest
ORDER BY region, date;
