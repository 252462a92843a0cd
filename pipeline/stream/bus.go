package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is one connection to JetStream and everything epiwatch does with it:
// publishing, consuming, reading streams back, key-value buckets and
// leases. It is the one door to the JetStream client: the stages and
// consumers take a *Bus and never import nats.go themselves, so the ack
// policy and the interpretation of JetStream's errors live here only.
type Bus struct {
	js jetstream.JetStream
	// streams caches stream handles by name: a handle costs a round trip,
	// and the reads by sequence or subject are on hot paths (ingest's
	// read-backs, the processor's corrections).
	streams sync.Map // name → jetstream.Stream
}

// ClientConfig is how a process authenticates to NATS and where its
// connection's drops are logged. At most one of CredsFile, NKeyFile, Token
// and User/Password is used, in that order.
type ClientConfig struct {
	CredsFile, NKeyFile    string
	Token, User, Password  string
	TLSCA, TLSCert, TLSKey string
	// Logger, if not nil, hears disconnects (Warn) and reconnects (Info).
	Logger *slog.Logger
}

// ClientConfigError is a ClientConfig the client cannot use (an unreadable
// NKey seed): the user's configuration to fix, not an unreachable server.
// Field names the setting.
type ClientConfigError struct {
	Field string
	Err   error
}

func (e *ClientConfigError) Error() string { return e.Err.Error() }
func (e *ClientConfigError) Unwrap() error { return e.Err }

func (c ClientConfig) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, &ClientConfigError{Field: "nkey_file", Err: fmt.Errorf("NKey seed %s: %w", c.NKeyFile, err)}
		}
		opts = append(opts, o)
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.Password != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if log := c.Logger; log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil: our own drain at shutdown
					log.Warn("NATS disconnected", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		)
	}
	return opts, nil
}

// Open dials NATS at url as client name (reconnects that never give up, so
// a NATS restart is an outage that heals, not a crash) and returns the bus;
// Close closes its connection.
func Open(url, name string, c ClientConfig) (*Bus, error) {
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	_, js, err := Connect(url, name, opts...)
	if err != nil {
		return nil, err
	}
	return &Bus{js: js}, nil
}

// Ready reports whether JetStream answers (for /readyz).
func (b *Bus) Ready(ctx context.Context) error {
	if nc := b.js.Conn(); nc == nil || !nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	return nil
}

// NewBus wraps a JetStream context made elsewhere (Connect): for test kits
// and tests that also inspect the raw client.
func NewBus(js jetstream.JetStream) *Bus { return &Bus{js: js} }

// Close drains the bus's connection and closes it: messages already
// delivered to the subscriptions are handled and pending publishes flushed,
// for at most 5 s. Call it after the components stopped.
func (b *Bus) Close() {
	nc := b.js.Conn()
	if nc == nil {
		return
	}
	_ = nc.Drain()
	deadline := time.Now().Add(5 * time.Second)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	nc.Close()
}

// JetStream returns the client's JetStream context. It exists for one
// caller, the raw-publish baseline of `epiwatch bench`
// (internal/tools/bench/baseline.go), which measures the client without our
// wrapper; everything else goes through the Bus's methods.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Publisher returns a publisher on the bus.
func (b *Bus) Publisher() *Publisher { return newPublisher(b.js) }

// Connected returns nil while the connection is up, else why not.
func (b *Bus) Connected() error { return b.Publisher().Connected() }

// Ensure creates every stream and key-value bucket that is missing and
// brings existing streams to what epiwatch needs of them (subjects, atomic
// batches, deny delete/purge), but leaves the limits an operator may have
// changed: those differences come back as Drift, for the caller to warn
// about, and only Apply changes them. It is idempotent and runs at the
// start of every component.
func (b *Bus) Ensure(ctx context.Context, c Config) ([]Drift, error) {
	return ensure(ctx, b.js, c, false)
}

// Apply is Ensure that also sets every stream's limits to c (`epiwatch
// migrate --streams`). It returns what it changed.
func (b *Bus) Apply(ctx context.Context, c Config) ([]Drift, error) {
	return ensure(ctx, b.js, c, true)
}

// Consumer creates or updates the durable consumer spec describes. metrics
// may be nil.
func (b *Bus) Consumer(ctx context.Context, spec ConsumerSpec, log *slog.Logger, metrics *Metrics) (*Consumer, error) {
	return newConsumer(ctx, b.js, spec, log, metrics)
}

// RunExclusive runs fn in the one replica holding the lease name (see
// runExclusive for how the lease is held and lost).
func (b *Bus) RunExclusive(ctx context.Context, name, holder string, log *slog.Logger, fn func(ctx context.Context, l *Lease) error) error {
	return runExclusive(ctx, b.js, name, holder, log, fn)
}

// ReadAll hands each message of streamName on filter to each, from start
// (nil: the first) up to the stream's last message when it began (see
// readAll).
func (b *Bus) ReadAll(ctx context.Context, streamName, filter string, start *time.Time, each func(Msg)) (int, error) {
	return readAll(ctx, b, streamName, filter, start, each)
}

// ListDeadLetters returns up to limit dead letters (0: all) with sequence
// ≥ from, of stage only if stage is not empty.
func (b *Bus) ListDeadLetters(ctx context.Context, from uint64, limit int, stage string) ([]StoredDeadLetter, error) {
	return listDeadLetters(ctx, b.js, from, limit, stage)
}

// GetDeadLetter returns one dead letter by sequence.
func (b *Bus) GetDeadLetter(ctx context.Context, seq uint64) (StoredDeadLetter, error) {
	return getDeadLetter(ctx, b.js, seq)
}

// ErrMsgNotFound is returned by GetMsg and LastMsg for a message the stream
// does not hold (never stored, aged out, deleted).
var ErrMsgNotFound = errors.New("message not found")

// ErrStreamNotFound is returned for a stream the server does not have.
var ErrStreamNotFound = errors.New("stream not found")

// ErrConsumerNotFound is returned by ConsumerInfo for a durable consumer
// that does not exist (yet).
var ErrConsumerNotFound = errors.New("consumer not found")

// GetMsg reads the message at seq of streamName.
func (b *Bus) GetMsg(ctx context.Context, streamName string, seq uint64) (Msg, error) {
	return b.getMsg(ctx, streamName, func(s jetstream.Stream) (*jetstream.RawStreamMsg, error) { return s.GetMsg(ctx, seq) })
}

// LastMsg reads the newest message of streamName on subject (a filter may
// have wildcards): how a stage finds an event by its id, or a region's last
// decision.
func (b *Bus) LastMsg(ctx context.Context, streamName, subject string) (Msg, error) {
	return b.getMsg(ctx, streamName, func(s jetstream.Stream) (*jetstream.RawStreamMsg, error) {
		return s.GetLastMsgForSubject(ctx, subject)
	})
}

func (b *Bus) getMsg(ctx context.Context, streamName string, get func(jetstream.Stream) (*jetstream.RawStreamMsg, error)) (Msg, error) {
	s, err := b.stream(ctx, streamName)
	if err != nil {
		return Msg{}, err
	}
	m, err := get(s)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Msg{}, tagged{ErrMsgNotFound, err}
	}
	if err != nil {
		return Msg{}, err
	}
	return stored(m), nil
}

// stream returns the (cached) handle of streamName.
func (b *Bus) stream(ctx context.Context, streamName string) (jetstream.Stream, error) {
	if s, ok := b.streams.Load(streamName); ok {
		return s.(jetstream.Stream), nil
	}
	s, err := b.js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("open stream %s (created by Bus.Ensure): %w", streamName, tagged{ErrStreamNotFound, err})
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s (created by Bus.Ensure): %w", streamName, err)
	}
	b.streams.Store(streamName, s)
	return s, nil
}

// tagged is a client error that also reads as one of ours (errors.Is),
// keeping the client's message.
type tagged struct{ ours, client error }

func (e tagged) Error() string   { return e.client.Error() }
func (e tagged) Unwrap() []error { return []error{e.ours, e.client} }

// StreamState is what a stream holds.
type StreamState struct {
	Msgs, FirstSeq, LastSeq uint64
	FirstTime, LastTime     time.Time
}

// StreamInfo returns the state of streamName.
func (b *Bus) StreamInfo(ctx context.Context, streamName string) (StreamState, error) {
	s, err := b.stream(ctx, streamName)
	if err != nil {
		return StreamState{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return StreamState{}, fmt.Errorf("stream %s info: %w", streamName, err)
	}
	st := info.State
	return StreamState{Msgs: st.Msgs, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, FirstTime: st.FirstTime, LastTime: st.LastTime}, nil
}

// ConsumerState is a durable consumer's server-side progress: what
// readiness checks and drains wait on.
type ConsumerState struct {
	// Delivered is the last stream sequence delivered; AckFloor the stream
	// sequence up to which everything is acknowledged.
	Delivered, AckFloor uint64
	// Pending is not yet delivered; AckPending delivered and not yet
	// acknowledged; Redelivered being redelivered.
	Pending     uint64
	AckPending  int
	Redelivered int
}

func consumerState(info *jetstream.ConsumerInfo) ConsumerState {
	return ConsumerState{Delivered: info.Delivered.Stream, AckFloor: info.AckFloor.Stream, Pending: info.NumPending,
		AckPending: info.NumAckPending, Redelivered: info.NumRedelivered}
}

// ConsumerInfo returns the state of the durable consumer on streamName;
// ErrConsumerNotFound if it does not exist.
func (b *Bus) ConsumerInfo(ctx context.Context, streamName, durable string) (ConsumerState, error) {
	c, err := b.js.Consumer(ctx, streamName, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return ConsumerState{}, tagged{ErrConsumerNotFound, err}
	}
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s on %s: %w", durable, streamName, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return ConsumerState{}, fmt.Errorf("consumer %s on %s info: %w", durable, streamName, err)
	}
	return consumerState(info), nil
}

// ErrDeleteDenied is returned by EraseMsg for a stream that denies deletes
// (created before erasure existed; the server never lifts deny_delete).
var ErrDeleteDenied = errors.New("the stream denies message deletes")

// EraseMsg deletes the message at seq of streamName and has the server
// overwrite its bytes (a secure delete), so the data is gone from the
// stream's files too, not only unlinked. A message already gone is not an
// error: an erasure retried after a crash finds part of its work done.
func (b *Bus) EraseMsg(ctx context.Context, streamName string, seq uint64) error {
	s, err := b.stream(ctx, streamName)
	if err != nil {
		return err
	}
	if s.CachedInfo() != nil && s.CachedInfo().Config.DenyDelete {
		return fmt.Errorf("erase message %d of %s: %w (recreate the stream; README, \"Erasure\")", seq, streamName, ErrDeleteDenied)
	}
	if err := s.SecureDeleteMsg(ctx, seq); err != nil {
		// The server answers a message already gone with one of several
		// codes, formatted into the text (not wrapped): ask instead.
		if _, gerr := s.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return nil
		}
		return fmt.Errorf("erase message %d of %s: %w", seq, streamName, err)
	}
	return nil
}
