package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/schemas"
)

// DeadLetter describes one rejected message. Its message carries the
// original bytes (pseudonymised: ingest never dead-letters a raw national
// ID) and the dead-letter headers of schemas (HeaderReason and the others).
type DeadLetter struct {
	Stage  string
	Type   string // event type if known
	Reason string
	Data   []byte
	// EventID is the rejected event's own event_id, for the answer to its
	// producer; it is never stored (the data holds the event anyway).
	EventID string
	// Ref is the event's ref (schemas.EventRefs), stored as
	// schemas.HeaderEventRef.
	Ref      string
	Subject  string // where it was consumed from, for pipeline stages
	Sequence uint64 // its stream sequence, for pipeline stages
	Index    int    // its position in the ingest request, -1 if none
}

// Msg turns the dead letter into a publishable message. Its ID makes
// dead-lettering the same input twice (a redelivery, a re-posted batch)
// harmless within the duplicate window.
func (d DeadLetter) Msg() Msg {
	h := nats.Header{}
	h.Set(schemas.HeaderReason, d.Reason)
	h.Set(schemas.HeaderStage, d.Stage)
	if d.Ref != "" {
		h.Set(schemas.HeaderEventRef, d.Ref)
	}
	if d.Subject != "" {
		h.Set(schemas.HeaderSubject, d.Subject)
	}
	var id string
	if d.Sequence > 0 {
		h.Set(schemas.HeaderStreamSeq, strconv.FormatUint(d.Sequence, 10))
		id = d.Stage + ":" + d.Subject + ":" + strconv.FormatUint(d.Sequence, 10)
	} else {
		sum := sha256.Sum256(append([]byte(d.Reason+"\x00"), d.Data...))
		id = d.Stage + ":" + hex.EncodeToString(sum[:16])
	}
	if d.Index >= 0 {
		h.Set(schemas.HeaderBatchIndex, strconv.Itoa(d.Index))
	}
	return Msg{Subject: schemas.DeadLetterSubject(d.Stage, d.Type), ID: id, Data: d.Data, Header: h}
}

// PublishDeadLetters stores dead letters and returns the first error.
func (p *Publisher) PublishDeadLetters(ctx context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	msgs := make([]Msg, len(dls))
	for i, d := range dls {
		msgs[i] = d.Msg()
	}
	for _, r := range p.PublishBatch(ctx, msgs) {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// StoredDeadLetter is a dead letter as kept in the stream.
type StoredDeadLetter struct {
	Seq     uint64
	Time    time.Time
	Subject string // epi.deadletter.<stage>.<type>
	Stage   string
	Type    string
	Reason  string
	// Ref is the event's ref (schemas.HeaderEventRef), if known.
	Ref string
	// Origin is the subject the message was consumed from (pipeline stages);
	// empty for ingest rejections.
	Origin string
	Data   []byte
}

// listDeadLetters is Bus.ListDeadLetters.
func listDeadLetters(ctx context.Context, js jetstream.JetStream, from uint64, limit int, stage string) ([]StoredDeadLetter, error) {
	st, err := js.Stream(ctx, schemas.StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream info: %w", err)
	}
	if from < info.State.FirstSeq {
		from = info.State.FirstSeq
	}
	var out []StoredDeadLetter
	for seq := from; seq <= info.State.LastSeq && (limit <= 0 || len(out) < limit); seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		d := storedFrom(m)
		if stage != "" && d.Stage != stage {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// getDeadLetter is Bus.GetDeadLetter.
func getDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (StoredDeadLetter, error) {
	st, err := js.Stream(ctx, schemas.StreamDeadLetter)
	if err != nil {
		return StoredDeadLetter{}, fmt.Errorf("open dead-letter stream: %w", err)
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return StoredDeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return storedFrom(m), nil
}

func storedFrom(m *jetstream.RawStreamMsg) StoredDeadLetter {
	d := StoredDeadLetter{Seq: m.Sequence, Time: m.Time, Subject: m.Subject, Data: m.Data}
	parts := strings.Split(m.Subject, ".")
	if len(parts) >= 4 {
		d.Stage, d.Type = parts[2], parts[3]
	}
	if m.Header != nil {
		d.Reason = m.Header.Get(schemas.HeaderReason)
		d.Ref = m.Header.Get(schemas.HeaderEventRef)
		d.Origin = m.Header.Get(schemas.HeaderSubject)
	}
	return d
}
