// Package erase removes a person's events (or one producer's event) from the
// JetStream streams that hold them and appends the audit record of it: the
// stream half of `epiwatch erase`. The ClickHouse half is
// consumers/clickhouse.Erase; the processor rebuilds its state when the
// audit record appears (process.Processor watches schemas.StreamErasures).
//
// Order matters, and every step may be retried:
//  1. Find: read the events stream and the dead-letter stream whole and
//     select what names the person (any of their pseudonyms, in person,
//     index_person or contact_person; in a dead letter, anywhere in its
//     bytes) or is the event, plus every correction of a selected event —
//     a retraction of an erased case would otherwise fail for ever.
//  2. Delete: secure-delete each selected message (the server overwrites
//     its bytes).
//  3. Record: append the audit record, naming the deleted sequences, never
//     the person. The processor's rebuild is triggered by this record, so a
//     crash before it leaves the processor counting erased events until the
//     erasure is run again — which finds nothing left to delete and
//     records.
package erase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Selector says what to erase: a person, by the pseudonyms their national ID
// has under the keys of the ring, or one event by source and event_id.
type Selector struct {
	Pseudonyms []string
	Source     string
	EventID    string
}

// Kind is the audit record's kind of the selection.
func (s Selector) Kind() string {
	if len(s.Pseudonyms) > 0 {
		return schemas.ErasurePerson
	}
	return schemas.ErasureEvent
}

// Validate checks that the selector selects exactly one thing.
func (s Selector) Validate() error {
	switch {
	case len(s.Pseudonyms) > 0 && (s.Source != "" || s.EventID != ""):
		return errors.New("erase a person or an event, not both")
	case len(s.Pseudonyms) > 0:
		for _, p := range s.Pseudonyms {
			if len(p) < 16 {
				return errors.New("a pseudonym is at least 16 characters (as ingest writes them)")
			}
		}
		return nil
	case s.EventID == "" || s.Source == "":
		return errors.New("an event to erase needs both its source and its event_id (ids are a producer's own)")
	}
	return nil
}

// Plan is what Find selected.
type Plan struct {
	// Events are the selected events-stream sequences, ascending: the
	// person's events (or the event) and the corrections of them.
	Events []uint64
	// Corrections counts those of Events that were selected only because
	// they correct a selected event.
	Corrections int
	// DeadLetters are the dead-letter-stream sequences naming the person
	// (or holding the event), ascending.
	DeadLetters []uint64
	// Regions are the regions of the selected events, sorted.
	Regions []string
	// EventsLastSeq is the events stream's last sequence when Find read it.
	EventsLastSeq uint64
}

// Eraser runs erasures against a bus.
type Eraser struct {
	bus *stream.Bus
	log *slog.Logger
	// Progress, if set, is called now and then while the streams are read
	// and the messages deleted (what, done, total).
	Progress func(what string, done, total uint64)
}

// New returns an Eraser; log may be nil.
func New(bus *stream.Bus, log *slog.Logger) *Eraser {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Eraser{bus: bus, log: log.With("component", "erase")}
}

// stored is the part of a stored event Find reads.
type stored struct {
	EventID       string          `json:"event_id"`
	Source        string          `json:"source"`
	Region        string          `json:"region"`
	Supersedes    string          `json:"supersedes"`
	Retracts      string          `json:"retracts"`
	Person        *schemas.Person `json:"person"`
	IndexPerson   *schemas.Person `json:"index_person"`
	ContactPerson *schemas.Person `json:"contact_person"`
}

func (s *stored) names(ps map[string]bool) bool {
	for _, p := range []*schemas.Person{s.Person, s.IndexPerson, s.ContactPerson} {
		if p != nil && ps[p.Pseudonym] {
			return true
		}
	}
	return false
}

// progressEvery is how many messages pass between progress reports.
const progressEvery = 50_000

// Find reads the events and dead-letter streams and returns what sel
// selects. It deletes nothing.
func (e *Eraser) Find(ctx context.Context, sel Selector) (*Plan, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	info, err := e.bus.StreamInfo(ctx, schemas.StreamEvents)
	if err != nil {
		return nil, err
	}
	plan := &Plan{EventsLastSeq: info.LastSeq}
	ps := make(map[string]bool, len(sel.Pseudonyms))
	for _, p := range sel.Pseudonyms {
		ps[p] = true
	}
	type ref struct{ source, id string }
	picked := map[ref]bool{}
	regions := map[string]bool{}
	// A correction names an event stored before it, so one pass in stream
	// order sees every target before its corrections (a chain of versions
	// included).
	var read uint64
	var bad int
	_, err = e.bus.ReadAll(ctx, schemas.StreamEvents, schemas.SubjectEvents+".>", nil, func(m stream.Msg) {
		read++
		if e.Progress != nil && read%progressEvery == 0 {
			e.Progress("events read", read, info.Msgs)
		}
		var s stored
		if err := json.Unmarshal(m.Data, &s); err != nil {
			bad++ // never applied by anyone; a person in it is found below by bytes
			if len(ps) > 0 && containsAny(m.Data, sel.Pseudonyms) {
				plan.Events = append(plan.Events, m.Seq)
			}
			return
		}
		var hit, correction bool
		if len(ps) > 0 {
			hit = s.names(ps)
		} else {
			hit = s.Source == sel.Source && s.EventID == sel.EventID
		}
		if !hit {
			target := s.Supersedes
			if s.Retracts != "" {
				target = s.Retracts
			}
			// Corrections are a producer's own (ingest checks the source).
			hit = target != "" && picked[ref{s.Source, target}]
			correction = hit
		}
		if !hit {
			return
		}
		picked[ref{s.Source, s.EventID}] = true
		regions[s.Region] = true
		plan.Events = append(plan.Events, m.Seq)
		if correction {
			plan.Corrections++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schemas.StreamEvents, err)
	}
	if bad > 0 {
		e.log.Warn("events that do not decode were read (never applied; searched by bytes)", "count", bad)
	}
	// Dead letters: the stored bytes of a rejected or unprocessable event,
	// pseudonymised or redacted; a person is found by the pseudonym
	// anywhere in them, an event by its source and id.
	_, err = e.bus.ReadAll(ctx, schemas.StreamDeadLetter, schemas.SubjectDeadLetter+".>", nil, func(m stream.Msg) {
		if len(ps) > 0 {
			if containsAny(m.Data, sel.Pseudonyms) {
				plan.DeadLetters = append(plan.DeadLetters, m.Seq)
			}
			return
		}
		var s stored
		if json.Unmarshal(m.Data, &s) == nil && s.Source == sel.Source && (s.EventID == sel.EventID || picked[ref{s.Source, s.Supersedes}] || picked[ref{s.Source, s.Retracts}]) {
			plan.DeadLetters = append(plan.DeadLetters, m.Seq)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schemas.StreamDeadLetter, err)
	}
	sort.Slice(plan.Events, func(i, j int) bool { return plan.Events[i] < plan.Events[j] })
	for r := range regions {
		plan.Regions = append(plan.Regions, r)
	}
	sort.Strings(plan.Regions)
	return plan, nil
}

func containsAny(data []byte, needles []string) bool {
	for _, n := range needles {
		if bytes.Contains(data, []byte(n)) {
			return true
		}
	}
	return false
}

// Delete secure-deletes the plan's messages. Messages already gone are
// skipped (a retried erasure).
func (e *Eraser) Delete(ctx context.Context, plan *Plan) error {
	total := uint64(len(plan.Events) + len(plan.DeadLetters))
	var done uint64
	for _, part := range []struct {
		stream string
		seqs   []uint64
	}{{schemas.StreamEvents, plan.Events}, {schemas.StreamDeadLetter, plan.DeadLetters}} {
		for _, seq := range part.seqs {
			if err := e.bus.EraseMsg(ctx, part.stream, seq); err != nil {
				return err
			}
			if done++; e.Progress != nil && done%1000 == 0 {
				e.Progress("messages deleted", done, total)
			}
		}
	}
	return nil
}

// Record appends the audit record (its erasure_id is the Nats-Msg-Id: a
// retried append within the duplicate window is stored once) and returns
// its sequence in the erasures stream.
func (e *Eraser) Record(ctx context.Context, rec *schemas.Erasure) (uint64, error) {
	if err := rec.Validate(); err != nil {
		return 0, err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode erasure record %s: %w", rec.ID, err)
	}
	ack, err := e.bus.Publisher().PublishSync(ctx, stream.Msg{Subject: schemas.ErasureSubject(rec.Kind), ID: "erasure:" + rec.ID, Data: data})
	if err != nil {
		return 0, fmt.Errorf("append erasure record %s to %s: %w", rec.ID, schemas.StreamErasures, err)
	}
	return ack.Seq, nil
}

// Stored is an audit record with its sequence in the erasure log.
type Stored struct {
	Seq uint64
	schemas.Erasure
}

// Records returns every audit record, oldest first.
func Records(ctx context.Context, bus *stream.Bus) ([]Stored, error) {
	var out []Stored
	var bad error
	_, err := bus.ReadAll(ctx, schemas.StreamErasures, schemas.SubjectErasures+".>", nil, func(m stream.Msg) {
		r := Stored{Seq: m.Seq}
		if err := json.Unmarshal(m.Data, &r.Erasure); err != nil {
			if bad == nil {
				bad = fmt.Errorf("erasure record %d of %s: %w", m.Seq, schemas.StreamErasures, err)
			}
			return
		}
		out = append(out, r)
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schemas.StreamErasures, err)
	}
	return out, bad
}

// NewRecord is the audit record of plan, erased by by for reason at now.
func NewRecord(id string, sel Selector, plan *Plan, by, reason string, now time.Time) *schemas.Erasure {
	return &schemas.Erasure{
		ID: id, Kind: sel.Kind(), By: by, Reason: reason, At: now.UTC(),
		Events: len(plan.Events), DeadLetters: len(plan.DeadLetters),
		Seqs: plan.Events, EventsLastSeq: plan.EventsLastSeq,
	}
}
