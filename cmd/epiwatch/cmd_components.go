package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newIngestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ingest",
		Short: "Run the ingest API alone (POST /v1/events → JetStream)",
		Long: `Runs the HTTP ingest worker: validates each event against the published JSON Schemas
and the region reference, pseudonymises national IDs, publishes accepted events to JetStream
(answering only after JetStream acknowledged them) and dead-letters rejected ones with the
reason. Stateless: run as many replicas as needed behind a load balancer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.RunIngest(cmd.Context(), envOf(cmd)) },
	}
}

func newSinkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sink",
		Short: "Run the ClickHouse sink alone (events, indicators, decisions, alerts → ClickHouse)",
		Long: `Consumes the events, indicators, decisions and alert streams with durable consumers and
batch-inserts them into ClickHouse, acknowledging only after the insert succeeded. While
ClickHouse is down it keeps the batch in JetStream and retries with backoff. Applies the
schema migrations first. /metrics is served on metrics.addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.RunSink(cmd.Context(), envOf(cmd)) },
	}
}

func newMigrateCmd() *cobra.Command {
	var streams bool
	c := &cobra.Command{
		Use:   "migrate [--streams]",
		Short: "Create or upgrade the ClickHouse schema and reload the region reference",
		Long: `Applies the embedded DDL files (schemas/clickhouse/NNN_*.sql) newer than the schema
version recorded in <database>.schema_migrations, then reloads the region reference.
Idempotent; 'run' and 'sink' do this on start.

With --streams: also sets the JetStream streams' limits (age, size, message count, discard
policy, duplicate window, replicas) to the stream.* configuration and prints what changed.
Components create missing streams on start but keep limits an operator changed, warning
about each difference; this is how a change of stream.* reaches an existing deployment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.Migrate(cmd.Context(), envOf(cmd), streams) },
	}
	c.Flags().BoolVar(&streams, "streams", false, "also set the JetStream streams' limits to the stream.* configuration")
	return c
}
