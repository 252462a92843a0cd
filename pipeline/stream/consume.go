package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/schemas"
)

// permanentError marks input that will never succeed (malformed, invalid):
// the consumer terminates it and keeps a dead-letter copy with the reason.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so the consumer dead-letters the message instead of
// retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// BatchError reports per-message permanent failures of a batch whose other
// messages were handled: those are acked, the rejected ones dead-lettered.
type BatchError struct {
	Rejected map[int]error // index in the batch → reason
}

func (b *BatchError) Error() string {
	return fmt.Sprintf("%d messages of the batch rejected", len(b.Rejected))
}

// Handler handles one message. It never acks: nil → ack, Permanent → term +
// dead letter, other errors → nak with backoff.
type Handler func(ctx context.Context, m Msg) error

// BatchHandler handles a batch. nil → ack all; *BatchError → ack all but the
// rejected, which are dead-lettered; any other error → the whole batch is
// retried with backoff while kept in progress (the handler must be
// idempotent, e.g. replacing rows keyed by event_id).
type BatchHandler func(ctx context.Context, msgs []Msg) error

// ConsumerSpec declares a durable pull consumer and how it is driven.
type ConsumerSpec struct {
	Stream         string
	Durable        string
	Description    string
	FilterSubjects []string
	// Stage names the consumer in dead letters (process, sink…).
	Stage string
	// BatchSize is the most messages fetched at once; MaxWait is how long a
	// fetch waits to fill it (the flush age of a batch sink).
	BatchSize int
	MaxWait   time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages; it must exceed BatchSize
	// (the server default, 1000, is too low for big sink batches).
	MaxAckPending int
	// RetryMin/RetryMax bound the backoff between retries of a failing batch or
	// the nak delay of a failing message.
	RetryMin, RetryMax time.Duration
}

func (s *ConsumerSpec) defaults() {
	if s.BatchSize <= 0 {
		s.BatchSize = 500
	}
	if s.MaxWait <= 0 {
		s.MaxWait = 500 * time.Millisecond
	}
	if s.AckWait <= 0 {
		s.AckWait = 60 * time.Second
	}
	if s.MaxAckPending <= 0 {
		s.MaxAckPending = max(4*s.BatchSize, 10000)
	}
	if s.RetryMin <= 0 {
		s.RetryMin = 250 * time.Millisecond
	}
	if s.RetryMax <= 0 {
		s.RetryMax = 30 * time.Second
	}
	if s.Stage == "" {
		s.Stage = s.Durable
	}
}

// Consumer drives a durable pull consumer with the house ack policy.
type Consumer struct {
	js      jetstream.JetStream
	spec    ConsumerSpec
	cons    jetstream.Consumer
	dlq     *Publisher
	log     *slog.Logger
	metrics *Metrics
}

// newConsumer creates or updates the durable consumer (Bus.Consumer).
func newConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, log *slog.Logger, metrics *Metrics) (*Consumer, error) {
	spec.defaults()
	cfg := jetstream.ConsumerConfig{
		Durable:         spec.Durable,
		Description:     spec.Description,
		AckPolicy:       jetstream.AckExplicitPolicy,
		AckWait:         spec.AckWait,
		MaxAckPending:   spec.MaxAckPending,
		DeliverPolicy:   jetstream.DeliverAllPolicy,
		MaxDeliver:      -1,
		MaxRequestBatch: 0,
	}
	if len(spec.FilterSubjects) == 1 {
		cfg.FilterSubject = spec.FilterSubjects[0]
	} else if len(spec.FilterSubjects) > 1 {
		cfg.FilterSubjects = spec.FilterSubjects
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{js: js, spec: spec, cons: cons, dlq: newPublisher(js), log: log.With("consumer", spec.Durable), metrics: metrics}, nil
}

// State returns the consumer's server-side progress (delivered, pending,
// redelivered).
func (c *Consumer) State(ctx context.Context) (ConsumerState, error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return ConsumerState{}, err
	}
	return consumerState(info), nil
}

// Run handles messages one at a time until ctx is cancelled.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	return c.loop(ctx, func(ctx context.Context, msgs []jetstream.Msg) {
		for _, m := range msgs {
			msg, err := received(m)
			if err == nil {
				err = h(ctx, msg)
			} else {
				err = Permanent(err)
			}
			c.settle(ctx, m, err)
		}
	})
}

// RunBatch hands whole fetches to h until ctx is cancelled. A failing batch is
// retried with exponential backoff (kept alive with InProgress so it is not
// redelivered meanwhile) until it succeeds or ctx ends; then it is nak'ed and
// redelivered to whoever runs next.
func (c *Consumer) RunBatch(ctx context.Context, h BatchHandler) error {
	return c.loop(ctx, func(ctx context.Context, all []jetstream.Msg) {
		// A message without metadata (never from a stream) is dead-lettered;
		// the handler gets the others, msgs[i] being in[i].
		msgs := make([]jetstream.Msg, 0, len(all))
		in := make([]Msg, 0, len(all))
		for _, m := range all {
			msg, err := received(m)
			if err != nil {
				c.settle(ctx, m, Permanent(err))
				continue
			}
			msgs, in = append(msgs, m), append(in, msg)
		}
		if len(in) == 0 {
			return
		}
		delay := c.spec.RetryMin
		for attempt := 1; ; attempt++ {
			// The handler runs to completion even when shutdown starts, so a
			// batch half-written at cancel is finished, then acked.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.spec.AckWait/2)
			err := h(hctx, in)
			cancel()
			var be *BatchError
			switch {
			case err == nil:
				for _, m := range msgs {
					c.settle(ctx, m, nil)
				}
				return
			case errors.As(err, &be):
				for i, m := range msgs {
					if r := be.Rejected[i]; r != nil {
						c.settle(ctx, m, Permanent(r))
					} else {
						c.settle(ctx, m, nil)
					}
				}
				return
			case IsPermanent(err):
				for _, m := range msgs {
					c.settle(ctx, m, err)
				}
				return
			}
			c.metrics.retry(c.spec.Durable)
			c.log.Warn("batch failed; will retry", "attempt", attempt, "messages", len(msgs), "retry_in", delay, "err", err)
			if !c.wait(ctx, delay, msgs) {
				for _, m := range msgs {
					_ = m.Nak()
				}
				return
			}
			delay = min(delay*2, c.spec.RetryMax)
		}
	})
}

// wait sleeps d while keeping msgs in progress; false if ctx ended.
func (c *Consumer) wait(ctx context.Context, d time.Duration, msgs []jetstream.Msg) bool {
	keep := time.NewTicker(max(c.spec.AckWait/3, 100*time.Millisecond))
	defer keep.Stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			for _, m := range msgs {
				_ = m.InProgress()
			}
			return true
		case <-keep.C:
			for _, m := range msgs {
				_ = m.InProgress()
			}
		}
	}
}

func (c *Consumer) loop(ctx context.Context, handle func(context.Context, []jetstream.Msg)) error {
	fetchDelay := c.spec.RetryMin
	for ctx.Err() == nil {
		batch, err := c.cons.Fetch(c.spec.BatchSize, jetstream.FetchMaxWait(c.spec.MaxWait))
		if err != nil {
			c.log.Warn("fetch failed; retrying", "err", err, "retry_in", fetchDelay)
			if !sleep(ctx, fetchDelay) {
				break
			}
			fetchDelay = min(fetchDelay*2, c.spec.RetryMax)
			continue
		}
		msgs := make([]jetstream.Msg, 0, c.spec.BatchSize)
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			c.log.Debug("fetch ended with error", "err", err, "got", len(msgs))
		}
		if len(msgs) == 0 {
			continue
		}
		fetchDelay = c.spec.RetryMin
		c.metrics.delivered(c.spec.Durable, msgs)
		handle(ctx, msgs)
	}
	return nil
}

// settle applies the ack policy to one message.
func (c *Consumer) settle(ctx context.Context, m jetstream.Msg, err error) {
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			c.log.Warn("ack failed; message will be redelivered", "err", aerr)
		}
		c.metrics.outcome(c.spec.Durable, "ack")
	case IsPermanent(err):
		meta, _ := m.Metadata()
		dl := DeadLetter{Stage: c.spec.Stage, Type: schemas.EventSubjectType(m.Subject()), Reason: err.Error(), Data: m.Data(), Subject: m.Subject(), Ref: schemas.EventSubjectRef(m.Subject()), Index: -1}
		if meta != nil {
			dl.Sequence = meta.Sequence.Stream
		}
		if perr := c.dlq.PublishDeadLetters(context.WithoutCancel(ctx), []DeadLetter{dl}); perr != nil {
			// Without a dead-letter copy the message must not be dropped.
			c.log.Error("dead-letter publish failed; message will be redelivered", "err", perr)
			_ = m.NakWithDelay(c.spec.RetryMax)
			return
		}
		_ = m.TermWithReason(truncate(err.Error(), 200))
		c.log.Warn("message dead-lettered", "subject", m.Subject(), "reason", err)
		c.metrics.outcome(c.spec.Durable, "dead_letter")
	default:
		meta, _ := m.Metadata()
		delay := c.spec.RetryMin
		if meta != nil {
			for i := uint64(1); i < meta.NumDelivered && delay < c.spec.RetryMax; i++ {
				delay *= 2
			}
		}
		_ = m.NakWithDelay(min(delay, c.spec.RetryMax))
		c.log.Warn("message failed; redelivery scheduled", "subject", m.Subject(), "err", err)
		c.metrics.outcome(c.spec.Durable, "nak")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
