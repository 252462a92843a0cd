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

// Msg is one message: to publish, or as a stream delivered or holds it.
// Handlers receive it by value; it is the project's own type so that no
// stage depends on the JetStream client.
type Msg struct {
	Subject string
	// ID is the Nats-Msg-Id: the source record's own id (an event's ref,
	// never its raw event_id), so that a retried publish, even from another
	// process, is recognised as the same.
	ID     string
	Data   []byte
	Header Header

	// Set on messages read from a stream, zero on those to publish.
	Seq  uint64    // stream sequence
	Time time.Time // when the stream stored it
	// Delivered counts the deliveries of this message to the consumer (1
	// the first time); Pending is how many messages the consumer had not
	// delivered yet when this one was (its lag). Both 0 on direct reads.
	Delivered, Pending uint64

	raw jetstream.Msg // the delivery, for InProgress; nil unless consumed
}

// Header holds a message's headers (nats.go's map type, so that callers
// need not import the client).
type Header = nats.Header

// InProgress tells JetStream that the handler is still working on m, so it
// is not redelivered meanwhile (a handler with long retries calls it every
// AckWait/3 or so). It is not an acknowledgement: the consumer still acks
// or naks by the handler's result. A no-op on messages not consumed.
func (m Msg) InProgress() error {
	if m.raw == nil {
		return nil
	}
	return m.raw.InProgress()
}

// received converts a delivered message.
func received(m jetstream.Msg) (Msg, error) {
	meta, err := m.Metadata()
	if err != nil {
		return Msg{}, fmt.Errorf("message metadata: %w", err)
	}
	h := m.Headers()
	return Msg{Subject: m.Subject(), ID: h.Get(jetstream.MsgIDHeader), Data: m.Data(), Header: h,
		Seq: meta.Sequence.Stream, Time: meta.Timestamp, Delivered: meta.NumDelivered, Pending: meta.NumPending, raw: m}, nil
}

// stored converts a message read directly from a stream.
func stored(m *jetstream.RawStreamMsg) Msg {
	return Msg{Subject: m.Subject, ID: m.Header.Get(jetstream.MsgIDHeader), Data: m.Data, Header: m.Header, Seq: m.Sequence, Time: m.Time}
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

// newPublisher returns a publisher on js (Bus.Publisher).
func newPublisher(js jetstream.JetStream) *Publisher {
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

// Pending is a publish awaiting its acknowledgement (PublishAsync).
type Pending struct{ f jetstream.PubAckFuture }

// PublishAsync publishes m without waiting for its acknowledgement, for a
// producer that pipelines many publishes across its own batches (one
// connection keeps their order) and checks them with Done and Wait. stall
// bounds the wait for room in the connection's window of unacknowledged
// publishes (AsyncMaxPending).
func (p *Publisher) PublishAsync(m Msg, stall time.Duration) (Pending, error) {
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(stall)}
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Data: m.Data, Header: ownHeader(m)}, opts...)
	if err != nil {
		return Pending{}, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return Pending{f}, nil
}

// Done reports, without waiting, whether the acknowledgement came; err is
// the publish's failure.
func (f Pending) Done() (bool, error) {
	select {
	case <-f.f.Ok():
		return true, nil
	case err := <-f.f.Err():
		return true, err
	default:
		return false, nil
	}
}

// Wait waits for the acknowledgement until ctx ends.
func (f Pending) Wait(ctx context.Context) error {
	select {
	case <-f.f.Ok():
		return nil
	case err := <-f.f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
