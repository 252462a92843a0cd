package schemas

import (
	"regexp"
	"slices"
	"testing"
)

// TestMetricNames pins the exported metric names: users' dashboards,
// recording rules and alerts query them, so a rename breaks them silently
// (Prometheus answers an unknown name with an empty result, not an error).
// Adding a metric adds a line here; changing one is a breaking change.
func TestMetricNames(t *testing.T) {
	want := []string{
		"epiwatch_alert_acks_total",
		"epiwatch_alert_delivery_seconds",
		"epiwatch_alert_escalations_total",
		"epiwatch_alerts_failed_total",
		"epiwatch_alerts_sent_total",
		"epiwatch_consumer_ack_pending_messages",
		"epiwatch_consumer_batch_retries_total",
		"epiwatch_consumer_delivered_messages_total",
		"epiwatch_consumer_outcomes_total",
		"epiwatch_consumer_pending_messages",
		"epiwatch_consumer_redelivered_messages",
		"epiwatch_consumer_redelivered_messages_total",
		"epiwatch_decisions_total",
		"epiwatch_feed_lag_seconds",
		"epiwatch_ingest_batch_fallbacks_total",
		"epiwatch_ingest_events_total",
		"epiwatch_ingest_publish_duration_seconds",
		"epiwatch_ingest_refused_batches_total",
		"epiwatch_ingest_rejected_events_total",
		"epiwatch_level_changes_total",
		"epiwatch_process_applied_sequence",
		"epiwatch_process_checkpoint_duration_seconds",
		"epiwatch_process_checkpoint_sequence",
		"epiwatch_process_checkpoint_written_bytes_total",
		"epiwatch_process_checkpoints_total",
		"epiwatch_process_erasure_rebuilds_total",
		"epiwatch_process_events_applied_total",
		"epiwatch_process_events_rejected_total",
		"epiwatch_process_events_skipped_total",
		"epiwatch_process_indicators_published_total",
		"epiwatch_process_lag_seconds",
		"epiwatch_region_bed_occupancy_ratio",
		"epiwatch_region_r_lower",
		"epiwatch_region_r_mean",
		"epiwatch_region_r_upper",
		"epiwatch_region_restriction_level",
		"epiwatch_region_stale_facilities",
		"epiwatch_signal_alarms_published_total",
		"epiwatch_signals_published_total",
		"epiwatch_sink_batch_rows",
		"epiwatch_sink_insert_duration_seconds",
		"epiwatch_sink_insert_failures_total",
		"epiwatch_sink_rows_total",
	}
	got := slices.Clone(MetricNames())
	valid := regexp.MustCompile(`^epiwatch_[a-z][a-z0-9_]*[a-z0-9]$`)
	for _, m := range got {
		if !valid.MatchString(m) {
			t.Errorf("metric name %q: want epiwatch_ and lower-case snake_case", m)
		}
	}
	slices.Sort(got)
	if dup := len(got) - len(slices.Compact(slices.Clone(got))); dup > 0 {
		t.Errorf("MetricNames lists %d names twice: %v", dup, got)
	}
	if !slices.Equal(got, want) {
		t.Errorf("metric names changed (a breaking change for users' dashboards and alerts):\ngot  %v\nwant %v", got, want)
	}
}
