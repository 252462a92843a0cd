-- Insert-time de-duplication for current ClickHouse (22.2+): with a window,
-- an insert whose insert_deduplication_token was seen recently is dropped, so
-- a retried batch whose first outcome was unknown adds nothing even before a
-- merge. ClickHouse 18.16 lacks the setting; the guard skips it there and the
-- replacing tables + FINAL views carry idempotence alone.

-- requires: 22.2
ALTER TABLE {db}.events_store MODIFY SETTING non_replicated_deduplication_window = 1000;

-- requires: 22.2
ALTER TABLE {db}.indicators_store MODIFY SETTING non_replicated_deduplication_window = 1000;

-- requires: 22.2
ALTER TABLE {db}.decisions_store MODIFY SETTING non_replicated_deduplication_window = 1000;

-- requires: 22.2
ALTER TABLE {db}.alerts_store MODIFY SETTING non_replicated_deduplication_window = 1000;
