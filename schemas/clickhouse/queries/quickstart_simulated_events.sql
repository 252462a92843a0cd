-- Events per simulation: every event of a simulation, whatever its source,
-- has the id prefix sim-<seed>- (internal/tools/simulate.IDPrefix); other
-- events count under ''. The quick start waits until its simulation's
-- accepted events are all here.
SELECT extract(event_id, '^sim--?[0-9]+-') AS id_prefix, count() AS events
FROM {db}.events
GROUP BY id_prefix
ORDER BY id_prefix;
