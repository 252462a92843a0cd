-- replay_runs marks a database as a replay's (`epiwatch replay --into NAME`)
-- and records each completed replay: only a database holding it is ever
-- dropped and rebuilt by consumers/clickhouse.PrepareReplay. It is not a
-- numbered migration because only replay databases have it; PrepareReplay
-- creates it after the migrations. Plain MergeTree, one row per finished
-- replay; runs on 18.16 and current releases.
CREATE TABLE IF NOT EXISTS {db}.replay_runs
(
    started_at DateTime('UTC'),
    finished_at DateTime('UTC'),
    from_date Date,
    rules String,
    rule_set String,
    rule_set_version String,
    live_database String,
    events UInt64,
    events_rejected UInt64,
    first_seq UInt64,
    last_seq UInt64,
    indicators UInt64,
    decisions UInt64,
    seconds Float64,
    epiwatch_version String
)
ENGINE = MergeTree
ORDER BY started_at
