package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/epiwatch/epiwatch/schemas"
)

// Dead-letter headers. The body of a dead letter is the original bytes
// (pseudonymised: ingest never dead-letters a raw national ID).
const (
	HdrReason    = "Epiwatch-Reason"
	HdrStage     = "Epiwatch-Stage"
	HdrSubject   = "Epiwatch-Subject"
	HdrStreamSeq = "Epiwatch-Stream-Seq"
	HdrEventID   = "Epiwatch-Event-Id"
	HdrIndex     = "Epiwatch-Batch-Index"
)

// Dead-letter stages.
const (
	StageIngest  = "ingest"
	StageProcess = "process"
	StageSink    = "sink"
)

// DeadLetter describes one rejected message.
type DeadLetter struct {
	Stage    string
	Type     string // event type if known
	Reason   string
	Data     []byte
	EventID  string
	Subject  string // where it was consumed from, for pipeline stages
	Sequence uint64 // its stream sequence, for pipeline stages
	Index    int    // its position in the ingest request, -1 if none
}

// Msg turns the dead letter into a publishable message. Its ID makes
// dead-lettering the same input twice (a redelivery, a re-posted batch)
// harmless within the duplicate window.
func (d DeadLetter) Msg() Msg {
	h := nats.Header{}
	h.Set(HdrReason, d.Reason)
	h.Set(HdrStage, d.Stage)
	if d.EventID != "" {
		h.Set(HdrEventID, d.EventID)
	}
	if d.Subject != "" {
		h.Set(HdrSubject, d.Subject)
	}
	var id string
	if d.Sequence > 0 {
		h.Set(HdrStreamSeq, strconv.FormatUint(d.Sequence, 10))
		id = d.Stage + ":" + d.Subject + ":" + strconv.FormatUint(d.Sequence, 10)
	} else {
		sum := sha256.Sum256(append([]byte(d.Reason+"\x00"), d.Data...))
		id = d.Stage + ":" + hex.EncodeToString(sum[:16])
	}
	if d.Index >= 0 {
		h.Set(HdrIndex, strconv.Itoa(d.Index))
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
