// Package ingest accepts surveillance reports, rejects bad ones with reasons,
// pseudonymises personal identifiers and publishes each event once to
// JetStream. The HTTP API and the file importer share one path: Submit.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Pseudonymizer replaces national identifiers by keyed pseudonyms and drops
// direct identifiers (pipeline/ingest/pseudo implements it).
type Pseudonymizer interface {
	// Apply validates and pseudonymises every person of e in place. Its errors
	// are reasons for the producer and never contain the raw identifier.
	Apply(e *schemas.Event) error
	// Redact removes personal data from raw bytes of a rejected event before
	// they are dead-lettered, even when they are not valid JSON.
	Redact(raw []byte) []byte
}

// Config bounds what one request may carry.
type Config struct {
	// MaxBodyBytes bounds a request body (after gzip decompression).
	MaxBodyBytes int64
	// MaxBatch bounds the events in one request.
	MaxBatch int
	// PublishTimeout bounds the wait for JetStream's acknowledgements.
	PublishTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 32 << 20, MaxBatch: 10000, PublishTimeout: 10 * time.Second}
}

// Status of one event in a batch.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate" // accepted earlier: already in the stream
	StatusRejected  = "rejected"
)

// Result is the answer for one event of a batch.
type Result struct {
	Index   int    `json:"index"`
	EventID string `json:"event_id,omitempty"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Summary answers a whole batch.
type Summary struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Results    []Result `json:"results"`
}

// ErrUnavailable means JetStream could not take the batch (down, or full):
// nothing in the batch may be assumed accepted; the producer retries it all,
// which the event_id de-duplication makes harmless.
type ErrUnavailable struct {
	Full bool // the stream is at its limits (back pressure), not down
	Err  error
}

func (e *ErrUnavailable) Error() string {
	if e.Full {
		return "event stream is full; retry later: " + e.Err.Error()
	}
	return "event stream unavailable; retry later: " + e.Err.Error()
}
func (e *ErrUnavailable) Unwrap() error { return e.Err }

// Ingester validates, pseudonymises and publishes events.
type Ingester struct {
	cfg       Config
	contract  *schemas.Contract
	validator *schemas.Validator
	pseudo    Pseudonymizer
	pub       *stream.Publisher
	digests   jetstream.KeyValue
	log       *slog.Logger
	m         *metrics
}

// Deps are the Ingester's collaborators.
type Deps struct {
	Contract  *schemas.Contract
	Validator *schemas.Validator
	Pseudo    Pseudonymizer
	Publisher *stream.Publisher
	// Digests (optional) remembers a digest of every accepted event by
	// event_id (bucket schemas.BucketEventDigests), so an event_id reused
	// with different content is rejected instead of silently dropped as a
	// duplicate. Nil skips the check.
	Digests  jetstream.KeyValue
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// New returns an Ingester.
func New(cfg Config, d Deps) (*Ingester, error) {
	if d.Contract == nil || d.Validator == nil || d.Pseudo == nil || d.Publisher == nil {
		return nil, errors.New("ingest: contract, validator, pseudonymizer and publisher are required")
	}
	def := DefaultConfig()
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = def.PublishTimeout
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d.Publisher.Timeout = cfg.PublishTimeout
	return &Ingester{cfg: cfg, contract: d.Contract, validator: d.Validator, pseudo: d.Pseudo, pub: d.Publisher, digests: d.Digests, log: log, m: newMetrics(d.Registry)}, nil
}

// Config returns the effective configuration.
func (in *Ingester) Config() Config { return in.cfg }

// Prepared is an event that passed every check, ready to publish.
type Prepared struct {
	Index int
	Event *schemas.Event
	Data  []byte // pseudonymised JSON: the bytes the stream carries
}

// Prepare decodes, validates and pseudonymises raw events. It does no I/O.
// Rejected events come back as dead letters with redacted bytes.
func (in *Ingester) Prepare(raws [][]byte, firstIndex int) (ok []Prepared, rejected []stream.DeadLetter) {
	for i, raw := range raws {
		idx := firstIndex + i
		e, err := in.contract.Decode(raw)
		if err == nil {
			err = in.validator.Validate(e)
		}
		if err == nil {
			err = in.pseudo.Apply(e)
		}
		var data []byte
		if err == nil {
			data, err = json.Marshal(e)
		}
		if err != nil {
			dl := stream.DeadLetter{Stage: stream.StageIngest, Reason: err.Error(), Data: in.pseudo.Redact(raw), Index: idx}
			if e != nil {
				dl.Type, dl.EventID = string(e.Type), e.EventID
			} else {
				dl.Type, dl.EventID = peekTypeAndID(raw)
			}
			rejected = append(rejected, dl)
			in.m.rejected(dl.Type, reasonLabel(err))
			continue
		}
		ok = append(ok, Prepared{Index: idx, Event: e, Data: data})
	}
	return ok, rejected
}

// digestReads bounds the concurrent reads of existing digests (an event_id
// seen before: retries and re-imports).
const digestReads = 16

// digestKey maps any event_id to a valid KV key.
func digestKey(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return hex.EncodeToString(sum[:20])
}

// checkReuse records each prepared event's content digest under its
// event_id and rejects events whose event_id was accepted before with other
// content. The same content again passes (a retry: the publish then reports
// a duplicate, or stores it if the first attempt never got that far).
//
// The digests are written like the events: one pipelined PublishBatch of
// KV "create" messages (expected last subject sequence 0), so they cost one
// round of acknowledgements per request and fail fast while NATS is down.
func (in *Ingester) checkReuse(ctx context.Context, ok []Prepared) (keep []Prepared, rejected []stream.DeadLetter, err error) {
	if in.digests == nil || len(ok) == 0 {
		return ok, nil, nil
	}
	reused := make([]bool, len(ok))
	digests := make([]string, len(ok))
	// Repeats inside the batch are compared with their first occurrence
	// (deterministically: the earlier one wins); only first occurrences go
	// to the bucket.
	first := make(map[string]int, len(ok))
	var msgs []stream.Msg
	var idx []int
	for i, p := range ok {
		if j, seen := first[p.Event.EventID]; seen {
			reused[i] = !bytes.Equal(ok[j].Data, p.Data)
			continue
		}
		first[p.Event.EventID] = i
		sum := sha256.Sum256(p.Data)
		digests[i] = hex.EncodeToString(sum[:16])
		msgs = append(msgs, stream.Msg{
			Subject: "$KV." + schemas.BucketEventDigests + "." + digestKey(p.Event.EventID),
			Data:    []byte(digests[i]),
			Header:  nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}},
		})
		idx = append(idx, i)
	}
	// Keys that exist already: read them back and compare.
	var seen []int
	for k, r := range in.pub.PublishBatch(ctx, msgs) {
		var apiErr *jetstream.APIError
		switch {
		case r.Err == nil:
		case errors.As(r.Err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			seen = append(seen, idx[k])
		default:
			return nil, nil, fmt.Errorf("event digest of %s: %w", ok[idx[k]].Event.EventID, r.Err)
		}
	}
	errs := make([]error, len(ok))
	sem := make(chan struct{}, digestReads)
	var wg sync.WaitGroup
	for _, i := range seen {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e, err := in.digests.Get(ctx, digestKey(ok[i].Event.EventID))
			if err == nil {
				reused[i] = string(e.Value()) != digests[i]
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, p := range ok {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("event digest of %s: %w", p.Event.EventID, errs[i])
		}
		if reused[i] {
			reason := "event_id was already accepted with different content; a different event (or a correction) needs its own event_id"
			rejected = append(rejected, stream.DeadLetter{Stage: stream.StageIngest, Reason: reason, Data: p.Data, Index: p.Index, Type: string(p.Event.Type), EventID: p.Event.EventID})
			in.m.rejected(string(p.Event.Type), "event_id_reused")
			continue
		}
		keep = append(keep, p)
	}
	return keep, rejected, nil
}

// Submit runs a batch through Prepare and publishes it; it returns only after
// JetStream acknowledged every accepted event and stored every dead letter.
// An *ErrUnavailable error means the batch must be retried as a whole.
func (in *Ingester) Submit(ctx context.Context, raws [][]byte) (*Summary, error) {
	sum := &Summary{Results: make([]Result, len(raws))}
	ok, rejected := in.Prepare(raws, 0)
	ok, reused, err := in.checkReuse(ctx, ok)
	if err != nil {
		return nil, in.unavailable(err)
	}
	rejected = append(rejected, reused...)
	msgs := make([]stream.Msg, len(ok))
	for i, p := range ok {
		msgs[i] = stream.Msg{Subject: schemas.EventSubject(p.Event.Type, p.Event.Region), ID: p.Event.ID(), Data: p.Data}
	}
	start := time.Now()
	res := in.pub.PublishBatch(ctx, msgs)
	in.m.publishLatency.Observe(time.Since(start).Seconds())
	for i, r := range res {
		if r.Err != nil {
			return nil, in.unavailable(r.Err)
		}
		p := ok[i]
		st := StatusAccepted
		if r.Duplicate {
			st = StatusDuplicate
			sum.Duplicates++
		} else {
			sum.Accepted++
		}
		in.m.accepted(string(p.Event.Type), st)
		sum.Results[p.Index] = Result{Index: p.Index, EventID: p.Event.EventID, Status: st}
	}
	if err := in.pub.PublishDeadLetters(ctx, rejected); err != nil {
		return nil, in.unavailable(err)
	}
	for _, dl := range rejected {
		sum.Rejected++
		sum.Results[dl.Index] = Result{Index: dl.Index, EventID: dl.EventID, Status: StatusRejected, Reason: dl.Reason}
	}
	return sum, nil
}

func (in *Ingester) unavailable(err error) error {
	full := stream.IsStreamFull(err)
	in.m.unavailable(full)
	in.log.Warn("publish failed; batch refused", "stream_full", full, "err", err)
	return &ErrUnavailable{Full: full, Err: err}
}

// peekTypeAndID salvages type and event_id from an event the contract
// rejected, for the answer and the dead-letter subject.
func peekTypeAndID(raw []byte) (typ, id string) {
	var v struct {
		Type    any `json:"type"`
		EventID any `json:"event_id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return "", ""
	}
	typ, _ = v.Type.(string)
	id, _ = v.EventID.(string)
	if len(id) > schemas.MaxEventIDLen {
		id = id[:schemas.MaxEventIDLen]
	}
	return typ, id
}

// reasonLabel maps a rejection to a bounded metric label: the first field
// named, or the kind of failure.
func reasonLabel(err error) string {
	var ve *schemas.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		p := ve.Problems[0]
		if p.Field == "" {
			if len(p.Reason) > 14 && p.Reason[:14] == "malformed JSON" {
				return "malformed_json"
			}
			return "invalid"
		}
		f := p.Field
		for i := 0; i < len(f); i++ {
			if f[i] == '.' || f[i] == '[' {
				f = f[:i]
				break
			}
		}
		return f
	}
	return "invalid"
}
