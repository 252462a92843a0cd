// Package schemas is epiwatch's contract: everything that crosses a process or
// storage boundary is defined here and nowhere else.
//
//   - Event types (case, contact, lab test, bed snapshot, vaccination) as Go
//     types with Validate and ID, and as JSON Schema files (draft 2020-12,
//     events/*.schema.json) that are the published contract for producers.
//   - Result types (indicators, decisions, alerts) and their schemas.
//   - Stream, subject, consumer, key-value bucket and message header names.
//   - Prometheus metric names (metrics.go).
//   - The region reference (ISO 3166-2 codes with population).
//   - ClickHouse DDL (clickhouse/NNN_*.sql), append-only and embedded.
//
// The package imports nothing else from the project: data flows away from it.
package schemas
