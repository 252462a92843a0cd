package decide

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/schemas"
)

// metrics are the decider's Prometheus metrics. They change when a decision
// is committed (its level state written), so a decision completed after a
// crash is counted once, by the process that committed it.
type metrics struct {
	decisions    *prometheus.CounterVec
	level        *prometheus.GaugeVec
	levelChanges *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricDecisions,
			Help: "Restriction decisions committed, by action (strengthen, keep, ease).",
		}, []string{"action"}),
		level: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: schemas.MetricRegionRestrictionLevel,
			Help: "Current restriction level of a region (1 = mildest).",
		}, []string{"region"}),
		levelChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricLevelChanges,
			Help: "Restriction level changes of a region (one step each).",
		}, []string{"region"}),
	}
	for _, a := range []string{schemas.ActionStrengthen, schemas.ActionKeep, schemas.ActionEase} {
		m.decisions.WithLabelValues(a)
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.level, m.levelChanges)
	}
	return m
}

func (m *metrics) committed(d schemas.Decision) {
	m.decisions.WithLabelValues(d.Action).Inc()
	m.level.WithLabelValues(d.Region).Set(float64(d.LevelTo))
	if d.LevelTo != d.LevelFrom {
		m.levelChanges.WithLabelValues(d.Region).Inc()
	}
}

func (m *metrics) setLevel(region string, level int) {
	if level > 0 {
		m.level.WithLabelValues(region).Set(float64(level))
	}
}
