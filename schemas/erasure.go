package schemas

import (
	"fmt"
	"time"
)

// Erasure kinds: what an erasure selected (the <kind> of
// epi.erasures.<kind>).
const (
	ErasurePerson = "person" // every event naming a person (by national ID or pseudonym)
	ErasureEvent  = "event"  // one producer's event (source and event_id)
)

// Erasure is one record of the erasure audit log (StreamErasures, and the
// ClickHouse table epiwatch.erasures): what `epiwatch erase` removed, by
// whom and when. It never holds the national ID, the pseudonym or the
// event_id that selected the events — an audit log of erasures that named
// the erased would defeat them; the operator's own ticket (Reason) links
// the record to the request.
type Erasure struct {
	// ID is random, unique per erasure (and the Nats-Msg-Id and ClickHouse
	// key of its record: a retried append is stored once).
	ID     string    `json:"erasure_id"`
	Kind   string    `json:"kind"`
	By     string    `json:"by"`     // the operator, as given to --by (default: the OS user)
	Reason string    `json:"reason"` // the ticket or legal basis, as given to --reason
	At     time.Time `json:"at"`

	// Events is how many events the events stream held for the selection
	// (the person's own events and corrections of them) and deleted;
	// DeadLetters how many dead letters.
	Events      int `json:"events"`
	DeadLetters int `json:"dead_letters"`
	// Seqs are the events-stream sequences deleted: numbers, not personal
	// data. The processor skips them in a batch fetched before the delete.
	Seqs []uint64 `json:"seqs,omitempty"`
	// EventsLastSeq is the events stream's last sequence when the events
	// were deleted: every indicator the processor publishes after rebuilding
	// its state without them has at least this version, so it replaces the
	// records that counted them (ReplacingMergeTree keeps the highest).
	EventsLastSeq uint64 `json:"events_last_seq"`
}

// ErasureSubject returns epi.erasures.<kind>.
func ErasureSubject(kind string) string { return SubjectErasures + "." + kind }

// Validate checks a record before it is appended.
func (e *Erasure) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("erasure record: no erasure_id")
	case e.Kind != ErasurePerson && e.Kind != ErasureEvent:
		return fmt.Errorf("erasure record %s: kind %q is neither %s nor %s", e.ID, e.Kind, ErasurePerson, ErasureEvent)
	case e.By == "":
		return fmt.Errorf("erasure record %s: who erased (by) is required", e.ID)
	case e.At.IsZero():
		return fmt.Errorf("erasure record %s: no time", e.ID)
	}
	return nil
}
