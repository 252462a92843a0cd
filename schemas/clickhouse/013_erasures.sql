-- The erasure audit log (epiwatch erase), one row per erasure: who erased
-- how many events when, and why (the operator's ticket). Never the national
-- ID, the pseudonym or the event_id that selected them. The row is written
-- once the rows of events_store holding the erased events are deleted, so
-- an erasure recorded in the EPI_ERASURES stream but missing here still has
-- its ClickHouse part to do (the next `epiwatch erase` run finishes it).
-- Runs on ClickHouse 18.16 and on current releases (tested on both).
CREATE TABLE IF NOT EXISTS {db}.erasures
(
    erasure_id String,
    kind String,
    erased_by String,
    reason String,
    erased_at DateTime('UTC'),
    events UInt32,
    dead_letters UInt32,
    rows_deleted UInt64,
    stream_seq UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY erasure_id;
