// Package process is epiwatch's live indicator processor: it consumes the
// events stream with a durable JetStream consumer, keeps per-region daily
// series, and publishes versioned indicator records (schemas.Indicator) for
// every (region, day) an event changed: R with its credible interval and the
// officials' 4-day ratio R, ПЗК (infectious-bed occupancy) with ICU and
// provisional occupancy and stale facilities, 7-day test positivity and tests
// per 100k, 7-day cases per 100k, contacts per case and the share of contacts
// who became cases, and vaccination coverage by dose. The ClickHouse sink
// lands the records; the highest version of each (region, date) wins.
//
// # Idempotence and determinism
//
// The state is a function of the set of distinct events applied, keyed by
// event_id: a duplicate (published again past JetStream's duplicate window)
// or a redelivery changes nothing. Every day row remembers the highest stream
// sequence among the events that changed it; a record's Version is the
// highest over the days it depends on (the region's days up to its date), and
// its ComputedAt is that event's JetStream timestamp. The content of a record
// is therefore a function of (region, date, Version): however the stream is
// cut into batches, and however often the processor crashes and replays, the
// same record is published with the same bytes and the same Nats-Msg-Id
// (Indicator.MsgID). Nothing reads the wall clock except metrics and the
// checkpoint schedule.
//
// A late event (a case reported today for ten days ago) or a corrected bed
// snapshot marks its day and every later day for recomputation: 7-day
// windows, R (whose infectiousness term reaches back through the whole serial
// interval), cumulative coverage and "latest snapshot as of" all depend on
// earlier days, never on later ones.
//
// # Checkpoints
//
// The state and the stream sequence it covers are written together to the
// key-value bucket schemas.BucketProcessState (see checkpoint.go for the
// layout: a manifest as the single commit point, per-region DEFLATE blobs in
// parts, two alternating slots). A checkpoint is taken every
// Config.CheckpointBatches batches or Config.CheckpointInterval, and at a
// clean shutdown, always after every pending record is published: a
// checkpoint never holds unpublished work. Batches are acknowledged before
// the next checkpoint (and, while working through a backlog, before their
// records are published, see Config.PublishInterval), so the durable
// consumer will not deliver them again; a restart therefore re-reads the
// events after the checkpoint up to the last one the consumer delivered (an
// ordered consumer) before consuming again, and re-applying them marks the
// same days for publication. Delivered events at or below the checkpoint are
// skipped without decoding.
package process
