package stream

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/schemas"
)

// Metrics are the consumer metrics of one process. A nil *Metrics is valid
// and records nothing (pure tests).
type Metrics struct {
	deliveredTotal   *prometheus.CounterVec
	redeliveredTotal *prometheus.CounterVec
	outcomes         *prometheus.CounterVec
	retries          *prometheus.CounterVec
	pending          *prometheus.GaugeVec
	ackPending       *prometheus.GaugeVec
	redelivered      *prometheus.GaugeVec
}

// NewMetrics registers the consumer metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveredTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricConsumerDelivered, Help: "Messages delivered to a consumer, redeliveries included."}, []string{"consumer"}),
		redeliveredTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricConsumerRedelivered, Help: "Messages delivered more than once to a consumer."}, []string{"consumer"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricConsumerOutcomes, Help: "How consumed messages were settled: ack, nak or dead_letter."}, []string{"consumer", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: schemas.MetricConsumerBatchRetries, Help: "Retries of failed batches (e.g. ClickHouse unavailable)."}, []string{"consumer"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: schemas.MetricConsumerPending, Help: "Messages in the stream not yet delivered to the consumer (lag)."}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: schemas.MetricConsumerAckPending, Help: "Messages delivered but not yet acknowledged."}, []string{"consumer"}),
		redelivered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: schemas.MetricConsumerRedelivering, Help: "Messages currently being redelivered, as reported by the server."}, []string{"consumer"}),
	}
	reg.MustRegister(m.deliveredTotal, m.redeliveredTotal, m.outcomes, m.retries, m.pending, m.ackPending, m.redelivered)
	return m
}

func (m *Metrics) delivered(consumer string, msgs []jetstream.Msg) {
	if m == nil {
		return
	}
	m.deliveredTotal.WithLabelValues(consumer).Add(float64(len(msgs)))
	n := 0
	for _, msg := range msgs {
		if meta, err := msg.Metadata(); err == nil && meta.NumDelivered > 1 {
			n++
		}
	}
	m.redeliveredTotal.WithLabelValues(consumer).Add(float64(n))
}

func (m *Metrics) outcome(consumer, outcome string) {
	if m != nil {
		m.outcomes.WithLabelValues(consumer, outcome).Inc()
	}
}

func (m *Metrics) retry(consumer string) {
	if m != nil {
		m.retries.WithLabelValues(consumer).Inc()
	}
}

// WatchLag polls the consumer's server-side counters every interval until ctx
// ends, so Prometheus sees lag even while the consumer is stuck.
func (c *Consumer) WatchLag(ctx context.Context, interval time.Duration) {
	if c.metrics == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.cons.Info(ictx)
		cancel()
		if err == nil {
			name := c.spec.Durable
			c.metrics.pending.WithLabelValues(name).Set(float64(info.NumPending))
			c.metrics.ackPending.WithLabelValues(name).Set(float64(info.NumAckPending))
			c.metrics.redelivered.WithLabelValues(name).Set(float64(info.NumRedelivered))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
