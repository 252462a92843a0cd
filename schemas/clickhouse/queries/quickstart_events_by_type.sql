-- Accepted events per type: the quick start's summary (epiwatch run
-- --simulate) prints it once the simulation has landed.
SELECT type, count() AS events
FROM {db}.events
GROUP BY type
ORDER BY type;
