package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadSpec says where a Reader starts and what it reads.
type ReadSpec struct {
	// Filter lists the subjects read (none: all).
	Filter []string
	// FromSeq is the first sequence read; Since, if set instead, the time
	// of the first message read. Neither: the stream's first message.
	FromSeq uint64
	Since   *time.Time
	// ResetAttempts bounds the attempts (1 s, 2 s, 4 s… apart) to recreate
	// the server-side consumer after it was lost: by default the client
	// retries for ever, deaf to ctx, and a closed connection would hang the
	// reader. 0 keeps the default.
	ResetAttempts int
	// PullAhead is how many messages Next keeps pulling ahead (0: 500).
	PullAhead int
}

// Reader reads a stream in order through an ordered consumer: nothing is
// acknowledged and nothing stays behind on the server. It is how a stage
// rebuilds its state, catches up, or reads a subject's history.
type Reader struct {
	js   jetstream.JetStream
	name string
	oc   jetstream.Consumer
	spec ReadSpec
	it   jetstream.MessagesContext
}

// Reader starts reading streamName as spec says. Stop it when done.
func (b *Bus) Reader(ctx context.Context, streamName string, spec ReadSpec) (*Reader, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: spec.Filter, MaxResetAttempts: spec.ResetAttempts, InactiveThreshold: 30 * time.Second}
	switch {
	case spec.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.FromSeq
	case spec.Since != nil:
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, spec.Since
	}
	oc, err := b.js.OrderedConsumer(ctx, streamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", streamName, err)
	}
	return &Reader{js: b.js, name: streamName, oc: oc, spec: spec}, nil
}

// Pending is how many messages the reader had ahead of it when it started.
func (r *Reader) Pending() uint64 {
	if info := r.oc.CachedInfo(); info != nil {
		return info.NumPending
	}
	return 0
}

// Fetch returns up to n messages, waiting until it has n or wait has passed
// (Next, instead, returns each as it comes). Fewer (or none) is not an
// error: a fetch that ends early hands over what it got. An error means
// the fetch could not be made, or the connection is closed.
func (r *Reader) Fetch(n int, wait time.Duration) ([]Msg, error) {
	if nc := r.js.Conn(); nc != nil && nc.IsClosed() {
		return nil, fmt.Errorf("read %s: %w", r.name, nats.ErrConnectionClosed)
	}
	batch, err := r.oc.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, fmt.Errorf("read %s: fetch: %w", r.name, err)
	}
	var msgs []Msg
	for m := range batch.Messages() {
		msg, err := received(m)
		if err != nil {
			return msgs, fmt.Errorf("read %s: %w", r.name, err)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// ErrNoMessage is Next finding nothing within its wait: the reader has read
// everything the stream holds (or the rest aged out meanwhile).
var ErrNoMessage = errors.New("no message within the wait")

// Next returns the next message, waiting at most wait; ErrNoMessage if none
// came. Messages are pulled ahead (ReadSpec.PullAhead) while the caller
// works on the previous ones.
func (r *Reader) Next(ctx context.Context, wait time.Duration) (Msg, error) {
	if r.it == nil {
		it, err := r.oc.Messages(jetstream.PullMaxMessages(cmp.Or(r.spec.PullAhead, 500)))
		if err != nil {
			return Msg{}, fmt.Errorf("read %s: %w", r.name, err)
		}
		r.it = it
	}
	nctx, cancel := context.WithTimeout(ctx, wait)
	m, err := r.it.Next(jetstream.NextContext(nctx))
	cancel()
	if ctx.Err() != nil {
		return Msg{}, ctx.Err()
	}
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return Msg{}, ErrNoMessage
	}
	if err != nil {
		return Msg{}, fmt.Errorf("read %s: %w", r.name, err)
	}
	return received(m)
}

// Stop releases the reader.
func (r *Reader) Stop() {
	if r.it != nil {
		r.it.Stop()
	}
}

// readAll is Bus.ReadAll: a Reader from start up to the stream's last
// message when it began. A pause of 2 s with nothing delivered means the
// rest aged out meanwhile and ends the read.
func readAll(ctx context.Context, b *Bus, streamName, filter string, start *time.Time, each func(Msg)) (int, error) {
	st, err := b.StreamInfo(ctx, streamName)
	if err != nil {
		return 0, err
	}
	if st.Msgs == 0 {
		return 0, nil
	}
	r, err := b.Reader(ctx, streamName, ReadSpec{Filter: []string{filter}, Since: start, PullAhead: 2000})
	if err != nil {
		return 0, err
	}
	defer r.Stop()
	n := 0
	for {
		m, err := r.Next(ctx, 2*time.Second)
		if errors.Is(err, ErrNoMessage) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		each(m)
		n++
		if m.Seq >= st.LastSeq {
			return n, nil
		}
	}
}
