package schemas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// IDKeySize is the length of the id key behind EventRefs.
const IDKeySize = 32

// EventRefs names events in infrastructure without their event_id. A
// producer's event_id may carry personal data in ways no scanner catches
// (a name in a free-form id, a hospital's record number): the raw event_id
// is stored only inside the event's JSON, for the producer to correlate,
// and every other place that names an event — NATS subjects, Nats-Msg-Id,
// KV keys, dead-letter headers, log lines, metric labels — uses its ref, a
// keyed digest of (source, event_id).
//
// The key (schemas.BucketIDKey) does not protect the payloads: whoever can
// read NATS messages sees the raw event_id in them anyway. It protects the
// places outside payloads — subjects in monitoring and advisories, logs,
// metrics — that people without payload access see, where a plain hash of
// a guessable id could be reversed by trying candidates. It is not a key
// over personal data (it never has to be rotated, and rotating it would
// change every stored event's subject); it is created once per deployment
// and shared by every process.
//
// The ref includes the source, so two producers' "c1" are two events
// (ids are scoped to their producer).
type EventRefs struct {
	pool sync.Pool // of hash.Hash: HMAC-SHA256 under the key
}

// NewEventRefs returns the refs under key (IDKeySize bytes).
func NewEventRefs(key []byte) (*EventRefs, error) {
	if len(key) != IDKeySize {
		return nil, fmt.Errorf("id key: %d bytes, want %d", len(key), IDKeySize)
	}
	k := append([]byte(nil), key...)
	r := &EventRefs{}
	r.pool.New = func() any { return hmac.New(sha256.New, k) }
	return r, nil
}

// Ref returns "e" and 32 hex digits: the first 16 bytes of
// HMAC-SHA256(key, source "\x00" event_id). Sixteen bytes make a collision
// of two events practically impossible (about 2^-64 for 10^10 events) and
// one cannot be provoked without the key; the "e" keeps it a valid subject
// token and KV key that never reads as a number.
func (r *EventRefs) Ref(source, eventID string) string {
	h := r.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(eventID))
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])
	r.pool.Put(h)
	var b [33]byte
	b[0] = 'e'
	hex.Encode(b[1:], out[:16])
	return string(b[:])
}

// Subject returns epi.events.<ref>.<type>.<region>, the subject of the
// event (source, eventID).
//
// The ref comes first so that all of an event's possible subjects share
// the literal prefix Filter: ingest publishes with "no message on that
// filter yet" as the expected last subject sequence, which makes the stream
// itself refuse an event it holds already, for ever and in the same write
// as the event. (A KV bucket of digests did that in a second fsynced write
// per event, and a filter with the ref after wildcards costs the server
// more; README, "Performance".) Operators still select by type or region
// with wildcards: epi.events.*.case.>, epi.events.*.*.KZ-75.
func (r *EventRefs) Subject(source, eventID string, t EventType, region string) string {
	return RefSubject(r.Ref(source, eventID), t, region)
}

// Filter returns epi.events.<ref>.>: every subject the event (source,
// eventID) can have.
func (r *EventRefs) Filter(source, eventID string) string {
	return SubjectEvents + "." + r.Ref(source, eventID) + ".>"
}

// RefSubject returns epi.events.<ref>.<type>.<region> for a ref computed
// before.
func RefSubject(ref string, t EventType, region string) string {
	return SubjectEvents + "." + ref + "." + string(t) + "." + region
}

// EventSubjectRef returns the ref token of an events subject, or "" for
// any other subject.
func EventSubjectRef(subj string) string {
	parts := strings.Split(subj, ".")
	if len(parts) != 5 || parts[0]+"."+parts[1] != SubjectEvents {
		return ""
	}
	return parts[2]
}

// IsEventRef reports whether s has the form of a Ref. An events subject
// whose first token is not one was written by an epiwatch before refs
// (epi.events.<event_id>.…).
func IsEventRef(s string) bool {
	if len(s) != 33 || s[0] != 'e' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
