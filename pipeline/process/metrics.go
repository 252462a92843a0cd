package process

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/schemas"
)

// metrics are the processor's Prometheus metrics, named in schemas
// (metrics.go) because dashboards and alert rules read them.
type metrics struct {
	applied         *prometheus.CounterVec
	skipped         *prometheus.CounterVec
	rejected        prometheus.Counter
	published       prometheus.Counter
	erasureRebuilds prometheus.Counter
	lag             prometheus.Histogram
	checkpoints     *prometheus.CounterVec
	ckptSeconds     prometheus.Histogram
	ckptBytes       prometheus.Counter
	ckptSeq         prometheus.Gauge
	appliedSeq      prometheus.Gauge
	rMean           *prometheus.GaugeVec
	rLower          *prometheus.GaugeVec
	rUpper          *prometheus.GaugeVec
	bedRatio        *prometheus.GaugeVec
	stale           *prometheus.GaugeVec
	feedLag         *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: schemas.MetricProcessEventsApplied,
			Help: "Distinct events applied to the processor state, by event type."}, []string{"type"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: schemas.MetricProcessEventsSkipped,
			Help: "Events delivered but not applied because their event_id was applied already (reason duplicate): redeliveries and re-sent events."}, []string{"reason"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: schemas.MetricProcessEventsRejected,
			Help: "Events the processor cannot apply (undecodable or inconsistent), dead-lettered."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: schemas.MetricProcessIndicatorsPublished,
			Help: "Indicator records (one region, one day, one version) published to the indicators stream."}),
		erasureRebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: schemas.MetricProcessErasureRebuilds,
			Help: "State rebuilds from the events stream after an erasure (epiwatch erase) was recorded."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: schemas.MetricProcessLag,
			Help:    "Time from an event's arrival in JetStream to the publication of the indicators it changed.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14)}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: schemas.MetricProcessCheckpoints,
			Help: "Checkpoints of the processor state, by outcome (ok, error)."}, []string{"outcome"}),
		ckptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: schemas.MetricProcessCheckpointDuration,
			Help:    "Time to write one checkpoint (changed regions and manifest).",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12)}),
		ckptBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: schemas.MetricProcessCheckpointBytes,
			Help: "Bytes written to the checkpoint bucket."}),
		ckptSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: schemas.MetricProcessCheckpointSequence,
			Help: "Events-stream sequence covered by the last checkpoint."}),
		appliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: schemas.MetricProcessAppliedSequence,
			Help: "Highest events-stream sequence applied to the in-memory state."}),
		rMean: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricRegionRMean,
			Help: "Posterior mean of the reproduction number R on the region's latest day (absent when not estimable)."}, []string{"region"}),
		rLower: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricRegionRLower,
			Help: "2.5% quantile of R on the region's latest day."}, []string{"region"}),
		rUpper: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricRegionRUpper,
			Help: "97.5% quantile of R on the region's latest day."}, []string{"region"}),
		bedRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricRegionBedOccupancy,
			Help: "Occupied over total infectious beds (ПЗК as a ratio 0..1) on the region's latest day, fresh facilities only (absent without data)."}, []string{"region"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricRegionStaleFacilities,
			Help: "Facilities whose latest bed report is older than the configured age on the region's latest day."}, []string{"region"}),
		feedLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: schemas.MetricFeedLag,
			Help: "How far the region's feed (event type) lags the newest data day of any region, in whole days as seconds: the recent days it has not reported (by an event or a report_complete). Present for feeds the region has used."}, []string{"region", "feed"}),
	}
	if reg != nil {
		reg.MustRegister(m.applied, m.skipped, m.rejected, m.published, m.erasureRebuilds, m.lag, m.checkpoints, m.ckptSeconds,
			m.ckptBytes, m.ckptSeq, m.appliedSeq, m.rMean, m.rLower, m.rUpper, m.bedRatio, m.stale, m.feedLag)
	}
	return m
}

// region sets the per-region gauges from the region's latest record; a value
// that is not available removes the series rather than showing 0.
func (m *metrics) region(in *schemas.Indicator) {
	set := func(g *prometheus.GaugeVec, v *float64, scale float64) {
		if v == nil {
			g.DeleteLabelValues(in.Region)
			return
		}
		g.WithLabelValues(in.Region).Set(*v * scale)
	}
	set(m.rMean, in.RMean, 1)
	set(m.rLower, in.RQ025, 1)
	set(m.rUpper, in.RQ975, 1)
	set(m.bedRatio, in.BedOccupancyPct, 0.01)
	m.stale.WithLabelValues(in.Region).Set(float64(in.StaleFacilities))
}
