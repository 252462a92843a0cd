package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Msg is one message to publish.
type Msg struct {
	Subject string
	// ID is the Nats-Msg-Id: the source record's own id (event_id), so that a
	// retried publish, even from another process, is recognised as the same.
	ID     string
	Data   []byte
	Header nats.Header
}

// PubResult is the outcome of one publish.
type PubResult struct {
	Seq       uint64
	Duplicate bool // JetStream already had this ID: accepted, not an error
	Err       error
}

// Publisher publishes to JetStream and waits for the acknowledgements.
type Publisher struct {
	js jetstream.JetStream
	// Timeout bounds the wait for one batch's acknowledgements.
	Timeout time.Duration
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, Timeout: 10 * time.Second}
}

// Publish publishes one message and waits for its acknowledgement.
func (p *Publisher) Publish(ctx context.Context, m Msg) PubResult {
	return p.PublishBatch(ctx, []Msg{m})[0]
}

// Connected returns nil while the NATS connection is up, else why not
// (callers refuse work at once rather than buffer it, see PublishBatch).
func (p *Publisher) Connected() error {
	nc := p.js.Conn()
	if nc == nil || nc.IsConnected() {
		return nil
	}
	switch {
	case nc.IsClosed():
		return nats.ErrConnectionClosed
	case nc.IsReconnecting():
		return nats.ErrConnectionReconnecting
	}
	return nats.ErrDisconnected
}

// PublishBatch publishes msgs asynchronously (pipelined) and waits until every
// one is acknowledged or failed. Results are in input order. A message whose
// acknowledgement did not arrive is reported as failed even though JetStream
// may have stored it: the caller retries with the same ID and the duplicate
// window makes that harmless.
func (p *Publisher) PublishBatch(ctx context.Context, msgs []Msg) []PubResult {
	res := make([]PubResult, len(msgs))
	// While the connection is down, nats.go would buffer the publishes: the
	// caller would wait out the timeout for acknowledgements that cannot come
	// (an ingest request hanging 10 s before its 503), and the buffered
	// messages would still be stored after the reconnect. Refuse at once;
	// the caller retries with the same IDs.
	if err := p.Connected(); err != nil {
		for i, m := range msgs {
			res[i].Err = fmt.Errorf("publish %s: NATS is not connected: %w", m.Subject, err)
		}
		return res
	}
	futs := make([]jetstream.PubAckFuture, len(msgs))
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	for i, m := range msgs {
		nm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: ownHeader(m)}
		// When the connection's window of unacknowledged publishes
		// (AsyncMaxPending) is full, wait for room until the deadline
		// rather than the library's 200 ms: a full window is a burst that
		// the server is working through, not an outage.
		opts := []jetstream.PublishOpt{jetstream.WithStallWait(max(time.Until(deadline), time.Millisecond))}
		if m.ID != "" {
			opts = append(opts, jetstream.WithMsgID(m.ID))
		}
		f, err := p.js.PublishMsgAsync(nm, opts...)
		if err != nil {
			// The rest would fail or stall the same way; the caller retries
			// the batch with the same IDs.
			for j := i; j < len(msgs); j++ {
				res[j].Err = fmt.Errorf("publish %s: %w", msgs[j].Subject, err)
			}
			break
		}
		futs[i] = f
	}
	// nats.go fails the futures pending when the connection drops, but a
	// publish made after that (the drop not yet seen when the loop above
	// checked) is only buffered for the reconnect and its future waits out
	// the whole timeout. Watching the connection turns that into an error
	// within connPoll, like the refusal at the top.
	tick := time.NewTicker(connPoll)
	defer tick.Stop()
	var down error
	for i, f := range futs {
		if f == nil {
			continue
		}
		res[i], down = p.await(ctx, f, msgs[i].Subject, tick.C, down)
	}
	return res
}

// connPoll is how often PublishBatch looks at the connection while it
// waits for acknowledgements.
const connPoll = 100 * time.Millisecond

// await waits for one acknowledgement while the connection is up, and
// returns it with why the connection is down (nil while it is up). Once
// down, it takes only what has already arrived.
func (p *Publisher) await(ctx context.Context, f jetstream.PubAckFuture, subject string, tick <-chan time.Time, down error) (PubResult, error) {
	for down == nil {
		select {
		case ack := <-f.Ok():
			return PubResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
		case err := <-f.Err():
			return PubResult{Err: fmt.Errorf("publish %s: %w", subject, err)}, nil
		case <-ctx.Done():
			return PubResult{Err: fmt.Errorf("publish %s: no acknowledgement: %w", subject, ctx.Err())}, nil
		case <-tick:
			down = p.Connected()
		}
	}
	select {
	case ack := <-f.Ok():
		return PubResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, down
	case err := <-f.Err():
		return PubResult{Err: fmt.Errorf("publish %s: %w", subject, err)}, down
	default:
		return PubResult{Err: fmt.Errorf("publish %s: no acknowledgement, NATS is not connected: %w", subject, down)}, down
	}
}

// MaxAtomicBatch is the most messages of one atomic batch: nats-server's
// default limit (jetstream.limits.max_batch_size).
const MaxAtomicBatch = 1000

// PublishAtomic publishes msgs (at most MaxAtomicBatch) as one JetStream
// atomic batch: all are stored or none, acknowledged once at the commit.
// Under sync_interval "always" the server fsyncs a batch once, not once per
// message. The stream must allow atomic publish (StreamConfigs does). Any
// check failing for one message (a Nats-Msg-Id already stored, an expected
// last subject sequence not met) fails the whole batch; the caller then
// publishes those messages one by one to learn which. While the connection
// is down it fails at once, as PublishBatch does.
func (p *Publisher) PublishAtomic(ctx context.Context, msgs []Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > MaxAtomicBatch {
		return fmt.Errorf("atomic batch of %d messages: at most %d", len(msgs), MaxAtomicBatch)
	}
	if err := p.Connected(); err != nil {
		return fmt.Errorf("publish an atomic batch: NATS is not connected: %w", err)
	}
	nms := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		h := m.Header
		if m.ID != "" {
			h = maps.Clone(h)
			if h == nil {
				h = nats.Header{}
			}
			h.Set(jetstream.MsgIDHeader, m.ID)
		}
		nms[i] = &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no acknowledgement of the atomic batch within %s: %w", timeout, nats.ErrTimeout))
	defer cancel()
	// A commit sent just as the connection drops would wait out the whole
	// timeout for its acknowledgement; watching the connection turns that
	// into an error within connPoll.
	down := make(chan error, 1)
	go func() {
		tick := time.NewTicker(connPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := p.Connected(); err != nil {
					down <- err
					cancel()
					return
				}
			}
		}
	}()
	// No flow-control round trip on the first message: nats.go's request for
	// it ignores ctx and would wait out its own timeout while the
	// connection is down; the commit's acknowledgement reports any refusal.
	_, err := jetstreamext.PublishMsgBatch(ctx, p.js, nms, jetstreamext.BatchFlowControl{})
	if err == nil {
		return nil
	}
	select {
	case derr := <-down:
		return fmt.Errorf("publish an atomic batch of %d: NATS is not connected: %w", len(msgs), derr)
	default:
	}
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		err = errors.Join(err, cause)
	}
	return fmt.Errorf("publish an atomic batch of %d: %w", len(msgs), err)
}

// ownHeader is m's header for one publish: a copy when jetstream will add
// the Nats-Msg-Id to it, so callers may share one header map between
// messages (the library writes into the map it is given).
func ownHeader(m Msg) nats.Header {
	if m.ID == "" || m.Header == nil {
		return m.Header
	}
	return maps.Clone(m.Header)
}

// PublishSync publishes one message with a synchronous request, retrying a
// few times with the same ID on transient errors. For low-rate producers
// (processors, alerter) where simplicity beats pipelining.
func (p *Publisher) PublishSync(ctx context.Context, m Msg) (PubResult, error) {
	nm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: ownHeader(m)}
	var opts []jetstream.PublishOpt
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ack, err := p.js.PublishMsg(ctx, nm, opts...)
		if err == nil {
			return PubResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
		}
		if !IsUnavailable(err) || attempt >= 5 || ctx.Err() != nil {
			return PubResult{Err: err}, fmt.Errorf("publish %s (id %q): %w", m.Subject, m.ID, err)
		}
		select {
		case <-ctx.Done():
			return PubResult{Err: ctx.Err()}, fmt.Errorf("publish %s: %w", m.Subject, errors.Join(err, ctx.Err()))
		case <-time.After(delay):
		}
		delay *= 2
	}
}
