// Package ingest accepts surveillance reports, rejects bad ones with reasons,
// pseudonymises personal identifiers and publishes each event once to
// JetStream. The HTTP API and the file importer share one path: Submit.
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// PublishEach publishes a request's events one by one (pipelined) rather
	// than as atomic batches. Atomic batches are what make the default
	// sync_interval "always" fast (one fsync per batch); with a relaxed
	// sync_interval one by one costs less CPU (see the README's performance).
	PublishEach bool
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
	bus       *stream.Bus
	refs      *schemas.EventRefs
	log       *slog.Logger
	m         *metrics
}

// Deps are the Ingester's collaborators.
type Deps struct {
	Contract  *schemas.Contract
	Validator *schemas.Validator
	Pseudo    Pseudonymizer
	// Bus publishes the events and reads back the events stream when an
	// event_id arrives again, so that one reused with different content is
	// rejected instead of silently dropped as a duplicate.
	Bus *stream.Bus
	// Refs name events in subjects, message ids and dead-letter headers
	// (stream.LoadEventRefs: the deployment's id key).
	Refs     *schemas.EventRefs
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// New returns an Ingester.
func New(cfg Config, d Deps) (*Ingester, error) {
	if d.Contract == nil || d.Validator == nil || d.Pseudo == nil || d.Bus == nil || d.Refs == nil {
		return nil, errors.New("ingest: contract, validator, pseudonymizer, bus and event refs are required")
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
	pub := d.Bus.Publisher()
	pub.Timeout = cfg.PublishTimeout
	return &Ingester{cfg: cfg, contract: d.Contract, validator: d.Validator, pseudo: d.Pseudo, pub: pub, bus: d.Bus, refs: d.Refs, log: log, m: newMetrics(d.Registry)}, nil
}

// Config returns the effective configuration.
func (in *Ingester) Config() Config { return in.cfg }

// Prepared is an event that passed every check, ready to publish.
type Prepared struct {
	Index int
	Event *schemas.Event
	Data  []byte // pseudonymised JSON: the bytes the stream carries
	// Raw is the event as received: an event_id stored before is compared
	// with it again under the stored event's key (retries across a key
	// rotation).
	Raw []byte
}

// KeyedPseudonymizer is a Pseudonymizer that can also pseudonymise with a
// given key of its ring (pseudo.Pseudonymizer is one).
type KeyedPseudonymizer interface {
	ApplyWithKey(e *schemas.Event, keyID string) error
}

// Prepare decodes, validates and pseudonymises raw events. It does no I/O.
// Rejected events come back as dead letters with redacted bytes.
func (in *Ingester) Prepare(raws [][]byte, firstIndex int) (ok []Prepared, rejected []stream.DeadLetter) {
	return in.prepare(raws, firstIndex, in.contract.Decode)
}

// prepare is Prepare with the decoder of the raw events: the producers'
// contract, or decodeKept for dead letters replayed.
func (in *Ingester) prepare(raws [][]byte, firstIndex int, decode func([]byte) (*schemas.Event, error)) (ok []Prepared, rejected []stream.DeadLetter) {
	for i, raw := range raws {
		idx := firstIndex + i
		e, err := decode(raw)
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
			dl := stream.DeadLetter{Stage: schemas.DeadLetterStageIngest, Reason: err.Error(), Data: in.deadLetterData(raw), Index: idx}
			var source string
			if e != nil {
				dl.Type, dl.EventID, source = string(e.Type), e.EventID, e.Source
			} else {
				dl.Type, dl.EventID, source = peekEvent(raw)
			}
			if dl.EventID != "" {
				dl.Ref = in.refs.Ref(source, dl.EventID)
			}
			if schemas.ScanPersonalData(dl.EventID) != schemas.NoPersonalData {
				// Rejected for it: neither the answer nor the dead
				// letter's header may carry it.
				dl.EventID = ""
			}
			rejected = append(rejected, dl)
			in.m.rejected(dl.Type, reasonLabel(err))
			continue
		}
		ok = append(ok, Prepared{Index: idx, Event: e, Data: data, Raw: raw})
	}
	return ok, rejected
}

// deadLetterData is what the dead letter of a rejected event keeps. An event
// that decodes and whose persons pseudonymise (it was rejected for another
// reason) is kept pseudonymised, as it would have been stored, then
// redacted: its persons carry pseudonym and key_id, so once its problem is
// fixed `epiwatch deadletter replay` can submit it again without anyone
// re-sending the national ID (ingest takes a pre-computed pseudonym with the
// id of its key). Anything else is redacted as received: a national ID that
// does not validate is never stored, not even pseudonymised.
func (in *Ingester) deadLetterData(raw []byte) []byte {
	if e, err := in.contract.Decode(raw); err == nil && (e.Person != nil || e.IndexPerson != nil || e.ContactPerson != nil) && in.pseudo.Apply(e) == nil {
		if data, err := json.Marshal(e); err == nil {
			return in.pseudo.Redact(data)
		}
	}
	return in.pseudo.Redact(raw)
}

// storedReads bounds the concurrent reads of events already stored under an
// event_id seen before (retries and re-imports).
const storedReads = 16

// Submit runs a batch through Prepare and publishes it; it returns only after
// JetStream acknowledged every accepted event and stored every dead letter.
// An *ErrUnavailable error means the batch must be retried as a whole.
//
// Each event is published on its subject (schemas.EventRefs.Subject: its
// ref, a keyed digest of source and event_id, never the event_id) with the
// ref as Nats-Msg-Id, expecting no message yet on its ref's filter, so the
// stream stores a source's event_id at most once, in the same write as the
// event; two sources' equal event_ids are two events. A publish refused for
// that (an event_id of the source stored earlier)
// or acknowledged as a Nats-Msg-Id duplicate (within the duplicate window,
// including a repeat inside this batch) is compared with what is stored: the
// same bytes are a retry (duplicate), other bytes reuse the event_id
// (rejected, dead-lettered). See publish for the atomic batches.
func (in *Ingester) Submit(ctx context.Context, raws [][]byte) (*Summary, error) {
	return in.submit(ctx, raws, in.contract.Decode)
}

// SubmitDeadLetters is Submit for the data of ingest dead letters, replayed
// once their problem is fixed (`epiwatch deadletter replay`). Their persons
// are already pseudonymised (deadLetterData) — a form the producers'
// contract does not take, since producers send national IDs — so they are
// decoded as the stream's events are, unknown fields refused, and scanned
// for personal data, validated and pseudonymised (a kept pseudonym must name
// a key of the ring) exactly as Submit does. A dead letter that still holds
// a national ID goes through the same path.
func (in *Ingester) SubmitDeadLetters(ctx context.Context, raws [][]byte) (*Summary, error) {
	return in.submit(ctx, raws, decodeKept)
}

// decodeKept decodes a dead letter's data: the stored event form, strictly.
func decodeKept(raw []byte) (*schemas.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e schemas.Event
	if err := dec.Decode(&e); err != nil {
		return nil, &schemas.ValidationError{Problems: []schemas.FieldError{{Reason: "a dead letter that is not an event: " + err.Error()}}}
	}
	if dec.More() {
		return nil, &schemas.ValidationError{Problems: []schemas.FieldError{{Reason: "a dead letter that is not one event: data after it"}}}
	}
	if p := schemas.PersonalDataProblems(&e); len(p) > 0 {
		return nil, &schemas.ValidationError{Problems: p}
	}
	return &e, nil
}

func (in *Ingester) submit(ctx context.Context, raws [][]byte, decode func([]byte) (*schemas.Event, error)) (*Summary, error) {
	sum := &Summary{Results: make([]Result, len(raws))}
	ok, rejected := in.prepare(raws, 0, decode)
	ok, bad, err := in.checkCorrections(ctx, ok)
	if err != nil {
		return nil, in.unavailable(err)
	}
	rejected = append(rejected, bad...)
	msgs := make([]stream.Msg, len(ok))
	for i, p := range ok {
		msgs[i] = in.Msg(p)
	}
	start := time.Now()
	res, err := in.publish(ctx, msgs)
	in.m.publishLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, in.unavailable(err)
	}
	var again []int // stored before: compare
	for i, r := range res {
		switch {
		case r.Err == nil && !r.Duplicate:
			in.settle(sum, ok[i], StatusAccepted)
		case r.Err == nil || stream.IsStoredBefore(r.Err): // the stream holds the event_id already
			again = append(again, i)
		default:
			return nil, in.unavailable(r.Err)
		}
	}
	same, err := in.sameAsStored(ctx, ok, res, again)
	if err != nil {
		return nil, in.unavailable(err)
	}
	for k, i := range again {
		p := ok[i]
		if same[k] {
			in.settle(sum, p, StatusDuplicate)
			continue
		}
		reason := "event_id was already accepted with different content; a different event (or a correction) needs its own event_id"
		rejected = append(rejected, stream.DeadLetter{Stage: schemas.DeadLetterStageIngest, Reason: reason, Data: p.Data, Index: p.Index, Type: string(p.Event.Type), EventID: p.Event.EventID, Ref: msgs[i].ID})
		in.m.rejected(string(p.Event.Type), "event_id_reused")
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

// Msg is the message Submit publishes for p: on its subject (its ref: a
// keyed digest of source and event_id), with the ref as Nats-Msg-Id and
// expecting no message yet on the ref's filter.
func (in *Ingester) Msg(p Prepared) stream.Msg {
	ref := in.refs.Ref(p.Event.Source, p.Event.EventID)
	return stream.Msg{
		Subject: schemas.RefSubject(ref, p.Event.Type, p.Event.Region),
		ID:      ref,
		Data:    p.Data,
		Header:  stream.ExpectFirst(schemas.SubjectEvents + "." + ref + ".>"),
	}
}

// checkCorrections checks every event that supersedes or retracts another:
// the corrected event must exist — stored, or earlier in the same request —
// among the events of the same source (event_ids are scoped to their
// producer, and a producer corrects only its own reports: the target is
// looked up by its ref under the correction's source), be of the same type
// (a new version) or a case or lab test (a retraction), and a retraction
// must name the corrected event's region. Events that fail are
// returned as dead letters with the reason; an error means the stream could
// not be read.
func (in *Ingester) checkCorrections(ctx context.Context, ok []Prepared) ([]Prepared, []stream.DeadLetter, error) {
	// earlier holds the request's events so far by source and event_id.
	var earlier map[[2]string]*schemas.Event
	kept := ok[:0]
	var rejected []stream.DeadLetter
	for _, p := range ok {
		e := p.Event
		target := e.Corrects()
		if target == "" {
			kept = append(kept, p)
			if earlier != nil {
				earlier[[2]string{e.Source, e.EventID}] = e
			}
			continue
		}
		if earlier == nil { // the first correction: index what came before it
			earlier = make(map[[2]string]*schemas.Event, len(kept))
			for _, q := range kept {
				earlier[[2]string{q.Event.Source, q.Event.EventID}] = q.Event
			}
		}
		t, found := earlier[[2]string{e.Source, target}]
		if !found {
			tref := in.refs.Ref(e.Source, target)
			m, err := in.bus.LastMsg(ctx, schemas.StreamEvents, schemas.SubjectEvents+"."+tref+".>")
			switch {
			case errors.Is(err, stream.ErrMsgNotFound):
			case err != nil:
				return nil, nil, fmt.Errorf("read the event %s that %s corrects: %w", tref, in.refs.Ref(e.Source, e.EventID), err)
			default:
				if t, err = schemas.UnmarshalEvent(m.Data); err != nil {
					return nil, nil, fmt.Errorf("stored event %s (sequence %d): %w", tref, m.Seq, err)
				}
				found = true
			}
		}
		field := "supersedes"
		if e.Type == schemas.TypeRetraction {
			field = "retracts"
		}
		// Reasons never quote the target's event_id: they are stored in
		// the dead letter's headers (the producer knows what it sent).
		var why string
		switch {
		case !found:
			why = fmt.Sprintf("%s: no event of source %q with that event_id was accepted before; a correction follows the event it corrects, and a producer corrects only its own events", field, e.Source)
		case e.Type != schemas.TypeRetraction && t.Type != e.Type:
			why = fmt.Sprintf("supersedes: the superseded event is a %s, not a %s; a new version has the type of the old", t.Type, e.Type)
		case e.Type == schemas.TypeRetraction && !t.Type.Correctable():
			why = fmt.Sprintf("retracts: the retracted event is a %s; only cases and lab tests can be retracted (a bed snapshot is corrected by a later one)", t.Type)
		case e.Type == schemas.TypeRetraction && t.Region != e.Region:
			why = fmt.Sprintf("region: the retracted event is in %s; a retraction names the region of the event it withdraws", t.Region)
		}
		if why != "" {
			rejected = append(rejected, stream.DeadLetter{Stage: schemas.DeadLetterStageIngest, Reason: why, Data: p.Data, Index: p.Index, Type: string(e.Type), EventID: e.EventID, Ref: in.refs.Ref(e.Source, e.EventID)})
			in.m.rejected(string(e.Type), "bad_correction")
			continue
		}
		kept = append(kept, p)
		earlier[[2]string{e.Source, e.EventID}] = e
	}
	return kept, rejected, nil
}

// publish stores msgs as atomic batches of up to stream.MaxAtomicBatch: one
// acknowledgement, and under sync_interval "always" one fsync, per batch
// instead of per event. A batch the stream refuses as a whole — one of its
// event_ids is stored already (a retry, a re-import, a reuse), the stream
// does not allow atomic publish (an older server), too many batches in
// flight — is published again message by message, which tells each event's
// fate; being atomic, nothing of it was stored. An error means JetStream is
// unavailable and nothing may be assumed stored.
func (in *Ingester) publish(ctx context.Context, msgs []stream.Msg) ([]stream.PubResult, error) {
	if in.cfg.PublishEach {
		return in.pub.PublishBatch(ctx, msgs), nil
	}
	res := make([]stream.PubResult, 0, len(msgs))
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), stream.MaxAtomicBatch)]
		msgs = msgs[len(chunk):]
		err := in.pub.PublishAtomic(ctx, chunk)
		switch {
		case err == nil:
			res = append(res, make([]stream.PubResult, len(chunk))...)
			continue
		case stream.IsUnavailable(err) || stream.IsStreamFull(err):
			return nil, err
		}
		in.m.batchFallback(stream.AtomicRefusal(err))
		res = append(res, in.pub.PublishBatch(ctx, chunk)...)
	}
	return res, nil
}

// settle records an accepted or duplicate event in the answer.
func (in *Ingester) settle(sum *Summary, p Prepared, status string) {
	if status == StatusDuplicate {
		sum.Duplicates++
	} else {
		sum.Accepted++
	}
	in.m.accepted(string(p.Event.Type), status)
	sum.Results[p.Index] = Result{Index: p.Index, EventID: p.Event.EventID, Status: status}
}

// sameAsStored reads back the stored event of each ok[i], i in idx, and
// reports whether it holds the same bytes: a Nats-Msg-Id duplicate names the
// stored sequence, a refused publish is looked up by its ref's filter.
func (in *Ingester) sameAsStored(ctx context.Context, ok []Prepared, res []stream.PubResult, idx []int) ([]bool, error) {
	same := make([]bool, len(idx))
	if len(idx) == 0 {
		return same, nil
	}
	errs := make([]error, len(idx))
	sem := make(chan struct{}, storedReads)
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var m stream.Msg
			var err error
			ref := in.refs.Ref(ok[i].Event.Source, ok[i].Event.EventID)
			if res[i].Err == nil {
				m, err = in.bus.GetMsg(ctx, schemas.StreamEvents, res[i].Seq)
			} else {
				m, err = in.bus.LastMsg(ctx, schemas.StreamEvents, schemas.SubjectEvents+"."+ref+".>")
			}
			if errors.Is(err, stream.ErrMsgNotFound) {
				// JetStream still remembers the event_id (its duplicate
				// window) but the event itself has left the stream under
				// its retention (stream.events_max_bytes/_age, discard
				// old): it was accepted before, and nothing is left to
				// compare it with. Answered as the duplicate it most likely
				// is; refusing would have the producer retry for ever.
				same[k] = true
				return
			}
			if err != nil {
				errs[k] = fmt.Errorf("read back the stored event %s: %w", ref, err)
				return
			}
			same[k] = bytes.Equal(m.Data, ok[i].Data) || in.sameUnderStoredKey(m.Data, ok[i])
		}()
	}
	wg.Wait()
	return same, errors.Join(errs...)
}

// sameUnderStoredKey reports whether p is the stored event pseudonymised
// under another key of the ring: an unchanged retry of an event accepted
// before a key rotation, whose stored pseudonyms carry the retired key's id.
// The raw event is prepared again with that key and compared byte for byte,
// so a changed event under a used event_id is still refused.
func (in *Ingester) sameUnderStoredKey(stored []byte, p Prepared) bool {
	kp, ok := in.pseudo.(KeyedPseudonymizer)
	if !ok || p.Raw == nil {
		return false
	}
	var se schemas.Event
	if json.Unmarshal(stored, &se) != nil {
		return false
	}
	keyID := ""
	for _, ps := range []*schemas.Person{se.Person, se.IndexPerson, se.ContactPerson} {
		if ps != nil && ps.KeyID != "" {
			keyID = ps.KeyID
			break
		}
	}
	if keyID == "" || keyID == personKey(p.Event) {
		return false // same key: the bytes differ for another reason
	}
	e, err := in.contract.Decode(p.Raw)
	if err != nil || in.validator.Validate(e) != nil || kp.ApplyWithKey(e, keyID) != nil {
		return false
	}
	again, err := json.Marshal(e)
	return err == nil && bytes.Equal(again, stored)
}

// personKey is the key id of the first person of e ("" without persons).
func personKey(e *schemas.Event) string {
	for _, ps := range []*schemas.Person{e.Person, e.IndexPerson, e.ContactPerson} {
		if ps != nil {
			return ps.KeyID
		}
	}
	return ""
}

func (in *Ingester) unavailable(err error) error {
	full := stream.IsStreamFull(err)
	in.m.unavailable(full)
	in.log.Warn("publish failed; batch refused", "stream_full", full, "err", err)
	return &ErrUnavailable{Full: full, Err: err}
}

// peekEvent salvages type, event_id and source from an event the contract
// rejected, for the answer, the dead-letter subject and its ref.
func peekEvent(raw []byte) (typ, id, source string) {
	var v struct {
		Type    any `json:"type"`
		EventID any `json:"event_id"`
		Source  any `json:"source"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return "", "", ""
	}
	typ, _ = v.Type.(string)
	id, _ = v.EventID.(string)
	source, _ = v.Source.(string)
	if schemas.ScanPersonalData(id) != schemas.NoPersonalData {
		id = "" // checked whole: a cut could split the match
	}
	if len(id) > schemas.MaxEventIDLen {
		id = id[:schemas.MaxEventIDLen]
	}
	return typ, id, source
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
