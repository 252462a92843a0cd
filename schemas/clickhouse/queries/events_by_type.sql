-- Accepted events per type and region (each event counted once; an event is
-- its source and event_id).
SELECT type, region, count() AS events, uniqExact(source, event_id) AS distinct_ids, max(event_date) AS last_day
FROM {db}.events
GROUP BY type, region
ORDER BY type, region;
