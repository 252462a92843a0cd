package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/epiwatch/epiwatch/schemas"
)

// rate is the per-second rate over Grafana's rate interval.
func rate(metric string) string { return "rate(" + metric + "[$__rate_interval])" }

// quantile is a histogram quantile by the given labels.
func quantile(q, histogram, by string) string {
	return "histogram_quantile(" + q + ", sum by (le" + by + ") (rate(" + histogram + "_bucket[$__rate_interval])))"
}

func promQuery(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(PrometheusDatasource()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

func promPanel(id *ids, title, description, unitName string, span uint32, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := seriesPanel(id).
		Title(title).
		Description(description).
		Datasource(PrometheusDatasource()).
		Height(8).Span(span).
		Unit(unitName).
		Min(0).
		FillOpacity(10).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	for _, t := range targets {
		p = p.WithTarget(t)
	}
	return p
}

// Pipeline is the health of the running pipeline, from Prometheus: ingest
// and rejects, JetStream consumer lag and redeliveries, processor lag, the
// ClickHouse sink, alert deliveries.
func Pipeline(p Plan) *dashboard.DashboardBuilder {
	id := &ids{}
	return newDashboard("epiwatch — pipeline health", PipelineUID,
		"The running pipeline's metrics from Prometheus.",
		"operations", "now-6h", "30s").
		WithRow(row(id, "Components")).
		WithPanel(stat.NewPanelBuilder().
			Id(id.next()).
			Title("Components up").
			Description("Scrape status of every epiwatch process (1 up, 0 down).").
			Datasource(PrometheusDatasource()).
			WithTarget(promQuery("A", `up{job=~"epiwatch.*"}`, "{{job}} {{instance}}").Instant()).
			Height(4).Span(24).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			TextMode(common.BigValueTextModeName).
			Orientation(common.VizOrientationAuto).
			Thresholds(thresholdsBuilder(thresholds("red", step{1, "green"})))).
		WithRow(row(id, "Ingest")).
		WithPanel(promPanel(id, "Events answered by ingest, by type and outcome", "Events per second answered by the ingest API and file import: accepted, duplicate (already accepted) or rejected.", "reqps", 12,
			promQuery("A", "sum by (type, outcome) ("+rate(schemas.MetricIngestEvents)+")", "{{type}} {{outcome}}"))).
		WithPanel(promPanel(id, "Rejected events by type and reason", "Events per second rejected, by the first field at fault; each is dead-lettered with its reason on epi.deadletter.ingest.<type>.", "reqps", 12,
			promQuery("A", "sum by (type, reason) ("+rate(schemas.MetricIngestRejected)+")", "{{type}}: {{reason}}"))).
		WithPanel(promPanel(id, "Batches refused (JetStream unavailable or full)", "Batches answered 503 or 429 because JetStream could not take them; producers retry.", "reqps", 12,
			promQuery("A", "sum by (cause) ("+rate(schemas.MetricIngestRefusedBatches)+")", "{{cause}}"))).
		WithPanel(promPanel(id, "Publish latency to JetStream", "Time from publishing a batch to JetStream's last acknowledgement (file store, replicated).", "s", 12,
			promQuery("A", quantile("0.5", schemas.MetricIngestPublishDuration, ""), "p50"),
			promQuery("B", quantile("0.99", schemas.MetricIngestPublishDuration, ""), "p99"))).
		WithRow(row(id, "JetStream consumers")).
		WithPanel(promPanel(id, "Consumer lag (pending messages)", "Messages in each stream not yet delivered to its durable consumer. Replicas of a component share one durable consumer, so the max over replicas is the lag.", "short", 12,
			promQuery("A", "max by (consumer) ("+schemas.MetricConsumerPending+")", "{{consumer}}"))).
		WithPanel(promPanel(id, "Messages awaiting acknowledgement", "Delivered but not yet acknowledged: in flight, or held by a batch waiting for ClickHouse.", "short", 12,
			promQuery("A", "max by (consumer) ("+schemas.MetricConsumerAckPending+")", "{{consumer}}"))).
		WithPanel(promPanel(id, "Redeliveries", "Messages delivered more than once per second (a handler failed or timed out).", "reqps", 12,
			promQuery("A", "sum by (consumer) ("+rate(schemas.MetricConsumerRedelivered)+")", "{{consumer}}"))).
		WithPanel(promPanel(id, "Settled messages by outcome", "How consumed messages were settled: ack, nak (retried later) or dead_letter (permanent error), and batch retries.", "reqps", 12,
			promQuery("A", "sum by (consumer, outcome) ("+rate(schemas.MetricConsumerOutcomes)+")", "{{consumer}} {{outcome}}"),
			promQuery("B", "sum by (consumer) ("+rate(schemas.MetricConsumerBatchRetries)+")", "{{consumer}} batch retry"))).
		WithRow(row(id, "Processor")).
		WithPanel(promPanel(id, "Processor lag (event to indicator)", "Time from an event's arrival in JetStream to the publication of the indicators it changed.", "s", 12,
			promQuery("A", quantile("0.5", schemas.MetricProcessLag, ""), "p50"),
			promQuery("B", quantile("0.95", schemas.MetricProcessLag, ""), "p95"),
			promQuery("C", quantile("0.99", schemas.MetricProcessLag, ""), "p99"))).
		WithPanel(promPanel(id, "Events applied and indicators published", "Distinct events applied to the state by type, events skipped (already applied or covered by the checkpoint), indicator records published.", "reqps", 12,
			promQuery("A", "sum by (type) ("+rate(schemas.MetricProcessEventsApplied)+")", "applied {{type}}"),
			promQuery("B", "sum by (reason) ("+rate(schemas.MetricProcessEventsSkipped)+")", "skipped {{reason}}"),
			promQuery("C", "sum("+rate(schemas.MetricProcessIndicatorsPublished)+")", "indicators published"))).
		WithPanel(promPanel(id, "Checkpoints", "Processor state checkpoints per second by outcome, and the p99 time to write one.", "short", 12,
			promQuery("A", "sum by (outcome) ("+rate(schemas.MetricProcessCheckpoints)+")", "{{outcome}}"),
			promQuery("B", quantile("0.99", schemas.MetricProcessCheckpointDuration, ""), "p99 duration (s)"))).
		WithRow(row(id, "ClickHouse sink")).
		WithPanel(promPanel(id, "Rows inserted by table", "Rows per second the sink inserted into ClickHouse (acknowledged in JetStream only after the insert).", "rowsps", 12,
			promQuery("A", "sum by (table) ("+rate(schemas.MetricSinkRows)+")", "{{table}}"))).
		WithPanel(promPanel(id, "Insert failures by table", "Failed inserts per second; the batch stays in JetStream and is retried with backoff.", "reqps", 12,
			promQuery("A", "sum by (table) ("+rate(schemas.MetricSinkInsertFailures)+")", "{{table}}"))).
		WithPanel(promPanel(id, "Batch size (rows per insert)", "Median and p99 rows per ClickHouse insert.", "short", 12,
			promQuery("A", quantile("0.5", schemas.MetricSinkBatchRows, ", table"), "p50 {{table}}"),
			promQuery("B", quantile("0.99", schemas.MetricSinkBatchRows, ", table"), "p99 {{table}}"))).
		WithPanel(promPanel(id, "Insert latency", "p50 and p99 duration of one ClickHouse insert.", "s", 12,
			promQuery("A", quantile("0.5", schemas.MetricSinkInsertDuration, ", table"), "p50 {{table}}"),
			promQuery("B", quantile("0.99", schemas.MetricSinkInsertDuration, ", table"), "p99 {{table}}"))).
		WithRow(row(id, "Alerts")).
		WithPanel(promPanel(id, "Alert deliveries by channel", "Alerts delivered (sent) and failed attempts per second, by channel (alertmanager, webhook:<name>).", "reqps", 24,
			promQuery("A", "sum by (channel) ("+rate(schemas.MetricAlertsSent)+")", "sent {{channel}}"),
			promQuery("B", "sum by (channel) ("+rate(schemas.MetricAlertsFailed)+")", "failed {{channel}}")).
			OverrideByRegexp("^failed .*", []dashboard.DynamicConfigValue{fixedColor("red")})).
		WithRow(row(id, "Regions (live gauges)")).
		WithPanel(promPanel(id, "R, upper end of the 95 % interval, by region", "The processor's latest R 97.5 % quantile per region; the alert rule fires when it stays above 1.3 for a day.", "none", 8,
			promQuery("A", "max by (region) ("+schemas.MetricRegionRUpper+")", "{{region}}")).
			Thresholds(thresholdsBuilder(p.rThresholds())).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).
		WithPanel(promPanel(id, "Bed occupancy (ПЗК) by region", "The processor's latest infectious-bed occupancy per region (ratio 0–1).", "percentunit", 8,
			promQuery("A", "max by (region) ("+schemas.MetricRegionBedOccupancy+")", "{{region}}")).
			Max(1).
			Thresholds(thresholdsBuilder(bandThresholds(p.OccupancyPct, 100))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).
		WithPanel(promPanel(id, "Restriction level by region", "Each region's current restriction level (1 mildest).", "none", 8,
			promQuery("A", "max by (region) ("+schemas.MetricRegionRestrictionLevel+")", "{{region}}")).
			Decimals(0).
			LineInterpolation(common.LineInterpolationStepAfter))
}
