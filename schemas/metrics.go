package schemas

// Prometheus metric names. Every one leaves the process on /metrics and is
// read by the pipeline dashboard (dashboards/pipeline.go), the alert rules
// (deploy/prometheus/rules) or an operator's own queries, so each is spelled
// here once; the component that changes a metric declares it (help text,
// labels, buckets) under this name. Renaming one breaks users' dashboards
// and alerts: don't. The label names are given in brackets.
const (
	// pipeline/stream: every JetStream consumer, by durable name [consumer].

	// MetricConsumerDelivered counts messages delivered, redeliveries included.
	MetricConsumerDelivered = "epiwatch_consumer_delivered_messages_total"
	// MetricConsumerRedelivered counts messages delivered more than once.
	MetricConsumerRedelivered = "epiwatch_consumer_redelivered_messages_total"
	// MetricConsumerOutcomes counts how messages were settled [consumer, outcome].
	MetricConsumerOutcomes = "epiwatch_consumer_outcomes_total"
	// MetricConsumerBatchRetries counts retries of failed batches.
	MetricConsumerBatchRetries = "epiwatch_consumer_batch_retries_total"
	// MetricConsumerPending is the messages not yet delivered (the lag).
	MetricConsumerPending = "epiwatch_consumer_pending_messages"
	// MetricConsumerAckPending is the messages delivered but not yet acked.
	MetricConsumerAckPending = "epiwatch_consumer_ack_pending_messages"
	// MetricConsumerRedelivering is the messages the server is redelivering now.
	MetricConsumerRedelivering = "epiwatch_consumer_redelivered_messages"

	// pipeline/ingest.

	// MetricIngestEvents counts events answered [type, outcome].
	MetricIngestEvents = "epiwatch_ingest_events_total"
	// MetricIngestRejected counts rejected events [type, reason].
	MetricIngestRejected = "epiwatch_ingest_rejected_events_total"
	// MetricIngestRefusedBatches counts batches refused with 503/429 [cause].
	MetricIngestRefusedBatches = "epiwatch_ingest_refused_batches_total"
	// MetricIngestPublishDuration is the time to publish a batch (histogram).
	MetricIngestPublishDuration = "epiwatch_ingest_publish_duration_seconds"
	// MetricIngestBatchFallbacks counts atomic batches re-sent one by one [reason].
	MetricIngestBatchFallbacks = "epiwatch_ingest_batch_fallbacks_total"

	// pipeline/process.

	// MetricProcessEventsApplied counts distinct events applied [type].
	MetricProcessEventsApplied = "epiwatch_process_events_applied_total"
	// MetricProcessEventsSkipped counts events delivered again, not applied [reason].
	MetricProcessEventsSkipped = "epiwatch_process_events_skipped_total"
	// MetricProcessEventsRejected counts events dead-lettered by the processor.
	MetricProcessEventsRejected = "epiwatch_process_events_rejected_total"
	// MetricProcessIndicatorsPublished counts indicator records published.
	MetricProcessIndicatorsPublished = "epiwatch_process_indicators_published_total"
	// MetricProcessErasureRebuilds counts state rebuilds after an erasure.
	MetricProcessErasureRebuilds = "epiwatch_process_erasure_rebuilds_total"
	// MetricProcessLag is an event's arrival to its indicators' publication (histogram).
	MetricProcessLag = "epiwatch_process_lag_seconds"
	// MetricProcessCheckpoints counts checkpoints of the state [outcome].
	MetricProcessCheckpoints = "epiwatch_process_checkpoints_total"
	// MetricProcessCheckpointDuration is the time to write one checkpoint (histogram).
	MetricProcessCheckpointDuration = "epiwatch_process_checkpoint_duration_seconds"
	// MetricProcessCheckpointBytes counts bytes written to the checkpoint bucket.
	MetricProcessCheckpointBytes = "epiwatch_process_checkpoint_written_bytes_total"
	// MetricProcessCheckpointSequence is the events sequence the last checkpoint covers.
	MetricProcessCheckpointSequence = "epiwatch_process_checkpoint_sequence"
	// MetricProcessAppliedSequence is the highest events sequence applied in memory.
	MetricProcessAppliedSequence = "epiwatch_process_applied_sequence"
	// MetricRegionRMean is the posterior mean of R on the region's latest day [region].
	MetricRegionRMean = "epiwatch_region_r_mean"
	// MetricRegionRLower is the 2.5 % quantile of R on the region's latest day [region].
	MetricRegionRLower = "epiwatch_region_r_lower"
	// MetricRegionRUpper is the 97.5 % quantile of R on the region's latest day [region].
	MetricRegionRUpper = "epiwatch_region_r_upper"
	// MetricRegionBedOccupancy is infectious-bed occupancy (ПЗК) as a ratio 0..1 [region].
	MetricRegionBedOccupancy = "epiwatch_region_bed_occupancy_ratio"
	// MetricRegionStaleFacilities is the facilities with a too old bed report [region].
	MetricRegionStaleFacilities = "epiwatch_region_stale_facilities"
	// MetricFeedLag is how far a region's feed lags the newest data day [region, feed].
	MetricFeedLag = "epiwatch_feed_lag_seconds"

	// pipeline/detect.

	// MetricSignalsPublished counts signal records published [method].
	MetricSignalsPublished = "epiwatch_signals_published_total"
	// MetricSignalAlarmsPublished counts signal records published with an alarm [stream, method].
	MetricSignalAlarmsPublished = "epiwatch_signal_alarms_published_total"

	// pipeline/decide.

	// MetricDecisions counts restriction decisions committed [action].
	MetricDecisions = "epiwatch_decisions_total"
	// MetricRegionRestrictionLevel is a region's current restriction level [region].
	MetricRegionRestrictionLevel = "epiwatch_region_restriction_level"
	// MetricLevelChanges counts a region's restriction level changes [region].
	MetricLevelChanges = "epiwatch_level_changes_total"

	// consumers/clickhouse.

	// MetricSinkRows counts rows inserted into ClickHouse [table].
	MetricSinkRows = "epiwatch_sink_rows_total"
	// MetricSinkBatchRows is the rows per ClickHouse insert (histogram) [table].
	MetricSinkBatchRows = "epiwatch_sink_batch_rows"
	// MetricSinkInsertDuration is the duration of one ClickHouse insert (histogram) [table].
	MetricSinkInsertDuration = "epiwatch_sink_insert_duration_seconds"
	// MetricSinkInsertFailures counts failed (retried) ClickHouse inserts [table].
	MetricSinkInsertFailures = "epiwatch_sink_insert_failures_total"

	// consumers/alerts.

	// MetricAlertsSent counts alerts delivered, escalations included [channel].
	MetricAlertsSent = "epiwatch_alerts_sent_total"
	// MetricAlertsFailed counts failed delivery rounds [channel].
	MetricAlertsFailed = "epiwatch_alerts_failed_total"
	// MetricAlertDeliveryDuration is the duration of one delivery round (histogram) [channel].
	MetricAlertDeliveryDuration = "epiwatch_alert_delivery_seconds"
	// MetricAlertAcks counts decisions acknowledged by headquarters [source].
	MetricAlertAcks = "epiwatch_alert_acks_total"
	// MetricAlertEscalations counts unacknowledged alerts re-sent to the second contact [channel].
	MetricAlertEscalations = "epiwatch_alert_escalations_total"
)

// MetricNames returns every metric name above, for the tests that check
// dashboards and alert rules read only metrics that exist and that each is
// declared by the code that changes it.
func MetricNames() []string {
	return []string{
		MetricConsumerDelivered, MetricConsumerRedelivered, MetricConsumerOutcomes, MetricConsumerBatchRetries,
		MetricConsumerPending, MetricConsumerAckPending, MetricConsumerRedelivering,
		MetricIngestEvents, MetricIngestRejected, MetricIngestRefusedBatches, MetricIngestPublishDuration,
		MetricIngestBatchFallbacks,
		MetricProcessEventsApplied, MetricProcessEventsSkipped, MetricProcessEventsRejected,
		MetricProcessIndicatorsPublished, MetricProcessErasureRebuilds, MetricProcessLag, MetricProcessCheckpoints,
		MetricProcessCheckpointDuration, MetricProcessCheckpointBytes, MetricProcessCheckpointSequence,
		MetricProcessAppliedSequence, MetricRegionRMean, MetricRegionRLower, MetricRegionRUpper,
		MetricRegionBedOccupancy, MetricRegionStaleFacilities, MetricFeedLag,
		MetricSignalsPublished, MetricSignalAlarmsPublished,
		MetricDecisions, MetricRegionRestrictionLevel, MetricLevelChanges,
		MetricSinkRows, MetricSinkBatchRows, MetricSinkInsertDuration, MetricSinkInsertFailures,
		MetricAlertsSent, MetricAlertsFailed, MetricAlertDeliveryDuration, MetricAlertAcks, MetricAlertEscalations,
	}
}
