// Package stream is epiwatch's one door to JetStream (Bus): it declares the
// streams and buckets, publishes with Nats-Msg-Id de-duplication, consumes
// with one explicit ack policy (nil → ack; permanent error → term + dead
// letter; anything else → nak with backoff) so that no handler acks by
// itself, and turns the client's errors into its own. Other packages see
// only its types (Msg, KV, Reader), never the client's.
package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/epiwatch/epiwatch/schemas"
)

// Config is the JetStream layout.
type Config struct {
	// Replicas per stream (1 for a single server, 3 for a production cluster).
	Replicas int
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. It only
	// makes quick retries free: after it, ClickHouse's replacing tables and the
	// processor's per-event state still drop a re-sent event.
	DuplicateWindow time.Duration
	// EventsMaxBytes and EventsMaxAge are the events stream's retention
	// (0: no limit). What happens at the limit is EventsDiscard's.
	EventsMaxBytes int64
	EventsMaxAge   time.Duration
	// EventsDiscard is DiscardOld (the default, "" too): the oldest events
	// leave the stream — ClickHouse and the processor's checkpoint keep what
	// they made of them — and ingest never stops for want of room. With
	// DiscardNew a full stream refuses publishes and ingest answers 429 with
	// Retry-After: back pressure for operators who would rather stop intake
	// than lose events no consumer has read yet (a sink down for longer than
	// the retention).
	EventsDiscard string
	// LeaseTTL is how long a stateful component's lease outlives its last
	// renewal (DefaultLeaseTTL when 0): the longest a standby waits after
	// the active replica died.
	LeaseTTL time.Duration
}

// DefaultConfig returns the defaults used by `epiwatch run`.
func DefaultConfig() Config {
	return Config{Replicas: 1, DuplicateWindow: 2 * time.Minute, EventsMaxBytes: 20 << 30, EventsMaxAge: DefaultEventsMaxAge, EventsDiscard: DiscardOld}
}

// What the events stream does at its retention limit (Config.EventsDiscard).
const (
	DiscardOld = "old"
	DiscardNew = "new"
)

// DefaultEventsMaxAge keeps events 400 days: a year of history plus the
// longest look-back of a rule set, the detectors' baselines and a replay.
const DefaultEventsMaxAge = 400 * 24 * time.Hour

// Validate checks the settings a stream cannot be created with.
func (c Config) Validate() error {
	switch c.EventsDiscard {
	case "", DiscardOld, DiscardNew:
	default:
		return fmt.Errorf("stream.events_discard: %q (want %q or %q)", c.EventsDiscard, DiscardOld, DiscardNew)
	}
	if c.EventsMaxBytes < 0 || c.EventsMaxAge < 0 {
		return fmt.Errorf("stream.events_max_bytes and stream.events_max_age: must not be negative (0 = no limit)")
	}
	return nil
}

// AsyncMaxPending is the most unacknowledged asynchronous publishes of one
// connection (every PublishBatch in the process shares the window). The
// library's default, 4,000, is a handful of concurrent ingest requests of
// a few hundred events each (plus their digests); beyond the window a
// publish waits for room (see PublishBatch), bounded by the publisher's
// timeout.
const AsyncMaxPending = 16384

// Connect dials NATS with reconnects that never give up, so a NATS restart is
// an outage that heals, not a crash. Components use Open, which returns the
// Bus; Connect is for test kits and tests that inspect the raw client.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	// An acknowledgement that never comes (lost without a reconnect, which
	// would clear them) must not hold its slot of the window forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(AsyncMaxPending), jetstream.WithPublishAsyncTimeout(time.Minute))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream context: %w", err)
	}
	return nc, js, nil
}

// StreamConfigs returns every stream epiwatch uses.
func (c Config) StreamConfigs() []jetstream.StreamConfig {
	if c.Replicas < 1 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	maxBytes := c.EventsMaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	base := func(name, subject, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardNew,
			Duplicates:  c.DuplicateWindow,
			Replicas:    c.Replicas,
			DenyDelete:  true,
			DenyPurge:   true,
			MaxBytes:    -1,
			MaxMsgs:     -1,
		}
	}
	events := base(schemas.StreamEvents, schemas.SubjectEvents, "validated, pseudonymised surveillance events")
	events.MaxBytes = maxBytes
	events.MaxAge = c.EventsMaxAge
	if c.EventsDiscard != DiscardNew {
		events.Discard = jetstream.DiscardOld
	}
	// Ingest publishes each request as atomic batches (PublishAtomic).
	events.AllowAtomicPublish = true
	dlq := base(schemas.StreamDeadLetter, schemas.SubjectDeadLetter, "rejected or unprocessable events with the reason")
	// The two streams that may hold a person's pseudonym allow deleting a
	// message, for `epiwatch erase` only: the pipeline's NATS users are
	// denied $JS.API.STREAM.MSG.DELETE (deploy/*), the eraser's is not.
	// Purge stays denied: nothing may empty them wholesale.
	events.DenyDelete, dlq.DenyDelete = false, false
	erasures := base(schemas.StreamErasures, schemas.SubjectErasures, "append-only audit log of erasures (epiwatch erase)")
	ind := base(schemas.StreamIndicators, schemas.SubjectIndicators, "versioned per-region daily indicators")
	sig := base(schemas.StreamSignals, schemas.SubjectSignals, "versioned per-region aberration signals (early warnings)")
	dec := base(schemas.StreamDecisions, schemas.SubjectDecisions, "restriction decisions")
	alerts := base(schemas.StreamAlerts, schemas.SubjectAlerts, "alert delivery records")
	// Derived streams can be rebuilt by replay; let them age out after a year
	// and drop the oldest when full instead of stopping the processors.
	for _, s := range []*jetstream.StreamConfig{&ind, &sig, &dec, &alerts} {
		s.Discard = jetstream.DiscardOld
		s.MaxAge = 400 * 24 * time.Hour
	}
	// The duplicate window can never exceed MaxAge.
	if events.MaxAge > 0 && events.Duplicates > events.MaxAge {
		events.Duplicates = events.MaxAge
	}
	return []jetstream.StreamConfig{events, dlq, ind, sig, dec, alerts, erasures}
}

// jsErrReplicasNotSupported is nats-server's JSStreamReplicasNotSupportedErr:
// replicas above 1 asked of a server that is not in a JetStream cluster.
const jsErrReplicasNotSupported = 10074

// jsErrNoPlacement is nats-server's JSClusterNoPeersErrF: no server (or
// not enough of them for the replicas) can take the stream, e.g. its
// max_bytes exceeds the storage a server reserves for JetStream.
const jsErrNoPlacement = 10005

// explainReplicas names the setting behind a refusal to replicate or place
// a stream.
func explainReplicas(err error, replicas int) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch {
	case replicas > 1 && apiErr.ErrorCode == jsErrReplicasNotSupported:
		return fmt.Errorf("stream.replicas is %d but the NATS server is not in a JetStream cluster: set stream.replicas: 1, or point nats.url at a cluster (%w)", replicas, err)
	case apiErr.ErrorCode == jsErrNoPlacement:
		return fmt.Errorf("no %d NATS server(s) can hold the stream: lower stream.events_max_bytes below the JetStream storage of each server (max_file_store), or stream.replicas (%w)", replicas, err)
	}
	return err
}

func leaseTTL(c Config) time.Duration {
	if c.LeaseTTL > 0 {
		return c.LeaseTTL
	}
	return DefaultLeaseTTL
}

// Drift is one stream limit whose value in the server differs from the
// configuration.
type Drift struct {
	Stream, Limit string
	Server, Want  string
}

func (d Drift) String() string {
	return fmt.Sprintf("stream %s: %s is %s in the server, %s in the configuration", d.Stream, d.Limit, d.Server, d.Want)
}

// limitsOf lists the limits an operator may tune, by name.
func limitsOf(sc jetstream.StreamConfig) map[string]string {
	return map[string]string{
		"max_age":          sc.MaxAge.String(),
		"max_bytes":        fmt.Sprint(sc.MaxBytes),
		"max_msgs":         fmt.Sprint(sc.MaxMsgs),
		"discard":          sc.Discard.String(),
		"duplicate_window": sc.Duplicates.String(),
		"replicas":         fmt.Sprint(sc.Replicas),
	}
}

// keepLimits copies the operator-tunable limits of have into want.
func keepLimits(want *jetstream.StreamConfig, have jetstream.StreamConfig) {
	want.MaxAge, want.MaxBytes, want.MaxMsgs = have.MaxAge, have.MaxBytes, have.MaxMsgs
	want.Discard, want.Duplicates, want.Replicas = have.Discard, have.Duplicates, have.Replicas
}

func ensure(ctx context.Context, js jetstream.JetStream, c Config, apply bool) ([]Drift, error) {
	var drifts []Drift
	for _, sc := range c.StreamConfigs() {
		s, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err := js.CreateStream(ctx, sc); err != nil {
				return nil, fmt.Errorf("create stream %s: %w", sc.Name, explainReplicas(err, sc.Replicas))
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up stream %s: %w", sc.Name, err)
		}
		have := s.CachedInfo().Config
		hl, wl := limitsOf(have), limitsOf(sc)
		for _, k := range []string{"max_age", "max_bytes", "max_msgs", "discard", "duplicate_window", "replicas"} {
			if hl[k] != wl[k] {
				drifts = append(drifts, Drift{Stream: sc.Name, Limit: k, Server: hl[k], Want: wl[k]})
			}
		}
		want := sc
		if !apply {
			keepLimits(&want, have)
		}
		if have.DenyDelete && !want.DenyDelete {
			// A stream created before erasure existed: the server never
			// lifts deny_delete (nats-server refuses the update), so
			// `epiwatch erase` cannot delete from it until it is recreated
			// (README, "Erasure").
			want.DenyDelete = true
			drifts = append(drifts, Drift{Stream: sc.Name, Limit: "deny_delete", Server: "true", Want: "false"})
		}
		if needsUpdate(have, want) {
			if _, err := js.UpdateStream(ctx, want); err != nil {
				return nil, fmt.Errorf("update stream %s: %w", sc.Name, explainReplicas(err, want.Replicas))
			}
		}
	}
	for _, b := range []jetstream.KeyValueConfig{
		{Bucket: schemas.BucketProcessState, Description: "processor checkpoints: state + stream sequence", History: 1, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1), MaxValueSize: -1},
		{Bucket: schemas.BucketLevels, Description: "restriction level per region", History: 10, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1)},
		{Bucket: schemas.BucketAlertClaims, Description: "create-if-absent claims of alert deliveries", History: 1, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1)},
		{Bucket: schemas.BucketPseudonymKeys, Description: "fingerprint of the pseudonym key behind each key id (never the key)", History: 1, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1)},
		{Bucket: schemas.BucketIDKey, Description: "the id key behind event refs (keyed digests of source and event_id); never rotated", History: 1, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1)},
		{Bucket: schemas.BucketLeases, Description: "one active replica of each stateful component", History: 1, Storage: jetstream.FileStorage, Replicas: max(c.Replicas, 1), TTL: leaseTTL(c)},
	} {
		d, err := ensureBucket(ctx, js, b, apply)
		if err != nil {
			return nil, err
		}
		drifts = append(drifts, d...)
	}
	return drifts, nil
}

// ensureBucket creates the key-value bucket b if it is missing. An existing
// bucket keeps what an operator set (history, TTL, replicas, size): each
// difference is reported as a Drift (Stream "KV_<bucket>", the bucket's
// stream), and only apply (`epiwatch migrate --streams`) changes it.
func ensureBucket(ctx context.Context, js jetstream.JetStream, b jetstream.KeyValueConfig, apply bool) ([]Drift, error) {
	kv, err := js.KeyValue(ctx, b.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("create key-value bucket %s: %w", b.Bucket, explainReplicas(err, b.Replicas))
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up key-value bucket %s: %w", b.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s status: %w", b.Bucket, err)
	}
	replicas := 1
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil {
		replicas = bs.StreamInfo().Config.Replicas
	}
	name := "KV_" + b.Bucket
	var drifts []Drift
	if st.History() != int64(b.History) {
		drifts = append(drifts, Drift{Stream: name, Limit: "history", Server: fmt.Sprint(st.History()), Want: fmt.Sprint(b.History)})
	}
	if st.TTL() != b.TTL {
		drifts = append(drifts, Drift{Stream: name, Limit: "ttl", Server: st.TTL().String(), Want: b.TTL.String()})
	}
	if replicas != b.Replicas {
		drifts = append(drifts, Drift{Stream: name, Limit: "replicas", Server: fmt.Sprint(replicas), Want: fmt.Sprint(b.Replicas)})
	}
	if apply && len(drifts) > 0 {
		if _, err := js.UpdateKeyValue(ctx, b); err != nil {
			return nil, fmt.Errorf("update key-value bucket %s: %w", b.Bucket, explainReplicas(err, b.Replicas))
		}
	}
	return drifts, nil
}

// needsUpdate reports whether the server's stream differs from want in
// anything UpdateStream may change.
func needsUpdate(have, want jetstream.StreamConfig) bool {
	return !slices.Equal(have.Subjects, want.Subjects) || have.Description != want.Description ||
		have.AllowAtomicPublish != want.AllowAtomicPublish || have.DenyDelete != want.DenyDelete ||
		have.DenyPurge != want.DenyPurge || have.MaxAge != want.MaxAge || have.MaxBytes != want.MaxBytes ||
		have.MaxMsgs != want.MaxMsgs || have.Discard != want.Discard || have.Duplicates != want.Duplicates ||
		have.Replicas != want.Replicas
}

// IsUnavailable reports whether err means NATS/JetStream cannot take writes
// right now (disconnected, no responders, timeout): the caller should answer
// 503 and ask to retry, not drop the data.
func IsUnavailable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrAsyncPublishTimeout) || errors.Is(err, nats.ErrNoServers)
}

// IsStreamFull reports whether err is JetStream refusing a publish because the
// stream reached its limits (Discard: New): back pressure.
func IsStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// nats-server errors.json: 10077 JSStreamStoreFailedF ("maximum bytes
		// exceeded", "maximum messages exceeded" under Discard: New), 10023
		// insufficient resources, 10002 account resource limits exceeded.
		switch apiErr.ErrorCode {
		case 10077, 10023, 10002:
			return true
		}
	}
	return false
}

// ExpectFirst returns the headers that make JetStream refuse a publish when
// the stream already holds a message on filter (expected last subject
// sequence 0): a create-if-absent by subject, which IsStoredBefore
// recognises in the refusal.
func ExpectFirst(filter string) Header {
	return Header{
		jetstream.ExpectedLastSubjSeqHeader:     {"0"},
		jetstream.ExpectedLastSubjSeqSubjHeader: {filter},
	}
}

// IsStoredBefore reports whether a publish was refused because its
// expected last subject sequence was not met (see ExpectFirst).
func IsStoredBefore(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// AtomicRefusal names why JetStream refused an atomic batch (PublishAtomic),
// as a metric label: "duplicate_id" (a Nats-Msg-Id already stored),
// "event_id_stored" (an ExpectFirst check failed), "atomic_disabled" (the
// stream does not allow atomic publish), "too_many_inflight", or "other".
func AtomicRefusal(err error) string {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return "other"
	}
	switch apiErr.ErrorCode {
	case jetstreamext.JSErrCodeBatchPublishDuplicateMsgID:
		return "duplicate_id"
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return "event_id_stored"
	case jetstreamext.JSErrCodeBatchPublishNotEnabled:
		return "atomic_disabled"
	case jetstreamext.JSErrCodeAtomicPublishTooManyInflight, jetstreamext.JSErrCodeBatchPublishTooManyInflight:
		return "too_many_inflight"
	}
	return "other"
}
