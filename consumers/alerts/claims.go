package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Claim states.
const (
	// statePending: an alerter holds the claim and is delivering.
	statePending = "pending"
	// stateRetry: a delivery round failed transiently; the claim is free for
	// the next redelivery of the decision to take.
	stateRetry = "retry"
	// stateSent and stateFailed are final: nothing is sent again.
	stateSent   = "sent"
	stateFailed = "failed"
)

// claim is the value of one delivery's key in schemas.BucketAlertClaims. Its
// key is claimKey(AlertID); it is created with KV Create (create-if-absent,
// so one alerter wins) and moved on with Update at the read revision (compare
// and set, so two alerters never both believe they hold it).
type claim struct {
	State      string `json:"state"`
	AlertID    string `json:"alert_id"`
	DecisionID string `json:"decision_id"`
	Region     string `json:"region"`
	Channel    string `json:"channel"`
	Kind       string `json:"kind"`
	// Escalation marks the claim of the one re-send to the second contact.
	Escalation bool `json:"escalation,omitempty"`
	// Owner is the alerter instance holding a pending claim.
	Owner     string    `json:"owner,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"` // first claim: when the alert became due
	UpdatedAt time.Time `json:"updated_at"`
	Attempts  int       `json:"attempts"` // HTTP attempts over all rounds
	Rounds    int       `json:"rounds"`
	// Record is the final outcome once sent or failed; Recorded says it has
	// reached EPI_ALERTS (until then a redelivery publishes it again, with the
	// same Nats-Msg-Id and the same bytes).
	Record   *schemas.AlertRecord `json:"record,omitempty"`
	Recorded bool                 `json:"recorded,omitempty"`
	// Decision is kept for the escalation, which has no message to read it from.
	Decision schemas.Decision `json:"decision"`
	// Digest is the content of a daily digest (Kind digest), kept so that a
	// re-send after a takeover is byte-identical to what the dead holder sent.
	Digest *Digest `json:"digest,omitempty"`
}

func (c *claim) final() bool { return c.State == stateSent || c.State == stateFailed }

// key is the claim's KV key: claimKey(AlertID) for decision alerts, and
// digestKey for digests, which keeps digest claims apart from (and out of the
// escalation scan of) the single-token decision alert keys.
func (c *claim) key() string {
	if c.Kind == KindDigest && c.Digest != nil {
		return digestKey(c.Region, c.Digest.Date, c.Channel)
	}
	return claimKey(c.AlertID)
}

// digestKey is the claim key of one region's digest of one data day on one
// channel: "digest.<region>.<YYYY-MM-DD>.<channel>" (region and channel
// escaped as in claimKey).
func digestKey(region string, day schemas.Date, channel string) string {
	return "digest." + claimKey(region) + "." + day.String() + "." + claimKey(channel)
}

// ack is the value of an acknowledgement key (ackKey(decision_id)).
type ack struct {
	DecisionID string    `json:"decision_id"`
	AlertID    string    `json:"alert_id,omitempty"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
}

// claimKey turns an alert id into a KV key. KV keys allow only
// [-/_=.A-Za-z0-9]; every other byte, and '.', '/' and '=' themselves, become
// "=XX" (hex), so distinct ids never share a key and a claim key is a single
// token (no '.'), which keeps them apart from the "ack.<…>" keys.
func claimKey(id string) string {
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// ackKey is where the acknowledgement of a decision's alerts is kept: an
// acknowledgement of any of its alerts (any channel) acknowledges the decision.
func ackKey(decisionID string) string { return "ack." + claimKey(decisionID) }

// errBusy means another alerter holds a fresh claim: retry later.
var errBusy = errors.New("delivery in progress elsewhere")

// acquire claims the delivery described by fresh. It returns the claim to
// work with, its revision, and whether the caller now holds it (false: it is
// final, nothing to send). A pending claim of another owner younger than
// stale is left alone (errBusy); an older one is taken over — its holder died
// mid-delivery and may or may not have sent, so the re-send carries the same
// idempotency key.
func (a *Alerter) acquire(ctx context.Context, kv *stream.KV, fresh claim, stale time.Duration) (claim, uint64, bool, error) {
	key := fresh.key()
	now := a.now().UTC()
	fresh.State, fresh.Owner, fresh.ClaimedAt, fresh.UpdatedAt = statePending, a.owner, now, now
	for range 5 {
		rev, err := kv.Create(ctx, key, mustJSON(fresh))
		if err == nil {
			return fresh, rev, true, nil
		}
		if !errors.Is(err, stream.ErrKeyExists) {
			return claim{}, 0, false, fmt.Errorf("claim %s: %w", fresh.AlertID, err)
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, stream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return claim{}, 0, false, fmt.Errorf("read claim %s: %w", fresh.AlertID, err)
		}
		var c claim
		if err := json.Unmarshal(e.Value, &c); err != nil {
			return claim{}, 0, false, fmt.Errorf("decode claim %s: %w", fresh.AlertID, err)
		}
		if c.final() {
			return c, e.Revision, false, nil
		}
		if c.State == statePending && c.Owner != a.owner && now.Sub(c.UpdatedAt) < stale {
			return claim{}, 0, false, fmt.Errorf("claim %s held by %s since %s: %w", fresh.AlertID, c.Owner, c.UpdatedAt.Format(time.RFC3339), errBusy)
		}
		c.State, c.Owner, c.UpdatedAt = statePending, a.owner, now
		rev, err = kv.Update(ctx, key, mustJSON(c), e.Revision)
		if err == nil {
			return c, rev, true, nil
		}
		if !isConflict(err) {
			return claim{}, 0, false, fmt.Errorf("take over claim %s: %w", fresh.AlertID, err)
		}
		// Someone else moved it meanwhile: look again.
	}
	return claim{}, 0, false, fmt.Errorf("claim %s: contended: %w", fresh.AlertID, errBusy)
}

// store writes c over revision rev; on a conflict (a takeover after we were
// thought dead) it re-reads and, unless the other writer already finished,
// writes again: what we sent has been sent. It returns the new revision.
func (a *Alerter) store(ctx context.Context, kv *stream.KV, c claim, rev uint64) (uint64, error) {
	key := c.key()
	for range 5 {
		c.UpdatedAt = a.now().UTC()
		nrev, err := kv.Update(ctx, key, mustJSON(c), rev)
		if err == nil {
			return nrev, nil
		}
		if !isConflict(err) {
			return 0, fmt.Errorf("update claim %s to %s: %w", c.AlertID, c.State, err)
		}
		e, gerr := kv.Get(ctx, key)
		if gerr != nil {
			return 0, fmt.Errorf("re-read claim %s: %w", c.AlertID, gerr)
		}
		var cur claim
		if json.Unmarshal(e.Value, &cur) == nil && cur.final() && !c.final() {
			return e.Revision, nil
		}
		rev = e.Revision
	}
	return 0, fmt.Errorf("update claim %s: contended", c.AlertID)
}

func isConflict(err error) bool {
	return errors.Is(err, stream.ErrWrongRevision) || errors.Is(err, stream.ErrKeyExists)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("alerts: marshal %T: %v", v, err)) // only plain structs are marshalled
	}
	return b
}
