package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/schemas"
)

type metrics struct {
	events         *prometheus.CounterVec
	rejections     *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	publishLatency prometheus.Histogram
	fallbacks      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricIngestEvents,
			Help: "Events answered by ingest, by type and outcome (accepted, duplicate, rejected).",
		}, []string{"type", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricIngestRejected,
			Help: "Rejected events by type and reason (the first field at fault).",
		}, []string{"type", "reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricIngestRefusedBatches,
			Help: "Batches refused because JetStream was unavailable or full (answered 503/429).",
		}, []string{"cause"}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    schemas.MetricIngestPublishDuration,
			Help:    "Time from publishing a batch to JetStream's last acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricIngestBatchFallbacks,
			Help: "Atomic batches JetStream refused as a whole and ingest published again event by event, by reason (duplicate_id and event_id_stored: retries or reused ids; atomic_disabled: a server or stream without atomic publish, much slower under sync_interval always).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.rejections, m.refusals, m.publishLatency, m.fallbacks)
	}
	return m
}

func (m *metrics) accepted(typ, status string) { m.events.WithLabelValues(typ, status).Inc() }

func (m *metrics) rejected(typ, reason string) {
	if !schemas.EventType(typ).Valid() {
		typ = "unknown" // producer input: keep the label set bounded
	}
	m.events.WithLabelValues(typ, "rejected").Inc()
	m.rejections.WithLabelValues(typ, reason).Inc()
}

func (m *metrics) batchFallback(reason string) { m.fallbacks.WithLabelValues(reason).Inc() }

func (m *metrics) unavailable(full bool) {
	cause := "unavailable"
	if full {
		cause = "full"
	}
	m.refusals.WithLabelValues(cause).Inc()
}
