package alerts

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/schemas"
)

// metrics of the alerter, registered on the registry passed to New.
type metrics struct {
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	acks     *prometheus.CounterVec
	escal    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricAlertsSent,
			Help: "Alerts delivered (the receiver answered 2xx), escalations included, by channel.",
		}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricAlertsFailed,
			Help: "Failed delivery rounds by channel: refused for good (4xx) or every attempt of the round failed (retried later).",
		}, []string{"channel"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    schemas.MetricAlertDeliveryDuration,
			Help:    "Duration of one delivery round (all attempts and backoff), by channel.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"channel"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricAlertAcks,
			Help: "Decisions acknowledged by headquarters, by source (endpoint or alertmanager_silence).",
		}, []string{"source"}),
		escal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricAlertEscalations,
			Help: "Unacknowledged alerts re-sent to the second contact, by channel (also counted in " + schemas.MetricAlertsSent + " when delivered).",
		}, []string{"channel"}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.duration, m.acks, m.escal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
