-- Data-quality flags carry their reasons: one "<flag>: <why>" line per flag,
-- in the order of flags, so an analyst (and the region dashboard) can tell
-- why a day is flagged without re-deriving it.
ALTER TABLE {db}.indicators_store ADD COLUMN flag_reasons Array(String) AFTER flags;

-- ClickHouse 18.16 expands a view's * when the view is created: recreate
-- indicators_latest so it shows the new column there too.
DROP TABLE IF EXISTS {db}.indicators_latest;

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;
