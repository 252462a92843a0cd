-- Accepted events per type and region (each event counted once).
SELECT type, region, count() AS events, uniqExact(event_id) AS distinct_ids, max(event_date) AS last_day
FROM {db}.events
GROUP BY type, region
ORDER BY type, region;
