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
// Why a replay or a crash publishes the same bytes is explained at engine; how
// the state survives a restart, at Processor.checkpoint and in checkpoint.go.
package process
